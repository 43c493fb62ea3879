//! Sign-in through a real OpenID Connect provider (`../shared/peers/oidc`,
//! npm oidc-provider, installed under target/oidc-peer by scripts/test.sh):
//! the browser journey with a cookie jar, two providers at once, groups
//! from claims deciding a rule, forged / replayed / foreign callbacks,
//! bearer tokens minted by the real `jose` library (expired, wrong
//! audience, `alg: none`, tampered, HS256 keyed with the public key), a
//! key rotation at the provider, and the provider down at start.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::front_proxies::free_port;
use crate::support::{Proxy, Seen, TempDir, parse_config, session_toml, spawn_echo_upstream, spawn_proxy_on};

pub fn peer_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/oidc-peer");
    assert!(
        dir.join("node_modules/oidc-provider/package.json").exists(),
        "the OIDC peer is missing: scripts/test.sh installs it under target/oidc-peer"
    );
    dir
}

/// One running oidc-peer process.
struct Peer {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- oidc peer log ----\n{}", self.log.lock().expect("log"));
        }
    }
}

impl Peer {
    /// Start the peer on `port`, sending browsers back to `redirects`.
    fn start(port: u16, redirects: &[String], env: &[(&str, &str)]) -> Peer {
        let dir = peer_dir();
        let mut child = Command::new("node")
            .arg("oidc-peer.mjs")
            .current_dir(&dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_REDIRECT_URIS", redirects.join(","))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node oidc-peer.mjs");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("oidc-peer listening") {
                    let _ = tx.send(());
                }
                sink.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("log").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            panic!("oidc peer did not start:\n{}", log.lock().expect("log"));
        }
        Peer { child, log }
    }
}

fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A fresh private JWKS (RS256 + ES256) from the peer's gen-jwks.mjs.
fn gen_jwks(dir: &TempDir, name: &str) -> PathBuf {
    let out = Command::new("node")
        .arg("gen-jwks.mjs")
        .current_dir(peer_dir())
        .output()
        .expect("gen-jwks");
    assert!(out.status.success(), "gen-jwks failed");
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).expect("write jwks");
    path
}

/// A token signed by the real jose library (tests/apps/mint_jwt.mjs).
fn mint(jwks: &std::path::Path, claims: &Value, mode: &str) -> String {
    let dir = peer_dir();
    // ESM resolves imports next to the script: run it from the peer's copy.
    let script = dir.join("mint_jwt.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/mint_jwt.mjs"),
        &script,
    )
    .expect("copy mint script");
    let out = Command::new("node")
        .arg(&script)
        .arg(jwks)
        .arg(claims.to_string())
        .arg(mode)
        .current_dir(&dir)
        .output()
        .expect("node mint_jwt.mjs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

fn callback(usher_port: u16, id: &str) -> String {
    format!("http://127.0.0.1:{usher_port}/.usher/oidc/{id}/callback")
}

const RULES: &str = "[access]\ndefault = \"authenticated\"\n\
                     [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n\
                     [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admins\"]\n";

/// `[[oidc]]` for the peer at `port` as provider `id`.
fn provider_toml(id: &str, port: u16, usher_port: u16, secret_file: &std::path::Path, extra: &str) -> String {
    format!(
        "[[oidc]]\nid = \"{id}\"\nissuer = \"{}\"\nclient_id = \"proxy\"\nclient_secret_file = \"{}\"\n\
         scopes = [\"openid\", \"email\", \"profile\", \"groups\"]\nredirect_url = \"{}\"\n\
         display_name = \"Peer {id}\"\ntimeout = \"3s\"\n{extra}\n",
        issuer(port),
        secret_file.display(),
        callback(usher_port, id)
    )
}

struct Setup {
    proxy: Proxy,
    upstream: crate::support::Upstream,
    dir: TempDir,
}

/// usher on a port known in advance, with `providers` TOML (built from that
/// port) and the rules above.
async fn usher_with(providers: impl FnOnce(u16, &TempDir) -> String) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = TempDir::new("oidc");
    std::fs::write(dir.join("secret"), "proxy-secret\n").expect("secret");
    let upstream = spawn_echo_upstream().await;
    let text = format!(
        "[upstream]\nurl = \"http://{}\"\n{}\n{RULES}\n{}",
        upstream.addr,
        session_toml(""),
        providers(port, &dir)
    );
    let proxy = spawn_proxy_on(listener, parse_config(&text));
    Setup { proxy, upstream, dir }
}

