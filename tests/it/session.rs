//! Sessions end to end with a cookie-jar client: backend writes sign in,
//! the upstream sees identity headers, carts accumulate, `null` signs out,
//! non-writable fields and 5xx writes are refused, bad cookies are no
//! session.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    Proxy, Seen, TEST_KEY, forwarded_user, session_toml, spawn_echo_upstream, spawn_proxy, write_query,
};

const WRITES: &str = "[session.forward]\n\"X-Forwarded-User\" = \"user\"\n\"X-Forwarded-Email\" = \"email\"\n\
                      \"X-Forwarded-Groups\" = \"groups\"\n\"X-Cart\" = \"cart\"\n\"X-Role\" = \"role\"\n\
                      [session.upstream]\nwritable = [\"user\", \"email\", \"groups\", \"cart\"]\n";

fn jar_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn proxy_with(upstream: std::net::SocketAddr, session_extra: &str) -> Proxy {
    spawn_proxy(upstream, &session_toml(&format!("{session_extra}\n{WRITES}"))).await
}

/// GET `path` with a session write of `json`; returns the response.
async fn write(c: &reqwest::Client, proxy: &Proxy, json: &str) -> reqwest::Response {
    c.get(proxy.url(&format!("/w?{}", write_query(json))))
        .send()
        .await
        .expect("send")
}

