//! The accept loop: TCP → hyper-util's auto (HTTP/1.1 and h2c) connection →
//! `Service`, with header-read timeout, header-size limit, accept-error
//! backoff and graceful shutdown. Knows nothing of sessions or headers.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::service::{Connection, Service};

/// How long in-flight requests get to finish after shutdown is asked for.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serve `listener` until `shutdown` completes, then drain connections.
pub async fn serve(
    listener: TcpListener,
    config: Arc<Config>,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let builder = Arc::new(connection_builder(&config));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = Connection { remote, proto: "http" };
                    let svc = Arc::clone(&service);
                    let builder = Arc::clone(&builder);
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let hyper_svc = service_fn(move |req| {
                            let svc = Arc::clone(&svc);
                            async move { Ok::<_, Infallible>(svc.handle(req, conn).await) }
                        });
                        let served = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_svc);
                        if let Err(e) = watcher.watch(served).await {
                            debug!(error = %e, %remote, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning or exiting.
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!("shutting down; draining connections");
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        warn!("drain deadline passed; closing remaining connections");
    }
    Ok(())
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
