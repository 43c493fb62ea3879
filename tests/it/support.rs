//! Test support: an echo upstream that reports what it received, the proxy
//! in-process on port 0, and raw-socket helpers.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running in-process usher.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The admin listener, when started with [`spawn_proxy_admin`].
    pub admin: Option<SocketAddr>,
    /// Sends a configuration to reload (with [`spawn_proxy_admin`]).
    pub reload: Option<tokio::sync::mpsc::Sender<usher::Config>>,
}

impl Proxy {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Shut down and join, failing the test if the server failed or panicked.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("proxy task panicked")
                .expect("proxy returned an error");
        }
    }
}

/// The session key tests sign with.
pub const TEST_KEY: &str = "test-key-0123456789abcdef0123456789";

/// Start usher in-process with `extra` TOML appended after an `[upstream]`
/// section pointing at `upstream`. Unless `extra` has its own `[session]`,
/// one is added with [`TEST_KEY`] and `secure = false` (plain-HTTP tests);
/// unless it has its own `[access]`, everyone may pass.
pub async fn spawn_proxy(upstream: SocketAddr, extra: &str) -> Proxy {
    let session = if extra.contains("[session]") {
        String::new()
    } else {
        session_toml("")
    };
    let access = if extra.contains("[access]") {
        ""
    } else {
        "[access]\ndefault = \"anyone\"\n"
    };
    let text = format!("[upstream]\nurl = \"http://{upstream}\"\n{extra}\n{session}\n{access}");
    spawn_proxy_toml(&text).await
}

/// A `[session]` section with the test key, plain-HTTP cookies and `extra` keys.
pub fn session_toml(extra: &str) -> String {
    format!("[session]\nsecret_keys = [\"{TEST_KEY}\"]\nsecure = false\n{extra}\n")
}

/// Start usher in-process from complete TOML text (its `listen` is ignored).
/// Files it names (keys, htpasswd) are read from disk.
pub async fn spawn_proxy_toml(text: &str) -> Proxy {
    spawn_proxy_config(parse_config(text)).await
}

/// Parse complete TOML text as `usher run` would (files it names are read
/// from disk); panics with the problem when it is invalid.
pub fn parse_config(text: &str) -> usher::Config {
    let env = usher::config::Environment {
        secret_keys: None,
        read_file: &usher::config::read_file,
        var: &|_| None,
    };
    usher::Config::from_toml_str_with(text, &env).unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"))
}

/// Start usher in-process from a parsed configuration (its `listen` is
/// ignored), for tests that keep a handle on part of it (the users' counters).
pub async fn spawn_proxy_config(config: usher::Config) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    spawn_proxy_on(listener, config)
}

/// Start usher in-process on a listener bound already (so its address can
/// be written into the configuration, e.g. a provider's redirect URL).
pub fn spawn_proxy_on(listener: TcpListener, config: usher::Config) -> Proxy {
    let addr = listener.local_addr().expect("proxy addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(usher::run(config, listener, async move {
        let _ = rx.await;
    }));
    Proxy {
        addr,
        stop: Some(tx),
        task: Some(task),
        admin: None,
        reload: None,
    }
}

