//! Upstream down → 502, upstream silent → 504, each as JSON for API clients
//! and as a short page for browsers.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::support::{client, spawn_proxy};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// An address where nothing listens: bind port 0, then close it.
async fn dead_address() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    addr
}

#[tokio::test]
async fn upstream_down_is_502() {
    let proxy = spawn_proxy(dead_address().await, "").await;
    let res = client().get(proxy.url("/api")).send().await.expect("send");
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: serde_json::Value = res.json().await.expect("json");
    assert_eq!(doc["error"], "bad_gateway");

    let res = client()
        .get(proxy.url("/page"))
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 502);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(res.text().await.expect("text").contains("502"));
    proxy.stop().await;
}

#[tokio::test]
async fn silent_upstream_is_504() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let proxy = spawn_proxy(addr, "timeout = \"1s\"\n").await;
    let started = Instant::now();
    let res = client().post(proxy.url("/slow")).body("x").send().await.expect("send");
    assert_eq!(res.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    let doc: serde_json::Value = res.json().await.expect("json");
    assert_eq!(doc["error"], "gateway_timeout");

    let res = client()
        .get(proxy.url("/slow"))
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 504);
    assert!(res.text().await.expect("text").contains("<title>504"));
    proxy.stop().await;
    hold.abort();
}

#[tokio::test]
async fn upstream_closing_without_answer_is_502() {
    let rude = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = rude.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = rude.accept().await {
            drop(s);
        }
    });
    let proxy = spawn_proxy(addr, "").await;
    let res = client().get(proxy.url("/")).send().await.expect("send");
    assert_eq!(res.status(), 502);
    proxy.stop().await;
    task.abort();
}
