//! Plain HTTP/1.1 keep-alive: usher drops hyper's connection state between
//! requests and rebuilds it when bytes arrive. These tests hold the byte
//! stream to account: reuse, pipelining, split heads, unread bodies, slow
//! readers, HTTP/1.0, idle and header timeouts, shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A keep-alive hyper client on one TCP connection to `addr`.
async fn one_connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

fn request(method: &str, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.test")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

/// Read from `stream` (TCP or TLS) until `n` complete responses with
/// Content-Length bodies have arrived; returns their bodies.
pub async fn read_responses<S: AsyncRead + Unpin>(stream: &mut S, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut bodies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bodies.len() < n {
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("responses in time")
            .expect("read");
        assert!(
            got > 0,
            "closed after {} responses: {}",
            bodies.len(),
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..got]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("length"));
            if buf.len() < end + 4 + len {
                break;
            }
            bodies.push(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            buf.drain(..end + 4 + len);
        }
    }
    bodies
}

/// Timeouts short enough to test: hyper's header limit below usher's idle
/// one. Ends inside the `[server]` table, so more of its keys may follow.
pub const SHORT_TIMEOUTS: &str = "[server]\nheader_read_timeout = \"1s\"\nidle_timeout = \"3s\"\n";

/// The echo upstream, usher in front of it with `extra` config, and one
/// raw connection to usher.
async fn connected(extra: &str) -> (Upstream, Proxy, TcpStream) {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, extra).await;
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    (up, proxy, stream)
}

/// Everything the server sends until it closes; fails if it has not
/// closed within `limit`.
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut all))
        .await
        .expect("server closed the connection in time")
        .expect("read");
    all
}

/// Waits (at most 10 s) for the server to close `stream`, writing nothing
/// on it, and no sooner than `at_least` from now.
pub async fn closed_once_idle_for<S: AsyncRead + Unpin>(stream: &mut S, at_least: Duration) {
    let idle_from = Instant::now();
    let rest = read_until_closed(stream, Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "nothing is written to an idle connection");
    let idle = idle_from.elapsed();
    assert!(idle >= at_least, "closed after only {idle:?}");
}

#[tokio::test]
async fn one_connection_carries_many_mixed_exchanges() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let mut sender = one_connection(proxy.addr).await;
    for i in 0..20 {
        sender.ready().await.expect("connection still usable");
        let res = sender
            .send_request(request("GET", &format!("/get/{i}"), ""))
            .await
            .expect("get");
        assert_eq!(res.status(), 200);
        let doc: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.expect("body").to_bytes()).expect("json");
        assert_eq!(doc["uri"], format!("/get/{i}"));

        let res = sender
            .send_request(request("POST", "/post", "a request body"))
            .await
            .expect("post");
        let doc: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.expect("body").to_bytes()).expect("json");
        assert_eq!(doc["body"], "a request body");

        let res = sender.send_request(request("HEAD", "/head", "")).await.expect("head");
        assert_eq!(res.status(), 200);
        assert!(res.into_body().collect().await.expect("body").to_bytes().is_empty());

        let res = sender
            .send_request(request("GET", "/status/204", ""))
            .await
            .expect("204");
        assert_eq!(res.status(), 204);

        let res = sender
            .send_request(request("GET", "/download/100000", ""))
            .await
            .expect("download");
        assert_eq!(res.into_body().collect().await.expect("body").to_bytes().len(), 100_000);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_up, proxy, mut stream) = connected("").await;
    let mut burst = String::new();
    for path in ["/one", "/two", "/three"] {
        burst.push_str(&format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n"));
    }
    stream.write_all(burst.as_bytes()).await.expect("write");
    let bodies = read_responses(&mut stream, 3).await;
    let uris: Vec<String> = bodies
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).expect("json")["uri"].to_string())
        .collect();
    assert_eq!(uris, ["\"/one\"", "\"/two\"", "\"/three\""]);
    // And the connection is still good for more.
    stream
        .write_all(b"GET /four HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_responses(&mut stream, 1).await[0].contains("/four"));
    proxy.stop().await;
}

