//! A WebSocket through the proxy: the Upgrade is tunnelled and messages
//! flow both ways.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::support::spawn_proxy;

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
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
    let proxy = spawn_proxy(addr, "").await;
    let (mut ws, res) = tokio_tungstenite::connect_async(format!("ws://{}/socket", proxy.addr))
        .await
        .expect("websocket through proxy");
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
    proxy.stop().await;
}
