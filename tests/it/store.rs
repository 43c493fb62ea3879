//! Server-side sessions on a real Redis (SPEC §7): two replicas share one
//! store, logout and revocation end a session everywhere, backend writes
//! from concurrent requests all land, the sign-in limit holds across
//! replicas, an outage answers 503 and recovers by itself, a real Redis
//! Cluster serves sessions, and removed users lose their sessions.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::login::{jar, sign_in, users};
use crate::redis_peer::{RedisCluster, RedisSentinel, RedisServer};
use crate::support::{
    Proxy, Seen, TEST_KEY, client, parse_config, spawn_echo_upstream, spawn_proxy_admin, write_query,
};

const RULES: &str = "[access]\ndefault = \"authenticated\"\n\
                     [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n";

/// A whole config: the test key, the store table `store`, users alice and
/// bob (`users`), writable cart and prefs.
fn config(upstream: std::net::SocketAddr, store: &str, users: &str, extra: &str) -> usher::Config {
    parse_config(&format!(
        "[upstream]\nurl = \"http://{upstream}\"\n\
         [session]\nsecret_keys = [\"{TEST_KEY}\"]\nsecure = false\n\
         [session.store]\n{store}\n\
         [session.forward]\n\"X-Forwarded-User\" = \"user\"\n\"X-Cart\" = \"cart\"\n\
         [session.upstream]\nwritable = [\"cart\", \"prefs\", \"user\"]\n\
         {users}\n{RULES}\n{extra}"
    ))
}

fn redis_store(redis: &RedisServer) -> String {
    format!("kind = \"redis\"\nurl = \"{}\"\ntimeout = \"500ms\"", redis.url())
}

/// The user the upstream saw on `path`, or the status when it was not 200.
async fn who(c: &reqwest::Client, proxy: &Proxy, path: &str) -> Result<Option<String>, u16> {
    let res = c.get(proxy.url(path)).send().await.expect("send");
    if res.status() != 200 {
        return Err(res.status().as_u16());
    }
    Ok(Seen(res.json::<Value>().await.expect("json")).one("x-forwarded-user"))
}

fn admin(proxy: &Proxy, path: &str) -> String {
    format!("http://{}{path}", proxy.admin.expect("admin listener"))
}

/// The admin listener's `/metrics` text.
async fn metrics_of(proxy: &Proxy) -> String {
    let res = client().get(admin(proxy, "/metrics")).send().await.expect("metrics");
    res.text().await.expect("text")
}

/// `POST /sessions/revoke` with one form field; the JSON answer.
async fn revoke(proxy: &Proxy, field: &str, value: &str) -> Value {
    let res = client()
        .post(admin(proxy, "/sessions/revoke"))
        .form(&[(field, value)])
        .send()
        .await
        .expect("revoke");
    res.json().await.expect("json")
}

