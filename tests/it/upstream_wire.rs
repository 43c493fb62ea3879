//! usher's own HTTP/1.1 exchange (requests without a body) against an
//! upstream that writes scripted bytes: every framing it must decode, and
//! every malformed or ambiguous answer it must refuse, with the connection
//! never carried over into the next request's response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{client, read_request_head, spawn_proxy};

/// What the scripted upstream does with one request.
enum Act {
    /// Write these bytes and keep reading requests.
    Answer(Vec<u8>),
    /// Write these bytes and close.
    AnswerAndClose(Vec<u8>),
    /// Close without answering.
    Close,
}

/// A request as the scripted upstream saw it: connection number (from 1),
/// request number on that connection (from 1), request line.
type Script = fn(usize, usize, &str) -> Act;

struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Every request line seen, with its connection number.
    seen: Arc<std::sync::Mutex<Vec<(usize, String)>>>,
    task: JoinHandle<()>,
}

impl Scripted {
    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<(usize, String)> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_scripted(script: Script) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, log) = (Arc::clone(&accepted), Arc::clone(&seen));
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let conn = count.fetch_add(1, Ordering::SeqCst) + 1;
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for number in 1.. {
                    let Some(head) = read_request_head(&mut socket, &mut buf).await else {
                        return;
                    };
                    let line = head.lines().next().unwrap_or("").to_string();
                    log.lock().expect("log").push((conn, line.clone()));
                    match script(conn, number, &line) {
                        Act::Answer(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Act::AnswerAndClose(bytes) => {
                            let _ = socket.write_all(&bytes).await;
                            return;
                        }
                        Act::Close => return,
                    }
                }
            });
        }
    });
    Scripted {
        addr,
        accepted,
        seen,
        task,
    }
}

