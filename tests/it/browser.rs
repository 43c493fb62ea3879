//! A real headless Chromium signs in through usher's sign-in page and
//! reaches the upstream. Driven over the DevTools protocol with the
//! WebSocket client the suite already uses; screenshots of the sign-in page
//! and of the upstream's answer are kept in `target/test-artifacts/`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{TempDir, session_toml, spawn_echo_upstream, spawn_proxy};

pub struct Chromium {
    child: Child,
    pub ws_url: String,
    _profile: TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn launch() -> Chromium {
    let profile = TempDir::new("chromium");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--window-size=420,760",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium (Debian package) must be installed; scripts/test.sh installs it");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let ws_url = loop {
        let line = lines
            .next()
            .expect("chromium exited before DevTools started")
            .expect("read");
        if let Some(url) = line.strip_prefix("DevTools listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Chromium {
        child,
        ws_url,
        _profile: profile,
    }
}

/// A minimal DevTools protocol client: one page session.
pub struct Cdp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
}

impl Cdp {
    /// A new page in `browser` opened at `url`, attached.
    pub async fn open(browser: &Chromium, url: &str) -> Cdp {
        let (ws, _) = tokio_tungstenite::connect_async(browser.ws_url.as_str())
            .await
            .expect("DevTools socket");
        let mut cdp = Cdp {
            ws,
            next_id: 0,
            session: None,
        };
        let target = cdp.call("Target.createTarget", json!({"url": url})).await;
        let attached = cdp
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        cdp.session = attached["sessionId"].as_str().map(String::from);
        cdp.call("Runtime.enable", json!({})).await;
        cdp
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await.expect("send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("DevTools answered in time")
                .expect("open")
                .expect("frame");
            let Ok(text) = frame.into_text() else { continue };
            let reply: Value = serde_json::from_str(text.as_str()).expect("json");
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Wait until `location.pathname` is `path` (page loads are async).
    pub async fn wait_for_path(&mut self, path: &str) {
        for _ in 0..100 {
            let ready = self.eval("document.readyState").await;
            if self.eval("location.pathname").await == json!(path) && ready == json!("complete") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never reached {path}; it is at {}",
            self.eval("location.href").await
        );
    }

    pub async fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("png");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("artifact dir");
        std::fs::write(dir.join(name), png).expect("write screenshot");
    }
}

#[tokio::test]
async fn chromium_signs_in_through_the_page_and_reaches_the_upstream() {
    let up = spawn_echo_upstream().await;
    let hash = usher::users::hash_password("correct horse").expect("hash");
    let config = format!(
        "{}\n[login]\napp_name = \"Example Corp\"\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\ngroups = [\"staff\"]\n\
         [access]\ndefault = \"authenticated\"\n",
        session_toml("")
    );
    let proxy = spawn_proxy(up.addr, &config).await;
    let browser = launch();
    let mut cdp = Cdp::open(&browser, &proxy.url("/private/page?from=browser")).await;

    cdp.wait_for_path("/.usher/login").await;
    assert_eq!(cdp.eval("document.title").await, json!("Sign in · Example Corp"));
    cdp.screenshot("login-page.png").await;
    cdp.eval(
        "document.getElementById('username').value = 'alice';\
         document.getElementById('password').value = 'correct horse';\
         document.querySelector('button[type=submit]').click(); true",
    )
    .await;

    cdp.wait_for_path("/private/page").await;
    assert_eq!(
        cdp.eval("location.search").await,
        json!("?from=browser"),
        "back where the user started"
    );
    let body = cdp.eval("document.body.innerText").await;
    let seen: Value = serde_json::from_str(body.as_str().expect("text")).expect("the echo upstream's JSON");
    let user = crate::support::Seen(seen).one("x-forwarded-user");
    assert_eq!(user.as_deref(), Some("alice"));
    cdp.screenshot("signed-in-upstream.png").await;
    proxy.stop().await;
}
