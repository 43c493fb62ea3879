//! The accept loop: TCP → optional TLS → a connection task serving the
//! current `Service`, with a connection cap, accept-error backoff and a
//! graceful drain. Every connection, plain or TLS, goes through [`client`]:
//! HTTP/1.1 that holds no hyper buffers between requests, or HTTP/2 (prior
//! knowledge, or ALPN on TLS) through hyper-util's auto connection. Knows
//! nothing of sessions or headers.

mod bell;
mod client;
mod h2;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::live::Shared;
use crate::metrics::Metrics;
use crate::service::Connection;
use bell::{Bell, Slot};
use client::{ClientConnection, Opening};

/// Serve `listener` until `stop` turns true, then drain connections for at
/// most `server.shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    live: Shared,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let config = Arc::clone(live.load().service.config());
    let job = Arc::new(Job::new(&config, live, metrics));
    let ticker = tokio::spawn({
        let job = Arc::clone(&job);
        async move {
            let mut every = tokio::time::interval(tick(job.idle_timeout));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                job.bell.ring();
            }
        }
    });
    loop {
        let Some((stream, remote)) = accept_until(&listener, pin!(stopped(&mut stop)), "proxy").await else {
            break;
        };
        job.metrics.accepted();
        // Each connection holds a permit, given back when its `Held` drops.
        // At the cap the longest-idle keep-alive connection is asked to
        // close to make room (as nginx does); a new client never waits long.
        if !job.take_permit().await {
            warn!(remote = %remote, "at server.max_connections with no idle connection to close; refused");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let held = Held::new(Arc::clone(&job));
        let tls = job.live.load().tls.clone();
        let (opening, conn) = match tls {
            None => (Opening::Tcp(stream), Connection { remote, tls: false }),
            Some(acceptor) => (Opening::Tls(acceptor, stream), Connection { remote, tls: true }),
        };
        tokio::spawn(ClientConnection::new(held, opening, conn));
    }
    drop(listener);
    job.bell.stop();
    ticker.abort();
    info!("shutting down; draining connections");
    // Every permit back means every connection task has ended.
    let all = u32::try_from(config.server.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(config.server.shutdown_timeout, job.permits.acquire_many(all))
        .await
        .is_err()
    {
        warn!("drain deadline passed; closing remaining connections");
    }
    Ok(())
}

/// How long a new connection waits at the cap for an idle one to make room.
const ROOM_WAIT: Duration = Duration::from_secs(1);

/// What a connection task holds for its whole life: its permit under
/// `max_connections` (given back on drop, which is also what the drain
/// waits for) and its place in the open-connection gauge. Only the `Arc`:
/// an idle connection's task is kept small (see `client`).
struct Held {
    job: Arc<Job>,
}

impl Held {
    /// Take over a permit the accept loop acquired and forgot.
    fn new(job: Arc<Job>) -> Self {
        job.metrics.connection(1);
        Held { job }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.job.metrics.connection(-1);
        self.job.permits.add_permits(1);
    }
}

/// What every connection task shares: the live service and the protocol
/// settings, fixed at start (`server.*` changes need a restart).
struct Job {
    live: Shared,
    metrics: Arc<Metrics>,
    http1: http1::Builder,
    auto: auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    /// Upstream exchanges (HTTP/2 streams) one connection may have at once.
    max_per_client: usize,
    /// `idle_timeout` in bell rings, rounded up, plus the ring in progress.
    idle_rings: u32,
    /// How long a settled HTTP/1.1 cycle waits for the next request (see
    /// [`linger`]).
    linger: Duration,
    bell: Bell,
    /// One per open connection, at most `server.max_connections`.
    permits: Semaphore,
}

impl Job {
    /// Take a permit under `max_connections`: at once, or once the
    /// longest-idle keep-alive connection has closed for it (within
    /// [`ROOM_WAIT`]). False when none came.
    async fn take_permit(&self) -> bool {
        if let Ok(p) = self.permits.try_acquire() {
            p.forget();
            return true;
        }
        let mut asked = self.bell.evict_longest_idle();
        if !asked {
            // Connections that have just answered linger before they idle
            // (see `linger`); by twice that the quiet ones can be asked.
            if let Ok(Ok(p)) = tokio::time::timeout(2 * self.linger, self.permits.acquire()).await {
                p.forget();
                return true;
            }
            asked = self.bell.evict_longest_idle();
        }
        self.metrics.evicted(asked);
        match tokio::time::timeout(ROOM_WAIT, self.permits.acquire()).await {
            Ok(Ok(p)) => {
                p.forget();
                true
            }
            _ => false,
        }
    }

    fn new(config: &Config, live: Shared, metrics: Arc<Metrics>) -> Self {
        let server = &config.server;
        let mut h1 = http1::Builder::new();
        // The request cycle times request heads itself (`client::drive`).
        h1.timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(server.max_header_bytes);
        Job {
            live,
            metrics,
            http1: h1,
            auto: auto_builder(config),
            header_read_timeout: server.header_read_timeout,
            idle_timeout: server.idle_timeout,
            write_timeout: server.write_timeout,
            max_per_client: config.upstream.max_per_client,
            idle_rings: idle_rings(server.idle_timeout),
            linger: linger(server.header_read_timeout),
            bell: Bell::default(),
            permits: Semaphore::new(server.max_connections),
        }
    }
}

fn auto_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let max_header = config.server.max_header_bytes;
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout)
        .max_buf_size(max_header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX));
    builder
}

