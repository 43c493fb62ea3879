//! The upstream connection pool, counted from the upstream's side: one
//! connection of each kind (usher's own exchange for requests without a
//! body, hyper's for the rest) carries a run of exchanges of every body
//! shape; a connection the upstream closes, or a download the client
//! abandons, is never reused.

use std::convert::Infallible;
use std::time::Duration;

use http::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{client, full, read_request_head, spawn_echo_upstream, spawn_proxy, spawn_upstream};

#[tokio::test]
async fn one_upstream_connection_carries_a_run_of_exchanges() {
    let upstream = spawn_echo_upstream().await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let http = client();
    for round in 0..3 {
        let res = http.get(proxy.url("/plain")).send().await.expect("get");
        assert_eq!(res.status(), 200);
        let doc: serde_json::Value = res.json().await.expect("json");
        assert_eq!(doc["uri"], "/plain", "round {round}");

        let res = http.head(proxy.url("/head")).send().await.expect("head");
        assert_eq!(res.status(), 200);

        for status in [204u16, 304, 404] {
            let res = http
                .get(proxy.url(&format!("/status/{status}")))
                .send()
                .await
                .expect("status");
            assert_eq!(res.status(), status);
            res.bytes().await.expect("status body");
        }

        let body = "p".repeat(10_000);
        let res = http.post(proxy.url("/post")).body(body).send().await.expect("post");
        let doc: serde_json::Value = res.json().await.expect("json");
        assert_eq!(doc["body_len"], 10_000);

        // Chunked from the upstream: the end is the empty last chunk.
        let res = http.get(proxy.url("/download/300000")).send().await.expect("download");
        assert_eq!(res.bytes().await.expect("download body").len(), 300_000);
    }
    // One for the requests without a body (usher's own exchange), one for
    // the POSTs (hyper's client connection).
    assert_eq!(
        upstream.connections(),
        2,
        "every exchange should reuse the first connection of its kind"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn concurrent_exchanges_return_their_connections() {
    let upstream = spawn_echo_upstream().await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let http = client();
    for wave in 0..3 {
        let sends = (0..16).map(|i| {
            let http = http.clone();
            let url = proxy.url(&format!("/wave/{wave}/{i}"));
            async move {
                let res = http.get(url).send().await.expect("send");
                assert_eq!(res.status(), 200);
                let doc: serde_json::Value = res.json().await.expect("json");
                assert_eq!(doc["uri"], format!("/wave/{wave}/{i}"));
            }
        });
        futures_util::future::join_all(sends).await;
    }
    // Each wave fits in the connections the first one opened.
    let opened = upstream.connections();
    assert!(
        (1..=16).contains(&opened),
        "{opened} upstream connections for 3 waves of 16"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn connections_the_upstream_closes_are_not_reused() {
    let upstream = spawn_upstream(|_req| async {
        let mut res = Response::new(full("bye"));
        res.headers_mut().insert("connection", "close".parse().expect("value"));
        Ok::<_, Infallible>(res)
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let http = client();
    for i in 0..5 {
        let res = http.get(proxy.url("/once")).send().await.expect("send");
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.text().await.expect("text"), "bye");
    }
    assert_eq!(upstream.connections(), 5);
    proxy.stop().await;
}

/// An upstream that answers one request per connection with keep-alive,
/// then closes the connection a moment later (a short keep-alive timeout).
#[tokio::test]
async fn an_idle_connection_closed_by_the_upstream_is_replaced() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let mut accepted = 0usize;
        while let Ok((mut socket, _)) = listener.accept().await {
            accepted += 1;
            let n = accepted;
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let body = format!("conn {n}");
                let res = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                let _ = socket.write_all(res.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    let proxy = spawn_proxy(addr, "").await;
    let http = client();
    for i in 1..=4 {
        let res = http.get(proxy.url("/")).send().await.expect("send");
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.text().await.expect("text"), format!("conn {i}"));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    proxy.stop().await;
    server.abort();
}

#[tokio::test]
async fn an_abandoned_download_is_not_pooled() {
    let upstream = spawn_echo_upstream().await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let mut res = client()
        .get(proxy.url("/download/50000000"))
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    assert!(res.chunk().await.expect("first chunk").is_some());
    drop(res);
    // The abandoned exchange still holds (or has closed) its connection;
    // these two share a second one.
    let http = client();
    for path in ["/after/1", "/after/2"] {
        let res = http.get(proxy.url(path)).send().await.expect("send");
        assert_eq!(res.status(), 200);
        let doc: serde_json::Value = res.json().await.expect("json");
        assert_eq!(doc["uri"], path);
    }
    assert_eq!(upstream.connections(), 2);
    proxy.stop().await;
}

/// A raw upstream that answers each request as soon as its head arrives,
/// before reading the body, with `conn N: <request line>`; then, after
/// `pause`, it reads the body (by `content-length`) and waits for the next
/// head.
async fn spawn_early_answering_upstream(pause: Duration) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut accepted = 0usize;
        while let Ok((socket, _)) = listener.accept().await {
            accepted += 1;
            tokio::spawn(answer_early(socket, accepted, pause));
        }
    });
    (addr, task)
}

async fn answer_early(mut socket: tokio::net::TcpStream, n: usize, pause: Duration) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(head) = read_request_head(&mut socket, &mut buf).await else {
            return;
        };
        let line = head.lines().next().unwrap_or("").to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = format!("conn {n}: {line}");
        let res = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        if socket.write_all(res.as_bytes()).await.is_err() {
            return;
        }
        tokio::time::sleep(pause).await;
        while buf.len() < length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        buf.drain(..length);
    }
}

/// The upstream answers a POST before its body has arrived, and the client
/// is slow to send it: that connection cannot take another request until
/// the body is through, so nobody may queue behind it.
#[tokio::test]
async fn a_connection_still_sending_a_body_is_not_lent_out() {
    let (addr, server) = spawn_early_answering_upstream(Duration::ZERO).await;
    let proxy = spawn_proxy(addr, "timeout = \"3s\"\n").await;
    let mut slow = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    slow.write_all(b"POST /slow HTTP/1.1\r\nhost: a\r\ncontent-length: 20\r\n\r\n0123456789")
        .await
        .expect("write head");
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("conn 1: POST /slow") {
        let k = slow.read(&mut chunk).await.expect("read early answer");
        assert!(k > 0, "usher closed before answering");
        got.extend_from_slice(&chunk[..k]);
    }
    // Requests with a body, which take the kind of connection the slow
    // upload is on.
    let http = client();
    let started = std::time::Instant::now();
    let res = http.post(proxy.url("/next")).body("x").send().await.expect("next");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("text"), "conn 2: POST /next HTTP/1.1");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "queued behind the unfinished body"
    );

    // Once the body is through, the first connection is lent again: two
    // exchanges at once share the two connections, and no third is opened.
    slow.write_all(b"0123456789").await.expect("write rest");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pair = ["/again/a", "/again/b"].map(|path| {
        let http = http.clone();
        let url = proxy.url(path);
        async move {
            let res = http.post(url).body("y").send().await.expect("again");
            res.text().await.expect("text")
        }
    });
    let [a, b] = pair;
    let (a, b) = tokio::join!(a, b);
    let mut conns = [a, b].map(|text| text.split(':').next().unwrap_or("").to_string());
    conns.sort();
    assert_eq!(conns, ["conn 1", "conn 2"]);
    drop(slow);
    proxy.stop().await;
    server.abort();
}

