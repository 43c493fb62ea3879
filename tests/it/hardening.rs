//! Regressions for the attack review of 9e8e3e0 (issue 15), over real
//! sockets, in front of real Flask and Express apps where routing decides:
//! lower-case methods, case-folded paths, unrequested protocol switches,
//! idle and stalled HTTP/2, clients that stop reading, the per-connection
//! upstream bound, request hygiene (Host, routing overrides, the session
//! write header), request ids, malformed client bodies, the `__Host-`
//! cookie default and planted form cookies. Sign-in limits behind a proxy
//! are in `login.rs`; forward-auth behind nginx in `front_proxies.rs`.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Seen, TEST_KEY, full, json_body_of, raw_exchange, raw_get, session_toml, spawn_echo_upstream, spawn_proxy,
    spawn_slow_upstream, spawn_upstream, status_of,
};

/// A real app in a child process that prints `listening on http://ADDR`
/// first; killed on drop.
pub struct ChildApp {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Drop for ChildApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- app log ----\n{}", self.log.lock().expect("log"));
        }
    }
}

impl ChildApp {
    pub fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> ChildApp {
        assert!(
            program.exists(),
            "{} missing: scripts/test.sh installs it",
            program.display()
        );
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
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
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{} did not start:\n{}", program.display(), log.lock().expect("log")));
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        ChildApp { child, addr, log }
    }

    /// Everything it printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/apps/routes_app.py` (Flask, Werkzeug's routing).
pub fn flask_routes() -> ChildApp {
    let python = root().join("target/test-venv/bin/python");
    let script = root().join("tests/apps/routes_app.py");
    ChildApp::start(
        &python,
        &["-u", script.to_str().expect("utf-8"), "0"],
        &[("PYTHONDONTWRITEBYTECODE", "1")],
    )
}

/// `tests/apps/express_app.js` (Express 4, installed under target/test-node).
fn express() -> ChildApp {
    let modules = root().join("target/test-node/node_modules");
    assert!(
        modules.join("express").exists(),
        "express missing: scripts/test.sh installs it"
    );
    let script = root().join("tests/apps/express_app.js");
    let node = PathBuf::from("/usr/bin/node");
    ChildApp::start(
        &node,
        &[script.to_str().expect("utf-8")],
        &[("NODE_PATH", modules.to_str().expect("utf-8"))],
    )
}

fn body_of(text: &str) -> Value {
    json_body_of(text)
}

/// Attack review: a rule for `DELETE` did not match `delete`, and Flask
/// upper-cases the method and runs the delete.
#[tokio::test]
async fn lower_case_methods_are_refused_before_flask_upper_cases_them() {
    let app = flask_routes();
    let rules = "[access]\ndefault = \"anyone\"\n\
                 [[access.rules]]\npath = \"/admin/**\"\nmethods = [\"DELETE\"]\nallow = \"nobody\"\n";
    let proxy = spawn_proxy(app.addr, rules).await;
    // Flask itself runs a lower-case method as the upper-case one.
    let direct = raw_exchange(
        app.addr,
        b"delete /admin/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(body_of(&direct)["method"], "DELETE", "{direct}");
    for method in ["delete", "Delete", "dElEtE", "get"] {
        let req = format!("{method} /admin/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let text = raw_exchange(proxy.addr, req.as_bytes(), WAIT).await;
        assert_eq!(status_of(&text), 400, "{method}: {text}");
    }
    let text = raw_exchange(
        proxy.addr,
        b"DELETE /admin/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(status_of(&text), 403, "{text}");
    let text = raw_get(proxy.addr, "/admin/x", "").await;
    assert_eq!(
        body_of(&text)["view"],
        "admin",
        "GET is not covered by the rule: {text}"
    );
    proxy.stop().await;
}

const WAIT: Duration = Duration::from_secs(10);

/// Attack review: `/ADMIN/x` passed a `/admin/**` rule and Express routed it
/// to its admin router.
#[tokio::test]
async fn upper_case_paths_cannot_reach_an_express_admin_router() {
    let app = express();
    let rules = "[access]\ndefault = \"anyone\"\n[[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n";
    let proxy = spawn_proxy(app.addr, rules).await;
    let direct = raw_get(app.addr, "/ADMIN/x", "").await;
    assert_eq!(body_of(&direct)["view"], "admin", "Express ignores case: {direct}");
    for path in ["/ADMIN/x", "/Admin/x", "/aDmIn", "/admin/x", "/ADMIN;x/y"] {
        let text = raw_get(proxy.addr, path, "").await;
        assert_eq!(status_of(&text), 401, "{path}: {text}");
    }
    let text = raw_get(proxy.addr, "/other", "").await;
    assert_eq!(body_of(&text)["view"], "other", "{text}");
    proxy.stop().await;
}

/// An upstream that answers every request with a `101` naming `protocol`,
/// and reports what it received in an `x-seen-upgrade` line first.
async fn switching_upstream(protocol: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let saw = head
                    .lines()
                    .find(|l| l.starts_with("upgrade:"))
                    .unwrap_or("upgrade: none")
                    .to_string();
                let res = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: {protocol}\r\nX-Saw: {}\r\n\r\n",
                    saw.trim_start_matches("upgrade:").trim()
                );
                let _ = s.write_all(res.as_bytes()).await;
                let _ = s.read(&mut buf).await;
            });
        }
    });
    (addr, task)
}

