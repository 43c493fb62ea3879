//! Plain (non-TLS) client connections.
//!
//! HTTP/2 with prior knowledge is recognised from its preface and served by
//! hyper-util's auto connection. Everything else is HTTP/1.1, served one
//! *request cycle* at a time: a hyper HTTP/1 connection is built when bytes
//! arrive and taken apart again (`poll_without_shutdown` + `into_parts`) as
//! soon as the exchange has settled (see [`Exchanges::settled`]). Between
//! requests the connection is only its socket and this task, about 1 KiB
//! of memory in all (docs/PERFORMANCE.md) instead of some 21 KB with
//! hyper's buffers kept; the idle wait has its own
//! limit, `server.idle_timeout`, and `server.header_read_timeout` counts
//! from the first byte of each request.
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
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::futures::OwnedNotified;
use tracing::debug;

use super::exchange::{Exchanges, HandOff, Tracked};
use super::io::PlainIo;
use super::{Held, Job};
use crate::live::Shared;
use crate::service::Connection;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

type Work = Pin<Box<dyn Future<Output = Option<PlainIo>> + Send>>;

pin_project! {
    /// One plain connection's task, until it closes, idles out or the
    /// server stops. Written out by hand rather than as an `async fn` so
    /// that an idle connection costs no more than these fields: the first
    /// read and each request cycle run boxed, and the idle wait is a
    /// readiness poll plus the shared bell (no timer, no `readable()`
    /// future, no copies of the arguments an `async fn` would keep).
    pub(super) struct PlainConnection {
        held: Held,
        conn: Connection,
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Busy { work: Work },
        Idle { io: Option<PlainIo>, deadline: Instant, #[pin] rung: OwnedNotified },
        Done,
    }
}

impl PlainConnection {
    pub(super) fn new(held: Held, stream: TcpStream, conn: Connection) -> Self {
        let job = Arc::clone(&held.job);
        PlainConnection {
            held,
            conn,
            state: State::Busy {
                work: Box::pin(async move { open(&job, stream, conn).await }),
            },
        }
    }
}

impl Future for PlainConnection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let job = &this.held.job;
        loop {
            match this.state.as_mut().project() {
                StateProj::Busy { work } => match work.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => this.state.set(State::Done),
                    Poll::Ready(Some(io)) if io.has_unread() => {
                        this.state.set(State::busy(job, io, *this.conn));
                    }
                    Poll::Ready(Some(io)) => this.state.set(State::Idle {
                        io: Some(io),
                        deadline: Instant::now() + job.idle_timeout,
                        rung: Arc::clone(&job.bell.notify).notified_owned(),
                    }),
                },
                StateProj::Idle { io, deadline, mut rung } => {
                    match io.as_ref().map(|io| io.stream().poll_read_ready(cx)) {
                        Some(Poll::Ready(Ok(()))) => {
                            if let Some(io) = io.take() {
                                this.state.set(State::busy(job, io, *this.conn));
                            }
                        }
                        Some(Poll::Pending) if !job.bell.is_stopping() && Instant::now() < *deadline => {
                            if rung.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            // Rung: listen for the next ring, then look again.
                            rung.set(Arc::clone(&job.bell.notify).notified_owned());
                        }
                        // A socket error, stop, or idle_timeout passed.
                        _ => this.state.set(State::Done),
                    }
                }
                StateProj::Done => return Poll::Ready(()),
            }
        }
    }
}

impl State {
    fn busy(job: &Arc<Job>, io: PlainIo, conn: Connection) -> State {
        let job = Arc::clone(job);
        State::Busy {
            work: Box::pin(async move { cycle(&job, io, conn).await }),
        }
    }
}

/// Read the first bytes: HTTP/2 with prior knowledge is served here to the
/// end (`None`); otherwise the HTTP/1.1 stream is returned.
async fn open(job: &Job, mut stream: TcpStream, conn: Connection) -> Option<PlainIo> {
    let first = tokio::select! {
        biased;
        () = job.bell.stopped() => return None,
        read = tokio::time::timeout(job.header_read_timeout, sniff(&mut stream)) => match read {
            Ok(Ok(Some(first))) => first,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => {
                debug!(error = %e, remote = %conn.remote, "read failed");
                return None;
            }
            Err(_) => {
                debug!(remote = %conn.remote, "no request within header_read_timeout");
                return None;
            }
        },
    };
    let io = PlainIo::new(stream, first.bytes);
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
async fn sniff(stream: &mut TcpStream) -> io::Result<Option<First>> {
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
}

/// One request cycle: build a hyper HTTP/1 connection over `io`, serve
/// until the exchange settles, and take it apart again. Returns the stream
/// when it may carry another request.
async fn cycle(job: &Job, io: PlainIo, conn: Connection) -> Option<PlainIo> {
    let exchanges = Arc::new(Exchanges::default());
    let watched = io.watched_by(Arc::clone(&exchanges));
    let service = CycleService {
        live: Arc::clone(&job.live),
        conn,
        exchanges: Arc::clone(&exchanges),
    };
    let mut hyper_conn = job.http1.serve_connection(TokioIo::new(watched), service);
    let ended = drive(job, &mut hyper_conn, &exchanges).await;
    let parts = hyper_conn.into_parts();
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
            let _ = io.shutdown().await;
            None
        }
        Err(e) => {
            debug!(error = %e, remote = %conn.remote, "connection ended with an error");
            None
        }
    }
}

type Http1Conn = http1::Connection<TokioIo<PlainIo>, CycleService>;

/// The hyper service of one request cycle: the current usher service, with
/// each exchange counted in and its response body counted out.
struct CycleService {
    live: Shared,
    conn: Connection,
    exchanges: Arc<Exchanges>,
}

impl hyper::service::Service<Request<Incoming>> for CycleService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn call(&self, mut req: Request<Incoming>) -> BoxedResponse {
        self.exchanges.begin(&req);
        if req.headers().contains_key(http::header::UPGRADE) {
            req.extensions_mut().insert(HandOff::new(Arc::clone(&self.exchanges)));
        }
        // The service current when the request arrives: reloads apply to
        // the next request on a kept-alive connection.
        let service = Arc::clone(&self.live.load().service);
        let exchanges = Arc::clone(&self.exchanges);
        let method = req.method().clone();
        let conn = self.conn;
        Box::pin(async move {
            let res = service.handle(req, conn).await;
            let status = res.status();
            Ok(res.map(|body| Tracked::new(body, exchanges, &method, status)))
        })
    }
}

/// Poll the hyper connection; take it apart once the exchange has settled,
/// or wind it down when the server stops.
async fn drive(job: &Job, hyper_conn: &mut Http1Conn, exchanges: &Exchanges) -> hyper::Result<Ended> {
    let mut stopping = pin!(job.bell.stopped());
    let mut draining = false;
    let mut released_after: Option<u32> = None;
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
            if !draining && stopping.as_mut().poll(cx).is_ready() {
                draining = true;
                Pin::new(&mut *hyper_conn).graceful_shutdown();
                continue;
            }
            if !draining && released_after.is_none() && exchanges.settled() {
                released_after = Some(exchanges.started());
                Pin::new(&mut *hyper_conn).graceful_shutdown();
                continue;
            }
            return Poll::Pending;
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
        // header and the socket's registration, is this struct. The
        // benchmark measures the whole (docs/PERFORMANCE.md); this catches
        // a change that quietly inlines a large future again.
        let size = std::mem::size_of::<PlainConnection>();
        assert!(size <= 256, "PlainConnection is {size} bytes");
    }
}
