//! The accept loop: TCP → optional TLS → hyper-util's auto (HTTP/1.1 and
//! HTTP/2) connection → the current `Service`, with a connection cap,
//! header-read timeout (which on keep-alive connections is also the idle
//! limit), header-size limit, accept-error backoff and graceful drain.
//! Knows nothing of sessions or headers.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
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
) -> io::Result<()> {
    let config = Arc::clone(live.load().service.config());
    let builder = Arc::new(connection_builder(&config));
    let permits = Arc::new(Semaphore::new(config.server.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        // Stop accepting while at the connection cap: the kernel queues.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.map_err(io::Error::other)?,
            () = stopped(&mut stop) => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning or exiting.
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let job = ConnectionJob {
            live: Arc::clone(&live),
            builder: Arc::clone(&builder),
            metrics: Arc::clone(&metrics),
            watcher: graceful.watcher(),
            handshake_timeout: config.server.header_read_timeout,
        };
        tokio::spawn(async move {
            let _permit = permit;
            job.run(stream, remote).await;
        });
    }
    drop(listener);
    info!("shutting down; draining connections");
    if tokio::time::timeout(config.server.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("drain deadline passed; closing remaining connections");
    }
    Ok(())
}

/// Everything one connection task needs.
struct ConnectionJob {
    live: Shared,
    builder: Arc<auto::Builder<TokioExecutor>>,
    metrics: Arc<Metrics>,
    watcher: Watcher,
    handshake_timeout: Duration,
}

impl ConnectionJob {
    async fn run(self, stream: TcpStream, remote: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let metrics = Arc::clone(&self.metrics);
        metrics.connection(1);
        let tls = self.live.load().tls.clone();
        match tls {
            None => self.serve_io(stream, Connection { remote, proto: "http" }).await,
            Some(acceptor) => match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => self.serve_io(tls_stream, Connection { remote, proto: "https" }).await,
                Ok(Err(e)) => debug!(error = %e, %remote, "TLS handshake failed"),
                Err(_) => debug!(%remote, "TLS handshake timed out"),
            },
        }
        metrics.connection(-1);
    }

    async fn serve_io<I>(self, io: I, conn: Connection)
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
        let served = self.builder.serve_connection_with_upgrades(TokioIo::new(io), hyper_svc);
        if let Err(e) = self.watcher.watch(served.into_owned()).await {
            debug!(error = %e, remote = %conn.remote, "connection ended with an error");
        }
    }
}

fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
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

/// Completes once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