/// Start usher in-process with its admin listener and a reload channel,
/// as `usher run` serves (SIGHUP is a send on [`Proxy::reload`]).
pub async fn spawn_proxy_admin(config: usher::Config) -> Proxy {
    let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let (addr, admin_addr) = (proxy.local_addr().expect("addr"), admin.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    let listeners = usher::Listeners {
        proxy,
        admin: Some(admin),
    };
    let task = tokio::spawn(usher::serve(
        config,
        listeners,
        async move {
            let _ = rx.await;
        },
        reloads,
    ));
    Proxy {
        addr,
        stop: Some(tx),
        task: Some(task),
        admin: Some(admin_addr),
        reload: Some(reload),
    }
}

/// An upstream server bound on port 0 that runs `handler` for each request.
pub struct Upstream {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections that have ended so far (either side closed them).
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The echo upstream. For every request it answers JSON describing what it
/// received: method, target, version, headers (in order, repeated names
/// kept), body length and, below 64 KiB, the body text. Special paths:
/// `/download/N` streams N bytes; `/hop` answers with hop-by-hop headers;
/// `/status/N` answers status N.
pub async fn spawn_echo_upstream() -> Upstream {
    spawn_upstream(|req| async move { Ok::<_, Infallible>(echo(req).await) }).await
}

/// An upstream that answers every request with 200 and `body` after
/// `delay`: a request kept in flight.
pub async fn spawn_slow_upstream(delay: Duration, body: &'static str) -> Upstream {
    spawn_upstream(move |_req| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, Infallible>(Response::new(full(body)))
    })
    .await
}

/// Spawn an upstream with any hyper service function.
pub async fn spawn_upstream<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<UpBody>, Infallible>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let ended = Arc::clone(&closed);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let ended = Arc::clone(&ended);
            tokio::spawn(async move {
                let svc = service_fn(handler);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
                ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Upstream {
        addr,
        accepted,
        closed,
        task,
    }
}

/// Body type of test upstream responses.
pub type UpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> UpBody {
    Full::new(bytes.into()).boxed()
}

async fn echo(req: Request<Incoming>) -> Response<UpBody> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/download/").and_then(|n| n.parse::<usize>().ok()) {
        return Response::new(zeros(n));
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(|n| n.parse::<u16>().ok()) {
        let mut res = Response::new(full(""));
        *res.status_mut() = http::StatusCode::from_u16(code).expect("status");
        return res;
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let (len, text) = drain(body).await;
    let doc = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": len,
        "body": text,
    });
    let mut res = Response::new(full(doc.to_string()));
    res.headers_mut()
        .insert("content-type", "application/json".parse().expect("value"));
    // `?write=JSON` answers with that session write; `?status=N` with that status.
    for (k, v) in query_pairs(&query) {
        match k.as_str() {
            "write" => {
                res.headers_mut()
                    .append("usher-session", v.parse().expect("write value"));
            }
            "status" => *res.status_mut() = http::StatusCode::from_u16(v.parse().expect("n")).expect("status"),
            _ => {}
        }
    }
    if path == "/hop" {
        let h = res.headers_mut();
        h.insert("connection", "x-upstream-private, keep-alive".parse().expect("value"));
        h.insert("x-upstream-private", "secret".parse().expect("value"));
        h.insert("keep-alive", "timeout=5".parse().expect("value"));
        h.insert("x-upstream-public", "fine".parse().expect("value"));
    }
    res
}

/// Read a body to the end without keeping it; keep the text when small.
async fn drain(mut body: Incoming) -> (u64, Option<String>) {
    let mut len = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if kept.len() < 64 * 1024 {
                kept.extend_from_slice(&data);
            }
        }
    }
    let text = (len < 64 * 1024).then(|| String::from_utf8_lossy(&kept).into_owned());
    (len, text)
}

/// A body of `n` zero bytes produced in 64 KiB chunks, never held whole.
pub fn zeros(n: usize) -> UpBody {
    let chunk = Bytes::from(vec![0u8; 64 * 1024]);
    let frames = futures_util::stream::unfold(n, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let take = left.min(chunk.len());
            Some((Ok::<_, Infallible>(Frame::data(chunk.slice(..take))), left - take))
        }
    });
    BodyExt::boxed(StreamBody::new(frames))
}

/// What the echo upstream reported.
pub struct Seen(pub Value);