/// `upstream.http2 = true` (h2c with prior knowledge here): the target goes
/// as `:scheme`/`:authority`/`:path`, and concurrent exchanges share one
/// multiplexed connection.
#[tokio::test]
async fn an_http2_upstream_multiplexes_one_connection() {
    let upstream = spawn_echo_upstream().await;
    let proxy = spawn_proxy(upstream.addr, "http2 = true\n").await;
    let http = client();
    for wave in 0..2 {
        let sends = (0..8).map(|i| {
            let http = http.clone();
            let path = format!("/h2/{wave}/{i}?q={i}");
            let url = proxy.url(&path);
            let authority = upstream.addr.to_string();
            async move {
                let res = http.get(url).send().await.expect("send");
                assert_eq!(res.status(), 200);
                let doc: serde_json::Value = res.json().await.expect("json");
                assert_eq!(doc["version"], "HTTP/2.0");
                assert_eq!(doc["uri"], format!("http://{authority}{path}"));
            }
        });
        futures_util::future::join_all(sends).await;
    }
    assert_eq!(upstream.connections(), 1);
    proxy.stop().await;
}

/// `upstream.idle_timeout`: a pooled connection nobody uses is closed by
/// usher once it has sat idle that long, with no request to trigger it.
#[tokio::test]
async fn an_unused_upstream_connection_is_closed_after_idle_timeout() {
    let upstream = spawn_echo_upstream().await;
    let proxy = spawn_proxy(upstream.addr, "idle_timeout = \"400ms\"\n").await;
    let http = client();
    let res = http.get(proxy.url("/once")).send().await.expect("send");
    assert_eq!(res.status(), 200);
    res.bytes().await.expect("body");
    let idle_from = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(upstream.closed(), 0, "closed before idle_timeout");
    while upstream.closed() == 0 {
        assert!(idle_from.elapsed() < Duration::from_secs(5), "never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_after = idle_from.elapsed();
    assert!(
        closed_after >= Duration::from_millis(380),
        "closed after {closed_after:?}"
    );
    // The next request opens a new connection.
    let res = http.get(proxy.url("/again")).send().await.expect("send");
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.connections(), 2);
    proxy.stop().await;
}

/// The upstream answers a POST before its body is through; the client
/// finishes the body afterwards. Once the body's end reaches usher, the
/// client connection is released like any other: it then waits for
/// `idle_timeout`, not hyper's shorter `header_read_timeout`.
#[tokio::test]
async fn a_body_finished_after_an_early_answer_still_releases_the_connection() {
    // The upstream reads the body only 300 ms after answering, so the body
    // (4 MiB, more than the socket buffers hold) ends well after the answer.
    let (addr, server) = spawn_early_answering_upstream(Duration::from_millis(300)).await;
    let proxy = spawn_proxy(addr, "[server]\nheader_read_timeout = \"1s\"\nidle_timeout = \"3s\"\n").await;
    let size = 4 * 1024 * 1024;
    let mut client = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let head = format!("POST /early HTTP/1.1\r\nhost: a\r\ncontent-length: {size}\r\n\r\n");
    client.write_all(head.as_bytes()).await.expect("write head");
    let (mut reader, mut writer) = client.into_split();
    let send = tokio::spawn(async move {
        writer.write_all(&vec![b'x'; size]).await.expect("write body");
        writer
    });
    let answer = read_until(&mut reader, "conn 1: POST /early").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut writer = send.await.expect("sender");
    // Longer than header_read_timeout, shorter than idle_timeout, counted
    // from when the body was through.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    writer
        .write_all(b"GET /after HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .expect("write");
    read_until(&mut reader, "GET /after").await;
    proxy.stop().await;
    server.abort();
}

/// Read from `stream` until the text contains `needle`; fails on close.
async fn read_until(stream: &mut (impl AsyncReadExt + Unpin), needle: &str) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let k = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(k > 0, "closed before {needle:?}: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..k]);
    }
    String::from_utf8_lossy(&got).into_owned()
}
