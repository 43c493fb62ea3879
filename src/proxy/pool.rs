//! The HTTP/1.1 upstream pool: keep-alive connections kept on two stacks
//! (newest first) and lent to one exchange at a time. A request without a
//! body takes a connection of usher's own exchange ([`super::wire`]); a
//! request with a body, or one asking for an upgrade, takes one made with
//! hyper's own `client::conn::http1`, driven by a task of its own. The two
//! kinds are never mixed on one connection.
//!
//! A connection goes back to the pool when its response body has been read
//! to the end, from inside the body's own poll: no task per request, no
//! hashing of a pool key (there is one upstream). A body dropped before its
//! end takes its connection with it, and hyper closes it. A 101 keeps its
//! connection: it now belongs to the tunnel.
//!
//! A connection unused for `upstream.idle_timeout` is closed, by the next
//! request that looks at the pool or by a reaper task (a third of that
//! timeout apart; it ends with the pool). A pooled connection the upstream
//! closed while it sat idle is skipped: hyper reads the EOF on its own
//! connections, and usher's own are looked at (without waiting) before
//! they are lent. If the close races with our request, hyper hands the
//! unsent request back and it is retried on the next connection; an
//! exchange of usher's own is tried again on another connection only when
//! its method is idempotent and not a byte of an answer came back.

use std::error::Error as StdError;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::{Request, Response, Uri, request};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower_service::Service as _;
use tracing::debug;

use super::UpstreamBody;
use super::wire::{self, Conn, WireError};
use crate::body::{AtEnd, Watched};
use crate::hop::Added;
use crate::metrics::Metrics;

/// Idle connections kept at most; the oldest goes first.
const MAX_IDLE: usize = 1024;
/// The reaper's period, at the least.
const MIN_REAP_EVERY: Duration = Duration::from_millis(100);

/// Why an exchange failed before a response head arrived.
#[derive(Debug)]
pub(super) enum Failure {
    /// No connection could be made (refused, unreachable, TLS).
    Connect(Box<dyn StdError + Send + Sync>),
    /// The connection broke, or the request body failed, while sending.
    Send(hyper::Error),
    /// usher's own exchange failed before a response head arrived.
    Wire(WireError),
}