fn jar() -> reqwest::Client {
    crate::login::jar()
}

/// Wait until `GET url` stops answering 503 (the provider discovered).
async fn until_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client.get(url).send().await.expect("start").status();
        if status != 503 {
            return;
        }
        assert!(Instant::now() < deadline, "provider never became ready at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .expect("ascii")
        .to_string()
}

/// Start at usher, sign in at the provider as `user`; returns the callback
/// URL the provider sent the browser to (not yet visited).
async fn to_callback(client: &reqwest::Client, proxy: &Proxy, id: &str, user: &str, password: &str) -> String {
    let start = proxy.url(&format!("/.usher/oidc/{id}/start?rd=%2Fadmin%2Fpage"));
    until_ready(&jar(), &start).await;
    let res = client.get(&start).send().await.expect("start");
    assert_eq!(res.status(), 302);
    let mut next = location(&res);
    assert!(
        next.contains("code_challenge_method=S256") && next.contains("nonce="),
        "{next}"
    );
    // Through the provider: authorization → interaction form, or straight
    // back when the browser is signed in there already.
    for _ in 0..5 {
        if next.contains("/.usher/oidc/") {
            return next;
        }
        let res = client.get(&next).send().await.expect("provider");
        if !res.status().is_redirection() {
            break;
        }
        next = absolute(&next, &location(&res));
    }
    let res = client
        .post(&next)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("login form");
    if res.status() == 401 {
        return String::new();
    }
    assert_eq!(res.status(), 303, "login form answer");
    let mut next = absolute(&next, &location(&res));
    for _ in 0..5 {
        if next.contains("/.usher/oidc/") {
            return next;
        }
        let res = client.get(&next).send().await.expect("provider");
        assert!(res.status().is_redirection(), "{} at {next}", res.status());
        next = absolute(&next, &location(&res));
    }
    panic!("the provider never sent the browser back: {next}");
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        return location.to_string();
    }
    let origin: String = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    format!("{origin}{location}")
}

async fn seen(client: &reqwest::Client, proxy: &Proxy, path: &str) -> (u16, Option<Seen>) {
    let res = client
        .get(proxy.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, (status == 200).then_some(Seen(body)))
}

