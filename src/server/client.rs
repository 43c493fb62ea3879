//! Client connections, plain or TLS.
//!
//! A TLS connection does its handshake first (ALPN offers `h2` and
//! `http/1.1`). Then HTTP/2 is recognised from its preface (prior knowledge
//! on plain connections, ALPN's choice on TLS) and served by hyper-util's
//! auto connection. Everything else is HTTP/1.1, served one
//! *request cycle* at a time: a hyper HTTP/1 connection is built when bytes
//! arrive and taken apart again (`poll_without_shutdown` + `into_parts`)
//! once the exchange has settled (see [`Exchanges::settled`]) and no next
//! request has begun within the linger (`super::linger`, 20 ms at most):
//! a client that sends its next request at once keeps the same hyper
//! connection, and so skips the building and taking apart. Between
//! requests the connection is only its socket (and rustls's state, on TLS)
//! and this task: about 1 KiB of memory in all for a plain connection and
//! 9 KB for a TLS one (docs/PERFORMANCE.md), instead of some 21 KB or
//! 34 KB with hyper's buffers kept. The idle wait has its own limit,
//! `server.idle_timeout` (counted once the linger is over), and
//! `server.header_read_timeout` bounds the handshake plus the first bytes
//! of a new connection, and then the first request head of each cycle
//! (timed by the cycle, not by hyper: `drive`); a head that begins within
//! the linger and is not read by its end gets a cycle of its own, with the
//! whole `header_read_timeout` again.
//!
//! hyper takes the connection apart only when it is idle (`graceful_shutdown`
//! on an idle connection closes it without writing a byte); when it is not,
//! the same call just ends keep-alive, and the bookkeeping tells the two
//! apart, so the socket is reused only at a clean message boundary.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::{Held, Job, Slot};
use crate::conn::account::Account;
use crate::conn::exchange::{BodyRead, Exchanges, HandOff, RequestBody, Tracked};
use crate::conn::io::{ClientIo, Stream};
use crate::live::Shared;
use crate::respond::Body;
use crate::service::Connection;

/// Why a request head that took longer than `server.header_read_timeout`
/// was refused, in the access log and the debug line.
const HEAD_LATE: &str = "request head not received within header_read_timeout";

/// The answer to a request head that took longer than
/// `server.header_read_timeout`.
const HEAD_TIMED_OUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

type Work = Pin<Box<dyn Future<Output = Option<ClientIo>> + Send>>;

/// One client connection's task, until it closes, idles out or the server
/// stops. Written out by hand rather than as an `async fn` so that an idle
/// connection costs no more than these fields: the first read and each
/// request cycle run boxed, and the idle wait is a readiness poll plus a
/// slot in the bell's waker list (no timer, no `readable()` future, no
/// copies of the arguments an `async fn` would keep).
pub(super) struct ClientConnection {
    held: Held,
    conn: Connection,
    state: State,
}

enum State {
    Busy {
        work: Work,
    },
    Idle {
        stream: Option<Stream>,
        /// Where the bell keeps this task's waker.
        slot: Option<Slot>,
        /// The bell's ring count at which the idle wait is over.
        until: u32,
    },
    Done,
}

/// A new connection: its TCP socket, and the TLS acceptor when the server
/// terminates TLS.
pub(super) enum Opening {
    Tcp(TcpStream),
    Tls(TlsAcceptor, TcpStream),
}

impl ClientConnection {
    pub(super) fn new(held: Held, opening: Opening, conn: Connection) -> Self {
        let job = Arc::clone(&held.job);
        ClientConnection {
            held,
            conn,
            state: State::Busy {
                work: Box::pin(async move { open(&job, opening, conn).await }),
            },
        }
    }
}