/// Keep-alive HTTP/1.1 connections to one upstream origin.
pub(super) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority` of the upstream: what is connected to.
    origin: Uri,
    /// `upstream.idle_timeout`.
    idle_for: Duration,
    idle: Mutex<Vec<Idle>>,
    /// Idle connections of usher's own exchange.
    wire_idle: Mutex<Vec<WireIdle>>,
    /// Whether the reaper task was started (with the first connection).
    reaping: AtomicBool,
    metrics: Arc<Metrics>,
}

struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

struct WireIdle {
    conn: Box<Conn>,
    since: Instant,
}

/// Unused since `since` for longer than `idle_for`: to be closed, not lent.
fn stale(since: Instant, idle_for: Duration) -> bool {
    since.elapsed() > idle_for
}

/// Push onto an idle stack, dropping its oldest entry when it is full.
fn push_idle<T>(stack: &Mutex<Vec<T>>, entry: T) {
    let mut idle = stack.lock().unwrap_or_else(PoisonError::into_inner);
    if idle.len() >= MAX_IDLE {
        idle.remove(0);
    }
    idle.push(entry);
}

impl Pool {
    pub(super) fn new(
        connector: HttpsConnector<HttpConnector>,
        origin: Uri,
        idle_for: Duration,
        metrics: Arc<Metrics>,
    ) -> Pool {
        Pool {
            connector,
            origin,
            idle_for,
            idle: Mutex::new(Vec::new()),
            wire_idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            metrics,
        }
    }

    /// Send `req` (origin-form target, `Host` set) on a pooled connection,
    /// or on a new one when none is left. The lease returns the connection
    /// once the response body has ended.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        while let Some(mut sender) = self.take() {
            // A connection handed back at the end of a body may still be
            // finishing that exchange; this waits for it, or reports it closed.
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(res) => return Ok((res, self.lease(sender))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => {
                        debug!(error = %e.error(), "pooled upstream connection closed before the request was sent; retrying");
                        req = unsent;
                    }
                    None => return Err(Failure::Send(e.into_error())),
                },
            }
        }
        // Boxed: connecting is the cold path, and its future (hyper's
        // handshake included) would otherwise triple this one's size.
        let mut sender = Box::pin(self.connect()).await?;
        let res = sender.send_request(req).await.map_err(Failure::Send)?;
        Ok((res, self.lease(sender)))
    }

    /// Send the bodyless request `parts` (origin-form target, `Host` set),
    /// with the fields in `added` after its own, by usher's own exchange,
    /// on a pooled connection or a new one. An idempotent request whose
    /// pooled connection turns out closed, with no answer begun, is tried
    /// on the next one.
    pub(super) async fn send_wire(
        self: &Arc<Self>,
        mut parts: request::Parts,
        added: &Added,
    ) -> Result<Response<WireBody>, Failure> {
        while let Some(mut conn) = self.take_wire() {
            match conn.exchange(&mut parts, added).await {
                Ok(head) => return self.wire_response(conn, head, &parts),
                Err(e) if parts.method.is_idempotent() && conn.unanswered(&e) => {
                    debug!(error = %e, "pooled upstream connection was closed; retrying");
                }
                Err(e) => return Err(Failure::Wire(e)),
            }
        }
        // Boxed: connecting is the cold path (see `send`).
        let io = Box::pin(self.connect_io()).await?;
        let mut conn = Box::new(Conn::new(io));
        let head = conn.exchange(&mut parts, added).await.map_err(Failure::Wire)?;
        self.wire_response(conn, head, &parts)
    }

    fn wire_response(
        self: &Arc<Self>,
        conn: Box<Conn>,
        head: wire::Head,
        parts: &request::Parts,
    ) -> Result<Response<WireBody>, Failure> {
        wire::respond(conn, head, &parts.method, Home(Arc::clone(self))).map_err(Failure::Wire)
    }

    fn lease(self: &Arc<Self>, sender: SendRequest<UpstreamBody>) -> Lease {
        Lease {
            pool: Arc::clone(self),
            sender,
        }
    }

    /// A new connection (TCP, and TLS for an https upstream), counted.
    async fn connect_io(self: &Arc<Self>) -> Result<wire::Io, Failure> {
        self.start_reaper();
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await.map_err(Failure::Connect)?;
        let io = connector.call(self.origin.clone()).await.map_err(Failure::Connect)?;
        self.metrics.upstream_connected();
        Ok(TokioIo::new(io))
    }

    /// A new connection for hyper's client, driven by its own task until
    /// it closes.
    async fn connect(self: &Arc<Self>) -> Result<SendRequest<UpstreamBody>, Failure> {
        let io = self.connect_io().await?.into_inner();
        let (sender, conn) = http1::handshake(io).await.map_err(Failure::Send)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "upstream connection closed with an error");
            }
        });
        Ok(sender)
    }

    /// Close idle connections older than `idle_for` every third of it,
    /// from a task that holds the pool weakly and ends with it. Started
    /// once, from inside the runtime (the first connect).
    fn start_reaper(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(self);
        let every = (self.idle_for / 3).max(MIN_REAP_EVERY);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.retain(|c| !stale(c.since, pool.idle_for) && !c.sender.is_closed());
                drop(idle);
                let mut idle = pool.wire_idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.retain_mut(|c| !stale(c.since, pool.idle_for) && c.conn.looks_open());
            }
        });
    }

    /// The newest idle connection that is still open and fresh.
    fn take(&self) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let old = idle.iter().take_while(|c| stale(c.since, self.idle_for)).count();
        idle.drain(..old);
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() {
                return Some(c.sender);
            }
        }
        None
    }

    /// The newest idle connection of usher's own exchange that is fresh
    /// and shows no sign of having been closed.
    fn take_wire(&self) -> Option<Box<Conn>> {
        let mut idle = self.wire_idle.lock().unwrap_or_else(PoisonError::into_inner);
        let old = idle.iter().take_while(|c| stale(c.since, self.idle_for)).count();
        idle.drain(..old);
        while let Some(mut c) = idle.pop() {
            if c.conn.looks_open() {
                return Some(c.conn);
            }
        }
        None
    }

    fn put(&self, sender: SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        push_idle(
            &self.idle,
            Idle {
                sender,
                since: Instant::now(),
            },
        );
    }
}

/// A response body of usher's own exchange.
pub type WireBody = wire::Body<Home>;

/// Where a connection of usher's own exchange goes back to.
pub struct Home(Arc<Pool>);

impl wire::Keep for Home {
    fn keep(self, mut conn: Box<Conn>) {
        conn.trim();
        push_idle(
            &self.0.wire_idle,
            WireIdle {
                conn,
                since: Instant::now(),
            },
        );
    }
}

/// A pooled connection lent to one exchange.
pub struct Lease {
    pool: Arc<Pool>,
    sender: SendRequest<UpstreamBody>,
}

impl Lease {
    /// Return the connection once it can take the next request. That is
    /// almost always at once: hyper marks it ready as soon as it has read
    /// the response's end. It is not when the upstream answered before
    /// reading the whole request body; then a task waits for the body to be
    /// sent (or the connection to close), so that no request ever queues
    /// behind a stalled one.
    fn give_back(self) {
        if self.sender.is_ready() {
            return self.pool.put(self.sender);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Lease { pool, mut sender } = self;
        runtime.spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(pool.idle_for, sender.ready()).await {
                pool.put(sender);
            }
        });
    }
}

/// An upstream response body. When it has been read to its end (or is
/// dropped with nothing left: HEAD, 204, a length already read), the
/// connection it came on goes back to the pool; dropped part-way, it
/// takes the connection with it.
pub type HyperBody = Watched<Lease>;

impl AtEnd for Lease {
    type Error = hyper::Error;

    fn reached(self) {
        self.give_back();
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").finish_non_exhaustive()
    }
}
