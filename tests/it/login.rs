//! Built-in sign-in end to end with a cookie-jar client: denied → login page
//! → wrong password → right password → identity headers upstream → group
//! gate → sign-out → denied again; brute-force limits, equal-time rejection,
//! htpasswd users made by the real `htpasswd -B`, and the cross-site guard.

use std::process::Command;

use reqwest::header::{ACCEPT, LOCATION};
use serde_json::Value;

use crate::support::{Proxy, Seen, session_toml, spawn_echo_upstream, spawn_proxy};

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// Users alice (admin) and bob (staff), with argon2 hashes made now.
pub fn users() -> String {
    let hash = |pw: &str| usher::users::hash_password(pw).expect("hash");
    format!(
        "[[users]]\nname = \"alice\"\npassword_hash = \"{}\"\nemail = \"alice@example.com\"\ngroups = [\"admin\", \"staff\"]\n\
         [[users]]\nname = \"bob\"\npassword_hash = \"{}\"\ngroups = [\"staff\"]\n",
        hash("wonderland"),
        hash("builder")
    )
}

const RULES: &str = "[access]\ndefault = \"authenticated\"\n\
                     [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n\
                     [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n";

async fn proxy(extra: &str) -> (Proxy, crate::support::Upstream) {
    let up = spawn_echo_upstream().await;
    let text = format!("{}\n{}\n{RULES}\n{extra}", session_toml(""), users());
    (spawn_proxy(up.addr, &text).await, up)
}

pub fn jar() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The hidden `csrf` value of a sign-in page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().expect("value").to_string()
}

/// Load the sign-in page and post the form; returns the POST response.
pub async fn sign_in(c: &reqwest::Client, proxy: &Proxy, user: &str, password: &str, rd: &str) -> reqwest::Response {
    sign_in_at(c, &proxy.url(""), user, password, rd).await
}

/// [`sign_in`] against any usher at `base` (`http://host:port`).
pub async fn sign_in_at(c: &reqwest::Client, base: &str, user: &str, password: &str, rd: &str) -> reqwest::Response {
    let page = c
        .get(format!("{base}/.usher/login?rd={}", urlencode(rd)))
        .header(ACCEPT, BROWSER);
    let page = page.send().await.expect("page");
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.expect("html"));
    let form = [
        ("username", user),
        ("password", password),
        ("csrf", csrf.as_str()),
        ("rd", rd),
    ];
    c.post(format!("{base}/.usher/login"))
        .form(&form)
        .send()
        .await
        .expect("post")
}

async fn seen(c: &reqwest::Client, proxy: &Proxy, path: &str) -> (u16, Option<Seen>) {
    let res = c.get(proxy.url(path)).send().await.expect("send");
    let status = res.status().as_u16();
    (
        status,
        if status == 200 {
            Some(Seen(res.json::<Value>().await.expect("json")))
        } else {
            None
        },
    )
}

