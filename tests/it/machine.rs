//! Signed identity for the backend and machine clients (SPEC §8, §9): the
//! assertion verified by PyJWT (a JWT library outside Rust) against the
//! served JWKS for ES256, RS256 and EdDSA keys made by openssl, its
//! rotation and stripping; API keys, Basic, and bad credentials over real
//! sockets, and which `Authorization` headers reach the app untouched.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use reqwest::header::{ACCEPT, AUTHORIZATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::Value;

use crate::login::{jar, sign_in, users};
use crate::support::{Proxy, Seen, TEST_KEY, TempDir, client, parse_config, spawn_echo_upstream, spawn_proxy_admin};

const AUDIENCE: &str = "https://app.test";

/// A private key made by openssl (`ec`, `rsa`, `ed25519`) as PKCS#8 PEM,
/// and its public key beside it (`.pub`).
fn openssl_key(dir: &TempDir, name: &str, kind: &str) -> PathBuf {
    let path = dir.join(&format!("{name}.pem"));
    let args: &[&str] = match kind {
        "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "ed25519"],
    };
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path)
        .output()
        .expect("openssl (installed by scripts/test.sh)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&path)
        .arg("-out")
        .arg(path.with_extension("pub"))
        .output()
        .expect("openssl");
    assert!(out.status.success());
    path
}

fn assertion_toml(algorithm: &str, key: &Path, previous: &[PathBuf], extra: &str) -> String {
    let previous: Vec<String> = previous
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    format!(
        "[upstream.assertion]\nalgorithm = \"{algorithm}\"\nkey_file = {:?}\nprevious_key_files = [{}]\n\
         audience = \"{AUDIENCE}\"\n{extra}\n",
        key.display().to_string(),
        previous.join(", ")
    )
}

async fn proxy_with(upstream: std::net::SocketAddr, extra: &str) -> Proxy {
    let text = format!(
        "[upstream]\nurl = \"http://{upstream}\"\n{extra}\n\
         [session]\nsecret_keys = [\"{TEST_KEY}\"]\nsecure = false\n{}\n\
         [access]\ndefault = \"authenticated\"\n[[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n",
        users()
    );
    spawn_proxy_admin(parse_config(&text)).await
}

/// PyJWT's verdict on `token`: the claims, or the error's class name. On
/// a blocking thread: the proxy serving the JWKS runs on this test's runtime.
async fn pyjwt(proxy: &Proxy, issuer: &str, audience: &str, token: &str, leeway: i64) -> Result<Value, String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/verify_assertion.py");
    let args = [
        proxy.url("/.usher/jwks.json"),
        audience.to_string(),
        issuer.to_string(),
        token.to_string(),
        leeway.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .args(&args)
            .output()
            .map_err(|e| format!("{}: {e}", python.display()))
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("{e} (run scripts/test.sh, which installs PyJWT)"));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(serde_json::from_str(&text).expect("claims json"))
    } else {
        assert!(!text.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        Err(text)
    }
}

/// The real `jose` library's verdict (as a Node backend), run from the OIDC
/// peer's copy where `jose` is installed.
async fn jose(proxy: &Proxy, issuer: &str, audience: &str, token: &str) -> Result<Value, String> {
    let dir = crate::oidc::peer_dir();
    let script = dir.join("verify_assertion.mjs");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/verify_assertion.mjs"),
        &script,
    )
    .expect("copy the verify script");
    let args = [
        proxy.url("/.usher/jwks.json"),
        audience.to_string(),
        issuer.to_string(),
        token.to_string(),
    ];
    let out =
        tokio::task::spawn_blocking(move || Command::new("node").arg(&script).args(&args).current_dir(&dir).output())
            .await
            .expect("join")
            .expect("node");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(serde_json::from_str(&text).expect("claims json"))
    } else {
        Err(text)
    }
}

/// What the upstream saw on `path` with `c`'s cookies.
async fn seen(c: &reqwest::Client, proxy: &Proxy, path: &str) -> Seen {
    let res = c.get(proxy.url(path)).send().await.expect("send");
    assert_eq!(res.status(), 200);
    Seen(res.json::<Value>().await.expect("json"))
}

