//! The byte stream of a client connection: the socket (bare TCP, or TLS
//! over it), bytes already read from it but not yet parsed (they are handed
//! back when hyper's connection state is dropped between requests, or when
//! the connection is upgraded), and a note of whether the last write found
//! the socket full.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::exchange::Exchanges;
use crate::body::StallTimer;

/// A client's socket. The TLS stream is boxed: rustls's state is large, and
/// an idle connection's task holds this.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath, to wait on for readiness.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Tcp(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether a read would return at once without the socket: rustls holds
    /// decrypted bytes, saw the peer's `close_notify`, or failed on records
    /// it already has (the read reports that error).
    fn has_buffered(&mut self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(tls) => match tls.get_mut().1.process_new_packets() {
                Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
                Err(_) => true,
            },
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client's stream with unparsed bytes in front of it, and a bound on
/// how long a write may wait for the client to read (`server.write_timeout`):
/// a client that stops reading cannot hold the connection, nor the upstream
/// connection feeding it, forever.
#[derive(Debug)]
pub struct ClientIo {
    stream: Stream,
    unread: Bytes,
    exchanges: Option<Arc<Exchanges>>,
    write_timeout: Duration,
    /// Counting from the last progress while a write waits.
    stall: StallTimer,
}

impl ClientIo {
    /// `stream`, with `unread` to be read before anything from the socket;
    /// writes fail once none makes progress for `write_timeout`.
    pub fn new(stream: Stream, unread: Bytes, write_timeout: Duration) -> Self {
        ClientIo {
            stream,
            unread,
            exchanges: None,
            write_timeout,
            stall: StallTimer::default(),
        }
    }

    /// Record write stalls into `exchanges` from now on.
    pub fn watched_by(mut self, exchanges: Arc<Exchanges>) -> Self {
        self.exchanges = Some(exchanges);
        self
    }

    /// Put `bytes` back in front of whatever is still unread, and stop
    /// recording into the exchanges of the request cycle that ended.
    pub fn unread(&mut self, bytes: Bytes) {
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

    /// The bare stream, to wait on between requests; or this stream back
    /// when bytes are already waiting, in front of the socket or inside
    /// rustls (the next request has begun).
    pub fn into_idle(mut self) -> Result<Stream, ClientIo> {
        if self.unread.is_empty() && !self.stream.has_buffered() {
            Ok(self.stream)
        } else {
            Err(self)
        }
    }

    /// Record a write's outcome; a write still waiting after
    /// `write_timeout` without progress fails with `TimedOut`.
    fn note_write<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Some(ex) = &self.exchanges {
            ex.write_stalled(result.is_pending());
        }
        if result.is_ready() {
            self.stall.progress();
            return result;
        }
        if !self.stall.expired(cx, self.write_timeout) {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for server.write_timeout",
        )))
    }
}

impl AsyncRead for ClientIo {
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

impl AsyncWrite for ClientIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    /// A TLS stream may accept a write into rustls and leave it waiting
    /// there; its flush is what finds the socket full.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.note_write(cx, result)
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

    const WRITE: Duration = Duration::from_secs(30);

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
        let mut io = ClientIo::new(Stream::Tcp(server), Bytes::from_static(b"two"), WRITE);
        io.unread(Bytes::from_static(b"one "));
        assert!(io.has_unread());
        let mut got = Vec::new();
        io.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"one two from the socket");
        assert!(!io.has_unread());
    }

    /// A TLS server stream and its client, over loopback, with a
    /// self-signed certificate made here.
    async fn tls_pair() -> (tokio_rustls::client::TlsStream<TcpStream>, TlsStream<TcpStream>) {
        use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let server_config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).expect("root");
        let client_config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (client, server) = pair().await;
        let name = ServerName::try_from("localhost").expect("name");
        let (client, server) = tokio::join!(
            tokio_rustls::TlsConnector::from(Arc::new(client_config)).connect(name, client),
            tokio_rustls::TlsAcceptor::from(Arc::new(server_config)).accept(server),
        );
        (client.expect("client handshake"), server.expect("server handshake"))
    }

    #[tokio::test]
    async fn plaintext_left_inside_rustls_keeps_the_connection_busy() {
        let (mut client, server) = tls_pair().await;
        client.write_all(b"one record").await.expect("write");
        client.flush().await.expect("flush");
        let mut io = ClientIo::new(Stream::Tls(Box::new(server)), Bytes::new(), WRITE);
        let mut three = [0u8; 3];
        io.read_exact(&mut three).await.expect("read");
        assert_eq!(&three, b"one");
        // The rest was decrypted with the first bytes and waits in rustls;
        // the socket has nothing more to signal.
        let mut io = io.into_idle().expect_err("bytes wait inside rustls");
        let mut rest = [0u8; 7];
        io.read_exact(&mut rest).await.expect("read");
        assert_eq!(&rest, b" record");
        assert!(io.into_idle().is_ok(), "nothing left: the connection may idle");
    }

    /// Attack review of 9e8e3e0: a client that stops reading held its
    /// connection (and the upstream one) forever.
    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_write_timeout() {
        let (client, server) = pair().await;
        let limit = Duration::from_millis(300);
        let mut io = ClientIo::new(Stream::Tcp(server), Bytes::new(), limit);
        let chunk = vec![0u8; 64 * 1024];
        let started = std::time::Instant::now();
        let err = loop {
            match io.write(&chunk).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= limit);
        drop(client);
    }

    #[tokio::test]
    async fn small_reads_take_unread_bytes_piecewise() {
        let (_client, server) = pair().await;
        let mut io = ClientIo::new(Stream::Tcp(server), Bytes::from_static(b"abcdef"), WRITE);
        let mut two = [0u8; 2];
        io.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"ab");
        io.unread(Bytes::from_static(b"XY"));
        let mut rest = [0u8; 6];
        io.read_exact(&mut rest).await.expect("read");
        assert_eq!(&rest, b"XYcdef");
    }
}