#[tokio::test]
async fn a_head_split_across_writes_is_read_whole() {
    let (_up, proxy, mut stream) = connected("").await;
    for round in 0..2 {
        // "P" could start the HTTP/2 preface on the first request.
        let head = format!("PUT /split/{round} HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nok");
        for piece in head.as_bytes().chunks(5) {
            stream.write_all(piece).await.expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = read_responses(&mut stream, 1).await.remove(0);
        let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(doc["uri"], format!("/split/{round}"));
        assert_eq!(doc["body"], "ok");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn an_unread_request_body_never_becomes_a_request() {
    // The upstream notes every path it is asked for.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&seen);
    let up = spawn_upstream(move |req: Request<hyper::body::Incoming>| {
        let log = Arc::clone(&log);
        async move {
            log.lock().expect("log").push(req.uri().path().to_string());
            Ok::<_, Infallible>(hyper::Response::new(full("up")))
        }
    })
    .await;
    let proxy = spawn_proxy(up.addr, "[access]\ndefault = \"authenticated\"\n").await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
    for filler in [0usize, 20_000] {
        let body = format!("{}{smuggled}", "x".repeat(filler));
        let raw = format!(
            "POST /private HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let text = raw_exchange(proxy.addr, raw.as_bytes(), Duration::from_secs(3)).await;
        assert_eq!(status_of(&text), 401, "{text}");
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            1,
            "one request, one response: {text}"
        );
    }
    assert!(
        seen.lock().expect("log").is_empty(),
        "upstream saw {:?}",
        seen.lock().expect("log")
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_slow_reader_gets_every_byte_then_reuses_the_connection() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, "").await;
    let mut sender = one_connection(proxy.addr).await;
    let size = 8 * 1024 * 1024;
    let res = sender
        .send_request(request("GET", &format!("/download/{size}"), ""))
        .await
        .expect("download");
    // Let the socket buffers fill so usher's writes stall.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut body = res.into_body();
    let mut got = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            assert!(data.iter().all(|b| *b == 0));
            got += data.len();
        }
    }
    assert_eq!(got, size);
    sender.ready().await.expect("still usable");
    let res = sender.send_request(request("GET", "/after", "")).await.expect("after");
    let doc: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.expect("body").to_bytes()).expect("json");
    assert_eq!(doc["uri"], "/after");
    proxy.stop().await;
}

#[tokio::test]
async fn http10_keep_alive_is_honoured() {
    let (_up, proxy, mut stream) = connected("").await;
    for i in 0..3 {
        let req = format!("GET /ten/{i} HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let body = read_responses(&mut stream, 1).await.remove(0);
        assert!(body.contains(&format!("/ten/{i}")), "{body}");
    }
    // Without keep-alive, HTTP/1.0 gets one answer and a close.
    stream
        .write_all(b"GET /last HTTP/1.0\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    let rest = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.0 200"));
    proxy.stop().await;
}

#[tokio::test]
async fn idle_limit_is_idle_timeout_not_header_timeout() {
    let (_up, proxy, mut stream) = connected(SHORT_TIMEOUTS).await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    read_responses(&mut stream, 1).await;
    // Longer than header_read_timeout, shorter than idle_timeout.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stream
        .write_all(b"GET /b HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_responses(&mut stream, 1).await[0].contains("/b"));
    closed_once_idle_for(&mut stream, Duration::from_millis(2500)).await;
    proxy.stop().await;
}

/// A connection whose last request carried a body (by length or chunked)
/// is released like any other once that body has been read to its end:
/// it waits for `idle_timeout`, not hyper's `header_read_timeout`.
#[tokio::test]
async fn a_request_body_read_to_its_end_leaves_a_reusable_idle_connection() {
    let (_up, proxy, mut stream) = connected(SHORT_TIMEOUTS).await;
    let posts: [&[u8]; 2] = [
        b"POST /length HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    for post in posts {
        stream.write_all(post).await.expect("write");
        let doc: serde_json::Value = serde_json::from_str(&read_responses(&mut stream, 1).await[0]).expect("json");
        assert_eq!(doc["body"], "hello");
        // Longer than header_read_timeout, shorter than idle_timeout.
        tokio::time::sleep(Duration::from_millis(1800)).await;
    }
    stream
        .write_all(b"GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_responses(&mut stream, 1).await[0].contains("/after"));
    proxy.stop().await;
}

#[tokio::test]
async fn stopping_closes_idle_connections_at_once() {
    let (_up, proxy, mut stream) = connected("").await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    read_responses(&mut stream, 1).await;
    let stopping = Instant::now();
    proxy.stop().await;
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn requests_with_bodies_pipelined_with_others_keep_their_framing() {
    let (_up, proxy, mut stream) = connected("").await;
    // A length body, a chunked body whose chunks look like requests, then a
    // plain GET, all in one write.
    let inner = "GET /inner HTTP/1.1\r\nHost: x\r\n";
    let burst = format!(
        "POST /len HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello\
         POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{inner}\r\n0\r\n\r\n\
         GET /last HTTP/1.1\r\nHost: app.test\r\n\r\n",
        inner.len()
    );
    stream.write_all(burst.as_bytes()).await.expect("write");
    let docs: Vec<serde_json::Value> = read_responses(&mut stream, 3)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).expect("json"))
        .collect();
    assert_eq!(docs[0]["uri"], "/len");
    assert_eq!(docs[0]["body"], "hello");
    assert_eq!(docs[1]["uri"], "/chunked");
    assert_eq!(docs[1]["body"], inner);
    assert_eq!(docs[2]["uri"], "/last");
    proxy.stop().await;
}

#[tokio::test]
async fn connection_close_is_honoured_after_the_answer() {
    let (_up, proxy, mut stream) = connected("").await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\nGET /b HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    let all = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&all);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.contains("/b") && !text.contains("/never"), "{text}");
    proxy.stop().await;
}