#[tokio::test]
async fn pyjwt_verifies_the_assertion_for_every_algorithm() {
    let dir = TempDir::new("assertion");
    let up = spawn_echo_upstream().await;
    for (algorithm, kind) in [("ES256", "ec"), ("RS256", "rsa"), ("EdDSA", "ed25519")] {
        let key = openssl_key(&dir, kind, kind);
        let proxy = proxy_with(up.addr, &assertion_toml(algorithm, &key, &[], "")).await;
        let c = jar();
        assert_eq!(sign_in(&c, &proxy, "alice", "wonderland", "/").await.status(), 303);
        let first = seen(&c, &proxy, "/x")
            .await
            .one("x-usher-assertion")
            .expect("assertion sent");
        // The request's proto://host is the issuer when none is configured.
        let issuer = format!("http://{}", proxy.addr);
        let claims = pyjwt(&proxy, &issuer, AUDIENCE, &first, 0)
            .await
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_eq!(claims["sub"], "alice", "{algorithm}");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["groups"], serde_json::json!(["admin", "staff"]));
        assert_eq!(claims["aud"], AUDIENCE);
        let (iat, exp) = (
            claims["iat"].as_u64().expect("iat"),
            claims["exp"].as_u64().expect("exp"),
        );
        assert_eq!(exp - iat, 300, "exp = iat + ttl");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        // Refused by PyJWT itself: another audience, another issuer, expiry.
        assert_eq!(
            pyjwt(&proxy, &issuer, "https://other.test", &first, 0).await,
            Err("InvalidAudienceError".into())
        );
        assert_eq!(
            pyjwt(&proxy, "https://evil.test", AUDIENCE, &first, 0).await,
            Err("InvalidIssuerError".into())
        );
        assert_eq!(
            pyjwt(&proxy, &issuer, AUDIENCE, &first, -400).await,
            Err("ExpiredSignatureError".into())
        );
        // A token whose claims were changed fails its signature.
        let parts: Vec<&str> = first.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(b64.decode(parts[1]).expect("b64")).expect("utf-8");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(payload.replace("alice", "admin")),
            parts[2]
        );
        assert_eq!(
            pyjwt(&proxy, &issuer, AUDIENCE, &forged, 0).await,
            Err("InvalidSignatureError".into())
        );
        // And by jose, as a Node backend would.
        let by_jose = jose(&proxy, &issuer, AUDIENCE, &first)
            .await
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_eq!(by_jose["sub"], "alice");
        assert_eq!(
            jose(&proxy, &issuer, "https://other.test", &first).await,
            Err("ERR_JWT_CLAIM_VALIDATION_FAILED".into())
        );
        assert_eq!(
            jose(&proxy, &issuer, AUDIENCE, &forged).await,
            Err("ERR_JWS_SIGNATURE_VERIFICATION_FAILED".into())
        );
        // Cached: the next request carries the same token (same jti).
        assert_eq!(seen(&c, &proxy, "/y").await.one("x-usher-assertion"), Some(first));
        // Signed out: no assertion at all.
        assert_eq!(
            seen(&client(), &proxy, "/public/z").await.one("x-usher-assertion"),
            None
        );
        proxy.stop().await;
    }
}

#[tokio::test]
async fn a_rotated_key_keeps_verifying_while_it_is_listed() {
    let dir = TempDir::new("rotation");
    let up = spawn_echo_upstream().await;
    let old = openssl_key(&dir, "old", "ec");
    let new = openssl_key(&dir, "new", "ed25519");
    let issuer = "issuer = \"https://id.app.test\"";
    let before = proxy_with(up.addr, &assertion_toml("ES256", &old, &[], issuer)).await;
    let c = jar();
    assert_eq!(sign_in(&c, &before, "alice", "wonderland", "/").await.status(), 303);
    let old_token = seen(&c, &before, "/x")
        .await
        .one("x-usher-assertion")
        .expect("assertion");
    before.stop().await;
    // The new key signs; the old one (its public half) is still published.
    let during = proxy_with(
        up.addr,
        &assertion_toml("EdDSA", &new, &[old.with_extension("pub")], issuer),
    )
    .await;
    let jwks: Value = client()
        .get(during.url("/.usher/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{jwks}");
    assert!(keys.iter().all(|k| k["kid"].is_string() && k["use"] == "sig"), "{jwks}");
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "a private key part was published: {jwks}"
    );
    let old_claims = pyjwt(&during, "https://id.app.test", AUDIENCE, &old_token, 0)
        .await
        .expect("the old token verifies");
    assert_eq!(old_claims["sub"], "alice");
    assert_eq!(sign_in(&c, &during, "alice", "wonderland", "/").await.status(), 303);
    let new_token = seen(&c, &during, "/x")
        .await
        .one("x-usher-assertion")
        .expect("assertion");
    assert!(
        pyjwt(&during, "https://id.app.test", AUDIENCE, &new_token, 0)
            .await
            .is_ok()
    );
    during.stop().await;
    // Once the old key is dropped from the list, its tokens stop verifying.
    let after = proxy_with(up.addr, &assertion_toml("EdDSA", &new, &[], issuer)).await;
    assert!(
        pyjwt(&after, "https://id.app.test", AUDIENCE, &old_token, 0)
            .await
            .is_err()
    );
    assert!(
        pyjwt(&after, "https://id.app.test", AUDIENCE, &new_token, 0)
            .await
            .is_ok()
    );
    after.stop().await;
}