impl Seen {
    /// Every value the upstream received for header `name` (any case).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .expect("headers array")
            .iter()
            .filter(|pair| pair[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(|pair| pair[1].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The single value of header `name`, failing if repeated.
    pub fn one(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(all.len() <= 1, "header {name} seen {} times: {all:?}", all.len());
        all.into_iter().next()
    }

    /// The request target the upstream received.
    pub fn uri(&self) -> &str {
        self.0["uri"].as_str().expect("uri")
    }

    /// Every header name the upstream received, lower-cased.
    pub fn names(&self) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .expect("headers array")
            .iter()
            .filter_map(|pair| pair[0].as_str().map(str::to_ascii_lowercase))
            .collect()
    }
}

/// The `X-Forwarded-User` the echo upstream saw for a GET of `url` with
/// this `Cookie` header.
pub async fn forwarded_user(client: &reqwest::Client, url: &str, cookie: &str) -> Option<String> {
    let res = client.get(url).header("cookie", cookie).send().await.expect("send");
    Seen(res.json().await.expect("json")).one("x-forwarded-user")
}

/// A plain HTTP client (no cookie store, no redirects).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Send `raw` bytes on a fresh connection and read the response until the
/// server closes or `limit` passes. Returns what was read as text.
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8], limit: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status code of the first response in `text`, or 0 if none.
pub fn status_of(text: &str) -> u16 {
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The JSON body of the first response in `text`.
pub fn json_body_of(text: &str) -> Value {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Send a raw GET for `target` with `Connection: close` and the extra header lines.
pub async fn raw_get(addr: SocketAddr, target: &str, extra_headers: &str) -> String {
    let req = format!("GET {target} HTTP/1.1\r\nHost: app.test\r\n{extra_headers}Connection: close\r\n\r\n");
    raw_exchange(addr, req.as_bytes(), Duration::from_secs(10)).await
}

/// `a=1&b=%7B%7D` → decoded pairs.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned();
            (k.to_string(), v)
        })
        .collect()
}

/// `?write=` query for a session write of `json`.
pub fn write_query(json: &str) -> String {
    format!(
        "write={}",
        percent_encoding::utf8_percent_encode(json, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A fresh directory under the system temp dir, removed with everything in
/// it on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `usher-TAG-PID-N`, created.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("usher-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real `usher` binary, started on port 0; killed on drop.
pub struct Usher {
    pub child: std::process::Child,
    /// `host:port` it reported listening on.
    pub addr: String,
    /// The admin listener's `host:port`, when `[admin]` was configured.
    pub admin: Option<String>,
    /// Everything it has logged so far (stderr lines).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The config file it was started with, for rewriting before SIGHUP.
    pub config_path: Option<std::path::PathBuf>,
    _dir: Option<TempDir>,
}

impl Drop for Usher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Usher {
    /// Run `usher ARGS [-c FILE]` with `config` written to a temporary file,
    /// and wait for the "usher listening" log line (and "admin listening"
    /// when the config has `[admin]`) to learn the addresses.
    pub fn start(args: &[&str], config: Option<&str>) -> Usher {
        Usher::start_with_env(args, config, &[])
    }

    /// [`Usher::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Usher {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_usher"));
        cmd.args(args);
        let mut config_path = None;
        let mut dir = None;
        if let Some(text) = config {
            let tmp = TempDir::new("bin");
            let path = tmp.join("usher.toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("-c").arg(&path);
            config_path = Some(path);
            dir = Some(tmp);
        }
        cmd.env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("USHER_SECRET_KEYS", TEST_KEY);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn usher");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let want_admin = config.is_some_and(|t| t.contains("[admin]"));
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() || (want_admin && admin.is_none()) {
            let line = lines.next().expect("usher exited before listening").expect("read log");
            // Human lines say `listen=ADDR`, JSON lines `"listen":"ADDR"`.
            let found = line
                .split("listen=")
                .nth(1)
                .or_else(|| line.split("\"listen\":").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .map(|a| a.trim_matches('"').split('"').next().unwrap_or("").to_string());
            if line.contains("usher listening") {
                addr = found;
            } else if line.contains("admin listening") {
                admin = found;
            }
            log.lock().expect("log").push(line);
        }
        let sink = std::sync::Arc::clone(&log);
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        Usher {
            child,
            addr: addr.expect("address"),
            admin,
            log,
            config_path,
            _dir: dir,
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Send a signal by name (`TERM`, `HUP`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The log so far as one string.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

/// Read from `socket` into `buf` until it holds a whole request head (up to
/// the blank line); take the head off `buf` and return it as text. Bytes
/// after it (a body, the next request) stay in `buf`. `None` when the peer
/// closes or the read fails first.
pub async fn read_request_head(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    Some(head)
}