/// The session cookie's value in a `Set-Cookie` list.
fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("usher_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// The JSON inside a signed `v1.<time>.<payload>.<tag>` value.
fn signed_payload(value: &str) -> Value {
    let payload = value.split('.').nth(2).expect("payload part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

#[tokio::test]
async fn two_replicas_share_sessions_and_logout_ends_them_on_both() {
    let redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, "")).await;
    let b = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, "")).await;
    let c = jar();
    let res = sign_in(&c, &a, "alice", "wonderland", "/").await;
    assert_eq!(res.status(), 303);
    // The cookie carries a signed id and the login time, nothing else.
    let value = session_cookie(&res).expect("session cookie");
    let payload = signed_payload(&value);
    let keys: Vec<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["auth_time", "sid"], "{payload}");
    assert!(!value.contains("alice") && !payload.to_string().contains("alice"));
    // The jar sends the cookie to both replicas (cookies ignore the port).
    assert_eq!(who(&c, &a, "/x").await, Ok(Some("alice".into())));
    assert_eq!(who(&c, &b, "/x").await, Ok(Some("alice".into())));
    // A copy of the cookie, kept by someone, works until the logout...
    let copied = format!("usher_session={value}");
    let stolen = client();
    let res = stolen
        .get(b.url("/x"))
        .header(COOKIE, &copied)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    // ...which ends it in the store, for every replica and every copy.
    let res = c.post(b.url("/.usher/logout")).send().await.expect("logout");
    assert_eq!(res.status(), 303);
    let res = stolen
        .get(a.url("/x"))
        .header(COOKIE, &copied)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 401, "a copied cookie outlived the logout");
    let cleared = res.headers().get_all(SET_COOKIE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.starts_with("usher_session=;") || v.contains("Max-Age=0"))
    });
    assert!(cleared, "the ended session's cookie was not cleared");
    assert_eq!(who(&c, &a, "/public/p").await, Ok(None));
    let text = metrics_of(&a).await;
    assert!(
        text.contains("usher_session_rejections_total{reason=\"ended\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("usher_store_duration_seconds_count{op=\"load\"}"),
        "{text}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn concurrent_backend_writes_all_land_and_sessions_outgrow_a_cookie() {
    let redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), "", "")).await;
    let b = spawn_proxy_admin(config(up.addr, &redis_store(&redis), "", "")).await;
    let c = jar();
    // A backend write makes the session (the public path needs none).
    let res = c
        .get(a.url(&format!("/public/w?{}", write_query(r#"{"user":"carol","cart":{}}"#))))
        .send()
        .await
        .expect("write");
    assert_eq!(res.status(), 200);
    assert!(session_cookie(&res).is_some());
    // Forty requests, alternating replicas, each adding its own item at once.
    let writes = (0..40).map(|i| {
        let (c, proxy) = (c.clone(), if i % 2 == 0 { &a } else { &b });
        let url = proxy.url(&format!(
            "/w?{}",
            write_query(&format!(r#"{{"cart":{{"item-{i}":{i}}}}}"#))
        ));
        async move { c.get(url).send().await.expect("write").status() }
    });
    for status in futures_util::future::join_all(writes).await {
        assert_eq!(status, 200);
    }
    let res = c.get(a.url("/x")).send().await.expect("read");
    let cart: Value =
        serde_json::from_str(&Seen(res.json().await.expect("json")).one("x-cart").expect("cart")).expect("cart json");
    let items = cart.as_object().expect("cart object");
    assert_eq!(items.len(), 40, "lost updates: {cart}");
    for i in 0..40 {
        assert_eq!(items[&format!("item-{i}")], json!(i));
    }
    // 6 KB of preferences: past what a cookie holds (4 KB), fine in the store.
    let big = "x".repeat(6_000);
    let res = c
        .get(b.url(&format!(
            "/w?{}",
            write_query(&format!(r#"{{"prefs":{{"notes":"{big}"}}}}"#))
        )))
        .send()
        .await
        .expect("write");
    assert_eq!(res.status(), 200);
    let doc: Value = c
        .get(a.url("/.usher/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["prefs"]["notes"].as_str().map(str::len), Some(6_000));
    assert_eq!(doc["user"], "carol");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn admin_lists_and_revokes_sessions_and_the_command_line_does_too() {
    let redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, "")).await;
    let (alice1, alice2, bob) = (jar(), jar(), jar());
    let mut cookies = Vec::new();
    for (c, user, pw) in [
        (&alice1, "alice", "wonderland"),
        (&alice2, "alice", "wonderland"),
        (&bob, "bob", "builder"),
    ] {
        let res = sign_in(c, &a, user, pw, "/").await;
        assert_eq!(res.status(), 303);
        cookies.push(session_cookie(&res).expect("cookie"));
    }
    let admin_client = client();
    let list: Value = admin_client
        .get(admin(&a, "/sessions?user=alice"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{list}");
    for s in sessions {
        assert_eq!(s["id"].as_str().map(str::len), Some(32), "{s}");
        assert_eq!(s["client_ip"], "127.0.0.1");
        assert!(
            s["created"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
            "{s}"
        );
        assert!(s["last_seen"].is_string() && s["user_agent"].is_string(), "{s}");
    }
    // The listed ids are hashes of the cookies' secret ids, never the ids.
    let listed: Vec<&str> = sessions.iter().filter_map(|s| s["id"].as_str()).collect();
    for value in &cookies[..2] {
        let sid = signed_payload(value)["sid"].as_str().expect("sid").to_string();
        assert!(!listed.contains(&sid.as_str()));
        assert!(listed.contains(&usher::store::public_id(&sid).as_str()), "{listed:?}");
    }
    // Revoking one by id ends that browser only.
    let first = sessions[0]["id"].as_str().expect("id").to_string();
    assert_eq!(revoke(&a, "id", &first).await, json!({"revoked": 1}));
    let alive = [
        who(&alice1, &a, "/x").await.is_ok(),
        who(&alice2, &a, "/x").await.is_ok(),
    ];
    assert_eq!(alive.iter().filter(|x| **x).count(), 1, "{alive:?}");
    // Page-originated requests are refused; bad parameters are 400.
    let res = admin_client
        .post(admin(&a, "/sessions/revoke?user=bob"))
        .header("origin", "http://evil.test")
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 403);
    for bad in [
        "/sessions/revoke",
        "/sessions/revoke?user=a&id=b",
        "/sessions/revoke?user=",
    ] {
        let res = admin_client.post(admin(&a, bad)).send().await.expect("revoke");
        assert_eq!(res.status(), 400, "{bad}");
    }
    assert_eq!(
        admin_client
            .get(admin(&a, "/sessions/revoke?user=bob"))
            .send()
            .await
            .expect("get")
            .status(),
        405
    );
    assert_eq!(who(&bob, &a, "/x").await, Ok(Some("bob".into())), "bob was touched");
    // The command line, straight to the same Redis: list, then revoke all
    // of alice's.
    let dir = crate::support::TempDir::new("store-cli");
    let path = dir.join("usher.toml");
    let toml = format!(
        "[upstream]\nurl = \"http://{}\"\n[session]\nsecret_keys = [\"{TEST_KEY}\"]\n[session.store]\n{}\n",
        up.addr,
        redis_store(&redis)
    );
    std::fs::write(&path, toml).expect("write config");
    let usher = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
            .args(args)
            .arg("-c")
            .arg(&path)
            .output()
            .expect("usher");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // `decode` says the cookie is an id, and which session it names.
    let (code, out) = usher(&["session", "decode", &cookies[2]]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("the fields live in Redis") && out.contains("\"sid\""),
        "{out}"
    );
    let (code, out) = usher(&["session", "list", "--user", "alice"]);
    assert_eq!(code, Some(0), "{out}");
    let listed: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(listed["sessions"].as_array().map(Vec::len), Some(1), "{out}");
    let (code, out) = usher(&["session", "revoke", "--user", "alice"]);
    assert_eq!((code, out.trim()), (Some(0), r#"{"revoked":1}"#));
    assert!(who(&alice1, &a, "/x").await.is_err() && who(&alice2, &a, "/x").await.is_err());
    assert_eq!(who(&bob, &a, "/x").await, Ok(Some("bob".into())));
    assert_eq!(revoke(&a, "user", "bob").await, json!({"revoked": 1}));
    assert_eq!(who(&bob, &a, "/x").await, Err(401));
    a.stop().await;
}

#[tokio::test]
async fn with_the_cookie_store_revocation_answers_409() {
    let up = spawn_echo_upstream().await;
    let a = spawn_proxy_admin(config(up.addr, "kind = \"cookie\"", "", "")).await;
    let c = client();
    let res = c.get(admin(&a, "/sessions?user=alice")).send().await.expect("list");
    assert_eq!(res.status(), 409);
    assert!(res.text().await.expect("text").contains("kind = \\\"redis\\\""));
    let res = c
        .post(admin(&a, "/sessions/revoke?user=alice"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 409);
    a.stop().await;
}

#[tokio::test]
async fn the_sign_in_limit_holds_across_replicas() {
    let redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let limits = "[login]\nuser_attempts_per_minute = 4\nip_attempts_per_minute = 100\n";
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, limits)).await;
    let b = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, limits)).await;
    let c = jar();
    // Four wrong guesses, two on each replica: each alone has seen two.
    for i in 0..4 {
        let proxy = if i % 2 == 0 { &a } else { &b };
        let res = sign_in(&c, proxy, "alice", "guess", "/").await;
        assert_eq!(res.status(), 401, "guess {i} was not refused as a wrong password");
    }
    for proxy in [&a, &b] {
        let res = sign_in(&c, proxy, "alice", "wonderland", "/").await;
        assert_eq!(res.status(), 429, "a replica did not see the other's failures");
        assert!(res.headers().contains_key("retry-after"));
    }
    // Another user from the same client is not limited.
    assert_eq!(sign_in(&c, &b, "bob", "builder", "/").await.status(), 303);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_redis_outage_answers_503_then_service_resumes_by_itself() {
    let mut redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, "")).await;
    let c = jar();
    assert_eq!(sign_in(&c, &a, "alice", "wonderland", "/").await.status(), 303);
    assert_eq!(who(&c, &a, "/x").await, Ok(Some("alice".into())));
    let ready = |p: &Proxy| client().get(admin(p, "/readyz")).send();
    assert_eq!(ready(&a).await.expect("readyz").status(), 200);

    // A server that accepts but never answers: each request is bounded by
    // the store timeout (500 ms), never signed in, never signed out.
    redis.pause(true);
    let started = Instant::now();
    let res = c.get(a.url("/x")).send().await.expect("send");
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(res.headers()["retry-after"], "2");
    assert!(
        res.headers().get(SET_COOKIE).is_none(),
        "a cookie changed during the outage"
    );
    redis.pause(false);

    // Killed under load: a bounded loop of requests while it is down.
    redis.kill();
    let mut statuses = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let res = c.get(a.url("/x")).send().await.expect("send");
        assert!(
            res.headers().get(SET_COOKIE).is_none(),
            "a cookie changed during the outage"
        );
        *statuses.entry(res.status().as_u16()).or_insert(0) += 1;
        // Public paths keep working, without a session.
        assert_eq!(who(&c, &a, "/public/p").await, Ok(None));
    }
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [503], "{statuses:?}");
    assert_eq!(ready(&a).await.expect("readyz").status(), 503);
    // The sign-in form and sign-out say so too, and change nothing.
    let res = c.post(a.url("/.usher/logout")).send().await.expect("logout");
    assert_eq!(res.status(), 503);
    assert!(res.headers().get(SET_COOKIE).is_none());
    let res = sign_in(&jar(), &a, "bob", "builder", "/").await;
    assert_eq!(res.status(), 503);

    // Back (with its data): the same cookie works again without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        match who(&c, &a, "/x").await {
            Ok(user) => {
                assert_eq!(user.as_deref(), Some("alice"));
                break;
            }
            Err(status) => assert_eq!(status, 503),
        }
        assert!(Instant::now() < deadline, "usher did not reconnect to Redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(&a).await.expect("readyz").status(), 200);
    let text = metrics_of(&a).await;
    let errors: f64 = text
        .lines()
        .filter(|l| l.starts_with("usher_store_errors_total{op=\"load\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 2.0, "store errors not counted:\n{text}");
    a.stop().await;
}

#[tokio::test]
async fn a_redis_cluster_serves_sessions_across_replicas() {
    let cluster = RedisCluster::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let store = format!("kind = \"redis\"\nmode = \"cluster\"\nnodes = {}", cluster.nodes_toml());
    let a = spawn_proxy_admin(config(up.addr, &store, &users, "")).await;
    let b = spawn_proxy_admin(config(up.addr, &store, &users, "")).await;
    // Several users, so their keys land on more than one master.
    let mut jars = Vec::new();
    for i in 0..6 {
        let c = jar();
        let (user, pw) = if i % 2 == 0 {
            ("alice", "wonderland")
        } else {
            ("bob", "builder")
        };
        let proxy = if i % 2 == 0 { &a } else { &b };
        assert_eq!(sign_in(&c, proxy, user, pw, "/").await.status(), 303);
        assert_eq!(who(&c, &a, "/x").await, Ok(Some(user.into())));
        assert_eq!(who(&c, &b, "/x").await, Ok(Some(user.into())));
        jars.push(c);
    }
    let keys: usize = cluster
        .nodes
        .iter()
        .map(|n| n.cli(&["dbsize"]).trim().parse::<usize>().unwrap_or(0))
        .filter(|n| *n > 0)
        .count();
    assert!(keys >= 2, "every key on one master: the test shows nothing");
    // Logout on one replica, revoke through the other's admin listener.
    assert_eq!(
        jars[0]
            .post(b.url("/.usher/logout"))
            .send()
            .await
            .expect("logout")
            .status(),
        303
    );
    assert_eq!(who(&jars[0], &a, "/x").await, Err(401));
    assert_eq!(revoke(&b, "user", "bob").await, json!({"revoked": 3}));
    for (i, c) in jars.iter().enumerate().skip(1) {
        let expected = if i % 2 == 0 {
            Ok(Some("alice".to_string()))
        } else {
            Err(401)
        };
        assert_eq!(who(c, &a, "/x").await, expected, "session {i}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn sentinel_mode_finds_the_primary_through_a_real_sentinel() {
    let primary = RedisServer::start();
    let sentinel = RedisSentinel::start(&primary);
    let up = spawn_echo_upstream().await;
    let users = users();
    let store = format!(
        "kind = \"redis\"\nmode = \"sentinel\"\nnodes = [\"redis://127.0.0.1:{}\"]\nsentinel_service = \"mymaster\"",
        sentinel.port
    );
    let a = spawn_proxy_admin(config(up.addr, &store, &users, "")).await;
    let c = jar();
    assert_eq!(sign_in(&c, &a, "alice", "wonderland", "/").await.status(), 303);
    assert_eq!(who(&c, &a, "/x").await, Ok(Some("alice".into())));
    // The session is in the primary the sentinel named.
    let keys = primary.cli(&["--scan", "--pattern", "usher:s:*"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    a.stop().await;
}

#[tokio::test]
async fn removed_users_lose_their_sessions_in_both_stores() {
    let redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let hash = usher::users::hash_password("wonderland").expect("hash");
    let only_alice = format!("[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n");
    for store in [redis_store(&redis), "kind = \"cookie\"".to_string()] {
        let a = spawn_proxy_admin(config(up.addr, &store, &users, "")).await;
        let (alice, bob, carol) = (jar(), jar(), jar());
        assert_eq!(sign_in(&alice, &a, "alice", "wonderland", "/").await.status(), 303);
        assert_eq!(sign_in(&bob, &a, "bob", "builder", "/").await.status(), 303);
        // A session a backend write made is not usher's password sign-in.
        let write = write_query(r#"{"user":"bob"}"#);
        let res = carol.get(a.url(&format!("/public/w?{write}"))).send().await.expect("w");
        assert_eq!(res.status(), 200);
        assert_eq!(who(&carol, &a, "/x").await, Ok(Some("bob".into())));
        // Reload without bob.
        let next = config(up.addr, &store, &only_alice, "");
        a.reload.as_ref().expect("reload").send(next).await.expect("reload");
        let deadline = Instant::now() + Duration::from_secs(5);
        while who(&bob, &a, "/x").await.is_ok() {
            assert!(Instant::now() < deadline, "{store}: bob's session survived his removal");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(who(&bob, &a, "/x").await, Err(401), "{store}");
        assert_eq!(who(&alice, &a, "/x").await, Ok(Some("alice".into())), "{store}");
        assert_eq!(who(&carol, &a, "/x").await, Ok(Some("bob".into())), "{store}");
        a.stop().await;
    }
}

/// The cookie store with `encrypt = true` and the given keys.
async fn sealed_proxy(upstream: std::net::SocketAddr, keys: &[&str]) -> Proxy {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let text = format!(
        "[upstream]\nurl = \"http://{upstream}\"\n\
         [session]\nsecret_keys = [{}]\nsecure = false\n[session.store]\nencrypt = true\n\
         [session.forward]\n\"X-Forwarded-User\" = \"user\"\n\"X-Cart\" = \"cart\"\n\
         [session.upstream]\nwritable = [\"cart\", \"user\", \"prefs\"]\n{RULES}",
        keys.join(", ")
    );
    spawn_proxy_admin(parse_config(&text)).await
}

#[tokio::test]
async fn encrypted_cookies_hide_their_fields_refuse_tampering_and_rotate() {
    let up = spawn_echo_upstream().await;
    let a = sealed_proxy(up.addr, &[TEST_KEY]).await;
    let c = client();
    let write = write_query(r#"{"user":"alice","cart":{"apple":2}}"#);
    let res = c.get(a.url(&format!("/public/w?{write}"))).send().await.expect("write");
    let value = session_cookie(&res).expect("cookie");
    assert!(value.starts_with("e1."), "{value}");
    let body = value.rsplit('.').next().expect("body");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .expect("b64");
    let text = String::from_utf8_lossy(&bytes);
    for hidden in ["alice", "apple", "cart", "user"] {
        assert!(
            !text.contains(hidden) && !value.contains(hidden),
            "{hidden} readable in the cookie"
        );
    }
    let cookie = format!("usher_session={value}");
    let seen = |proxy: &Proxy, cookie: String| {
        let url = proxy.url("/x");
        async move { client().get(url).header(COOKIE, cookie).send().await.expect("send") }
    };
    let res = seen(&a, cookie.clone()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        Seen(res.json().await.expect("json")).one("x-forwarded-user").as_deref(),
        Some("alice")
    );
    // Any changed character: no session, and the cookie is cleared.
    for at in [3, value.len() / 2, value.len() - 1] {
        let mut forged = value.clone().into_bytes();
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = format!("usher_session={}", String::from_utf8(forged).expect("ascii"));
        let res = seen(&a, forged).await;
        assert_eq!(res.status(), 401, "tampered at {at}");
        assert!(
            res.headers().contains_key(SET_COOKIE),
            "a refused cookie was not cleared"
        );
    }
    // A signed (not encrypted) cookie made with the same key is refused.
    let signed = usher::session::codec::seal(
        "usher_session",
        json!({"user": "mallory"}).as_object().expect("map"),
        usher::service::unix_now(),
        &usher::session::Key::new(TEST_KEY.as_bytes().to_vec(), 32).expect("key"),
    );
    assert_eq!(seen(&a, format!("usher_session={signed}")).await.status(), 401);
    // Rotation: a new key first still opens the old cookie, and re-seals it.
    let new_key = "rotated-key-0123456789abcdef012345678";
    let b = sealed_proxy(up.addr, &[new_key, TEST_KEY]).await;
    let res = seen(&b, cookie.clone()).await;
    assert_eq!(res.status(), 200);
    let resealed = session_cookie(&res).expect("re-sealed under the new key");
    let only_new = sealed_proxy(up.addr, &[new_key]).await;
    assert_eq!(
        seen(&only_new, cookie).await.status(),
        401,
        "the retired key still opens"
    );
    assert_eq!(seen(&only_new, format!("usher_session={resealed}")).await.status(), 200);
    // Too large for a cookie once sealed: not set, the old one stays.
    let big = "y".repeat(4_000);
    let write = write_query(&format!(r#"{{"prefs":{{"notes":"{big}"}}}}"#));
    let res = client()
        .get(a.url(&format!("/x?{write}")))
        .header(COOKIE, format!("usher_session={value}"))
        .send()
        .await
        .expect("write");
    assert_eq!(res.status(), 200);
    assert!(session_cookie(&res).is_none(), "an oversized sealed cookie was set");
    let metrics = metrics_of(&a).await;
    assert!(metrics.contains("usher_cookies_too_large_total 1"), "{metrics}");
    // `usher session decode` opens it with the configured keys.
    let dir = crate::support::TempDir::new("sealed-cli");
    let path = dir.join("usher.toml");
    let toml = format!(
        "[upstream]\nurl = \"http://{}\"\n[session]\nsecret_keys = [\"{TEST_KEY}\"]\nsecure = false\n\
         [session.store]\nencrypt = true\n",
        up.addr
    );
    std::fs::write(&path, toml).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["session", "decode", "-c"])
        .arg(&path)
        .arg(&value)
        .output()
        .expect("usher");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"alice\"") && text.contains("\"apple\""),
        "{text}"
    );
    for proxy in [a, b, only_new] {
        proxy.stop().await;
    }
}

/// The `usher.toml` of deploy/scaling, and the one inside its Kubernetes
/// ConfigMap, are valid as a replica would read them (keys from the
/// secret, the Redis URL from `$USHER_REDIS_URL`).
#[test]
fn the_scaling_deployment_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/scaling");
    let file = std::fs::read_to_string(format!("{dir}/usher.toml")).expect("usher.toml");
    let manifest = std::fs::read_to_string(format!("{dir}/kubernetes.yaml")).expect("kubernetes.yaml");
    // The ConfigMap's block: the lines indented under `usher.toml: |`.
    let start = manifest.find("usher.toml: |\n").expect("ConfigMap block") + "usher.toml: |\n".len();
    let embedded: String = manifest[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    for text in [file, embedded] {
        let env = usher::config::Environment {
            secret_keys: Some(TEST_KEY.to_string()),
            read_file: &|_| Err("not read".into()),
            var: &|name| (name == "USHER_REDIS_URL").then(|| "redis://:pw@usher-redis:6379/0".to_string()),
        };
        let config = usher::Config::from_toml_str_with(&text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let redis = config.session.store.redis().expect("the Redis store");
        assert_eq!(redis.servers[0].expose(), "redis://:pw@usher-redis:6379/0");
        assert!(config.admin.is_some(), "probes need the admin listener");
    }
}

#[test]
fn usher_check_shows_the_store_without_its_password_and_online_reaches_it() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret-pw"]);
    let dir = crate::support::TempDir::new("store-check");
    let path = dir.join("usher.toml");
    std::fs::write(
        &path,
        format!("[session]\nsecret_keys = [\"{TEST_KEY}\"]\n[session.store]\nkind = \"redis\"\n"),
    )
    .expect("config");
    let check = |online: bool, url: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_usher"));
        cmd.args(["check", "-c"]).arg(&path).env("USHER_REDIS_URL", url);
        if online {
            cmd.arg("--online");
        }
        let out = cmd.output().expect("usher");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let good = format!("redis://:s3cret-pw@127.0.0.1:{}", redis.port);
    let (code, text) = check(false, &good);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("session store    redis standalone redis://:***@127.0.0.1"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password was printed: {text}");
    let (code, text) = check(true, &good);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("session store: ok"), "{text}");
    // A wrong password, and nothing listening: exit 1, still no password.
    let wrong = format!("redis://:wrong-pw@127.0.0.1:{}", redis.port);
    let (code, text) = check(true, &wrong);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("wrong-pw"), "{text}");
    drop(redis);
    let (code, text) = check(true, &good);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn rediss_with_a_private_ca_file() {
    let pki = crate::tls::Pki::new("redis");
    let redis = RedisServer::start_tls(&pki.path("cert.pem"), &pki.path("key.pem"), &pki.path("ca.pem"));
    let up = spawn_echo_upstream().await;
    let users = users();
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let trusted = format!(
        "kind = \"redis\"\nurl = \"{url}\"\ntimeout = \"500ms\"\nca_file = \"{}\"",
        pki.path("ca.pem")
    );
    let a = spawn_proxy_admin(config(up.addr, &trusted, &users, "")).await;
    let c = jar();
    assert_eq!(sign_in(&c, &a, "alice", "wonderland", "/").await.status(), 303);
    assert_eq!(who(&c, &a, "/x").await, Ok(Some("alice".into())));
    a.stop().await;
    // Without the CA, the server's certificate is not trusted: no session
    // can be stored, and nothing falls back to plain text.
    let untrusted = format!("kind = \"redis\"\nurl = \"{url}\"\ntimeout = \"500ms\"");
    let b = spawn_proxy_admin(config(up.addr, &untrusted, &users, "")).await;
    assert_eq!(sign_in(&jar(), &b, "alice", "wonderland", "/").await.status(), 503);
    assert_eq!(
        client()
            .get(admin(&b, "/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        503
    );
    b.stop().await;
}

#[tokio::test]
async fn forward_auth_with_the_redis_store_decides_and_fails_closed() {
    let mut redis = RedisServer::start();
    let up = spawn_echo_upstream().await;
    let users = users();
    let trusted = "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let a = spawn_proxy_admin(config(up.addr, &redis_store(&redis), &users, trusted)).await;
    let c = jar();
    assert_eq!(sign_in(&c, &a, "alice", "wonderland", "/").await.status(), 303);
    let check = |uri: &'static str| {
        c.get(a.url("/.usher/auth"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "app.example.com")
            .header("x-forwarded-uri", uri)
            .send()
    };
    let res = check("/private").await.expect("send");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-forwarded-user"], "alice");
    redis.kill();
    // Who this is cannot be known: 503, never a 2xx, never a sign-in
    // redirect; a public path is still approved.
    let res = check("/private").await.expect("send");
    assert_eq!(res.status(), 503);
    assert!(res.headers().get("x-forwarded-user").is_none());
    assert_eq!(check("/public/x").await.expect("send").status(), 200);
    a.stop().await;
}