#[tokio::test]
async fn the_whole_journey() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    let res = c
        .get(proxy.url("/private?x=1"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()[LOCATION], "/.usher/login?rd=%2Fprivate%3Fx%3D1");
    let api = c.get(proxy.url("/private")).send().await.expect("send");
    assert_eq!(api.status(), 401);
    let doc: Value = api.json().await.expect("json");
    assert_eq!(
        doc,
        serde_json::json!({"error":"unauthenticated","login":"/.usher/login"})
    );

    let res = sign_in(&c, &proxy, "alice", "not the password", "/private?x=1").await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()
            .get("set-cookie")
            .is_none_or(|v| !v.to_str().unwrap_or("").starts_with("usher_session="))
    );
    assert!(
        res.text()
            .await
            .expect("html")
            .contains("Invalid username or password.")
    );

    let res = sign_in(&c, &proxy, "alice", "wonderland", "/private?x=1").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/private?x=1");

    let (status, s) = seen(&c, &proxy, "/private?x=1").await;
    assert_eq!(status, 200);
    let s = s.expect("seen");
    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(s.one("x-forwarded-email").as_deref(), Some("alice@example.com"));
    assert_eq!(s.one("x-forwarded-groups").as_deref(), Some("admin,staff"));
    assert_eq!(seen(&c, &proxy, "/admin/panel").await.0, 200, "alice is in admin");

    let doc: Value = c
        .get(proxy.url("/.usher/session"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["user"], "alice");
    assert!(
        doc["expires_at"].as_u64().is_some() && doc["auth_time"].as_u64().is_some(),
        "{doc}"
    );

    let res = c
        .get(proxy.url("/.usher/logout"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .expect("send");
    assert!(
        res.text().await.expect("html").contains("method=\"post\""),
        "GET only confirms"
    );
    assert_eq!(
        seen(&c, &proxy, "/private").await.0,
        200,
        "GET /logout did not sign out"
    );
    let res = c
        .post(proxy.url("/.usher/logout"))
        .form(&[("rd", "/public/bye")])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()[LOCATION], "/public/bye");
    assert_eq!(seen(&c, &proxy, "/private").await.0, 401, "signed out");
    assert_eq!(
        c.get(proxy.url("/.usher/session")).send().await.expect("send").status(),
        401
    );
    proxy.stop().await;
}

#[tokio::test]
async fn groups_gate_paths_and_public_paths_are_open() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    assert_eq!(seen(&c, &proxy, "/public/a").await.0, 200, "anyone");
    assert_eq!(sign_in(&c, &proxy, "bob", "builder", "/").await.status(), 303);
    assert_eq!(seen(&c, &proxy, "/admin/panel").await.0, 403, "bob is not in admin");
    let res = c
        .get(proxy.url("/admin/panel"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    assert!(res.text().await.expect("html").contains("<title>403"));
    assert_eq!(
        seen(&c, &proxy, "/elsewhere").await.0,
        200,
        "authenticated is enough elsewhere"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn rd_is_only_a_same_origin_path() {
    let (proxy, _up) = proxy("").await;
    for (rd, expected) in [
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/ok?a=b", "/ok?a=b"),
    ] {
        let c = jar();
        let res = sign_in(&c, &proxy, "bob", "builder", rd).await;
        assert_eq!(res.status(), 303, "{rd}");
        assert_eq!(res.headers()[LOCATION], expected, "{rd}");
    }
    proxy.stop().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_forged_or_missing_csrf_token_is_refused() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    let form = [
        ("username", "alice"),
        ("password", "wonderland"),
        ("csrf", "forged"),
        ("rd", "/"),
    ];
    let res = c
        .post(proxy.url("/.usher/login"))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    assert_eq!(
        seen(&c, &proxy, "/private").await.0,
        401,
        "no session from a forged form"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn brute_force_is_limited_per_ip() {
    let (proxy, _up) = proxy("[login]\nip_attempts_per_minute = 3\nuser_attempts_per_minute = 100\n").await;
    let c = jar();
    for _ in 0..3 {
        assert_eq!(sign_in(&c, &proxy, "alice", "wrong", "/").await.status(), 401);
    }
    let res = sign_in(&c, &proxy, "alice", "wonderland", "/").await;
    assert_eq!(res.status(), 429, "the fourth attempt within a minute");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    proxy.stop().await;
}

#[tokio::test]
async fn brute_force_is_limited_per_canonical_user() {
    let (proxy, _up) = proxy("[login]\nip_attempts_per_minute = 100\nuser_attempts_per_minute = 2\n").await;
    let c = jar();
    assert_eq!(sign_in(&c, &proxy, "alice", "wrong", "/").await.status(), 401);
    assert_eq!(sign_in(&c, &proxy, " ALICE", "wrong", "/").await.status(), 401);
    assert_eq!(
        sign_in(&c, &proxy, "Alice", "wonderland", "/").await.status(),
        429,
        "same account, any spelling"
    );
    assert_eq!(
        sign_in(&c, &proxy, "bob", "builder", "/").await.status(),
        303,
        "other accounts unaffected"
    );
    proxy.stop().await;
}

/// Same status, same page. (That both cost one hash check of the same
/// scheme and parameters is tested beside `users`, where it can be
/// counted rather than timed on a noisy machine.)
#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let (proxy, _up) = proxy("[login]\nip_attempts_per_minute = 1000\nuser_attempts_per_minute = 1000\n").await;
    let c = jar();
    let mut bodies = Vec::new();
    for i in 0..3 {
        for user in ["nobody-here", "alice"] {
            let res = sign_in(&c, &proxy, user, &format!("guess{i}"), "/").await;
            assert_eq!(res.status(), 401);
            let text = res.text().await.expect("html");
            // The form echoes the name typed and a fresh CSRF token.
            let text = text.replace(user, "USER");
            let csrf = csrf_of(&text);
            bodies.push(text.replace(&csrf, "TOKEN"));
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the failure pages differ");
    proxy.stop().await;
}

#[tokio::test]
async fn htpasswd_users_made_by_apache_htpasswd_sign_in() {
    let dir = crate::support::TempDir::new("htpasswd");
    let file = dir.join("htpasswd");
    let status = Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(&file)
        .args(["carol", "s3cret-pass"])
        .status()
        .expect("htpasswd from apache2-utils must be installed (scripts/test.sh installs it)");
    assert!(status.success());
    assert!(
        std::fs::read_to_string(&file).expect("read").starts_with("carol:$2y$"),
        "bcrypt $2y$ entry"
    );
    let (proxy, _up) = proxy(&format!("[login]\nhtpasswd_file = \"{}\"\n", file.display())).await;
    let c = jar();
    assert_eq!(sign_in(&c, &proxy, "carol", "wrong", "/").await.status(), 401);
    assert_eq!(sign_in(&c, &proxy, "carol", "s3cret-pass", "/").await.status(), 303);
    let (_, s) = seen(&c, &proxy, "/whoami").await;
    assert_eq!(s.expect("seen").one("x-forwarded-user").as_deref(), Some("carol"));
    proxy.stop().await;
}

#[tokio::test]
async fn cross_site_unsafe_requests_with_the_cookie_are_refused() {
    let (proxy, _up) = proxy("").await;
    let c = jar();
    sign_in(&c, &proxy, "bob", "builder", "/").await;
    let host = proxy.addr.to_string();
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut r = c.post(proxy.url("/api/change")).body("x");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        r.send()
    };
    assert_eq!(
        post(Some("https://evil.example"), None).await.expect("send").status(),
        403
    );
    assert_eq!(post(None, Some("cross-site")).await.expect("send").status(), 403);
    assert_eq!(post(Some("null"), None).await.expect("send").status(), 403);
    assert_eq!(
        post(Some(&format!("http://{host}")), Some("same-origin"))
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(
        post(None, None).await.expect("send").status(),
        200,
        "non-browser clients are unaffected"
    );
    let res = c
        .get(proxy.url("/api/read"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200, "safe methods pass");
    let anonymous = crate::support::client();
    let res = anonymous
        .post(proxy.url("/public/form"))
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(
        res.expect("send").status(),
        200,
        "no session cookie, nothing to protect"
    );
    let res = c
        .post(proxy.url("/.usher/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(res.expect("send").status(), 403, "cross-site sign-out refused");
    proxy.stop().await;
}

#[tokio::test]
async fn the_cross_site_guard_can_be_switched_off() {
    let up = spawn_echo_upstream().await;
    let text = format!("{}\n{}\n{RULES}", session_toml("cross_site_guard = false"), users());
    let proxy = spawn_proxy(up.addr, &text).await;
    let c = jar();
    sign_in(&c, &proxy, "bob", "builder", "/").await;
    let res = c
        .post(proxy.url("/api/change"))
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert_eq!(res.expect("send").status(), 200);
    proxy.stop().await;
}

/// Regression: every sign-in started its own password check, so a flood of
/// them (from many addresses, each under its rate limit) ran that many
/// Argon2 hashes at once, each with its ~19 MiB, on as many threads. Checks
/// now take turns: at most `login.concurrent_hashes` run at once, the
/// rest wait, and all are answered.
#[tokio::test]
async fn password_checks_take_turns() {
    let up = spawn_echo_upstream().await;
    let text = format!(
        "[upstream]\nurl = \"http://{}\"\n{}\n{}\n{RULES}\n\
         [login]\nip_attempts_per_minute = 1000\nconcurrent_hashes = 2\n",
        up.addr,
        session_toml(""),
        users()
    );
    let config = crate::support::parse_config(&text);
    let users = config.login.users.clone();
    let proxy = crate::support::spawn_proxy_config(config).await;
    let base = proxy.url("");

    let attempts = (0..16).map(|i| {
        let base = base.clone();
        async move {
            let (user, password) = if i == 0 {
                ("alice", "wonderland")
            } else {
                ("mallory", "guess")
            };
            let user = if i == 0 { user.to_string() } else { format!("{user}{i}") };
            sign_in_at(&jar(), &base, &user, password, "/").await.status().as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.remove(0), 303, "the real user signs in");
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(users.checks(), 16, "every password was checked");
    let peak = users.peak_concurrent_checks();
    assert!((1..=2).contains(&peak), "{peak} checks ran at once");
    proxy.stop().await;
}

/// A browser behind a trusted front proxy, which names it in
/// `X-Forwarded-For`.
fn jar_behind_proxy(client_ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client_ip.parse().expect("header value"));
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Attack review of 9e8e3e0: behind the documented nginx every user shared
/// the front proxy's bucket, junk posts filled it, successes counted, and
/// anyone could lock out any user by name.
#[tokio::test]
async fn limits_count_failures_per_real_client_behind_a_trusted_proxy() {
    let (proxy, _up) = proxy(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\
         [login]\nip_attempts_per_minute = 3\nuser_attempts_per_minute = 2\n",
    )
    .await;
    let junk = jar_behind_proxy("198.51.100.1");
    for _ in 0..10 {
        let form = [("username", "alice"), ("password", "x"), ("csrf", "forged")];
        let res = junk
            .post(proxy.url("/.usher/login"))
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 403, "a post without a valid form token");
    }
    let alice = jar_behind_proxy("203.0.113.5");
    for i in 0..6 {
        let res = sign_in(&alice, &proxy, "alice", "wonderland", "/").await;
        assert_eq!(res.status(), 303, "success {i}: neither junk nor successes count");
    }
    let attacker = jar_behind_proxy("198.51.100.7");
    assert_eq!(sign_in(&attacker, &proxy, "alice", "guess1", "/").await.status(), 401);
    assert_eq!(sign_in(&attacker, &proxy, "alice", "guess2", "/").await.status(), 401);
    assert_eq!(
        sign_in(&attacker, &proxy, "alice", "wonderland", "/").await.status(),
        429
    );
    let res = sign_in(&alice, &proxy, "alice", "wonderland", "/").await;
    assert_eq!(
        res.status(),
        303,
        "alice's own client is not locked out by the attacker"
    );
    // The attacker's third failure (another user) fills its client bucket.
    assert_eq!(sign_in(&attacker, &proxy, "bob", "guess", "/").await.status(), 401);
    assert_eq!(sign_in(&attacker, &proxy, "carol", "guess", "/").await.status(), 429);
    let other = jar_behind_proxy("203.0.113.9");
    assert_eq!(sign_in(&other, &proxy, "bob", "builder", "/").await.status(), 303);
    proxy.stop().await;
}