impl Future for ClientConnection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let job = &this.held.job;
        loop {
            match &mut this.state {
                State::Busy { work } => match work.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => this.state = State::Done,
                    Poll::Ready(Some(io)) => match io.into_idle() {
                        // The next request's bytes are already here.
                        Err(io) => this.state = State::busy(job, io, this.conn),
                        Ok(stream) => {
                            this.state = State::Idle {
                                stream: Some(stream),
                                slot: None,
                                until: job.bell.rings().saturating_add(job.idle_rings),
                            }
                        }
                    },
                },
                State::Idle { stream, slot, until } => {
                    // `into_idle` found nothing buffered in rustls; only the
                    // socket can bring more.
                    match stream.as_ref().map(|s| s.socket().poll_read_ready(cx)) {
                        Some(Poll::Ready(Ok(()))) => {
                            job.bell.unpark(slot);
                            if let Some(stream) = stream.take() {
                                let io = ClientIo::new(stream, Bytes::new(), job.write_timeout);
                                this.state = State::busy(job, io, this.conn);
                            }
                        }
                        Some(Poll::Pending) => {
                            // Parked before the checks: a stop or ring after
                            // them still finds this waker.
                            job.bell.park(slot, cx.waker(), *until);
                            let evicted = job.bell.is_evicted(*slot);
                            if !evicted && !job.bell.is_stopping() && job.bell.rings() < *until {
                                return Poll::Pending;
                            }
                            job.bell.unpark(slot);
                            this.state = State::closing(job, stream.take());
                        }
                        // A socket error.
                        _ => {
                            job.bell.unpark(slot);
                            this.state = State::Done;
                        }
                    }
                }
                State::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Drop for ClientConnection {
    /// A task dropped while idle (the runtime shutting down) gives its
    /// waker slot back.
    fn drop(&mut self) {
        if let State::Idle { slot, .. } = &mut self.state {
            self.held.job.bell.unpark(slot);
        }
    }
}

impl State {
    fn busy(job: &Arc<Job>, io: ClientIo, conn: Connection) -> State {
        let job = Arc::clone(job);
        State::Busy {
            work: Box::pin(async move { cycle(&job, io, conn).await }),
        }
    }

    /// An idle connection whose time is up: TLS says `close_notify` first
    /// (bounded, in case the client stopped reading); TCP just closes.
    fn closing(job: &Job, stream: Option<Stream>) -> State {
        let Some(Stream::Tls(mut tls)) = stream else {
            return State::Done;
        };
        let limit = job.header_read_timeout;
        State::Busy {
            work: Box::pin(async move {
                let _ = tokio::time::timeout(limit, tls.shutdown()).await;
                None
            }),
        }
    }
}

/// Complete the TLS handshake if any and read the first bytes, both within
/// `server.header_read_timeout`. HTTP/2 is served here to the end (`None`);
/// otherwise the HTTP/1.1 stream is returned.
async fn open(job: &Job, opening: Opening, conn: Connection) -> Option<ClientIo> {
    let opened = async {
        let mut stream = match opening {
            Opening::Tcp(tcp) => Stream::Tcp(tcp),
            Opening::Tls(acceptor, tcp) => match acceptor.accept(tcp).await {
                Ok(tls) => Stream::Tls(Box::new(tls)),
                Err(e) => return Err(("TLS handshake failed", e)),
            },
        };
        match sniff(&mut stream).await {
            Ok(first) => Ok(first.map(|first| (stream, first))),
            Err(e) => Err(("read failed", e)),
        }
    };
    let (stream, first) = tokio::select! {
        biased;
        () = job.bell.stopped() => return None,
        read = tokio::time::timeout(job.header_read_timeout, opened) => match read {
            Ok(Ok(Some(opened))) => opened,
            Ok(Ok(None)) => return None,
            Ok(Err((what, e))) => {
                debug!(error = %e, remote = %conn.remote, "{what}");
                return None;
            }
            Err(_) => {
                debug!(remote = %conn.remote, "no request within header_read_timeout");
                return None;
            }
        },
    };
    let io = ClientIo::new(stream, first.bytes, job.write_timeout);
    if first.h2 {
        job.serve_auto(io, conn).await;
        return None;
    }
    Some(io)
}

/// The first bytes of a connection and whether they are the HTTP/2 preface.
struct First {
    bytes: Bytes,
    h2: bool,
}

/// Read until the bytes either are the HTTP/2 preface or cannot become it;
/// `None` when the client closed first.
async fn sniff<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<First>> {
    let mut buf = BytesMut::with_capacity(H2_PREFACE.len());
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
        let h2 = buf[..] == H2_PREFACE[..];
        if h2 || !H2_PREFACE.starts_with(&buf) {
            return Ok(Some(First {
                bytes: buf.freeze(),
                h2,
            }));
        }
    }
}

