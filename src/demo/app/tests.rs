//! The demo app over real loopback sockets, as usher would call it, plus
//! table tests for its pure parts.

use std::net::SocketAddr;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::context::same_origin_path;
use super::page::escape;
use super::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// A running app on an ephemeral port, stopped and joined by [`App::stop`].
struct App {
    addr: SocketAddr,
    client: Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

async fn spawn_app() -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    App {
        addr,
        client,
        stop,
        task,
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("GET")
    }

    async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, FORM)
            .body(body.to_owned());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("POST")
    }

    /// Stop accepting and join the server task, so its panics fail the test.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("serve panicked").expect("serve failed");
    }
}

/// The response is a 303 to `location` writing `patch` to the session.
#[track_caller]
fn assert_write(res: &reqwest::Response, location: &str, patch: &str) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], location);
    assert_eq!(res.headers()["usher-session"], patch);
}

#[tokio::test]
async fn sign_in_writes_the_demo_identity() {
    let app = spawn_app().await;
    let res = app.post("/demo/sign-in", "", &[]).await;
    assert_write(
        &res,
        "/",
        r#"{"user":"demo","email":"demo@example.com","groups":["demo"]}"#,
    );
    app.stop().await;
}

#[tokio::test]
async fn sign_out_clears_the_whole_session() {
    let app = spawn_app().await;
    let res = app.post("/demo/sign-out", "", &[("x-forwarded-user", "demo")]).await;
    assert_write(&res, "/", "null");
    app.stop().await;
}