/// A keep-alive answer naming the connection and request: `c<conn>r<n>`.
fn named(conn: usize, number: usize) -> Vec<u8> {
    let body = format!("c{conn}r{number}");
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// The path of a request line.
fn path(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

async fn get(proxy: &crate::support::Proxy, target: &str) -> (u16, Result<String, reqwest::Error>) {
    let res = client().get(proxy.url(target)).send().await.expect("send");
    let status = res.status().as_u16();
    (status, res.text().await)
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_are_decoded_and_the_connection_reused() {
    let upstream = spawn_scripted(|conn, n, line| match path(line) {
        "/chunked" => Act::Answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value\r\nhello\r\n6\r\n world\r\nA \r\n, and more\r\n0\r\nx-sum: 1\r\n\r\n"
                .to_vec(),
        ),
        _ => Act::Answer(named(conn, n)),
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    for _ in 0..2 {
        let (status, body) = get(&proxy, "/chunked").await;
        assert_eq!(status, 200);
        assert_eq!(body.expect("body"), "hello world, and more");
    }
    assert_eq!(get(&proxy, "/after").await.1.expect("body"), "c1r3");
    assert_eq!(upstream.connections(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn bodies_without_a_length_are_read_to_the_close_and_never_reused() {
    let upstream = spawn_scripted(|conn, n, line| match path(line) {
        "/until-close" => Act::AnswerAndClose(b"HTTP/1.1 200 OK\r\n\r\nall of this".to_vec()),
        "/http10" => Act::Answer(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec()),
        "/closing" => Act::Answer(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec()),
        _ => Act::Answer(named(conn, n)),
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    assert_eq!(get(&proxy, "/until-close").await.1.expect("body"), "all of this");
    assert_eq!(get(&proxy, "/next").await.1.expect("body"), "c2r1");
    assert_eq!(get(&proxy, "/http10").await.1.expect("body"), "ok");
    assert_eq!(get(&proxy, "/next").await.1.expect("body"), "c3r1");
    assert_eq!(get(&proxy, "/closing").await.1.expect("body"), "ok");
    assert_eq!(get(&proxy, "/next").await.1.expect("body"), "c4r1");
    proxy.stop().await;
}

#[tokio::test]
async fn heads_interim_answers_and_bodyless_statuses_keep_the_connection() {
    let upstream = spawn_scripted(|conn, n, line| match (line.split(' ').next(), path(line)) {
        // A HEAD answer names the length a GET would get; no body follows.
        (Some("HEAD"), _) => Act::Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n".to_vec()),
        (_, "/304") => Act::Answer(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n".to_vec()),
        (_, "/204") => Act::Answer(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        (_, "/hints") => Act::Answer(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n\
              HTTP/1.1 100 Continue\r\n\r\n\
              HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
                .to_vec(),
        ),
        _ => Act::Answer(named(conn, n)),
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let http = client();
    let res = http.head(proxy.url("/x")).send().await.expect("head");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], "1000");
    assert_eq!(get(&proxy, "/304").await.0, 304);
    assert_eq!(get(&proxy, "/204").await.0, 204);
    // The interim heads' fields do not carry over into the final one's.
    let res = http.get(proxy.url("/hints")).send().await.expect("hints");
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("link").is_none(), "{:?}", res.headers());
    assert_eq!(res.text().await.expect("body"), "final");
    assert_eq!(get(&proxy, "/next").await.1.expect("body"), "c1r5");
    assert_eq!(upstream.connections(), 1);
    proxy.stop().await;
}

/// Ambiguous or malformed response heads: each is a 502, and the
/// connection it came on is closed (the next request gets its own answer
/// on a new connection).
#[tokio::test]
async fn ambiguous_response_framing_is_refused_with_a_502() {
    let upstream = spawn_scripted(|conn, n, line| {
        let bad: &[u8] = match path(line) {
            "/te-and-cl" => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            }
            "/te-gzip" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc",
            "/te-twice" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "/te-not-last" => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n0\r\n\r\n"
            }
            "/cl-differ" => b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
            "/cl-list" => b"HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd",
            "/cl-plus" => b"HTTP/1.1 200 OK\r\ncontent-length: +3\r\n\r\nabc",
            "/cl-negative" => b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nabc",
            "/cl-huge" => b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\nabc",
            "/obs-fold" => b"HTTP/1.1 200 OK\r\nx-a: one\r\n two\r\ncontent-length: 0\r\n\r\n",
            "/space-name" => b"HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n",
            "/bad-version" => b"HTTP/2.0 200 OK\r\ncontent-length: 0\r\n\r\n",
            "/bad-status" => b"HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n",
            "/nul" => b"HTTP/1.1 200 OK\r\nx-a: a\0b\r\ncontent-length: 0\r\n\r\n",
            "/unasked-101" => b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            _ => return Act::Answer(named(conn, n)),
        };
        Act::Answer(bad.to_vec())
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let cases = [
        "/te-and-cl",
        "/te-gzip",
        "/te-twice",
        "/te-not-last",
        "/cl-differ",
        "/cl-list",
        "/cl-plus",
        "/cl-negative",
        "/cl-huge",
        "/obs-fold",
        "/space-name",
        "/bad-version",
        "/bad-status",
        "/nul",
        "/unasked-101",
    ];
    for (i, case) in cases.iter().enumerate() {
        let (status, _) = get(&proxy, case).await;
        assert_eq!(status, 502, "{case}");
        // The refused answer's connection is gone: this one is new.
        let (status, body) = get(&proxy, "/next").await;
        assert_eq!(status, 200, "after {case}");
        assert_eq!(body.expect("body"), format!("c{}r1", i + 2), "after {case}");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn a_head_with_too_many_fields_or_too_many_bytes_is_refused() {
    let upstream = spawn_scripted(|conn, n, line| match path(line) {
        "/many" => {
            let mut res = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..101 {
                res.extend_from_slice(format!("x-f{i}: v\r\n").as_bytes());
            }
            res.extend_from_slice(b"content-length: 0\r\n\r\n");
            Act::Answer(res)
        }
        "/huge" => {
            // A head that never ends, 1 MiB of one field's value.
            let mut res = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
            res.resize(res.len() + (1 << 20), b'a');
            Act::Answer(res)
        }
        "/ninety" => {
            let mut res = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..90 {
                res.extend_from_slice(format!("x-f{i}: v\r\n").as_bytes());
            }
            res.extend_from_slice(b"content-length: 2\r\n\r\nok");
            Act::Answer(res)
        }
        _ => Act::Answer(named(conn, n)),
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    assert_eq!(get(&proxy, "/many").await.0, 502);
    assert_eq!(get(&proxy, "/huge").await.0, 502);
    let (status, body) = get(&proxy, "/ninety").await;
    assert_eq!((status, body.expect("body").as_str()), (200, "ok"));
    proxy.stop().await;
}

/// Bytes that do not fit the framing: the body is cut (the client sees an
/// error or a short body, never bytes of another answer) and the
/// connection is closed, so the next request gets its own answer.
#[tokio::test]
async fn bytes_beyond_the_framing_never_reach_the_next_request() {
    let upstream = spawn_scripted(|conn, n, line| {
        let bytes: &[u8] = match path(line) {
            // A whole second answer hidden after the first one's length.
            "/smuggle" => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\
                            HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nSMUGGLED"
            }
            "/bare-lf-ext" => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                                2;x\nHTTP/1.1 200 OK\r\nok\r\n0\r\n\r\n"
            }
            "/long-chunk" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
            "/bad-size" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            "/short" => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
            _ => return Act::Answer(named(conn, n)),
        };
        if path(line) == "/short" {
            return Act::AnswerAndClose(bytes.to_vec());
        }
        Act::Answer(bytes.to_vec())
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    let (status, body) = get(&proxy, "/smuggle").await;
    assert_eq!((status, body.expect("body").as_str()), (200, "ok"));
    let (_, body) = get(&proxy, "/next").await;
    assert_eq!(body.expect("body"), "c2r1", "the hidden answer was served");
    let mut connection = 2;
    for case in ["/bare-lf-ext", "/long-chunk", "/bad-size", "/short"] {
        // The head was fine, so usher may have begun its answer; or the body
        // failed before the head left, and the client sees the connection
        // close. Either way no bytes past the bad framing arrive.
        match client().get(proxy.url(case)).send().await {
            Err(e) => assert!(e.is_request(), "{case}: {e}"),
            Ok(res) => {
                assert_eq!(res.status(), 200, "{case}");
                if let Ok(text) = res.text().await {
                    assert!(
                        !text.contains("hello") && !text.contains("HTTP/1.1") && text.len() < 10,
                        "{case}: {text:?}"
                    );
                }
            }
        }
        connection += 1;
        let (_, body) = get(&proxy, "/next").await;
        assert_eq!(body.expect("body"), format!("c{connection}r1"), "after {case}");
    }
    proxy.stop().await;
}

/// A pooled connection the upstream drops on receiving the next request
/// (its keep-alive ran out as the request arrived): a GET is tried again
/// on a new connection; a bodyless POST is not sent twice (502).
#[tokio::test]
async fn a_pooled_connection_lost_mid_request_is_retried_only_when_idempotent() {
    let upstream = spawn_scripted(|conn, n, _line| match (conn, n) {
        (_, 2) => Act::Close,
        _ => Act::Answer(named(conn, n)),
    })
    .await;
    let proxy = spawn_proxy(upstream.addr, "").await;
    assert_eq!(get(&proxy, "/one").await.1.expect("body"), "c1r1");
    assert_eq!(get(&proxy, "/two").await.1.expect("body"), "c2r1");
    let res = client().post(proxy.url("/post")).send().await.expect("post");
    assert_eq!(res.status(), 502, "the lost POST is not sent again");
    assert_eq!(get(&proxy, "/three").await.1.expect("body"), "c3r1");
    let seen: Vec<String> = upstream.seen().into_iter().map(|(c, l)| format!("{c} {l}")).collect();
    assert_eq!(
        seen,
        [
            "1 GET /one HTTP/1.1",
            "1 GET /two HTTP/1.1",
            "2 GET /two HTTP/1.1",
            "2 POST /post HTTP/1.1",
            "3 GET /three HTTP/1.1",
        ]
    );
    proxy.stop().await;
}

/// The request head usher writes: its own target and `Host`, a
/// `content-length: 0` for a bodyless POST, none for a GET.
#[tokio::test]
async fn the_request_head_is_written_as_the_upstream_expects() {
    static HEADS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        while let Some(head) = read_request_head(&mut socket, &mut buf).await {
            HEADS.lock().expect("heads").push(head);
            let _ = socket.write_all(&named(1, 1)).await;
        }
    });
    let proxy = spawn_proxy(addr, "").await;
    let http = client();
    assert_eq!(http.get(proxy.url("/g?q=1")).send().await.expect("get").status(), 200);
    assert_eq!(http.post(proxy.url("/p")).send().await.expect("post").status(), 200);
    let heads = HEADS.lock().expect("heads").clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    let lines = |head: &str| head.lines().map(str::to_owned).collect::<Vec<_>>();
    let get = lines(&heads[0]);
    assert_eq!(get[0], "GET /g?q=1 HTTP/1.1");
    // The client's host, kept (`preserve_host`'s default).
    assert!(get.iter().any(|l| l == &format!("host: {}", proxy.addr)), "{get:?}");
    assert!(!get.iter().any(|l| l.starts_with("content-length")), "{get:?}");
    let post = lines(&heads[1]);
    assert_eq!(post[0], "POST /p HTTP/1.1");
    assert_eq!(
        post.iter().filter(|l| l.starts_with("content-length")).count(),
        1,
        "{post:?}"
    );
    assert!(post.iter().any(|l| l == "content-length: 0"), "{post:?}");
    assert!(!post.iter().any(|l| l.starts_with("transfer-encoding")), "{post:?}");
    proxy.stop().await;
    server.abort();
}
