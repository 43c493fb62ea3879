//! What the upstream sees: methods, bodies, hosts, hop-by-hop and
//! X-Forwarded-* handling, over HTTP/1.1 and h2c.

use serde_json::Value;

use crate::support::{Seen, client, json_body_of, raw_get, spawn_echo_upstream, spawn_proxy, status_of};

async fn seen(res: reqwest::Response) -> Seen {
    assert_eq!(res.status(), 200, "proxied request failed");
    Seen(res.json::<Value>().await.expect("echo json"))
}

#[tokio::test]
async fn methods_and_bodies_round_trip() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let c = client();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let body = format!("body of {method} \u{2713}");
        let res = c
            .request(m, proxy.url("/echo?x=1&y=%2F"))
            .body(body.clone())
            .send()
            .await
            .expect("send");
        let s = seen(res).await;
        assert_eq!(s.0["method"], method);
        assert_eq!(s.0["body"], body.as_str(), "{method}");
        assert_eq!(s.uri(), "/echo?x=1&y=%2F", "query kept byte for byte");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn head_and_empty_bodies() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let res = client().head(proxy.url("/x")).send().await.expect("send");
    assert_eq!(res.status(), 200);
    let res = client().post(proxy.url("/x")).send().await.expect("send");
    assert_eq!(seen(res).await.0["body_len"], 0);
    proxy.stop().await;
}

#[tokio::test]
async fn h2c_client_is_served() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let res = h2
        .post(proxy.url("/h2?q=1"))
        .body("over h2")
        .send()
        .await
        .expect("send");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let s = seen(res).await;
    assert_eq!(s.0["body"], "over h2");
    assert_eq!(s.0["version"], "HTTP/1.1", "upstream is spoken to in HTTP/1.1");
    assert_eq!(
        s.one("host").as_deref(),
        Some(proxy.addr.to_string().as_str()),
        ":authority becomes Host"
    );
    assert_eq!(
        s.one("x-forwarded-host").as_deref(),
        Some(proxy.addr.to_string().as_str())
    );
    proxy.stop().await;
}

#[tokio::test]
async fn host_is_preserved_by_default_and_rewritten_on_request() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let res = client()
        .get(proxy.url("/"))
        .header("host", "app.example")
        .send()
        .await
        .expect("send");
    let s = seen(res).await;
    assert_eq!(s.one("host").as_deref(), Some("app.example"));
    assert_eq!(s.one("x-forwarded-host").as_deref(), Some("app.example"));
    proxy.stop().await;

    let proxy = spawn_proxy(up.addr, "preserve_host = false\n").await;
    let res = client()
        .get(proxy.url("/"))
        .header("host", "app.example")
        .send()
        .await
        .expect("send");
    let s = seen(res).await;
    assert_eq!(s.one("host"), Some(up.addr.to_string()));
    assert_eq!(s.one("x-forwarded-host").as_deref(), Some("app.example"));
    proxy.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_client_are_replaced() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let extra = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n\
                 X-Forwarded-Port: 443\r\nForwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\n\
                 X_Forwarded_For: 6.6.6.6\r\nX-FORWARDED-FOR: 7.7.7.7\r\n";
    let text = raw_get(proxy.addr, "/xff", extra).await;
    assert_eq!(status_of(&text), 200, "{text}");
    let s = Seen(json_body_of(&text));
    assert_eq!(s.one("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(s.one("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(s.one("x-forwarded-host").as_deref(), Some("app.test"));
    for gone in ["x-forwarded-port", "forwarded", "x-real-ip", "x_forwarded_for"] {
        assert!(s.all(gone).is_empty(), "{gone} reached the upstream");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_extended() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n").await;
    let extra = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example\r\n\
                 X_Forwarded_For: 6.6.6.6\r\n";
    let s = Seen(json_body_of(&raw_get(proxy.addr, "/xff", extra).await));
    assert_eq!(s.one("x-forwarded-for").as_deref(), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(s.one("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(s.one("x-forwarded-host").as_deref(), Some("app.example"));
    assert!(
        s.all("x_forwarded_for").is_empty(),
        "folded spellings are never believed"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn connection_header_cannot_remove_what_usher_adds() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let cases = [
        "Connection: X-Forwarded-For\r\n",
        "Connection: x-forwarded-for, X-Forwarded-Proto, x-forwarded-host\r\n",
        "Connection: keep-alive\r\nConnection: X-Forwarded-For\r\n",
        "Connection: Host\r\n",
    ];
    for extra in cases {
        let text = raw_get(proxy.addr, "/abuse", extra).await;
        let s = Seen(json_body_of(&text));
        assert_eq!(s.one("x-forwarded-for").as_deref(), Some("127.0.0.1"), "{extra:?}");
        assert_eq!(s.one("x-forwarded-proto").as_deref(), Some("http"), "{extra:?}");
        assert_eq!(s.one("x-forwarded-host").as_deref(), Some("app.test"), "{extra:?}");
        assert_eq!(s.one("host").as_deref(), Some("app.test"), "{extra:?}");
        assert!(
            s.all("connection")
                .iter()
                .all(|v| !v.to_ascii_lowercase().contains("forwarded")),
            "{extra:?}"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let extra = "Connection: x-client-private\r\nX-Client-Private: 1\r\nKeep-Alive: timeout=9\r\n\
                 Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTE: trailers\r\n\
                 Upgrade: h2c\r\nX-Client-Public: 1\r\n";
    let text = raw_get(proxy.addr, "/hop", extra).await;
    let s = Seen(json_body_of(&text));
    let names = s.names();
    for gone in [
        "x-client-private",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} reached the upstream: {names:?}"
        );
    }
    assert_eq!(s.one("x-client-public").as_deref(), Some("1"));
    assert_eq!(s.one("te").as_deref(), Some("trailers"));
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_ascii_lowercase();
    assert!(
        !head.contains("x-upstream-private"),
        "response hop-by-hop leaked: {head}"
    );
    assert!(!head.contains("keep-alive: timeout=5"), "{head}");
    assert!(head.contains("x-upstream-public: fine"), "{head}");
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_statuses_pass_through() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    for code in [201u16, 204, 304, 404, 500, 503] {
        let res = client()
            .get(proxy.url(&format!("/status/{code}")))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status().as_u16(), code);
    }
    proxy.stop().await;
}
