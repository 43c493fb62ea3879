//! Operating the real binary: SIGTERM drains, SIGHUP reloads under load
//! (a broken config keeps the old one), the admin endpoints and their
//! metrics read by a real OpenMetrics parser, `usher healthcheck`, body
//! limits, and logs that never hold a secret or a cookie value.

use std::time::{Duration, Instant};

use reqwest::header::ACCEPT;
use serde_json::Value;

use crate::login::{csrf_of, jar};
use crate::support::{Seen, TEST_KEY, Usher, forwarded_user, spawn_echo_upstream, spawn_slow_upstream};

fn config(upstream: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://{upstream}\"\n[session]\nsecure = false\n\
         [access]\ndefault = \"anyone\"\n{extra}"
    )
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0() {
    let slow = spawn_slow_upstream(Duration::from_millis(1500), "done").await;
    let mut usher = Usher::start(&["run"], Some(&config(slow.addr, "")));
    let url = usher.url("/slow");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    usher.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = reqwest::Client::new()
        .get(usher.url("/new"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a new connection was served after SIGTERM");
    assert_eq!(in_flight.await.expect("task").expect("in-flight request"), 200);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = usher.child.try_wait().expect("wait") {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "usher did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sighup_reloads_under_load_and_a_broken_config_keeps_the_old_one() {
    let up = spawn_echo_upstream().await;
    let usher = Usher::start(&["run"], Some(&config(up.addr, "")));
    let path = usher.config_path.clone().expect("config path");
    let url = usher.url("/load");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (url, stop) = (url.clone(), std::sync::Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    let host_seen = || async {
        let res = reqwest::get(usher.url("/host")).await.expect("send");
        Seen(res.json::<Value>().await.expect("json")).one("host")
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(host_seen().await, Some(usher.addr.clone()), "Host preserved at first");

    let rewritten = config(up.addr, "").replace(
        &format!("url = \"http://{}\"\n", up.addr),
        &format!("url = \"http://{}\"\npreserve_host = false\n", up.addr),
    );
    std::fs::write(&path, rewritten).expect("rewrite");
    usher.signal("HUP");
    wait_for_log(&usher, "configuration reloaded").await;
    assert_eq!(host_seen().await, Some(up.addr.to_string()), "the reload applied");

    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\nbogus = true\n").expect("break");
    usher.signal("HUP");
    wait_for_log(&usher, "reload refused").await;
    assert_eq!(
        host_seen().await,
        Some(up.addr.to_string()),
        "still the last good config"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        let (ok, failed) = w.await.expect("worker");
        assert!(failed.is_empty(), "requests failed during reloads: {failed:?}");
        total += ok;
    }
    assert!(total > 50, "only {total} requests made under load");
    assert!(
        usher.log_text().contains("server.bogus"),
        "the refused reload names the bad key"
    );
}

/// The proxy remembers cookie values it verified; a reload that changes the
/// keys forgets them, so a session signed by a retired key ends at once.
#[tokio::test]
async fn a_reload_with_new_keys_forgets_remembered_cookies() {
    let up = spawn_echo_upstream().await;
    let dir = crate::support::TempDir::new("keys");
    let keys = dir.join("keys");
    let (old, new) = ("o".repeat(40), "n".repeat(40));
    std::fs::write(&keys, format!("{old}\n")).expect("keys");
    let text = config(up.addr, "[session.forward]\n\"X-Forwarded-User\" = \"user\"\n").replace(
        "[session]\nsecure = false\n",
        &format!(
            "[session]\nsecure = false\ncookie_name = \"sid\"\nsecret_keys_file = \"{}\"\n",
            keys.display()
        ),
    );
    let usher = Usher::start_with_env(&["run"], Some(&text), &[("USHER_SECRET_KEYS", "")]);
    let now = usher::service::unix_now();
    let payload = serde_json::json!({"user": "quinn"});
    let key = usher::session::Key::new(old.into_bytes(), 32).expect("key");
    let cookie = format!(
        "sid={}",
        usher::session::seal("sid", payload.as_object().expect("map"), now, &key)
    );
    let c = reqwest::Client::new();
    let url = usher.url("/");
    let user = || forwarded_user(&c, &url, &cookie);
    assert_eq!(user().await.as_deref(), Some("quinn"));
    assert_eq!(user().await.as_deref(), Some("quinn"), "remembered");
    std::fs::write(&keys, format!("{new}\n")).expect("keys");
    usher.signal("HUP");
    wait_for_log(&usher, "configuration reloaded").await;
    assert_eq!(
        user().await,
        None,
        "the old key was retired: the remembered value is forgotten"
    );
}

async fn wait_for_log(usher: &Usher, needle: &str) {
    wait_for_logged(usher, needle, 1).await;
}

/// Wait until `needle` has been logged at least `times` times.
async fn wait_for_logged(usher: &Usher, needle: &str, times: usize) {
    for _ in 0..100 {
        if usher.log_text().matches(needle).count() >= times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} not logged {times} time(s):\n{}", usher.log_text());
}

/// The Python interpreter of the test virtualenv (`scripts/test.sh` makes
/// it, with prometheus-client installed).
fn venv_python() -> std::path::PathBuf {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/test.sh, which creates it",
        python.display()
    );
    python
}

#[tokio::test]
async fn admin_endpoints_and_metrics_parsed_by_a_real_parser() {
    let up = spawn_echo_upstream().await;
    let usher = Usher::start(&["run"], Some(&config(up.addr, "[admin]\nlisten = \"127.0.0.1:0\"\n")));
    let admin = format!("http://{}", usher.admin.clone().expect("admin address"));
    let c = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(c.get(usher.url("/x")).send().await.expect("send").status(), 200);
    }
    c.get(usher.url("/x"))
        .header("cookie", "usher_session=forged")
        .send()
        .await
        .expect("send");
    assert_eq!(
        c.get(format!("{admin}/healthz")).send().await.expect("send").status(),
        200
    );
    assert_eq!(
        c.get(format!("{admin}/readyz")).send().await.expect("send").status(),
        200
    );
    let res = c.get(format!("{admin}/metrics")).send().await.expect("send");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.expect("text");
    let script = "import sys, json\n\
                  from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
                  out = {}\n\
                  for fam in text_string_to_metric_families(sys.stdin.read()):\n\
                  \x20   for s in fam.samples:\n\
                  \x20       out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value\n\
                  print(json.dumps(out))\n";
    let mut child = std::process::Command::new(venv_python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Value = serde_json::from_slice(&out.stdout).expect("json");
    let get = |k: &str| {
        samples[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {samples}"))
    };
    // Counted when each request ended (the scrape itself is on the admin
    // listener, not counted here).
    assert!(get("usher_requests_total{\"class\": \"2xx\", \"outcome\": \"complete\"}") >= 4.0);
    assert_eq!(
        get("usher_requests_total{\"class\": \"none\", \"outcome\": \"client_abort\"}"),
        0.0
    );
    assert!(get("usher_connections_accepted_total{}") >= 1.0);
    assert_eq!(get("usher_session_rejections_total{\"reason\": \"malformed\"}"), 1.0);
    assert_eq!(get("usher_logins_total{\"result\": \"failure\"}"), 0.0);
    assert!(get("usher_upstream_duration_seconds_count{}") >= 4.0);
    assert!(get("usher_open_connections{}") >= 0.0);
    assert_eq!(get("usher_cookies_too_large_total{}"), 0.0);
    // Four requests one after another share one pooled upstream connection.
    assert_eq!(get("usher_upstream_connections_opened_total{}"), 1.0);

    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["healthcheck", "--url", &format!("{admin}/healthz")])
        .status()
        .expect("healthcheck");
    assert_eq!(ok.code(), Some(0));
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["healthcheck", "--url", "http://127.0.0.1:1/healthz"])
        .status()
        .expect("healthcheck");
    assert_eq!(down.code(), Some(1));
    drop(up);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.get(format!("{admin}/readyz")).send().await.expect("send").status(),
        503,
        "upstream gone"
    );
}

#[tokio::test]
async fn request_bodies_over_the_limit_are_refused() {
    let up = spawn_echo_upstream().await;
    let usher = Usher::start(
        &["run"],
        Some(&config(up.addr, "").replace("[upstream]", "max_body_bytes = 1000\n[upstream]")),
    );
    let c = reqwest::Client::new();
    assert_eq!(
        c.post(usher.url("/up"))
            .body(vec![b'a'; 1000])
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    assert_eq!(
        c.post(usher.url("/up"))
            .body(vec![b'a'; 1001])
            .send()
            .await
            .expect("send")
            .status(),
        413
    );
    let chunks = futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 100])));
    let res = c
        .post(usher.url("/up"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    let status = res.map(|r| r.status().as_u16()).unwrap_or(0);
    assert!(
        status == 413 || status == 0,
        "a streamed body over the limit got {status}"
    );
}

#[tokio::test]
async fn logs_of_a_whole_journey_hold_no_secret_or_cookie() {
    let up = spawn_echo_upstream().await;
    let hash = usher::users::hash_password("p4ssw0rd-in-logs?").expect("hash");
    let extra = format!(
        "[log]\nformat = \"json\"\n[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
         [session.upstream]\nwritable = [\"cart\"]\n"
    );
    let usher = Usher::start_with_env(&["run"], Some(&config(up.addr, &extra)), &[("RUST_LOG", "debug")]);
    let c = jar();
    let page = c
        .get(usher.url("/.usher/login"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("page");
    let csrf_cookie: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let csrf = csrf_of(&page.text().await.expect("html"));
    let form = [
        ("username", "alice"),
        ("password", "p4ssw0rd-in-logs?"),
        ("csrf", csrf.as_str()),
        ("rd", "/"),
    ];
    let res = c
        .post(usher.url("/.usher/login"))
        .form(&form)
        .send()
        .await
        .expect("login");
    let session_cookie = res.headers()["set-cookie"].to_str().expect("ascii").to_string();
    let q = crate::support::write_query(r#"{"cart":{"apple":1}}"#);
    let res = c.get(usher.url(&format!("/w?{q}"))).send().await.expect("write");
    let written = res.headers()["set-cookie"].to_str().expect("ascii").to_string();
    c.get(usher.url("/private"))
        .header("cookie", "usher_session=tampered.value")
        .send()
        .await
        .expect("bad");
    c.post(usher.url("/.usher/logout")).send().await.expect("logout");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = usher.log_text();
    assert!(
        log.contains("\"user\":\"alice\""),
        "the access line names the user:\n{log}"
    );
    let value_of = |set_cookie: &str| {
        set_cookie
            .split(';')
            .next()
            .and_then(|p| p.split_once('='))
            .map(|(_, v)| v.to_string())
    };
    let mut secrets = vec![TEST_KEY.to_string(), "p4ssw0rd-in-logs?".to_string(), csrf.clone()];
    secrets.extend([&session_cookie, &written].iter().filter_map(|c| value_of(c)));
    secrets.extend(csrf_cookie.iter().filter_map(|c| value_of(c)));
    secrets.push(hash.split('$').next_back().expect("hash tail").to_string());
    for secret in secrets.iter().filter(|s| s.len() > 8) {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret or cookie value ({}…)",
            &secret[..8]
        );
    }
    for line in log.lines().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

/// A reload that leaves the sign-in limits as they were keeps counting in
/// the same buckets: SIGHUP is not a way to a fresh allowance. New limits
/// start new buckets.
#[tokio::test]
async fn sighup_keeps_sign_in_buckets_unless_the_limits_change() {
    let up = spawn_echo_upstream().await;
    let limits = |per_user: u32| {
        config(
            up.addr,
            &format!(
                "{}[login]\nip_attempts_per_minute = 100\nuser_attempts_per_minute = {per_user}\n",
                crate::login::users()
            ),
        )
    };
    let usher = Usher::start(&["run"], Some(&limits(2)));
    let path = usher.config_path.clone().expect("config path");
    let base = usher.url("");
    let c = jar();
    let attempt = || crate::login::sign_in_at(&c, &base, "alice", "wrong", "/");
    assert_eq!(attempt().await.status(), 401);
    assert_eq!(attempt().await.status(), 401);
    assert_eq!(attempt().await.status(), 429, "third attempt within a minute");

    // Same limits (the file is rewritten, hashes and all): still refused.
    std::fs::write(&path, limits(2)).expect("rewrite");
    usher.signal("HUP");
    wait_for_log(&usher, "configuration reloaded").await;
    assert_eq!(attempt().await.status(), 429, "a reload is not a fresh allowance");

    // New limits: new buckets.
    std::fs::write(&path, limits(3)).expect("rewrite");
    usher.signal("HUP");
    wait_for_logged(&usher, "configuration reloaded", 2).await;
    assert_eq!(attempt().await.status(), 401, "new limits, new buckets");
}

/// Threads of a running process, from `/proc`.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("proc tasks")
        .count()
}

/// `server.worker_threads = 1` serves from a single-threaded runtime: one
/// thread in the process while it proxies, and sign-in (Argon2 on a
/// blocking thread) still works. A larger number gets that many workers.
#[tokio::test]
async fn worker_threads_choose_the_runtime() {
    let up = spawn_echo_upstream().await;
    let hash = usher::users::hash_password("pw").expect("hash");
    let text = |threads: usize| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nworker_threads = {threads}\n\
             [upstream]\nurl = \"http://{}\"\n[session]\nsecure = false\n[access]\ndefault = \"authenticated\"\n\
             [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n",
            up.addr
        )
    };

    let single = Usher::start(&["run"], Some(&text(1)));
    let c = jar();
    for _ in 0..3 {
        let res = c.get(single.url("/x")).send().await.expect("send");
        assert_eq!(res.status(), 401);
    }
    assert_eq!(threads_of(single.child.id()), 1, "one thread while serving");
    let base = single.url("");
    assert_eq!(
        crate::login::sign_in_at(&c, &base, "alice", "pw", "/").await.status(),
        303
    );
    let res = c.get(single.url("/x")).send().await.expect("send");
    assert_eq!(res.status(), 200, "signed in through the single-threaded runtime");
    assert!(single.log_text().contains("threads=1"), "{}", single.log_text());
    drop(single);

    let three = Usher::start(&["run"], Some(&text(3)));
    let res = jar().get(three.url("/x")).send().await.expect("send");
    assert_eq!(res.status(), 401);
    assert!(threads_of(three.child.id()) >= 4, "the main thread and three workers");
    assert!(three.log_text().contains("threads=3"), "{}", three.log_text());
}

/// Fault review of 9e8e3e0: every reload built a fresh upstream pool (31
/// reloads opened 2,048 connections) and silently ignored `[server]`
/// changes. Now the pool is kept when the upstream is made the same way,
/// and the keys that need a restart are named, compared with what the
/// listener was started with.
#[tokio::test]
async fn reloads_keep_the_upstream_pool_and_name_what_needs_a_restart() {
    let up = spawn_echo_upstream().await;
    let usher = Usher::start(&["run"], Some(&config(up.addr, "")));
    let path = usher.config_path.clone().expect("config path");
    let c = crate::support::client();
    let get = || c.get(usher.url("/x")).send();
    assert_eq!(get().await.expect("send").status(), 200);
    for n in 1..=5 {
        usher.signal("HUP");
        wait_for_logged(&usher, "configuration reloaded", n).await;
        assert_eq!(get().await.expect("send").status(), 200);
    }
    assert_eq!(
        up.connections(),
        1,
        "one pooled upstream connection across five reloads"
    );
    let changed = config(up.addr, "").replace(
        "[server]\nlisten = \"127.0.0.1:0\"\n",
        "[server]\nlisten = \"127.0.0.1:0\"\nidle_timeout = \"7s\"\nmax_connections = 9\n",
    );
    std::fs::write(&path, changed).expect("rewrite");
    usher.signal("HUP");
    wait_for_logged(&usher, "configuration reloaded", 6).await;
    // listen = 127.0.0.1:0 is what it was started with: not reported.
    let log = usher.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("need a restart"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("server.idle_timeout") && line.contains("server.max_connections"),
        "{line}"
    );
    assert!(!line.contains("server.listen"), "{line}");
}
