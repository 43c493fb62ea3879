//! HTTP/2 client connections (prior knowledge, or ALPN on TLS), served by
//! hyper-util's auto connection, with the limits hyper's HTTP/2 server does
//! not keep by itself:
//!
//! - a connection that has opened no stream within
//!   `server.header_read_timeout` of its preface, or has had none open for
//!   `server.idle_timeout`, is shut down (an idle HTTP/2 connection held its
//!   slot under `max_connections` forever before);
//! - a connection whose streams have response data waiting for the client
//!   (its TCP window or its HTTP/2 flow-control window closed) and that makes
//!   no progress for `server.write_timeout` is closed;
//! - at most `upstream.max_per_client` streams are served at once; more wait
//!   for a turn, so one connection cannot open hundreds of upstream
//!   connections.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use super::Job;
use crate::conn::RequestBody;
use crate::conn::account::Account;
use crate::conn::exchange::is_bodiless;
use crate::respond::Body;
use crate::service::Connection;

impl Job {
    /// Serve `io` as HTTP/2 until it ends, idles out or stalls; on stop,
    /// finish in-flight streams (for at most `shutdown_timeout`) and close.
    pub(super) async fn serve_auto<I>(&self, io: I, conn: Connection)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let streams = Arc::new(Streams::new(self.max_per_client));
        let live = Arc::clone(&self.live);
        let metrics = Arc::clone(&self.metrics);
        let shared = Arc::clone(&streams);
        let hyper_svc = service_fn(move |req: Request<Incoming>| {
            // The service current when the request arrives: reloads apply
            // to the next stream.
            let service = Arc::clone(&live.load().service);
            let streams = Arc::clone(&shared);
            let mut account = Account::open(&metrics, req.method(), req.uri());
            async move {
                let open = Open::new(Arc::clone(&streams));
                let turn = streams.turn().await;
                let method = req.method().clone();
                let res = service.handle(req.map(|body| RequestBody::new(body, None)), conn).await;
                account.answered(res.status().as_u16());
                let ended = is_bodiless(&method, res.status());
                Ok::<_, Infallible>(res.map(|body| Counted {
                    body,
                    open,
                    _turn: turn,
                    account,
                    ended,
                }))
            }
        });
        let mut served = Box::pin(self.auto.serve_connection_with_upgrades(TokioIo::new(io), hyper_svc));
        let mut every = tokio::time::interval(super::tick(self.idle_timeout.min(self.write_timeout)));
        let limits = Limits {
            first: self.header_read_timeout,
            idle: self.idle_timeout,
            write: self.write_timeout,
        };
        let result = loop {
            tokio::select! {
                r = served.as_mut() => break r,
                () = self.bell.stopped() => {
                    served.as_mut().graceful_shutdown();
                    break served.await;
                }
                _ = every.tick() => match streams.verdict(&limits) {
                    Verdict::Fine => {}
                    Verdict::Idle => {
                        debug!(remote = %conn.remote, "HTTP/2 connection idle; closing");
                        served.as_mut().graceful_shutdown();
                        // The GOAWAY waits for the client to answer a PING; a
                        // client that never does is closed after
                        // header_read_timeout.
                        match tokio::time::timeout(self.header_read_timeout, served.as_mut()).await {
                            Ok(r) => break r,
                            Err(_) => return,
                        }
                    }
                    Verdict::Stalled => {
                        debug!(remote = %conn.remote, "HTTP/2 client read nothing for server.write_timeout; closing");
                        return;
                    }
                },
            }
        };
        if let Err(e) = result {
            debug!(error = %e, remote = %conn.remote, "connection ended with an error");
        }
    }
}

/// The three bounds a connection is watched against.
struct Limits {
    /// For the first stream after the preface.
    first: Duration,
    /// With no stream open.
    idle: Duration,
    /// Without progress while response data waits for the client.
    write: Duration,
}

/// What the watchdog decides on a tick.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fine,
    Idle,
    Stalled,
}

