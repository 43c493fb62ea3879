//! usher's own refusals are pages for a browser and JSON for an API
//! client, whatever the method (SPEC §3.4): 403, cross-site, expired form,
//! 429, 502, 504.

use std::convert::Infallible;
use std::time::Duration;

use crate::login::{jar, sign_in, users};
use crate::support::{full, session_toml, spawn_proxy, spawn_upstream};

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
const API: &str = "application/json";

/// The status and the media type of a response.
async fn kind(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.expect("send");
    let media = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    (res.status().as_u16(), media)
}

#[track_caller]
fn both(status: u16, html: (u16, String), json: (u16, String), what: &str) {
    assert_eq!(html, (status, "text/html".to_string()), "{what}, as a browser");
    assert_eq!(
        json,
        (status, "application/json".to_string()),
        "{what}, as an API client"
    );
}

#[tokio::test]
async fn refusals_are_html_for_browsers_and_json_for_api_clients() {
    let up = spawn_upstream(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok::<_, Infallible>(http::Response::new(full("ok")))
    })
    .await;
    let config = format!(
        "timeout = \"1s\"\n{}\n{}\n[login]\nip_attempts_per_minute = 1\n\
         [access]\ndefault = \"anyone\"\n[[access.rules]]\npath = \"/closed/**\"\nallow = \"nobody\"\n",
        session_toml(""),
        users()
    );
    let proxy = spawn_proxy(up.addr, &config).await;
    let c = jar();
    let get = |path: &str, accept: &str| c.get(proxy.url(path)).header("accept", accept);
    both(
        403,
        kind(get("/closed/x", BROWSER)).await,
        kind(get("/closed/x", API)).await,
        "403",
    );
    both(
        504,
        kind(get("/slow", BROWSER)).await,
        kind(get("/slow", API)).await,
        "504",
    );

    let cross = |accept: &str| {
        c.post(proxy.url("/x"))
            .header("accept", accept)
            .header("cookie", "usher_session=v1.forged")
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
    };
    both(
        403,
        kind(cross(BROWSER)).await,
        kind(cross(API)).await,
        "cross-site POST",
    );

    let expired = |accept: &str| {
        c.post(proxy.url("/.usher/login")).header("accept", accept).form(&[
            ("username", "alice"),
            ("password", "x"),
            ("csrf", "forged"),
        ])
    };
    both(
        403,
        kind(expired(BROWSER)).await,
        kind(expired(API)).await,
        "expired form",
    );

    // One failure fills the client's bucket; the next attempt is refused.
    assert_eq!(sign_in(&c, &proxy, "alice", "wrong", "/").await.status(), 401);
    let limited = |accept: &'static str| {
        let (c, url) = (c.clone(), proxy.url(""));
        async move {
            let page = c
                .get(format!("{url}/.usher/login"))
                .header("accept", BROWSER)
                .send()
                .await
                .expect("page");
            let csrf = crate::login::csrf_of(&page.text().await.expect("html"));
            let form = [
                ("username", "alice"),
                ("password", "wonderland"),
                ("csrf", csrf.as_str()),
            ];
            c.post(format!("{url}/.usher/login"))
                .header("accept", accept)
                .form(&form)
        }
    };
    let html = limited(BROWSER).await.send().await.expect("send");
    assert_eq!(html.status(), 429);
    assert!(html.headers().contains_key("retry-after"));
    let page = html.text().await.expect("text");
    assert!(
        page.contains("<form") && page.contains("Too many sign-in attempts"),
        "the form again: {page}"
    );
    assert_eq!(
        kind(limited(API).await).await,
        (429, "application/json".to_string()),
        "429 for an API client"
    );
    proxy.stop().await;

    // The upstream gone: 502.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let proxy = spawn_proxy(addr, "").await;
    let get = |accept: &str| c.get(proxy.url("/x")).header("accept", accept);
    both(502, kind(get(BROWSER)).await, kind(get(API)).await, "502");
    proxy.stop().await;
}

/// A new user's first deployment: `secure = true` (the default) opened as
/// `http://myapp.test`. The browser drops the Secure cookies, and the
/// sign-in used to fail with "the form expired". The page says why now;
/// loopback (which browsers treat as secure) gets no such note.
#[tokio::test]
async fn secure_cookies_over_plain_http_are_explained() {
    let up = crate::support::spawn_echo_upstream().await;
    let config = format!(
        "[session]\nsecret_keys = [\"{}\"]\n{}\n[access]\ndefault = \"anyone\"\n",
        crate::support::TEST_KEY,
        users()
    );
    let proxy = spawn_proxy(up.addr, &config).await;
    let page = crate::support::raw_get(proxy.addr, "/.usher/login", "Accept: text/html\r\n").await;
    assert!(
        page.contains("Setup problem") && page.contains("plain HTTP at app.test"),
        "{page}"
    );
    assert!(page.contains("secure = false"), "names the way out for a trial: {page}");
    let local = format!(
        "GET /.usher/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        proxy.addr.port()
    );
    let local = crate::support::raw_exchange(proxy.addr, local.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        local.starts_with("HTTP/1.1 200") && !local.contains("Setup problem"),
        "{local}"
    );
    // The post arrives without the form cookie the browser dropped.
    let body = "username=alice&password=wonderland&csrf=x&rd=%2F";
    let post = format!(
        "POST /.usher/login HTTP/1.1\r\nHost: app.test\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let res = crate::support::raw_exchange(proxy.addr, post.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(crate::support::status_of(&res), 403, "{res}");
    assert!(res.contains("did not send the sign-in cookie back"), "{res}");
    proxy.stop().await;
}

/// No dead ends: the 403 page and the sign-in page seen while signed in
/// offer a way on (switch user, continue, back to the start).
#[tokio::test]
async fn the_403_page_and_the_signed_in_sign_in_page_offer_a_way_on() {
    let up = crate::support::spawn_echo_upstream().await;
    let config = format!(
        "{}\n{}\n[access]\ndefault = \"anyone\"\n[[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n",
        session_toml(""),
        users()
    );
    let proxy = spawn_proxy(up.addr, &config).await;
    let c = jar();
    assert_eq!(sign_in(&c, &proxy, "bob", "builder", "/").await.status(), 303);
    let res = c
        .get(proxy.url("/admin/x"))
        .header("accept", BROWSER)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    let page = res.text().await.expect("text");
    assert!(
        page.contains("Sign in as someone else") && page.contains("/.usher/logout?rd="),
        "{page}"
    );
    assert!(page.contains("Back to the start page"), "{page}");
    let page = c
        .get(proxy.url("/.usher/login?rd=/home"))
        .header("accept", BROWSER)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(page.contains("You are signed in as <strong>bob</strong>"), "{page}");
    assert!(
        page.contains("href=\"/home\">Continue") && page.contains("/.usher/logout\">sign out"),
        "{page}"
    );
    proxy.stop().await;
}
