//! A WebSocket through the proxy: the Upgrade is tunnelled and messages
//! flow both ways.

use std::future::Future;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Response;

use crate::support::spawn_proxy;

/// A WebSocket upstream that echoes text and binary messages, for one
/// connection; the handle ends when the client closes.
pub async fn spawn_ws_echo_upstream() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let upstream = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(stream).await.expect("handshake");
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                ws.send(msg).await.expect("echo");
            } else if msg.is_close() {
                break;
            }
        }
    });
    (addr, upstream)
}

/// Completes `handshake` (a client's, through the proxy, to the upstream
/// of [`spawn_ws_echo_upstream`]), round-trips text and a 100 KB binary
/// message, closes, and waits for the upstream to see the close.
pub async fn echo_through<S, H>(handshake: H, upstream: JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Future<Output = Result<(WebSocketStream<S>, Response), WsError>>,
{
    let (mut ws, res) = handshake.await.expect("websocket through proxy");
    assert_eq!(res.status(), 101);
    for i in 0..5 {
        let text = format!("hello {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        let back = ws.next().await.expect("reply").expect("frame");
        assert_eq!(back.into_text().expect("text").as_str(), text);
    }
    ws.send(Message::binary(vec![7u8; 100_000])).await.expect("send binary");
    let back = ws.next().await.expect("reply").expect("frame");
    assert_eq!(back.into_data().len(), 100_000);
    ws.close(None).await.expect("close");
    upstream.await.expect("upstream task");
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let (addr, upstream) = spawn_ws_echo_upstream().await;
    let proxy = spawn_proxy(addr, "").await;
    echo_through(
        tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.addr)),
        upstream,
    )
    .await;
    proxy.stop().await;
}

/// Bytes a client sends in the same write as its upgrade request are read
/// with the request; they must reach the upstream once the tunnel opens,
/// ahead of anything sent later.
#[tokio::test]
async fn bytes_sent_with_the_upgrade_request_are_tunnelled_first() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // A raw upstream: read the head, agree to switch, then echo bytes.
    let upstream = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.expect("head");
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x-echo\r\n\r\n")
            .await
            .expect("101");
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await.expect("echo");
        }
    });
    let proxy = spawn_proxy(addr, "upgrades = [\"websocket\", \"x-echo\"]\n").await;
    let mut client = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    client
        .write_all(b"GET /raw HTTP/1.1\r\nHost: app.test\r\nConnection: upgrade\r\nUpgrade: x-echo\r\n\r\nearly-bytes;")
        .await
        .expect("request");
    let mut got = Vec::new();
    let want_head = b"HTTP/1.1 101";
    while !got.windows(12).any(|w| w == b"early-bytes;") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(want_head), "{}", String::from_utf8_lossy(&got));
    client.write_all(b"later").await.expect("later");
    let mut later = [0u8; 5];
    client.read_exact(&mut later).await.expect("echo of later bytes");
    assert_eq!(&later, b"later");
    drop(client);
    upstream.await.expect("upstream task");
    proxy.stop().await;
}