#[tokio::test]
async fn client_copies_of_the_assertion_never_reach_the_upstream() {
    let dir = TempDir::new("assertion-strip");
    let up = spawn_echo_upstream().await;
    let key = openssl_key(&dir, "k", "ec");
    let proxy = proxy_with(up.addr, &assertion_toml("ES256", &key, &[], "")).await;
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
    let spellings = [
        "X-Usher-Assertion",
        "x_usher_assertion",
        "X.Usher.Assertion",
        "x-usher_assertion",
    ];
    let send = |c: &reqwest::Client, path: &str| {
        let mut req = c.get(proxy.url(path));
        for name in spellings {
            req = req.header(name, forged);
        }
        req.send()
    };
    let res = send(&client(), "/public/p").await.expect("send");
    let s = Seen(res.json().await.expect("json"));
    let names = s.names();
    assert!(
        !names.iter().any(|n| n.replace(['_', '.'], "-") == "x-usher-assertion"),
        "{names:?}"
    );
    let c = jar();
    assert_eq!(sign_in(&c, &proxy, "alice", "wonderland", "/").await.status(), 303);
    let res = send(&c, "/x").await.expect("send");
    let s = Seen(res.json().await.expect("json"));
    let all: Vec<String> = s
        .names()
        .into_iter()
        .filter(|n| n.replace(['_', '.'], "-") == "x-usher-assertion")
        .collect();
    assert_eq!(all, ["x-usher-assertion"], "only usher's own copy");
    assert_ne!(s.one("x-usher-assertion").as_deref(), Some(forged));
    proxy.stop().await;
}