/// How a request cycle ended.
enum Ended {
    /// Settled and taken apart: wait for the next request on the socket.
    Released,
    /// Closed by hyper (client asked, error, timeout, drain).
    Closed,
    /// Answered `101`: the socket belongs to a tunnel now.
    Upgraded,
    /// The cycle's first request head was not read within
    /// `server.header_read_timeout`.
    HeadTimedOut,
}

/// One request cycle: build a hyper HTTP/1 connection over `io`, serve
/// until the exchange settles, and take it apart again. Returns the stream
/// when it may carry another request.
async fn cycle(job: &Job, io: ClientIo, conn: Connection) -> Option<ClientIo> {
    let exchanges = Arc::new(Exchanges::default());
    let watched = io.watched_by(Arc::clone(&exchanges));
    let service = CycleService {
        live: Arc::clone(&job.live),
        metrics: Arc::clone(&job.metrics),
        conn,
        exchanges: Arc::clone(&exchanges),
    };
    let mut hyper_conn = job.http1.serve_connection(TokioIo::new(watched), service);
    let ended = drive(job, &mut hyper_conn, &exchanges).await;
    let parts = hyper_conn.into_parts();
    let mid_head = !parts.read_buf.is_empty();
    let mut io = parts.io.into_inner();
    io.unread(parts.read_buf);
    match ended {
        Ok(Ended::Released) => Some(io),
        Ok(Ended::Upgraded) => {
            if let Some(tunnel) = exchanges.take_tunnel() {
                // The tunnel task logs its own failures.
                let _ = tunnel.send(io);
            }
            None
        }
        Ok(Ended::Closed) => {
            // TLS sends `close_notify` first, which a client that stopped
            // reading would hold up.
            let _ = tokio::time::timeout(job.header_read_timeout, io.shutdown()).await;
            None
        }
        Ok(Ended::HeadTimedOut) => {
            Account::refused(&job.metrics, 408, HEAD_LATE);
            debug!(remote = %conn.remote, "{HEAD_LATE}");
            // As hyper's own head timer did: a 408 to a client that sent
            // part of a head, a plain close to one that sent nothing.
            let _ = tokio::time::timeout(job.header_read_timeout, async {
                if mid_head {
                    io.write_all(HEAD_TIMED_OUT).await?;
                }
                io.shutdown().await
            })
            .await;
            None
        }
        Err(e) => {
            // hyper answers (or drops) these itself; the service never saw
            // them, so they are counted here. (A late head is not among
            // them: hyper's head timer is off, `Ended::HeadTimedOut`.)
            if e.is_parse_too_large() {
                Account::refused(&job.metrics, 431, "request head too large");
            } else if e.is_parse() {
                Account::refused(&job.metrics, 400, "malformed request head");
            }
            debug!(error = %e, remote = %conn.remote, "connection ended with an error");
            None
        }
    }
}

type Http1Conn = http1::Connection<TokioIo<ClientIo>, CycleService>;

/// The hyper service of one request cycle: the current usher service, with
/// each exchange counted in and its response body counted out.
struct CycleService {
    live: Shared,
    metrics: Arc<crate::metrics::Metrics>,
    conn: Connection,
    exchanges: Arc<Exchanges>,
}

impl hyper::service::Service<Request<Incoming>> for CycleService {
    type Response = Response<Tracked<Body>>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let number = self.exchanges.begin(&req);
        let read = BodyRead::new(Arc::clone(&self.exchanges), number);
        let mut req = req.map(|body| RequestBody::new(body, Some(read)));
        if req.headers().contains_key(http::header::UPGRADE) {
            req.extensions_mut().insert(HandOff::new(Arc::clone(&self.exchanges)));
        }
        // The service current when the request arrives: reloads apply to
        // the next request on a kept-alive connection.
        let service = Arc::clone(&self.live.load().service);
        let account = Account::open(&self.metrics, req.method(), req.uri());
        let method = req.method().clone();
        Answer {
            handled: Box::pin(service.handle(req, self.conn)),
            done: Some(Done {
                exchanges: Arc::clone(&self.exchanges),
                account,
                method,
            }),
        }
    }
}

