//! The accept loop: TCP → optional TLS → a connection task serving the
//! current `Service`, with a connection cap, accept-error backoff and a
//! graceful drain. Plain connections go through [`plain`] (HTTP/1.1 that
//! holds no buffers between requests, or HTTP/2 with prior knowledge); TLS
//! connections through hyper-util's auto connection (HTTP/1.1 or h2 by
//! ALPN). Knows nothing of sessions or headers.

mod exchange;
mod io;
mod plain;

pub use exchange::HandOff;
pub use io::PlainIo;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::live::Shared;
use crate::metrics::Metrics;
use crate::service::Connection;

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
    let permits = Arc::new(Semaphore::new(config.server.max_connections));
    // Every connection task holds a clone; `recv` returns once all are gone.
    let (open_tx, mut open_rx) = mpsc::channel::<Infallible>(1);
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
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.map_err(std::io::Error::other)?,
            () = stopped(&mut stop) => break,
        };
        let Some((stream, remote)) = accept_until(&listener, pin!(stopped(&mut stop)), "proxy").await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let held = Held::new(Arc::clone(&job), permit, open_tx.clone());
        let tls = job.live.load().tls.clone();
        match tls {
            None => tokio::spawn(plain::PlainConnection::new(
                held,
                stream,
                Connection { remote, proto: "http" },
            )),
            Some(acceptor) => tokio::spawn(async move {
                held.job.serve_tls(acceptor, stream, remote).await;
                drop(held);
            }),
        };
    }
    drop(listener);
    drop(open_tx);
    job.bell.stop();
    ticker.abort();
    info!("shutting down; draining connections");
    if tokio::time::timeout(config.server.shutdown_timeout, open_rx.recv())
        .await
        .is_err()
    {
        warn!("drain deadline passed; closing remaining connections");
    }
    Ok(())
}

/// What a connection task holds for its whole life: its place under
/// `max_connections`, its place in the drain count, and the open-connection
/// gauge (counted down on drop, however the task ends).
struct Held {
    job: Arc<Job>,
    _permit: OwnedSemaphorePermit,
    _open: mpsc::Sender<Infallible>,
}

impl Held {
    fn new(job: Arc<Job>, permit: OwnedSemaphorePermit, open: mpsc::Sender<Infallible>) -> Self {
        job.metrics.connection(1);
        Held {
            job,
            _permit: permit,
            _open: open,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.job.metrics.connection(-1);
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
    bell: Bell,
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
            bell: Bell::default(),
        }
    }

    async fn serve_tls(&self, acceptor: TlsAcceptor, stream: TcpStream, remote: SocketAddr) {
        match tokio::time::timeout(self.header_read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => {
                self.serve_auto(tls_stream, Connection { remote, proto: "https" }).await;
            }
            Ok(Err(e)) => debug!(error = %e, %remote, "TLS handshake failed"),
            Err(_) => debug!(%remote, "TLS handshake timed out"),
        }
    }

    /// Serve `io` with hyper-util's auto connection (HTTP/1.1 or HTTP/2,
    /// upgrades allowed) until it ends; on stop, finish in-flight requests
    /// and close.
    async fn serve_auto<I>(&self, io: I, conn: Connection)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let live = Arc::clone(&self.live);
        let hyper_svc = service_fn(move |req| {
            // The service current when the request arrives: reloads apply
            // to the next request on a kept-alive connection.
            let service = Arc::clone(&live.load().service);
            async move { Ok::<_, Infallible>(service.handle(req, conn).await) }
        });
        let mut served = Box::pin(self.auto.serve_connection_with_upgrades(TokioIo::new(io), hyper_svc));
        let result = tokio::select! {
            r = served.as_mut() => r,
            () = self.bell.stopped() => {
                served.as_mut().graceful_shutdown();
                served.await
            }
        };
        if let Err(e) = result {
            debug!(error = %e, remote = %conn.remote, "connection ended with an error");
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

/// Wakes connection tasks: once when the server stops, and every tick so
/// that idle connections can check their own deadline. One shared
/// `Notify` instead of a timer and a `watch` receiver per connection keeps
/// an idle connection small.
#[derive(Default)]
struct Bell {
    stopping: AtomicBool,
    notify: Arc<Notify>,
}

impl Bell {
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn ring(&self) {
        self.notify.notify_waiters();
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Completes once the server stops.
    async fn stopped(&self) {
        loop {
            // Created before the flag is read: a ring in between still
            // completes it.
            let rung = self.notify.notified();
            if self.is_stopping() {
                return;
            }
            rung.await;
        }
    }
}

/// How often idle connections look at their deadline: a quarter of
/// `idle_timeout`, between 250 ms and 5 s, so a connection closes at most
/// that late.
fn tick(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
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