/// A key from the real binary's `gen-api-key`: (key, its config snippet).
fn gen_api_key(name: &str, groups: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_usher"))
        .arg("gen-api-key")
        .output()
        .expect("usher gen-api-key");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let key = lines.next().expect("key line").to_string();
    let snippet: String = lines
        .map(|l| {
            if l.starts_with("name = ") {
                format!("name = \"{name}\"\n")
            } else if l.starts_with("groups = ") {
                format!("groups = {groups}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    (key, snippet)
}

fn challenges(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

#[tokio::test]
async fn api_keys_and_basic_auth_sign_in_one_request_and_bad_ones_are_401() {
    let up = spawn_echo_upstream().await;
    let (key, snippet) = gen_api_key("ci-deploy", "[\"deploy\"]");
    let proxy = proxy_with(up.addr, &format!("{snippet}\n[login]\nbasic_auth = true\n")).await;
    let c = client();
    let get = |auth: &str| c.get(proxy.url("/deploy")).header(AUTHORIZATION, auth).send();
    // A good key, many times: one argon2 check in all.
    for _ in 0..5 {
        let res = get(&format!("Bearer {key}")).await.expect("send");
        assert_eq!(res.status(), 200);
        assert!(res.headers().get(SET_COOKIE).is_none(), "a cookie for an API request");
        let s = Seen(res.json().await.expect("json"));
        assert_eq!(s.one("x-forwarded-user").as_deref(), Some("ci-deploy"));
        assert_eq!(s.one("x-forwarded-groups").as_deref(), Some("deploy"));
        assert_eq!(s.one("authorization"), None, "the key reached the upstream");
    }
    let metrics = client()
        .get(format!("http://{}/metrics", proxy.admin.expect("admin")))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("usher_api_key_hash_checks_total 1\n"), "{metrics}");
    // A wrong secret for a real id, an unknown id, junk: 401, never a redirect.
    let (id, secret) = key["usher_".len()..].split_once('_').expect("shape");
    let wrong = format!("usher_{id}_{}", secret.chars().rev().collect::<String>());
    for bad in [wrong.as_str(), "usher_zzzz_aaaa", "usher_"] {
        let res = c
            .get(proxy.url("/deploy"))
            .header(AUTHORIZATION, format!("Bearer {bad}"))
            .header(ACCEPT, "text/html")
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 401, "{bad}");
        assert!(challenges(&res).iter().any(|c| c.contains("invalid_token")), "{bad}");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
    // Basic for a configured user.
    let basic = |user: &str, pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    };
    let res = get(&basic("alice", "wonderland")).await.expect("send");
    assert_eq!(res.status(), 200);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let s = Seen(res.json().await.expect("json"));
    assert_eq!(s.one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(s.one("authorization"), None);
    let res = get(&basic("alice", "nope")).await.expect("send");
    assert_eq!(res.status(), 401);
    assert_eq!(challenges(&res), ["Basic realm=\"usher\", charset=\"UTF-8\""]);
    // Anything else reaches the app untouched.
    for theirs in ["Token abc123", "Bearer opaque-app-token", "Bearer a.b.c.d"] {
        let res = get(theirs).await.expect("send");
        assert_eq!(res.status(), 401, "{theirs}: usher's own access rule still applies");
        let res = c
            .get(proxy.url("/public/p"))
            .header(AUTHORIZATION, theirs)
            .send()
            .await
            .expect("send");
        assert_eq!(
            Seen(res.json().await.expect("json")).one("authorization").as_deref(),
            Some(theirs)
        );
    }
    // An anonymous API client learns every scheme usher takes here.
    let res = c.get(proxy.url("/deploy")).send().await.expect("send");
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenges(&res),
        [
            "Cookie",
            "Bearer realm=\"usher\"",
            "Basic realm=\"usher\", charset=\"UTF-8\""
        ]
    );
    // Two Authorization headers, one of them ours: neither is believed.
    let res = c
        .get(proxy.url("/deploy"))
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .header(AUTHORIZATION, "Token abc")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 401);
    proxy.stop().await;
}

#[tokio::test]
async fn without_basic_auth_a_basic_header_is_the_apps_and_not_offered() {
    let up = spawn_echo_upstream().await;
    let proxy = proxy_with(up.addr, "").await;
    let c = client();
    let header = "Basic YWxpY2U6d29uZGVybGFuZA==";
    let res = c
        .get(proxy.url("/public/p"))
        .header(AUTHORIZATION, header)
        .send()
        .await
        .expect("send");
    assert_eq!(
        Seen(res.json().await.expect("json")).one("authorization").as_deref(),
        Some(header)
    );
    let res = c
        .get(proxy.url("/x"))
        .header(AUTHORIZATION, header)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 401, "not signed in by it");
    assert_eq!(challenges(&res), ["Cookie"], "nothing else is configured");
    proxy.stop().await;
}

#[tokio::test]
async fn the_brute_force_limit_is_reached_through_basic_auth() {
    let up = spawn_echo_upstream().await;
    let limits = "[login]\nbasic_auth = true\nuser_attempts_per_minute = 3\nip_attempts_per_minute = 100\n";
    let proxy = proxy_with(up.addr, limits).await;
    let c = client();
    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("alice:{pw}"))
        )
    };
    for i in 0..3 {
        let res = c
            .get(proxy.url("/x"))
            .header(AUTHORIZATION, basic(&format!("guess{i}")))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 401);
    }
    // The right password now: the bucket is full (the same one the form fills).
    let res = c
        .get(proxy.url("/x"))
        .header(AUTHORIZATION, basic("wonderland"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let res = sign_in(&jar(), &proxy, "alice", "wonderland", "/").await;
    assert_eq!(res.status(), 429, "the form shares the bucket");
    proxy.stop().await;
}

#[tokio::test]
async fn forward_auth_hands_the_front_proxy_the_assertion() {
    let dir = TempDir::new("assertion-fa");
    let up = spawn_echo_upstream().await;
    let key = openssl_key(&dir, "k", "ec");
    let extra = format!(
        "{}\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
        assertion_toml("ES256", &key, &[], "")
    );
    let proxy = proxy_with(up.addr, &extra).await;
    let c = jar();
    assert_eq!(sign_in(&c, &proxy, "alice", "wonderland", "/").await.status(), 303);
    let res = c
        .get(proxy.url("/.usher/auth"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "shop.app.test")
        .header("x-forwarded-uri", "/orders")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let token = res.headers()["x-usher-assertion"].to_str().expect("ascii").to_string();
    // Its issuer is the described request's origin.
    let claims = pyjwt(&proxy, "https://shop.app.test", AUDIENCE, &token, 0)
        .await
        .expect("verifies");
    assert_eq!(claims["sub"], "alice");
    proxy.stop().await;
}
