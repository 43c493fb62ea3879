//! Request targets on the wire: what is refused with 400 and what the
//! upstream receives for the rest (the path rules see is the path forwarded).

use crate::support::{Seen, json_body_of, raw_get, spawn_echo_upstream, spawn_proxy, status_of};

#[tokio::test]
async fn malformed_and_ambiguous_targets_are_refused() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    for target in [
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a%5Cb",
        "/a%00b",
        "/a%",
        "/a%4",
        "/a%zz",
        "/static/..;/admin",
        "/static/%2e%2e;x/admin",
        "*",
        "a/relative",
        "/a\\b",
        "/sp ace",
    ] {
        let text = raw_get(proxy.addr, target, "").await;
        assert_eq!(status_of(&text), 400, "{target:?} -> {text}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn forwarded_target_is_the_normalised_one() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    for (target, expected) in [
        ("/public/../admin", "/admin"),
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E/admin?x=%2F", "/admin?x=%2F"),
        ("//admin", "/admin"),
        ("/a/./b//c/", "/a/b/c/"),
        ("/%61dmin", "/admin"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("http://other.test/abs/../x", "/x"),
        ("/plain;v=1?q", "/plain;v=1?q"),
    ] {
        let text = raw_get(proxy.addr, target, "").await;
        assert_eq!(status_of(&text), 200, "{target:?} -> {text}");
        assert_eq!(Seen(json_body_of(&text)).uri(), expected, "{target:?}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn oversized_header_is_refused() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[server]\nmax_header_bytes = 8192\n").await;
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let text = raw_get(proxy.addr, "/", &big).await;
    assert_eq!(status_of(&text), 431, "{text}");
    let fits = format!("X-Fits: {}\r\n", "a".repeat(2_000));
    assert_eq!(status_of(&raw_get(proxy.addr, "/", &fits).await), 200);
    proxy.stop().await;
}

#[tokio::test]
async fn slow_header_sender_is_cut_off() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "[server]\nheader_read_timeout = \"1s\"\n").await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection still open after 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || status_of(&text) == 408, "{text}");
    proxy.stop().await;
}