type Handled = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// One request's answer: the service's future, boxed as it is (the
/// request's largest allocation, made and filled once), and what turns its
/// response into one the cycle tracks. Written out by hand: an `async`
/// block here would be a second copy of that future around it.
pub(super) struct Answer {
    handled: Handled,
    done: Option<Done>,
}

struct Done {
    exchanges: Arc<Exchanges>,
    account: Account,
    method: http::Method,
}

impl Future for Answer {
    type Output = Result<Response<Tracked<Body>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let res = std::task::ready!(this.handled.as_mut().poll(cx));
        let Some(Done {
            exchanges,
            mut account,
            method,
        }) = this.done.take()
        else {
            // Not reached: hyper polls a service future only until it is
            // ready (and a finished future may stay pending for good).
            return Poll::Pending;
        };
        let status = res.status();
        account.answered(status.as_u16());
        Poll::Ready(Ok(
            res.map(|body| Tracked::new(body, exchanges, &method, status).accounted(account))
        ))
    }
}

/// Poll the hyper connection; take it apart once the exchange has settled
/// and no next request has begun within `Job::linger`, or wind it down when
/// the server stops.
///
/// One timer per cycle does two jobs. Until the cycle's first request head
/// is read it is `server.header_read_timeout` (hyper's own head timer is
/// off: it allocates and registers a timer per request); after that it is
/// the linger, reset for each settled exchange. A head that begins within
/// a linger but is not read by its end is left to the next cycle, which
/// gives it the whole `header_read_timeout` again (hyper closes an idle
/// connection at once, and its buffered bytes seed that cycle).
async fn drive(job: &Job, hyper_conn: &mut Http1Conn, exchanges: &Exchanges) -> hyper::Result<Ended> {
    let mut stopping = pin!(job.bell.stopped());
    // Whether `stopping` has been polled once, and so holds this task's
    // waker: after that the flag alone says when to poll it again (a poll
    // of a waiting `Notified` takes the bell's lock).
    let mut stop_watched = false;
    let mut draining = false;
    let mut released_after: Option<u32> = None;
    let mut timer = Box::pin(tokio::time::sleep(job.header_read_timeout));
    // The exchange count whose settling the timer's linger follows; `None`
    // while it is the head deadline.
    let mut lingering_after: Option<u32> = None;
    poll_fn(|cx| {
        loop {
            if let Poll::Ready(done) = Pin::new(&mut *hyper_conn).poll_without_shutdown(cx) {
                done?;
                let ended = if exchanges.tunnel_claimed() {
                    Ended::Upgraded
                } else if !draining && released_after == Some(exchanges.started()) && exchanges.settled() {
                    Ended::Released
                } else {
                    Ended::Closed
                };
                return Poll::Ready(Ok(ended));
            }
            let stop_due = !stop_watched || job.bell.is_stopping();
            stop_watched = true;
            if !draining && stop_due && stopping.as_mut().poll(cx).is_ready() {
                draining = true;
                Pin::new(&mut *hyper_conn).graceful_shutdown();
                continue;
            }
            let started = exchanges.started();
            if started == 0 {
                // The first head of the cycle, not read yet; draining too,
                // for hyper goes on reading a head it has begun.
                return match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(Ended::HeadTimedOut)),
                    Poll::Pending => Poll::Pending,
                };
            }
            if draining || released_after.is_some() || !exchanges.settled() {
                return Poll::Pending;
            }
            if lingering_after != Some(started) {
                // Settled since the timer was last set: linger anew.
                lingering_after = Some(started);
                timer.as_mut().reset(tokio::time::Instant::now() + job.linger);
                continue;
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            released_after = Some(started);
            Pin::new(&mut *hyper_conn).graceful_shutdown();
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_task_stays_small() {
        // Everything an idle plain connection holds, besides tokio's task
        // header and the socket's registration, is this struct. tokio adds
        // about 104 bytes around it and rounds the task up to 128 bytes, so
        // up to 152 bytes here keeps the task at 256. The benchmark measures
        // the whole (docs/PERFORMANCE.md); this catches a change that
        // quietly inlines a large future again.
        let size = std::mem::size_of::<ClientConnection>();
        assert!(size <= 152, "ClientConnection is {size} bytes");
    }
}
