//! The byte stream of a plain client connection: the TCP socket, bytes
//! already read from it but not yet parsed (they are handed back when
//! hyper's connection state is dropped between requests, or when the
//! connection is upgraded), and a note of whether the last write found the
//! socket full.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::exchange::Exchanges;

/// A client's TCP stream with unparsed bytes in front of it.
#[derive(Debug)]
pub struct PlainIo {
    stream: TcpStream,
    unread: Bytes,
    exchanges: Option<Arc<Exchanges>>,
}

impl PlainIo {
    /// `stream`, with `unread` to be read before anything from the socket.
    pub(super) fn new(stream: TcpStream, unread: Bytes) -> Self {
        PlainIo {
            stream,
            unread,
            exchanges: None,
        }
    }

    /// Record write stalls into `exchanges` from now on.
    pub(super) fn watched_by(mut self, exchanges: Arc<Exchanges>) -> Self {
        self.exchanges = Some(exchanges);
        self
    }

    /// Put `bytes` back in front of whatever is still unread, and stop
    /// recording into the exchanges of the request cycle that ended.
    pub(super) fn unread(&mut self, bytes: Bytes) {
        self.exchanges = None;
        if bytes.is_empty() {
            return;
        }
        if self.unread.is_empty() {
            self.unread = bytes;
        } else {
            let mut joined = BytesMut::with_capacity(bytes.len() + self.unread.len());
            joined.put(bytes);
            joined.put(std::mem::take(&mut self.unread));
            self.unread = joined.freeze();
        }
    }

    /// Whether bytes wait in front of the socket.
    #[cfg(test)]
    fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// The bare socket, to wait on between requests; or this stream back
    /// when bytes are still waiting in front of it (the next request has
    /// begun).
    pub(super) fn into_idle(self) -> Result<TcpStream, PlainIo> {
        if self.unread.is_empty() {
            Ok(self.stream)
        } else {
            Err(self)
        }
    }

    fn note_write<T>(&self, result: &Poll<io::Result<T>>) {
        if let Some(ex) = &self.exchanges {
            ex.write_stalled(result.is_pending());
        }
    }
}

impl AsyncRead for PlainIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            let head = self.unread.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PlainIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), server.expect("accept").0)
    }

    #[tokio::test]
    async fn unread_bytes_come_first_in_order() {
        let (mut client, server) = pair().await;
        client.write_all(b" from the socket").await.expect("write");
        drop(client);
        let mut io = PlainIo::new(server, Bytes::from_static(b"two"));
        io.unread(Bytes::from_static(b"one "));
        assert!(io.has_unread());
        let mut got = Vec::new();
        io.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"one two from the socket");
        assert!(!io.has_unread());
    }

    #[tokio::test]
    async fn small_reads_take_unread_bytes_piecewise() {
        let (_client, server) = pair().await;
        let mut io = PlainIo::new(server, Bytes::from_static(b"abcdef"));
        let mut two = [0u8; 2];
        io.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"ab");
        io.unread(Bytes::from_static(b"XY"));
        let mut rest = [0u8; 6];
        io.read_exact(&mut rest).await.expect("read");
        assert_eq!(&rest, b"XYcdef");
    }
}