/// Attack review: any 101 from the backend opened a raw tunnel.
#[tokio::test]
async fn only_a_requested_permitted_upgrade_becomes_a_tunnel() {
    let (addr, task) = switching_upstream("websocket").await;
    let proxy = spawn_proxy(addr, "").await;
    let ask =
        |upgrade: &str| format!("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: {upgrade}\r\n\r\n");
    // Not asked for: the backend's 101 is refused.
    let text = raw_exchange(
        proxy.addr,
        b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status_of(&text), 502, "{text}");
    // h2c is never forwarded: the backend sees no Upgrade, and its 101 is refused.
    let text = raw_exchange(proxy.addr, ask("h2c").as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(status_of(&text), 502, "{text}");
    // Asked for websocket and given websocket: tunnelled.
    let text = raw_exchange(proxy.addr, ask("websocket").as_bytes(), Duration::from_secs(1)).await;
    assert_eq!(status_of(&text), 101, "{text}");
    assert!(text.to_ascii_lowercase().contains("x-saw: websocket"), "{text}");
    proxy.stop().await;
    task.abort();
    // Asked for websocket, switched to something else: refused.
    let (addr, task) = switching_upstream("x-other").await;
    let proxy = spawn_proxy(addr, "").await;
    let text = raw_exchange(proxy.addr, ask("websocket").as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(status_of(&text), 502, "{text}");
    proxy.stop().await;
    task.abort();
}

/// An HTTP/2 client connection (prior knowledge) to `addr`, driven by its
/// own task, which ends when the server closes the connection.
async fn h2_client(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    (send, tokio::spawn(conn))
}

/// `GET path` with the absolute URI HTTP/2 wants.
fn get_request(addr: SocketAddr, path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .body(Empty::<Bytes>::new())
        .expect("request")
}

/// Wait (at most 15 s) until one of `up`'s connections has ended: usher
/// let go of it.
async fn upstream_connection_released(up: &crate::support::Upstream) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while up.closed() == 0 {
        assert!(Instant::now() < deadline, "the upstream connection was never released");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The HTTP/2 preface and an empty SETTINGS frame.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Read until the peer closes; how long that took, or `None` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(tokio::time::Instant::from_std(started + limit), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Attack review: clients that send only the preface and SETTINGS held
/// `max_connections` forever.
#[tokio::test]
async fn idle_http2_connections_are_closed() {
    let up = spawn_echo_upstream().await;
    let server = "[server]\nheader_read_timeout = \"1s\"\nidle_timeout = \"1s\"\nmax_connections = 3\n";
    let proxy = spawn_proxy(up.addr, server).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        s.write_all(H2_HELLO).await.expect("hello");
        idle.push(s);
    }
    for s in &mut idle {
        let took = closed_within(s, Duration::from_secs(8)).await;
        assert!(took.is_some(), "a stream-less HTTP/2 connection must be closed");
    }
    // The slots are free again: a real HTTP/2 client is served, and its
    // connection closes once it has been idle for idle_timeout.
    let (mut send, conn) = h2_client(proxy.addr).await;
    let req = get_request(proxy.addr, "/x");
    let res = send.send_request(req).await.expect("response");
    assert_eq!(res.status(), 200);
    let _ = res.into_body().collect().await;
    let ended = tokio::time::timeout(Duration::from_secs(8), conn).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection is closed after idle_timeout");
    proxy.stop().await;
}

/// Attack review: a client that stops reading pinned an upstream
/// connection forever (no send timeout).
#[tokio::test]
async fn a_client_that_stops_reading_frees_the_upstream_connection() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[server]\nwrite_timeout = \"1s\"\n").await;
    let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(b"GET /download/104857600 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("request");
    // Never read. The proxy's writes stall, and after write_timeout it
    // closes both sides.
    upstream_connection_released(&up).await;
    drop(s);
    proxy.stop().await;
}

/// Attack review: one HTTP/2 connection opened 200 upstream connections.
#[tokio::test]
async fn one_http2_connection_holds_at_most_max_per_client_upstream_connections() {
    let up = spawn_slow_upstream(Duration::from_millis(300), "ok").await;
    let proxy = spawn_proxy(up.addr, "max_per_client = 3\n").await;
    let (send, _conn) = h2_client(proxy.addr).await;
    let requests = (0..12).map(|i| {
        let mut send = send.clone();
        let req = get_request(proxy.addr, &format!("/slow/{i}"));
        async move {
            let res = send.send_request(req).await.expect("response");
            let status = res.status();
            let _ = res.into_body().collect().await;
            status
        }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(up.connections() <= 3, "{} upstream connections", up.connections());
    proxy.stop().await;
}

/// SPEC §3.1/§3.2: two Host headers or none on HTTP/1.1 is 400; routing
/// overrides and `_` framing headers never reach the backend; the session
/// write header never reaches the client when writes are off.
#[tokio::test]
async fn request_hygiene() {
    let up = spawn_upstream(|_req| async {
        let mut res = http::Response::new(full("ok"));
        res.headers_mut()
            .insert("usher-session", http::HeaderValue::from_static("{\"user\":\"x\"}"));
        Ok::<_, Infallible>(res)
    })
    .await;
    let proxy = spawn_proxy(up.addr, "").await;
    let text = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(status_of(&text), 400, "{text}");
    let text = raw_exchange(proxy.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", WAIT).await;
    assert_eq!(status_of(&text), 400, "{text}");
    let text = raw_exchange(proxy.addr, b"GET / HTTP/1.0\r\n\r\n", WAIT).await;
    assert_eq!(status_of(&text), 200, "HTTP/1.0 needs no Host: {text}");
    assert!(
        !text.to_ascii_lowercase().contains("usher-session"),
        "Usher-Session leaked: {text}"
    );
    proxy.stop().await;

    let echo = spawn_echo_upstream().await;
    let proxy = spawn_proxy(echo.addr, "").await;
    let sneaky = "X-HTTP-Method-Override: DELETE\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n\
                  X_Original_URL: /admin\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\nX-Kept: 1\r\n";
    let text = raw_get(proxy.addr, "/x", sneaky).await;
    let seen = Seen(json_body_of(&text));
    for name in seen.names() {
        let folded = name.to_ascii_lowercase().replace('_', "-");
        assert!(
            ![
                "x-http-method-override",
                "x-original-url",
                "x-rewrite-url",
                "transfer-encoding",
                "content-length"
            ]
            .contains(&folded.as_str()),
            "{name} reached the backend"
        );
    }
    assert_eq!(seen.one("x-kept").as_deref(), Some("1"));
    proxy.stop().await;
}

/// SPEC §3.2: `X-Request-Id` is kept from a trusted proxy, else made;
/// forwarded and returned.
#[tokio::test]
async fn request_ids_are_made_forwarded_and_returned() {
    let echo = spawn_echo_upstream().await;
    let proxy = spawn_proxy(echo.addr, "").await;
    let text = raw_get(proxy.addr, "/x", "X-Request-Id: client-chosen\r\n").await;
    let seen = Seen(json_body_of(&text));
    let forwarded = seen.one("x-request-id").expect("forwarded");
    assert_ne!(forwarded, "client-chosen", "an untrusted client's id is replaced");
    assert!(text.contains(&format!("x-request-id: {forwarded}")), "returned: {text}");
    proxy.stop().await;
    let proxy = spawn_proxy(echo.addr, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    let text = raw_get(proxy.addr, "/x", "X-Request-Id: edge-42\r\n").await;
    assert_eq!(
        Seen(json_body_of(&text)).one("x-request-id").as_deref(),
        Some("edge-42")
    );
    assert!(text.contains("x-request-id: edge-42"), "{text}");
    proxy.stop().await;
}

/// Attack review: a client's malformed chunked body was answered 502 and
/// logged as the upstream's failure.
#[tokio::test]
async fn a_malformed_client_body_is_the_clients_fault() {
    let echo = spawn_echo_upstream().await;
    let proxy = spawn_proxy(echo.addr, "").await;
    let req = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n";
    let text = raw_exchange(proxy.addr, req, Duration::from_secs(3)).await;
    assert_eq!(status_of(&text), 400, "{text}");
    proxy.stop().await;
}

/// The default cookie is `__Host-usher_session` when it can be; a session
/// under the old default name still signs the user in and is moved over.
#[tokio::test]
async fn the_host_prefixed_default_reads_the_old_name_and_moves_it() {
    let echo = spawn_echo_upstream().await;
    let session = format!("[session]\nsecret_keys = [\"{TEST_KEY}\"]\n");
    let rules = "[access]\ndefault = \"authenticated\"\n";
    let proxy = spawn_proxy(echo.addr, &format!("{session}{rules}")).await;
    let keys = usher::session::Keys::new(vec![
        usher::session::Key::new(TEST_KEY.as_bytes().to_vec(), 32).expect("key"),
    ])
    .expect("keys");
    let payload = serde_json::json!({"user": "alice", "auth_time": usher::service::unix_now()});
    let now = usher::service::unix_now();
    let old = usher::session::seal(
        "usher_session",
        payload.as_object().expect("map"),
        now - 86_400,
        keys.signing(),
    );
    let text = raw_get(
        proxy.addr,
        "/x",
        &format!("Accept: application/json\r\nCookie: usher_session={old}\r\n"),
    )
    .await;
    assert_eq!(status_of(&text), 200, "the old cookie still signs in: {text}");
    let seen = Seen(json_body_of(&text));
    assert_eq!(seen.one("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(seen.one("cookie"), None, "neither cookie reaches the app");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("set-cookie: __host-usher_session=v"),
        "re-issued under the new name: {text}"
    );
    assert!(
        lower.contains("set-cookie: usher_session=;"),
        "the old one cleared: {text}"
    );
    proxy.stop().await;
}

/// Attack review: the sign-in page signed a token for a form cookie the
/// client supplied (one planted from a sibling subdomain).
#[tokio::test]
async fn the_sign_in_page_never_signs_a_planted_form_cookie() {
    let echo = spawn_echo_upstream().await;
    let proxy = spawn_proxy(echo.addr, &session_toml("")).await;
    let now = usher::service::unix_now();
    let planted = format!("Cookie: usher_session_csrf={now}.attacker-chosen\r\n");
    let text = raw_get(proxy.addr, "/.usher/login", &planted).await;
    assert_eq!(status_of(&text), 200, "{text}");
    let set = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: usher_session_csrf="))
        .unwrap_or_else(|| panic!("a fresh form cookie replaces the planted one: {text}"));
    assert!(!set.contains("attacker-chosen"), "{set}");
    proxy.stop().await;
}

/// Attack review of 9e8e3e0: a sign-in user name with a newline or escape
/// codes forged log lines in the human format. The real binary, its stderr.
#[tokio::test]
async fn user_names_cannot_forge_log_lines() {
    let up = spawn_echo_upstream().await;
    let hash = usher::users::hash_password("pw").expect("hash");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://{}\"\n[session]\nsecure = false\n\
         [access]\ndefault = \"anyone\"\n[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n",
        up.addr
    );
    let usher = crate::support::Usher::start(&["run"], Some(&config));
    let c = crate::login::jar();
    let evil = "mallory\n2026-12-02T00:00:00.000000Z  INFO usher::auth: signed in user=admin\u{1b}[2J";
    let res = crate::login::sign_in_at(&c, &usher.url(""), evil, "x", "/").await;
    assert_eq!(res.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !usher.log_text().contains("sign-in failed") {
        assert!(Instant::now() < deadline, "no sign-in line:\n{}", usher.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = usher.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-02T00:00:00")),
        "forged line:\n{log}"
    );
    assert!(!log.contains('\u{1b}'), "escape code or colour in the log:\n{log}");
    assert!(log.contains("mallory\\n2026"), "the name is logged, escaped:\n{log}");
    let line = log.lines().find(|l| l.contains("sign-in failed")).expect("line");
    assert!(
        line.contains("client=127.0.0.1") && line.contains("request_id="),
        "{line}"
    );
}

/// Attack review of 9e8e3e0: an HTTP/2 stream that opens no window (the
/// client reads the connection but never the stream's body) pinned an
/// upstream connection forever.
#[tokio::test]
async fn an_http2_stream_whose_window_stays_shut_frees_the_upstream_connection() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[server]\nwrite_timeout = \"1s\"\n").await;
    let (mut send, conn) = h2_client(proxy.addr).await;
    let req = get_request(proxy.addr, "/download/104857600");
    // The head arrives; the body is never read, so the window never reopens.
    let res = send.send_request(req).await.expect("response head");
    assert_eq!(res.status(), 200);
    upstream_connection_released(&up).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "the stalled client connection is closed");
    drop(res);
    proxy.stop().await;
}