/// The whole journey through two providers at once: alice (admins) via
/// one reaches /admin with her identity forwarded; bob (users) via the
/// other is signed in but refused /admin by the group rule.
#[tokio::test]
async fn two_providers_sign_in_and_groups_decide_admin() {
    let (p1, p2) = (free_port(), free_port());
    let setup = usher_with(|port, dir| {
        format!(
            "{}{}",
            provider_toml("one", p1, port, &dir.join("secret"), ""),
            provider_toml("two", p2, port, &dir.join("secret"), "")
        )
    })
    .await;
    let port = setup.proxy.addr.port();
    let _peer1 = Peer::start(p1, &[callback(port, "one")], &[]);
    let _peer2 = Peer::start(p2, &[callback(port, "two")], &[]);
    let proxy = &setup.proxy;

    // The sign-in page shows both buttons and no password form (no users).
    let page = jar()
        .get(proxy.url("/.usher/login?rd=/admin/page"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("Sign in with Peer one") && page.contains("Sign in with Peer two"),
        "{page}"
    );
    assert!(page.contains("/.usher/oidc/two/start?rd=%2Fadmin%2Fpage"), "{page}");
    assert!(!page.contains("type=\"password\""), "no local users, no password form");

    let alice = jar();
    let back = to_callback(&alice, proxy, "two", "alice", "alice-pw").await;
    let res = alice.get(&back).send().await.expect("callback");
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert_eq!(location(&res), "/admin/page");
    let (status, upstream) = seen(&alice, proxy, "/admin/page").await;
    assert_eq!(status, 200);
    let upstream = upstream.expect("forwarded");
    assert_eq!(upstream.one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(upstream.one("x-forwarded-email").as_deref(), Some("alice@example.test"));
    assert_eq!(upstream.one("x-forwarded-groups").as_deref(), Some("admins"));
    let doc: Value = alice
        .get(proxy.url("/.usher/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["idp"], "two");
    assert_eq!(doc["user"], "alice");

    let bob = jar();
    let back = to_callback(&bob, proxy, "one", "bob", "bob-pw").await;
    assert_eq!(bob.get(&back).send().await.expect("callback").status(), 303);
    assert_eq!(seen(&bob, proxy, "/other").await.0, 200, "signed in");
    assert_eq!(seen(&bob, proxy, "/admin/page").await.0, 403, "not in admins");
    drop(setup.upstream);
}

/// A wrong password at the provider never reaches usher's callback, and
/// the browser stays signed out.
#[tokio::test]
async fn wrong_password_at_the_provider_signs_nobody_in() {
    let p = free_port();
    let setup = usher_with(|port, dir| provider_toml("corp", p, port, &dir.join("secret"), "")).await;
    let _peer = Peer::start(p, &[callback(setup.proxy.addr.port(), "corp")], &[]);
    let client = jar();
    let back = to_callback(&client, &setup.proxy, "corp", "alice", "wrong").await;
    assert!(back.is_empty(), "the provider refused the password");
    assert_eq!(seen(&client, &setup.proxy, "/other").await.0, 401);
}

/// Forged state, a replayed callback, and a callback opened in another
/// browser are all 400 with no session; the browser that started the flow
/// can still finish it after the foreign attempt.
#[tokio::test]
async fn callbacks_belong_to_the_browser_and_flow_that_started_them() {
    let p = free_port();
    let setup = usher_with(|port, dir| provider_toml("corp", p, port, &dir.join("secret"), "")).await;
    let proxy = &setup.proxy;
    let _peer = Peer::start(p, &[callback(proxy.addr.port(), "corp")], &[]);

    // Forged: a state no flow cookie belongs to.
    let client = jar();
    let forged = client
        .get(proxy.url("/.usher/oidc/corp/callback?code=abc&state=forged"))
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 400);
    assert!(
        !forged
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap_or("").starts_with("usher_session=")),
        "no session"
    );

    // Another browser: the callback URL alone is not enough.
    let victim = jar();
    let back = to_callback(&victim, proxy, "corp", "alice", "alice-pw").await;
    let thief = jar();
    assert_eq!(thief.get(&back).send().await.expect("thief").status(), 400);
    assert_eq!(seen(&thief, proxy, "/other").await.0, 401);

    // Two tabs at once: a second flow started before the first completes.
    let second = to_callback(&victim, proxy, "corp", "alice", "alice-pw").await;
    let res = victim.get(&back).send().await.expect("first tab");
    assert_eq!(res.status(), 303, "the first tab finishes");
    let res = victim.get(&second).send().await.expect("second tab");
    assert_eq!(res.status(), 303, "the second tab finishes too");

    // Replay: the flow cookie was cleared and the code used.
    let res = victim.get(&back).send().await.expect("replay");
    assert_eq!(res.status(), 400);
    assert_eq!(seen(&victim, proxy, "/other").await.0, 200, "still signed in");

    // An `iss` naming another issuer (RFC 9207) is refused.
    let other = jar();
    let back = to_callback(&other, proxy, "corp", "bob", "bob-pw").await;
    let mixed = back.replace("iss=http%3A%2F%2F127.0.0.1", "iss=http%3A%2F%2F127.0.0.2");
    assert_ne!(mixed, back, "the provider sent iss: {back}");
    assert_eq!(other.get(&mixed).send().await.expect("mix-up").status(), 400);
}

/// Bearer tokens from a provider with accept_bearer, signed by the real
/// jose library with the provider's keys.
#[tokio::test]
async fn bearer_tokens_are_verified_and_never_forwarded() {
    let p = free_port();
    let keys = TempDir::new("oidc-keys");
    let jwks = gen_jwks(&keys, "jwks.json");
    let setup = usher_with(|port, dir| {
        // Bad tokens count toward the brute-force limit: this test sends
        // more than the default five a minute on purpose.
        let provider = provider_toml(
            "corp",
            p,
            port,
            &dir.join("secret"),
            "accept_bearer = true\naudiences = [\"api\", \"proxy\"]\n",
        );
        format!("{provider}\n[login]\nuser_attempts_per_minute = 100\n")
    })
    .await;
    let proxy = &setup.proxy;
    let jwks_s = jwks.to_str().expect("utf-8");
    let _peer = Peer::start(p, &[callback(proxy.addr.port(), "corp")], &[("OIDC_JWKS_FILE", jwks_s)]);
    until_ready(&jar(), &proxy.url("/.usher/oidc/corp/start")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = |aud: &str, exp: i64| {
        json!({"iss": issuer(p), "sub": "svc-1", "aud": aud, "iat": now, "exp": now as i64 + exp,
               "preferred_username": "deployer", "groups": ["admins"]})
    };
    let call = |token: String| {
        let c = crate::support::client();
        let url = proxy.url("/admin/page");
        async move {
            c.get(url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
                .expect("bearer")
        }
    };

    for mode in ["RS256", "ES256"] {
        let res = call(mint(&jwks, &claims("api", 300), mode)).await;
        assert_eq!(res.status(), 200, "{mode}");
        assert!(
            res.headers().get(SET_COOKIE).is_none(),
            "no cookie for a bearer request"
        );
        let seen = Seen(res.json().await.expect("json"));
        assert_eq!(seen.one("x-forwarded-user").as_deref(), Some("deployer"));
        assert!(
            seen.one("authorization").is_none(),
            "the token never reaches the upstream"
        );
    }

    let good = mint(&jwks, &claims("api", 300), "RS256");
    let (head, rest) = good.split_once('.').expect("jwt");
    let (payload, sig) = rest.split_once('.').expect("jwt");
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut changed = claims("api", 300);
    changed["preferred_username"] = json!("root");
    let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let bad = [
        ("expired", mint(&jwks, &claims("api", -3600), "RS256")),
        ("wrong audience", mint(&jwks, &claims("someone-else", 300), "RS256")),
        ("alg none", format!("{none_header}.{payload}.")),
        ("alg none, signature kept", format!("{none_header}.{payload}.{sig}")),
        ("tampered payload", format!("{head}.{}.{sig}", b64(&changed))),
        (
            "HS256 keyed with the public key",
            mint(&jwks, &claims("api", 300), "hs256-public"),
        ),
    ];
    for (what, token) in bad {
        let res = call(token).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(
            res.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
            Some("Bearer error=\"invalid_token\""),
            "{what}"
        );
    }

    // Another issuer's token is the app's business: forwarded untouched,
    // and usher decides on the cookie alone (none here: 401 for an API).
    let mut foreign = claims("api", 300);
    foreign["iss"] = json!("https://other.example.com");
    let foreign = mint(&jwks, &foreign, "RS256");
    let res = crate::support::client()
        .get(proxy.url("/public/x"))
        .header(AUTHORIZATION, format!("Bearer {foreign}"))
        .send()
        .await
        .expect("foreign");
    assert_eq!(res.status(), 200);
    let seen = Seen(res.json().await.expect("json"));
    assert_eq!(seen.one("authorization"), Some(format!("Bearer {foreign}")));
    assert_eq!(call(foreign).await.status(), 401, "no session for /admin");
    drop(setup.dir);
}

/// Bad bearer tokens are failed credentials: past the per-user limit
/// (default 5 a minute from one client) even a good token is refused
/// with 429 until the bucket drains.
#[tokio::test]
async fn bad_bearer_tokens_fill_the_brute_force_bucket() {
    let p = free_port();
    let keys = TempDir::new("oidc-limit");
    let jwks = gen_jwks(&keys, "jwks.json");
    let setup = usher_with(|port, dir| {
        provider_toml(
            "corp",
            p,
            port,
            &dir.join("secret"),
            "accept_bearer = true\naudiences = [\"api\"]\n",
        )
    })
    .await;
    let proxy = &setup.proxy;
    let _peer = Peer::start(
        p,
        &[callback(proxy.addr.port(), "corp")],
        &[("OIDC_JWKS_FILE", jwks.to_str().expect("utf-8"))],
    );
    until_ready(&jar(), &proxy.url("/.usher/oidc/corp/start")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let token = |aud: &str| {
        let claims = json!({"iss": issuer(p), "sub": "svc-1", "aud": aud, "iat": now, "exp": now + 300,
                            "preferred_username": "deployer"});
        mint(&jwks, &claims, "RS256")
    };
    let call = |token: String| {
        let url = proxy.url("/x");
        async move {
            crate::support::client()
                .get(url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
                .expect("bearer")
                .status()
        }
    };
    assert_eq!(call(token("api")).await, 200);
    for i in 0..5 {
        assert_eq!(call(token("someone-else")).await, 401, "bad token {i}");
    }
    assert_eq!(
        call(token("api")).await,
        429,
        "the bucket is full: a good token waits too"
    );
    drop(setup.dir);
}

/// The provider rotates its keys (restart with a new JWKS): the next
/// sign-in's ID token names an unknown kid, usher fetches the keys again
/// and signs the user in, without a restart.
#[tokio::test]
async fn a_key_rotation_at_the_provider_is_picked_up() {
    let p = free_port();
    let keys = TempDir::new("oidc-rotate");
    let (old, new) = (gen_jwks(&keys, "old.json"), gen_jwks(&keys, "new.json"));
    let setup = usher_with(|port, dir| provider_toml("corp", p, port, &dir.join("secret"), "")).await;
    let proxy = &setup.proxy;
    let redirect = [callback(proxy.addr.port(), "corp")];
    let peer = Peer::start(p, &redirect, &[("OIDC_JWKS_FILE", old.to_str().expect("utf-8"))]);
    let client = jar();
    let back = to_callback(&client, proxy, "corp", "alice", "alice-pw").await;
    assert_eq!(client.get(&back).send().await.expect("callback").status(), 303);
    drop(peer);
    let _peer = Peer::start(p, &redirect, &[("OIDC_JWKS_FILE", new.to_str().expect("utf-8"))]);
    let client = jar();
    let back = to_callback(&client, proxy, "corp", "bob", "bob-pw").await;
    let res = client.get(&back).send().await.expect("callback");
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert_eq!(seen(&client, proxy, "/other").await.0, 200);
}

/// Down at start: usher serves, the button answers 503 with Retry-After,
/// and once the provider is up it is usable within seconds (backoff
/// capped at 10 s); public paths work throughout.
#[tokio::test]
async fn a_provider_down_at_start_becomes_usable_when_it_comes_up() {
    let p = free_port();
    let setup = usher_with(|port, dir| provider_toml("corp", p, port, &dir.join("secret"), "")).await;
    let proxy = &setup.proxy;
    let client = jar();
    let start = proxy.url("/.usher/oidc/corp/start");
    let res = client.get(&start).send().await.expect("start");
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(seen(&client, proxy, "/public/x").await.0, 200);
    // Let the backoff grow a little before the provider appears.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _peer = Peer::start(p, &[callback(proxy.addr.port(), "corp")], &[]);
    let up = Instant::now();
    until_ready(&client, &start).await;
    assert!(
        up.elapsed() < Duration::from_secs(12),
        "usable {:?} after it came up",
        up.elapsed()
    );
    let back = to_callback(&client, proxy, "corp", "alice", "alice-pw").await;
    assert_eq!(client.get(&back).send().await.expect("callback").status(), 303);
}

/// `usher check --online` fetches discovery and keys and says what it
/// found; a provider that cannot be reached exits 1 naming it.
#[tokio::test]
async fn check_online_reports_what_the_provider_offers() {
    let (p, down) = (free_port(), free_port());
    let _peer = Peer::start(p, &[callback(8080, "corp")], &[]);
    let dir = TempDir::new("oidc-check");
    std::fs::write(dir.join("secret"), "proxy-secret").expect("secret");
    let text = |port: u16| {
        format!(
            "{}\n{}",
            session_toml(""),
            provider_toml("corp", port, 8080, &dir.join("secret"), "")
        )
    };
    let run = |text: String| {
        let file = dir.join("usher.toml");
        std::fs::write(&file, text).expect("config");
        Command::new(env!("CARGO_BIN_EXE_usher"))
            .args(["check", "--online", "-c"])
            .arg(&file)
            .output()
            .expect("usher check")
    };
    let out = run(text(p));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("oidc corp: ok"), "{stdout}");
    assert!(
        stdout.contains("keystore-CHANGE-ME"),
        "the peer's development key: {stdout}"
    );
    assert!(stdout.contains("/session/end"), "{stdout}");
    assert!(!stdout.contains("proxy-secret"), "no secret in the output");
    let out = run(text(down));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("oidc corp: cannot be used"), "{stdout}");
    // A provider that accepts the connection and never answers is bounded
    // by its timeout (3 s here).
    let hang = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    let out = run(text(hang.local_addr().expect("addr").port()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no answer within 3s"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(hang);
}

/// Sign-out with `provider_logout`: usher's cookie is cleared and the
/// browser goes to the provider's end_session_endpoint with our client
/// and post-logout URL; `auto_redirect` sends the sign-in page straight
/// to the provider.
#[tokio::test]
async fn logout_ends_the_provider_session_and_auto_redirect_skips_the_page() {
    let p = free_port();
    let setup = usher_with(|port, dir| {
        format!(
            "{}[login]\nprovider_logout = true\nauto_redirect = \"corp\"\n",
            provider_toml("corp", p, port, &dir.join("secret"), "")
        )
    })
    .await;
    let proxy = &setup.proxy;
    let home = format!("http://127.0.0.1:{}/", proxy.addr.port());
    let _peer = Peer::start(
        p,
        &[callback(proxy.addr.port(), "corp")],
        &[("OIDC_POST_LOGOUT_URIS", &home)],
    );
    let client = jar();
    until_ready(&client, &proxy.url("/.usher/oidc/corp/start")).await;
    let res = client
        .get(proxy.url("/.usher/login?rd=/x"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 302, "auto_redirect");
    assert!(location(&res).starts_with(&format!("{}/auth?", issuer(p))));
    let back = to_callback(&client, proxy, "corp", "alice", "alice-pw").await;
    assert_eq!(client.get(&back).send().await.expect("callback").status(), 303);
    assert_eq!(seen(&client, proxy, "/other").await.0, 200);
    let res = client
        .post(proxy.url("/.usher/logout"))
        .form(&[("rd", "/")])
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{}/session/end?client_id=proxy", issuer(p))),
        "{to}"
    );
    assert!(to.contains("post_logout_redirect_uri="), "{to}");
    assert!(
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap_or("").contains("Max-Age=0")),
        "usher's cookie cleared"
    );
    assert_eq!(seen(&client, proxy, "/other").await.0, 401, "signed out of usher");
    // The provider accepts that request (a confirmation page, not an error).
    let page = client.get(&to).send().await.expect("end session");
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap_or_default());
}

/// Headless Chromium: the sign-in page's provider button, the provider's
/// own form, and back at the page it asked for with alice's identity.
#[tokio::test]
async fn chromium_signs_in_through_the_provider_button() {
    let p = free_port();
    let setup = usher_with(|port, dir| provider_toml("corp", p, port, &dir.join("secret"), "")).await;
    let proxy = &setup.proxy;
    let _peer = Peer::start(p, &[callback(proxy.addr.port(), "corp")], &[]);
    until_ready(&jar(), &proxy.url("/.usher/oidc/corp/start")).await;
    let browser = crate::browser::launch();
    let mut page = crate::browser::Cdp::open(&browser, &proxy.url("/private/page")).await;
    page.wait_for_path("/.usher/login").await;
    page.screenshot("oidc-login-page.png").await;
    page.eval("document.querySelector('a.button').click(); true").await;
    let form = "/interaction/";
    for _ in 0..100 {
        let path = page.eval("location.pathname").await;
        if path.as_str().is_some_and(|p| p.starts_with(form))
            && page.eval("document.readyState").await == json!("complete")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    page.eval(
        "document.querySelector('input[name=username]').value = 'alice';\
         document.querySelector('input[name=password]').value = 'alice-pw';\
         document.querySelector('button[type=submit]').click(); true",
    )
    .await;
    page.wait_for_path("/private/page").await;
    let body = page.eval("document.body.innerText").await;
    let seen: Value = serde_json::from_str(body.as_str().expect("text")).expect("the echo upstream's JSON");
    assert_eq!(Seen(seen).one("x-forwarded-user").as_deref(), Some("alice"));
    page.screenshot("oidc-signed-in-upstream.png").await;
}

/// `usher demo --oidc ISSUER` shows the provider's button beside the demo
/// account and starts a flow with it.
#[tokio::test]
async fn demo_offers_a_provider_with_oidc() {
    let p = free_port();
    let _peer = Peer::start(p, &[], &[]);
    let demo = crate::support::Usher::start_with_env(
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--oidc",
            &issuer(p),
            "--oidc-client-id",
            "proxy",
        ],
        None,
        &[("USHER_OIDC_DEMO_SECRET", "proxy-secret")],
    );
    let client = jar();
    let page = client
        .get(demo.url("/.usher/login"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("Sign in with the demo provider"), "{page}");
    assert!(page.contains("type=\"password\""), "the demo account stays");
    let start = demo.url("/.usher/oidc/demo/start");
    until_ready(&client, &start).await;
    let res = client.get(&start).send().await.expect("start");
    assert_eq!(res.status(), 302);
    assert!(location(&res).contains("client_id=proxy"));
}
