//! The accept loop: TCP → optional TLS → a connection task serving the
//! current `Service`, with a connection cap, accept-error backoff and a
//! graceful drain. Every connection, plain or TLS, goes through [`client`]:
//! HTTP/1.1 that holds no hyper buffers between requests, or HTTP/2 (prior
//! knowledge, or ALPN on TLS) through hyper-util's auto connection. Knows
//! nothing of sessions or headers.

mod client;
mod exchange;
mod h2;
mod io;

pub use exchange::{HandOff, RequestBody};
pub use io::ClientIo;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::live::Shared;
use crate::metrics::Metrics;
use crate::service::Connection;
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
        // Stop accepting while at the connection cap: the kernel queues.
        // The permit goes back when the connection's `Held` drops.
        tokio::select! {
            p = job.permits.acquire() => p.map_err(std::io::Error::other)?.forget(),
            () = stopped(&mut stop) => break,
        };
        let Some((stream, remote)) = accept_until(&listener, pin!(stopped(&mut stop)), "proxy").await else {
            job.permits.add_permits(1);
            break;
        };
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
    bell: Bell,
    /// One per open connection, at most `server.max_connections`.
    permits: Semaphore,
}

impl Job {
    fn new(config: &Config, live: Shared, metrics: Arc<Metrics>) -> Self {
        let server = &config.server;
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(server.header_read_timeout)
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

/// Wakes connection tasks when the server stops, and idle client
/// connections on every tick so that they can check their deadline (which
/// they count in ticks). Busy connections wait on the `Notify`; idle ones
/// park their waker in a shared list, which costs them a 4-byte slot
/// number instead of a timer or a `Notified` (64 bytes) of their own.
#[derive(Default)]
struct Bell {
    stopping: AtomicBool,
    rings: AtomicU32,
    notify: Notify,
    idle: Mutex<Parked>,
}

/// Idle connections' wakers; a free slot is `None` and listed in `free`.
#[derive(Default)]
struct Parked {
    wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
}

/// A connection's place in [`Parked`]: its index plus one.
type Slot = NonZeroU32;

impl Bell {
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.wake_idle();
    }

    fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        self.wake_idle();
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Rings so far.
    fn rings(&self) -> u32 {
        self.rings.load(Ordering::SeqCst)
    }

    fn wake_idle(&self) {
        let parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        for waker in parked.wakers.iter().flatten() {
            waker.wake_by_ref();
        }
    }

    /// Keep `waker` to be woken on the next ring or stop, in `slot` (taken
    /// on the first call).
    fn park(&self, slot: &mut Option<Slot>, waker: &Waker) {
        let mut parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let parked = &mut *parked;
        if let Some(kept) = slot.and_then(|s| parked.wakers.get_mut(index(s))) {
            match kept {
                Some(old) if old.will_wake(waker) => {}
                _ => *kept = Some(waker.clone()),
            }
            return;
        }
        let at = match parked.free.pop() {
            Some(at) => at,
            None => {
                parked.wakers.push(None);
                u32::try_from(parked.wakers.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if let Some(kept) = parked.wakers.get_mut(at as usize) {
            *kept = Some(waker.clone());
            *slot = Slot::new(at.saturating_add(1));
        }
    }

    /// Give `slot` back: its connection is no longer idle.
    fn unpark(&self, slot: &mut Option<Slot>) {
        let Some(s) = slot.take() else { return };
        let mut parked = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = parked.wakers.get_mut(index(s)) {
            *kept = None;
            parked.free.push(s.get() - 1);
        }
    }

    /// Completes once the server stops.
    async fn stopped(&self) {
        loop {
            // Created before the flag is read: a stop in between still
            // completes it.
            let rung = self.notify.notified();
            if self.is_stopping() {
                return;
            }
            rung.await;
        }
    }
}

fn index(slot: Slot) -> usize {
    (slot.get() - 1) as usize
}

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
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter::default());
        (Arc::clone(&c), Waker::from(c))
    }

    fn wakes(c: &Counter) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn parked_wakers_are_woken_by_rings_and_stop_until_unparked() {
        let bell = Bell::default();
        let (a, a_waker) = counter();
        let (b, b_waker) = counter();
        let (mut a_slot, mut b_slot) = (None, None);
        bell.park(&mut a_slot, &a_waker);
        bell.park(&mut b_slot, &b_waker);
        // Parking again with the same waker keeps the slot.
        let kept = a_slot;
        bell.park(&mut a_slot, &a_waker);
        assert_eq!(a_slot, kept);
        bell.ring();
        assert_eq!((wakes(&a), wakes(&b), bell.rings()), (1, 1, 1));

        bell.unpark(&mut a_slot);
        assert_eq!(a_slot, None);
        bell.ring();
        assert_eq!((wakes(&a), wakes(&b)), (1, 2));

        // A freed slot is reused rather than the list growing.
        let (c, c_waker) = counter();
        let mut c_slot = None;
        bell.park(&mut c_slot, &c_waker);
        assert_eq!(c_slot, kept);
        assert_eq!(bell.idle.lock().expect("lock").wakers.len(), 2);

        bell.stop();
        assert!(bell.is_stopping());
        assert_eq!((wakes(&a), wakes(&b), wakes(&c)), (1, 3, 1));
        assert_eq!(bell.rings(), 2, "a stop is not a ring");
        bell.unpark(&mut b_slot);
        bell.unpark(&mut c_slot);
        assert!(bell.idle.lock().expect("lock").wakers.iter().all(Option::is_none));
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
