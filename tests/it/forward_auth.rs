//! `/.usher/auth` answered in-process, as a front proxy would ask it: the
//! described request is normalised and decided like a proxied one, the
//! answer is never 2xx on a problem, and absolute `rd` URLs are limited to
//! `[forward_auth] allowed_hosts`. (The real nginx, Caddy and Traefik runs
//! live in `front_proxies`.)

use reqwest::header::LOCATION;

use crate::login::{jar, sign_in_at};
use crate::support::{Proxy, Upstream, session_toml, spawn_echo_upstream, spawn_proxy};

async fn proxy(extra: &str) -> (Proxy, Upstream) {
    let up = spawn_echo_upstream().await;
    let hash = usher::users::hash_password("pw").expect("hash");
    let text = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{}\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\ngroups = [\"staff\"]\n\
         [access]\ndefault = \"authenticated\"\n\
         [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n\
         [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n\
         [login]\nuser_attempts_per_minute = 100\n\
         [forward_auth]\nallowed_hosts = [\".example.com\"]\n{extra}",
        session_toml("")
    );
    (spawn_proxy(up.addr, &text).await, up)
}

fn check(c: &reqwest::Client, proxy: &Proxy, uri: &str) -> reqwest::RequestBuilder {
    c.get(proxy.url("/.usher/auth"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header("x-forwarded-uri", uri)
}

#[tokio::test]
async fn decisions_follow_session_and_rules() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    assert_eq!(check(&c, &proxy, "/public/x").send().await.expect("send").status(), 200);
    let res = check(&c, &proxy, "/private?q=1").send().await.expect("send");
    assert_eq!(res.status(), 401);
    let res = c
        .get(proxy.url("/.usher/auth?redirect=1"))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.com")
        .header("x-forwarded-uri", "/private?q=1")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()[LOCATION],
        "/.usher/login?rd=https%3A%2F%2Fapp.example.com%2Fprivate%3Fq%3D1"
    );

    assert_eq!(sign_in_at(&c, &proxy.url(""), "alice", "pw", "/").await.status(), 303);
    let res = check(&c, &proxy, "/private").send().await.expect("send");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-forwarded-user"], "alice");
    assert_eq!(res.headers()["x-forwarded-groups"], "staff");
    assert_eq!(
        res.headers()["x-forwarded-email"],
        "",
        "absent fields are present and empty"
    );
    assert_eq!(check(&c, &proxy, "/admin/x").send().await.expect("send").status(), 403);
    assert_eq!(
        check(&c, &proxy, "/public/../admin/x")
            .send()
            .await
            .expect("send")
            .status(),
        403
    );
    assert_eq!(
        check(&c, &proxy, "/%61dmin/x").send().await.expect("send").status(),
        403
    );
    let res = c
        .get(proxy.url("/.usher/auth"))
        .header("x-original-url", "https://app.example.com/admin/y")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403, "nginx's X-Original-URL is read too");
    proxy.stop().await;
}

#[tokio::test]
async fn problems_are_never_2xx() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    sign_in_at(&c, &proxy.url(""), "alice", "pw", "/").await;
    // A target proxy mode would answer 400 is refused (403: nginx turns
    // anything but 2xx, 401 and 403 into a 500).
    for uri in ["/a%2fb", "/a%00", "/..;/admin", "*", "/a%zz", "/a%3Bb", "/a%252e"] {
        let res = check(&c, &proxy, uri).send().await.expect("send");
        assert_eq!(res.status(), 403, "{uri}");
    }
    let res = check(&c, &proxy, "relative").send().await.expect("send");
    assert!(matches!(res.status().as_u16(), 400 | 403), "relative: {}", res.status());
    let res = c.get(proxy.url("/.usher/auth")).send().await.expect("send");
    assert_eq!(res.status(), 400, "no described request");
    let res = check(&c, &proxy, "/x")
        .header("x-forwarded-method", "POST")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400, "two methods described");
    let res = check(&c, &proxy, "/x")
        .header("x-forwarded-uri", "/public/y")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400, "two URIs described");
    let res = c
        .get(proxy.url("/.usher/auth"))
        .header("x-forwarded-method", "BAD METHOD")
        .header("x-forwarded-uri", "/x")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    proxy.stop().await;
}

#[tokio::test]
async fn untrusted_peers_are_refused() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[access]\ndefault = \"anyone\"\n").await;
    let res = jar()
        .get(proxy.url("/.usher/auth"))
        .header("x-forwarded-uri", "/x")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403, "fails closed when the front proxy is not trusted");
    proxy.stop().await;
}