/// Many request shapes in random order, sizes and write splits on one
/// connection: every answer arrives, in order, for the right request.
#[tokio::test]
async fn a_long_mixed_sequence_stays_in_step() {
    let (_up, proxy, mut stream) = connected("").await;
    // A fixed-seed xorshift: the same sequence on every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..60 {
        let body = "b".repeat((next() % 3000) as usize);
        let req = match next() % 3 {
            0 => format!("GET /seq/{i} HTTP/1.1\r\nHost: app.test\r\n\r\n"),
            1 => format!(
                "PUT /seq/{i} HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            _ => format!(
                "POST /seq/{i} HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        };
        // Sometimes split the request at a random point, with a pause.
        let bytes = req.as_bytes();
        let cut = (next() as usize) % bytes.len();
        stream.write_all(&bytes[..cut]).await.expect("write");
        if next() % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stream.write_all(&bytes[cut..]).await.expect("write");
        let doc: serde_json::Value =
            serde_json::from_str(&read_responses(&mut stream, 1).await.remove(0)).expect("json");
        assert_eq!(doc["uri"], format!("/seq/{i}"));
        let expected_len = if req.starts_with("GET") { 0 } else { body.len() };
        assert_eq!(doc["body_len"], expected_len, "request {i}");
    }
    proxy.stop().await;
}

/// `server.max_connections` counts every open connection, but an idle
/// keep-alive one gives its place up to a new client (the longest idle
/// first, as nginx does); a connection in the middle of a request keeps
/// it. A new client that finds no place within a second is closed rather
/// than left hanging.
#[tokio::test]
async fn a_connection_over_the_cap_takes_an_idle_place_or_is_closed() {
    let (_up, proxy, mut first) = connected("[server]\nmax_connections = 2\n").await;
    let mut second = TcpStream::connect(proxy.addr).await.expect("connect");
    second
        .write_all(b"GET /held HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_responses(&mut second, 1).await.len(), 1);
    // `first` is busy: half a request head. `second` is idle.
    first.write_all(b"GET /busy HTTP/1.1\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(proxy.addr).await.expect("connect");
    third
        .write_all(b"GET /third HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .expect("write");
    let bodies = read_responses(&mut third, 1).await;
    let doc: serde_json::Value = serde_json::from_str(&bodies[0]).expect("json");
    assert_eq!(doc["uri"], "/third", "served in the idle connection's place");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), second.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "the idle one was closed");
    // Now both places are busy (`third` half-way through a head too).
    third.write_all(b"GET /busy HTTP/1.1\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(proxy.addr).await.expect("connect");
    fourth
        .write_all(b"GET /fourth HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), fourth.read_to_end(&mut rest)).await;
    assert!(
        matches!(ended, Ok(Ok(0)) | Ok(Err(_))),
        "closed, not left hanging: {ended:?}"
    );
    assert!(rest.is_empty(), "nothing served over the cap");
    drop((first, third));
    proxy.stop().await;
}

/// A connection that has just been answered keeps hyper's connection for a
/// few milliseconds (the linger) in case its next request follows at once;
/// at the cap, a new client that arrives in that moment still gets the
/// place once the linger is over, and the quiet connection is closed.
#[tokio::test]
async fn a_connection_just_answered_gives_its_place_up_after_its_linger() {
    let (_up, proxy, mut first) = connected("[server]\nmax_connections = 1\n").await;
    for i in 0..3 {
        let req = format!("GET /first/{i} HTTP/1.1\r\nhost: app.test\r\n\r\n");
        first.write_all(req.as_bytes()).await.expect("write");
        let doc: serde_json::Value =
            serde_json::from_str(&read_responses(&mut first, 1).await.remove(0)).expect("json");
        assert_eq!(doc["uri"], format!("/first/{i}"), "kept alive across the linger");
    }
    // At once, while `first` may still linger.
    let mut second = TcpStream::connect(proxy.addr).await.expect("connect");
    second
        .write_all(b"GET /second HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .expect("write");
    let bodies = tokio::time::timeout(Duration::from_secs(3), read_responses(&mut second, 1))
        .await
        .expect("the new client is served within the room wait");
    let doc: serde_json::Value = serde_json::from_str(&bodies[0]).expect("json");
    assert_eq!(doc["uri"], "/second");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), first.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "the quiet one was closed");
    proxy.stop().await;
}

/// A slowloris on a connection that has already been answered: the next
/// head trickles in a byte at a time, each byte well inside the linger and
/// the header limit, forever. usher times request heads itself (hyper's
/// timer is off), and neither the linger nor the cycle a trickled head
/// moves to may give it more than `header_read_timeout` and a linger: it
/// is answered 408 and closed. A fresh connection trickling its first head
/// gets the same.
#[tokio::test]
async fn a_head_trickled_after_an_answer_is_cut_off_at_the_header_limit() {
    let (_up, proxy, mut stream) = connected(SHORT_TIMEOUTS).await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_responses(&mut stream, 1).await[0].contains("/a"));
    let mut answered = Some(stream);
    for _ in 0..2 {
        // The second round on a fresh connection, made only now: an idle
        // one would be closed for sending nothing.
        let mut stream = match answered.take() {
            Some(stream) => stream,
            None => TcpStream::connect(proxy.addr).await.expect("connect"),
        };
        let began = Instant::now();
        let (mut reader, mut writer) = stream.split();
        let trickle = async {
            let head = b"GET /b HTTP/1.1\r\nHost: app.test\r\nX-Slow: ";
            for byte in head.iter().chain(std::iter::repeat(&b'x')) {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let answer = tokio::select! {
            all = read_until_closed(&mut reader, Duration::from_secs(8)) => all,
            () = trickle => panic!("the trickle ended first"),
        };
        let took = began.elapsed();
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status_of(&text), 408, "after {took:?}: {text:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "cut off after {took:?}; header_read_timeout is 1 s"
        );
    }
    proxy.stop().await;
}

/// A head begun before the server stops is still held to
/// `header_read_timeout` while it drains (hyper goes on reading a head it
/// has begun), so a stalled client cannot keep the drain waiting for
/// `shutdown_timeout`.
#[tokio::test]
async fn a_half_sent_head_cannot_hold_up_a_drain() {
    let (_up, proxy, mut stream) = connected(&format!("{SHORT_TIMEOUTS}shutdown_timeout = \"20s\"\n")).await;
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: app.test\r\n")
        .await
        .expect("write");
    // Let usher start the cycle and hyper read what was sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = Instant::now();
    let stopped = tokio::spawn(proxy.stop());
    let answer = read_until_closed(&mut stream, Duration::from_secs(8)).await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&text), 408, "{text:?}");
    tokio::time::timeout(Duration::from_secs(8), stopped)
        .await
        .expect("the drain ended")
        .expect("stop");
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(3), "the drain took {took:?}");
}

/// A request in flight when the server stops is answered with
/// `Connection: close`, and its connection closes straight after: the
/// stop reaches a busy cycle, not only idle connections (which would also
/// close it, but only after the answer and the linger, with keep-alive
/// offered).
#[tokio::test]
async fn a_request_in_flight_at_a_stop_is_answered_with_connection_close() {
    let up = spawn_slow_upstream(Duration::from_millis(600), "done").await;
    let proxy = spawn_proxy(up.addr, "").await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    // A first exchange, so that the stop finds a cycle that has served one.
    stream
        .write_all(b"GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_responses(&mut stream, 1).await[0], "done");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = tokio::spawn(proxy.stop());
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert_eq!(status_of(&text), 200, "{text:?}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text:?}");
    assert!(text.ends_with("done"), "{text:?}");
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the drain ended")
        .expect("stop");
}