#[tokio::test]
async fn add_counts_from_the_cart_usher_sent_and_caps() {
    let app = spawn_app().await;
    let cases = [
        (Some(r#"{"apple":2}"#), 3),
        (None, 1),
        (Some(r#"{"apple":99}"#), 99),
        (Some(r#"{"apple":"x"}"#), 1),
    ];
    for (cart, expected) in cases {
        let headers: Vec<_> = cart.map(|c| ("x-usher-cart", c)).into_iter().collect();
        let res = app.post("/shop/add", "item=apple", &headers).await;
        assert_write(&res, "/shop", &format!(r#"{{"cart":{{"apple":{expected}}}}}"#));
    }
    app.stop().await;
}

#[tokio::test]
async fn add_or_remove_of_an_unknown_or_missing_item_is_400() {
    let app = spawn_app().await;
    for (path, body) in [
        ("/shop/add", "item=durian"),
        ("/shop/add", ""),
        ("/shop/remove", "item=%3Cx%3E"),
    ] {
        let res = app.post(path, body, &[]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(res.headers().get("usher-session").is_none());
    }
    app.stop().await;
}

#[tokio::test]
async fn remove_writes_null_for_the_item() {
    let app = spawn_app().await;
    let res = app
        .post("/shop/remove", "item=pear", &[("x-usher-cart", r#"{"pear":4}"#)])
        .await;
    assert_write(&res, "/shop", r#"{"cart":{"pear":null}}"#);
    app.stop().await;
}

#[tokio::test]
async fn prefs_write_the_theme_and_go_back_to_a_same_origin_referer() {
    let app = spawn_app().await;
    let same = app.url("/?x=1");
    let cases = [
        (same.as_str(), "/?x=1"),
        ("http://evil.example/", "/shop"),
        ("//evil.example/", "/shop"),
    ];
    for (referer, back) in cases {
        let res = app.post("/prefs", "theme=dark", &[("referer", referer)]).await;
        assert_write(&res, back, r#"{"prefs":{"theme":"dark"}}"#);
    }
    let res = app.post("/prefs", "theme=light", &[]).await;
    assert_write(&res, "/shop", r#"{"prefs":{"theme":"light"}}"#);
    assert_eq!(
        app.post("/prefs", "theme=neon", &[]).await.status(),
        StatusCode::BAD_REQUEST
    );
    app.stop().await;
}

#[tokio::test]
async fn home_shows_the_signed_in_user_and_escapes_header_values() {
    let app = spawn_app().await;
    let identity = [
        ("x-forwarded-user", "demo"),
        ("x-forwarded-email", "demo@example.com"),
        ("x-forwarded-groups", "demo"),
        ("x-evil", "<script>alert('x')</script>"),
    ];
    let res = app.get("/", &identity).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.expect("body");
    assert!(
        body.contains("Signed in as demo (demo@example.com), groups: demo"),
        "{body}"
    );
    assert!(body.contains(r#"action="/demo/sign-out""#));
    // maud escapes `&`, `<`, `>` and `"`: enough in text and quoted attributes.
    assert!(body.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{body}");
    assert!(!body.contains("<script"), "{body}");
    // usher's headers come first, in their own box, ahead of the rest.
    let injected = body.find("Headers usher injected").expect("injected box");
    let others = body.find("Other request headers").expect("other headers");
    assert!(injected < others, "{body}");
    assert!(
        body[injected..others].contains("<strong>demo@example.com</strong>"),
        "{body}"
    );
    assert!(!body[others..].contains("x-forwarded-user"), "not listed twice: {body}");
    app.stop().await;
}

#[tokio::test]
async fn home_signed_out_offers_the_demo_sign_in() {
    let app = spawn_app().await;
    let body = app.get("/", &[]).await.text().await.expect("body");
    assert!(body.contains("Not signed in"));
    assert!(body.contains(r#"action="/demo/sign-in""#));
    assert!(
        body.contains(r#"href="/.usher/login?rd=%2F""#),
        "links usher's real sign-in page: {body}"
    );
    assert!(
        body.contains("Two ways in"),
        "says what the button does differently: {body}"
    );
    assert!(body.contains(r#"name="viewport""#));
    app.stop().await;
}

#[tokio::test]
async fn whoami_reflects_the_decoded_headers() {
    let app = spawn_app().await;
    let headers = [
        ("x-forwarded-user", "J%C3%B6rg"),
        ("x-forwarded-groups", "admin,a%2Cb"),
        ("x-usher-cart", r#"{"apple":2}"#),
        ("x-usher-prefs", r#"{"theme":"dark"}"#),
    ];
    let res = app.get("/api/whoami", &headers).await;
    assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["user"], "Jörg");
    assert_eq!(doc["email"], Value::Null);
    assert_eq!(doc["groups"], json!(["admin", "a,b"]));
    assert_eq!(doc["cart"], json!({"apple": 2}));
    assert_eq!(doc["prefs"], json!({"theme": "dark"}));
    let seen = doc["headers"].as_array().expect("headers");
    assert!(seen.contains(&json!(["x-forwarded-user", "J%C3%B6rg"])), "{seen:?}");
    app.stop().await;
}

#[tokio::test]
async fn malformed_session_headers_read_as_empty() {
    let app = spawn_app().await;
    let bad = [("x-usher-cart", r#"{"apple":"#), ("x-usher-prefs", "[1,2]")];
    assert_eq!(app.get("/shop", &bad).await.status(), StatusCode::OK);
    let doc: Value = app.get("/api/whoami", &bad).await.json().await.expect("json");
    assert_eq!((&doc["cart"], &doc["prefs"]), (&json!({}), &json!({})));
    let res = app.post("/shop/add", "item=apple", &bad).await;
    assert_write(&res, "/shop", r#"{"cart":{"apple":1}}"#);
    app.stop().await;
}

#[tokio::test]
async fn shop_shows_the_cart_in_the_chosen_theme() {
    let app = spawn_app().await;
    let headers = [
        ("x-usher-cart", r#"{"banana":7,"kiwi":1}"#),
        ("x-usher-prefs", r#"{"theme":"dark"}"#),
    ];
    let body = app.get("/shop", &headers).await.text().await.expect("body");
    assert!(body.contains("<td>banana</td><td>7</td>"), "{body}");
    assert!(!body.contains("kiwi"), "only catalogue items are shown");
    assert!(body.contains(r#"<body class="dark">"#));
    assert!(body.contains(r#"<option value="dark" selected>"#));
    app.stop().await;
}

#[tokio::test]
async fn oversize_form_is_413() {
    let app = spawn_app().await;
    let body = format!("item=apple&pad={}", "x".repeat(FORM_LIMIT));
    let res = app.post("/shop/add", &body, &[]).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.headers().get("usher-session").is_none());
    app.stop().await;
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_is_405() {
    let app = spawn_app().await;
    assert_eq!(app.get("/nope", &[]).await.status(), StatusCode::NOT_FOUND);
    let res = app.get("/demo/sign-in", &[]).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(
        app.post("/shop", "", &[]).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    app.stop().await;
}

#[test]
fn escape_covers_the_five_html_specials() {
    assert_eq!(
        escape(r#"<a href="x">&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(escape("plain ü"), "plain ü");
}

#[track_caller]
fn check_back(referer: &str, expected: Option<&str>) {
    assert_eq!(
        same_origin_path(referer, &["app.test"]).as_deref(),
        expected,
        "{referer}"
    );
}

#[test]
fn referer_is_taken_only_as_a_same_origin_path() {
    check_back("http://app.test/shop?x=1", Some("/shop?x=1"));
    check_back("https://APP.test/", Some("/"));
    check_back("/prefs-page", Some("/prefs-page"));
    check_back("http://other.test/shop", None);
    check_back("http://user@app.test/shop", None);
    check_back("ftp://app.test/shop", None);
    check_back("//other.test/shop", None);
    check_back("/\\other.test", None);
    check_back("javascript:alert(1)", None);
    check_back("shop", None);
}