#[tokio::test]
async fn absolute_rd_only_for_allowed_hosts() {
    let (proxy, _up) = proxy("").await;
    for (rd, expected) in [
        ("https://app.example.com/x?y=1", "https://app.example.com/x?y=1"),
        ("https://deep.app.example.com/", "https://deep.app.example.com/"),
        ("https://example.com/", "/"),
        ("https://evilexample.com/", "/"),
        ("https://app.example.com.evil.com/", "/"),
        ("https://user@app.example.com/", "/"),
        ("https://app.example.com:8443/", "/"),
        ("http://app.example.com/", "/"),
        ("https://app.example.com//evil.com", "/"),
    ] {
        let c = jar();
        let res = sign_in_at(&c, &proxy.url(""), "alice", "pw", rd).await;
        assert_eq!(res.status(), 303, "{rd}");
        assert_eq!(res.headers()[LOCATION], expected, "{rd}");
    }
    proxy.stop().await;
}

/// Regression: a client-added `X-Original-URI` beside the front proxy's
/// `X-Original-URL` must not choose the path that is decided.
#[tokio::test]
async fn a_target_named_twice_is_refused() {
    let (proxy, _up) = proxy("").await;
    let res = jar()
        .get(proxy.url("/.usher/auth"))
        .header("x-original-url", "https://app.example.com/admin/x")
        .header("x-original-uri", "/public/x")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    proxy.stop().await;
}

/// Regression: a check without `X-Forwarded-Method` (nginx sends none
/// unless told to) was decided as a GET, so a POST-only rule could be
/// skipped and the cross-site guard never ran. An unknown method now gets
/// the strictest decision any method would.
#[tokio::test]
async fn a_check_without_a_method_is_decided_for_the_strictest_method() {
    let rules = "[[access.rules]]\npath = \"/api/**\"\nmethods = [\"GET\"]\nallow = \"anyone\"\n\
                 [[access.rules]]\npath = \"/api/**\"\nmethods = [\"POST\"]\ngroups = [\"admin\"]\n";
    let (proxy, _up) = proxy(rules).await;
    let c = jar();
    let unknown = |c: &reqwest::Client, uri: &str| {
        c.get(proxy.url("/.usher/auth"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", uri)
    };
    let status = |res: reqwest::Response| res.status().as_u16();
    assert_eq!(status(check(&c, &proxy, "/api/x").send().await.expect("send")), 200);
    assert_eq!(status(unknown(&c, "/api/x").send().await.expect("send")), 401);

    assert_eq!(sign_in_at(&c, &proxy.url(""), "alice", "pw", "/").await.status(), 303);
    assert_eq!(status(check(&c, &proxy, "/api/x").send().await.expect("send")), 200);
    let post = unknown(&c, "/api/x").header("x-forwarded-method", "POST");
    assert_eq!(status(post.send().await.expect("send")), 403, "POST needs admin");
    assert_eq!(status(unknown(&c, "/api/x").send().await.expect("send")), 403);
    // Rules that name no method decide as before.
    assert_eq!(status(unknown(&c, "/private").send().await.expect("send")), 200);

    // The cross-site guard takes an unknown method as unsafe.
    let cross = |req: reqwest::RequestBuilder| req.header("sec-fetch-site", "cross-site");
    assert_eq!(
        status(cross(check(&c, &proxy, "/private")).send().await.expect("send")),
        200
    );
    let res = cross(unknown(&c, "/private")).send().await.expect("send");
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "cross_site_request");
    proxy.stop().await;
}

/// The stock nginx snippet Authelia's guides use sends both X-Original-URL
/// and X-Forwarded-Uri; one target named twice is accepted, two different
/// ones are refused.
#[tokio::test]
async fn one_target_named_by_two_headers_is_accepted() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    let both = |uri: &str, url: &str| {
        c.get(proxy.url("/.usher/auth"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", uri)
            .header("x-original-url", url)
    };
    let res = both("/public/x?y=1", "https://app.example.com/public/x?y=1")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let res = both("/public/x", "https://app.example.com/private")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400, "two different targets");
    proxy.stop().await;
}

/// Attack review of 9e8e3e0: the front proxy forwards its own raw target,
/// which usher used to judge only normalised (`/admin/x/../../public/y` was
/// approved as `/public/y`). Both spellings are judged; the stricter wins.
#[tokio::test]
async fn the_raw_described_target_is_judged_too() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    for uri in [
        "/admin/x/../../public/y",
        "/admin/%2e%2e/public/y",
        "/ADMIN/../public/y",
    ] {
        let res = check(&c, &proxy, uri).send().await.expect("send");
        assert_eq!(res.status(), 401, "{uri}");
    }
    assert_eq!(check(&c, &proxy, "/public/y").send().await.expect("send").status(), 200);
    let res = c
        .get(proxy.url("/.usher/auth"))
        .header("x-forwarded-method", "delete")
        .header("x-forwarded-uri", "/public/y")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403, "a lower-case described method is refused");
    proxy.stop().await;
}