/// How long a settled cycle keeps hyper's connection (and its buffers) for
/// the next request before it is taken apart: a client that sends its next
/// request at once (a page's assets, an API client, a load test) is served
/// by the same hyper connection, and one that pauses costs only its socket
/// after this. A quarter of `header_read_timeout` at most: a head still
/// arriving when the linger ends moves to a new cycle with the whole
/// `header_read_timeout`, so a slow head gets at most 1.25 times that.
fn linger(header_read_timeout: Duration) -> Duration {
    LINGER.min(header_read_timeout / 4)
}

/// See [`linger`].
const LINGER: Duration = Duration::from_millis(20);

/// How often idle connections look at their deadline: a quarter of
/// `idle_timeout`, between 250 ms and 5 s, so a connection closes at most
/// that late.
fn tick(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
}

/// Rings of [`tick`] an idle connection waits: enough that it never closes
/// before `idle_timeout`, and at most one tick after.
fn idle_rings(idle_timeout: Duration) -> u32 {
    let tick = tick(idle_timeout).as_millis().max(1);
    let rings = idle_timeout.as_millis().div_ceil(tick) + 1;
    u32::try_from(rings).unwrap_or(u32::MAX)
}

/// The next connection on `listener`, or `None` once `stop` completes.
/// Accept errors (usually EMFILE) are logged and retried after a short
/// pause instead of spinning or exiting.
pub async fn accept_until<F: Future<Output = ()>>(
    listener: &TcpListener,
    mut stop: Pin<&mut F>,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => return Some(pair),
                Err(e) => {
                    warn!(error = %e, listener = what, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = stop.as_mut() => return None,
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linger_leaves_the_next_request_most_of_its_head_time() {
        assert_eq!(linger(Duration::from_secs(10)), LINGER);
        assert_eq!(linger(Duration::from_millis(40)), Duration::from_millis(10));
        for ms in [1u64, 10, 80, 1_000, 30_000] {
            let head = Duration::from_millis(ms);
            assert!(linger(head) * 4 <= head, "{head:?}");
        }
    }

    #[test]
    fn idle_connections_never_close_early_and_at_most_a_tick_late() {
        for ms in [1u64, 100, 250, 999, 1_000, 3_000, 10_000, 60_000, 3_600_000] {
            let idle = Duration::from_millis(ms);
            let tick = tick(idle);
            // The first of the rings may come at once, so the wait is at
            // least (rings - 1) ticks and at most `rings` ticks.
            let rings = idle_rings(idle);
            let shortest = tick * (rings - 1);
            assert!(shortest >= idle, "{idle:?}: {rings} rings of {tick:?}");
            assert!(shortest < idle + tick, "{idle:?}: {rings} rings of {tick:?}");
        }
    }
}
