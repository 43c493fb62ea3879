//! The admin listener (SPEC §2 `[admin]`): `/healthz` (the process is up),
//! `/readyz` (a configuration is loaded and the upstream accepts TCP
//! connections) and `/metrics` (OpenMetrics text). A separate socket, so it
//! can stay on loopback or a pod-internal port; never proxied.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::debug;

use crate::live::Shared;
use crate::metrics::Metrics;

/// How long `/readyz` waits for the upstream to accept a connection.
const READY_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Serve the admin endpoints until `stop` turns true.
pub async fn serve(listener: TcpListener, live: Shared, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = std::pin::pin!(crate::server::stopped(&mut stop));
        let Some((stream, _)) = crate::server::accept_until(&listener, stopping, "admin").await else {
            return;
        };
        let (live, metrics) = (Arc::clone(&live), Arc::clone(&metrics));
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (live, metrics) = (Arc::clone(&live), Arc::clone(&metrics));
                async move { Ok::<_, Infallible>(handle(req, &live, &metrics).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, live: &Shared, metrics: &Metrics) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => ready(live).await,
        "/metrics" => {
            let mut res = text(StatusCode::OK, &metrics.render());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            res
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Ready when the current upstream accepts a TCP connection.
async fn ready(live: &Shared) -> Response<Full<Bytes>> {
    let authority = live.load().config().upstream.authority.clone();
    let port = authority
        .port_u16()
        .unwrap_or(match live.load().config().upstream.scheme.as_str() {
            "https" => 443,
            _ => 80,
        });
    let connect = TcpStream::connect((authority.host(), port));
    match tokio::time::timeout(READY_CONNECT_TIMEOUT, connect).await {
        Ok(Ok(_)) => text(StatusCode::OK, "ready\n"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("upstream unreachable: {}\n", e.kind()),
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream did not accept a connection in time\n",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