/// One HTTP/2 connection's streams, as its watchdog sees them. Times are
/// milliseconds since `born`.
struct Streams {
    born: Instant,
    /// Streams whose response has not been dropped yet.
    open: AtomicUsize,
    /// Streams ever opened (0: still waiting for the first).
    opened: AtomicUsize,
    /// Streams whose last data frame hyper has not come back for.
    waiting: AtomicUsize,
    /// When the last stream closed (or the connection began).
    idle_since: AtomicU64,
    /// When a response body was last polled.
    progress: AtomicU64,
    turns: Arc<Semaphore>,
}

impl Streams {
    fn new(max_per_client: usize) -> Self {
        Streams {
            born: Instant::now(),
            open: AtomicUsize::new(0),
            opened: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            turns: Arc::new(Semaphore::new(max_per_client)),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Wait for a turn under `upstream.max_per_client`. The semaphore is
    /// never closed, so `None` cannot happen in practice.
    async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.turns).acquire_owned().await.ok()
    }

    fn verdict(&self, limits: &Limits) -> Verdict {
        let now = self.now();
        let since = |at: &AtomicU64| Duration::from_millis(now.saturating_sub(at.load(Relaxed)));
        if self.waiting.load(Relaxed) > 0 && since(&self.progress) >= limits.write {
            return Verdict::Stalled;
        }
        let bound = if self.opened.load(Relaxed) == 0 {
            limits.first
        } else {
            limits.idle
        };
        if self.open.load(Relaxed) == 0 && since(&self.idle_since) >= bound {
            return Verdict::Idle;
        }
        Verdict::Fine
    }
}

/// A stream counted open until its response is dropped.
struct Open {
    streams: Arc<Streams>,
    waiting: bool,
}

impl Open {
    fn new(streams: Arc<Streams>) -> Self {
        streams.open.fetch_add(1, Relaxed);
        streams.opened.fetch_add(1, Relaxed);
        Open {
            streams,
            waiting: false,
        }
    }

    fn set_waiting(&mut self, waiting: bool) {
        if waiting != self.waiting {
            self.waiting = waiting;
            if waiting {
                self.streams.waiting.fetch_add(1, Relaxed);
            } else {
                self.streams.waiting.fetch_sub(1, Relaxed);
            }
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.set_waiting(false);
        let s = &self.streams;
        s.idle_since.store(s.now(), Relaxed);
        s.open.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its stream counted (and its turn taken)
/// until hyper drops it, and tells the watchdog when data waits for the
/// client: after a data frame, until hyper comes back for the next.
struct Counted {
    body: Body,
    open: Open,
    _turn: Option<OwnedSemaphorePermit>,
    account: Account,
    /// Sent to the end (or carries no body).
    ended: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.ended || self.body.is_end_stream() {
            self.account.ended();
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let streams = &this.open.streams;
        streams.progress.store(streams.now(), Relaxed);
        this.open.set_waiting(false);
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => this.open.set_waiting(frame.is_data() && !this.body.is_end_stream()),
            Poll::Ready(Some(Err(_))) => this.account.upstream_failed(),
            Poll::Ready(None) => this.ended = true,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            first: Duration::ZERO,
            idle: Duration::ZERO,
            write: Duration::ZERO,
        }
    }

    #[test]
    fn a_connection_without_streams_is_idle_and_one_with_waiting_data_stalls() {
        let streams = Arc::new(Streams::new(2));
        assert_eq!(streams.verdict(&limits()), Verdict::Idle, "no stream since the preface");
        let mut open = Open::new(Arc::clone(&streams));
        assert_eq!(streams.verdict(&limits()), Verdict::Fine, "a stream is open");
        open.set_waiting(true);
        assert_eq!(streams.verdict(&limits()), Verdict::Stalled);
        let long = Limits {
            write: Duration::from_secs(60),
            ..limits()
        };
        assert_eq!(streams.verdict(&long), Verdict::Fine, "not stalled for long yet");
        drop(open);
        assert_eq!(streams.waiting.load(Relaxed), 0);
        assert_eq!(streams.verdict(&limits()), Verdict::Idle);
        let patient = Limits {
            idle: Duration::from_secs(60),
            ..limits()
        };
        assert_eq!(streams.verdict(&patient), Verdict::Fine, "idle, but not for long");
    }
}