async fn seen(c: &reqwest::Client, proxy: &Proxy) -> Seen {
    let res = c.get(proxy.url("/whoami")).send().await.expect("send");
    assert_eq!(res.status(), 200);
    Seen(res.json::<Value>().await.expect("json"))
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

#[tokio::test]
async fn backend_write_signs_in_and_upstream_sees_identity() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    assert_eq!(
        seen(&c, &proxy).await.one("x-forwarded-user"),
        None,
        "signed out at first"
    );

    let res = write(
        &c,
        &proxy,
        r#"{"user":"alice","email":"alice@example.com","groups":["admin","dev"]}"#,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("usher-session").is_none(),
        "the write header reached the client"
    );
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("usher_session=v1."), "{cookies:?}");
    assert!(
        cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"),
        "{cookies:?}"
    );

    let s = seen(&c, &proxy).await;
    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(s.one("x-forwarded-email").as_deref(), Some("alice@example.com"));
    assert_eq!(s.one("x-forwarded-groups").as_deref(), Some("admin,dev"));
    let ours = cookies[0].split(';').next().expect("pair");
    let plain = crate::support::client();
    let res = plain
        .get(proxy.url("/"))
        .header("cookie", format!("theme=dark; {ours}; lang=en"))
        .send()
        .await;
    let s = Seen(res.expect("send").json().await.expect("json"));
    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("alice"));
    let cookie_seen = s.all("cookie").join("; ");
    assert!(
        cookie_seen.contains("lang=en"),
        "other cookies are forwarded: {cookie_seen}"
    );
    assert!(
        cookie_seen.contains("theme=dark"),
        "other cookies are forwarded: {cookie_seen}"
    );
    assert!(
        !cookie_seen.contains("usher_session"),
        "usher's cookie reached the upstream: {cookie_seen}"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn cart_updates_accumulate_and_null_signs_out() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    write(&c, &proxy, r#"{"user":"bob"}"#).await;
    write(&c, &proxy, r#"{"cart":{"apple":1}}"#).await;
    write(&c, &proxy, r#"{"cart":{"pear":2}}"#).await;
    write(&c, &proxy, r#"{"cart":{"apple":3}}"#).await;
    let cart: Value = serde_json::from_str(&seen(&c, &proxy).await.one("x-cart").expect("cart")).expect("json");
    assert_eq!(cart, json!({"apple":3,"pear":2}));
    write(&c, &proxy, r#"{"cart":{"apple":null}}"#).await;
    let cart: Value = serde_json::from_str(&seen(&c, &proxy).await.one("x-cart").expect("cart")).expect("json");
    assert_eq!(cart, json!({"pear":2}));

    let res = write(&c, &proxy, "null").await;
    let cookies = set_cookies(&res);
    assert!(
        cookies.iter().any(|c| c.contains("Max-Age=0")),
        "clearing cookie: {cookies:?}"
    );
    let s = seen(&c, &proxy).await;
    assert_eq!(s.one("x-forwarded-user"), None);
    assert_eq!(s.one("x-cart"), None);
    proxy.stop().await;
}

#[tokio::test]
async fn non_writable_fields_are_refused() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    write(&c, &proxy, r#"{"user":"carol"}"#).await;
    write(&c, &proxy, r#"{"role":"superuser","auth_time":1,"cart":{"x":1}}"#).await;
    let s = seen(&c, &proxy).await;
    assert_eq!(s.one("x-role"), None, "a field outside writable was written");
    assert_eq!(
        s.one("x-cart").as_deref(),
        Some("{\"x\":1}"),
        "the writable part of the same patch applies"
    );
    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("carol"));
    proxy.stop().await;
}

#[tokio::test]
async fn nothing_is_written_on_a_5xx() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    write(&c, &proxy, r#"{"user":"dave"}"#).await;
    let q = write_query(r#"{"user":"mallory"}"#);
    let res = c
        .get(proxy.url(&format!("/w?{q}&status=500")))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 500);
    assert!(set_cookies(&res).is_empty());
    assert!(res.headers().get("usher-session").is_none());
    assert_eq!(seen(&c, &proxy).await.one("x-forwarded-user").as_deref(), Some("dave"));
    proxy.stop().await;
}

#[tokio::test]
async fn writes_are_ignored_when_not_configured() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let c = jar_client();
    let res = write(&c, &proxy, r#"{"user":"eve"}"#).await;
    assert!(set_cookies(&res).is_empty());
    assert_eq!(seen(&c, &proxy).await.one("x-forwarded-user"), None);
    proxy.stop().await;
}

#[tokio::test]
async fn bad_cookies_are_no_session_and_are_cleared() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    let res = write(&c, &proxy, r#"{"user":"frank"}"#).await;
    let good = set_cookies(&res)[0].split(';').next().expect("pair").to_string();
    let value = good.strip_prefix("usher_session=").expect("our cookie").to_string();
    let mut tampered = value.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let plain = crate::support::client();
    for cookie in [
        format!("usher_session={tampered}"),
        "usher_session=garbage".to_string(),
        format!("usher_session={value}; usher_session={value}"),
        format!("other_name={value}"),
        format!("usher_session={}", "A".repeat(5000)),
    ] {
        let res = plain
            .get(proxy.url("/whoami"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200, "a bad cookie is not an error page");
        let cleared = set_cookies(&res).iter().any(|c| c.contains("Max-Age=0"));
        let s = Seen(res.json().await.expect("json"));
        assert_eq!(s.one("x-forwarded-user"), None, "{cookie:.60}");
        if cookie.starts_with("usher_session") {
            assert!(cleared, "rejected cookie not cleared: {cookie:.60}");
        }
    }
    let res = plain
        .get(proxy.url("/whoami"))
        .header("cookie", &good)
        .send()
        .await
        .expect("send");
    let s = Seen(res.json().await.expect("json"));
    assert_eq!(
        s.one("x-forwarded-user").as_deref(),
        Some("frank"),
        "the untampered cookie still works"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_cookie_signed_with_another_key_is_no_session() {
    let up = spawn_echo_upstream().await;
    let other = spawn_proxy(
        up.addr,
        &format!("{}\n{WRITES}", session_toml("").replace(TEST_KEY, &"k".repeat(40))),
    )
    .await;
    let c = jar_client();
    let res = write(&c, &other, r#"{"user":"grace"}"#).await;
    let foreign = set_cookies(&res)[0].split(';').next().expect("pair").to_string();
    other.stop().await;
    let proxy = proxy_with(up.addr, "").await;
    let res = crate::support::client()
        .get(proxy.url("/"))
        .header("cookie", &foreign)
        .send()
        .await
        .expect("send");
    assert_eq!(Seen(res.json().await.expect("json")).one("x-forwarded-user"), None);
    proxy.stop().await;
}

#[tokio::test]
async fn key_rotation_keeps_users_signed_in_and_reissues() {
    let up = spawn_echo_upstream().await;
    // Signed in while only the old key existed.
    let only_old = proxy_with(up.addr, "").await;
    let res = write(&jar_client(), &only_old, r#"{"user":"heidi"}"#).await;
    let old_cookie = set_cookies(&res)[0].split(';').next().expect("pair").to_string();
    only_old.stop().await;
    // A new key now signs; the old one still verifies.
    let new_key = "n".repeat(40);
    let rotated = session_toml("").replace(
        &format!("secret_keys = [\"{TEST_KEY}\"]"),
        &format!("secret_keys = [\"{new_key}\", \"{TEST_KEY}\"]"),
    );
    let proxy = spawn_proxy(up.addr, &format!("{rotated}\n{WRITES}")).await;
    let plain = crate::support::client();
    let res = plain
        .get(proxy.url("/"))
        .header("cookie", &old_cookie)
        .send()
        .await
        .expect("send");
    let reissued = set_cookies(&res);
    assert_eq!(
        reissued.len(),
        1,
        "a cookie verified by an old key is re-signed: {reissued:?}"
    );
    assert_eq!(
        Seen(res.json().await.expect("json")).one("x-forwarded-user").as_deref(),
        Some("heidi")
    );
    proxy.stop().await;
    // The re-issued cookie is signed by the new key alone.
    let new_cookie = reissued[0].split(';').next().expect("pair").to_string();
    let only_new = spawn_proxy(
        up.addr,
        &format!("{}\n{WRITES}", session_toml("").replace(TEST_KEY, &new_key)),
    )
    .await;
    let res = plain
        .get(only_new.url("/"))
        .header("cookie", &new_cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(
        Seen(res.json().await.expect("json")).one("x-forwarded-user").as_deref(),
        Some("heidi")
    );
    only_new.stop().await;
}

#[tokio::test]
async fn old_sessions_are_refreshed_and_expired_ones_rejected() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "max_age = \"4s\"").await;
    let c = jar_client();
    write(&c, &proxy, r#"{"user":"ivan"}"#).await;
    let res = c.get(proxy.url("/")).send().await.expect("send");
    assert!(set_cookies(&res).is_empty(), "a fresh session is not re-issued");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = c.get(proxy.url("/")).send().await.expect("send");
    assert_eq!(set_cookies(&res).len(), 1, "older than a quarter of max_age: re-issued");
    proxy.stop().await;

    let proxy = proxy_with(up.addr, "max_age = \"1s\"").await;
    let res = write(&c, &proxy, r#"{"user":"judy"}"#).await;
    let cookie = set_cookies(&res)[0].split(';').next().expect("pair").to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = crate::support::client()
        .get(proxy.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(
        Seen(res.json().await.expect("json")).one("x-forwarded-user"),
        None,
        "expired"
    );
    proxy.stop().await;
}

/// The proxy remembers cookie values whose signature it verified; a value
/// it has seen (and so skips the MAC for) still expires on time, and its
/// `auth_time` still bounds it by `max_lifetime`.
#[tokio::test]
async fn a_remembered_cookie_still_expires_and_still_ends_at_max_lifetime() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "max_age = \"1s\"").await;
    let res = write(&jar_client(), &proxy, r#"{"user":"olga"}"#).await;
    let cookie = set_cookies(&res)[0].split(';').next().expect("pair").to_string();
    let plain = crate::support::client();
    let url = proxy.url("/");
    let user = || forwarded_user(&plain, &url, &cookie);
    for _ in 0..3 {
        assert_eq!(user().await.as_deref(), Some("olga"), "verified, then remembered");
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(user().await, None, "remembered, but expired");
    proxy.stop().await;

    // `auth_time` is signed into the payload; the lifetime is measured from it.
    let name = cookie.split('=').next().expect("name").to_string();
    let now = usher::service::unix_now();
    let payload = serde_json::json!({"user": "pia", "auth_time": now});
    let key = usher::session::Key::new(TEST_KEY.as_bytes().to_vec(), 32).expect("key");
    let value = usher::session::seal(&name, payload.as_object().expect("map"), now, &key);
    let cookie = format!("{name}={value}");
    let proxy = proxy_with(up.addr, "max_lifetime = \"2s\"").await;
    let url = proxy.url("/");
    let user = || forwarded_user(&plain, &url, &cookie);
    assert_eq!(user().await.as_deref(), Some("pia"));
    assert_eq!(user().await.as_deref(), Some("pia"));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(user().await, None, "past max_lifetime though remembered");
    proxy.stop().await;
}

#[tokio::test]
async fn a_cookie_too_large_to_set_is_not_set() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = jar_client();
    write(&c, &proxy, r#"{"user":"kim"}"#).await;
    let big = format!(r#"{{"cart":{{"note":"{}"}}}}"#, "x".repeat(5000));
    let res = write(&c, &proxy, &big).await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(&res).is_empty(), "an oversized cookie was set");
    let s = seen(&c, &proxy).await;
    assert_eq!(
        s.one("x-forwarded-user").as_deref(),
        Some("kim"),
        "the previous session is kept"
    );
    assert_eq!(s.one("x-cart"), None);
    proxy.stop().await;
}
