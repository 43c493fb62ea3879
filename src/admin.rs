//! The admin listener (SPEC §2 `[admin]`): `/healthz` (the process is up),
//! `/readyz` (a configuration is loaded and the upstream accepts TCP
//! connections, and the session store is connected), `/metrics`
//! (OpenMetrics text), and with the Redis store `GET /sessions?user=` and
//! `POST /sessions/revoke` (SPEC §7). A separate socket, so it
//! can stay on loopback or a pod-internal port; never proxied.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::live::Shared;
use crate::metrics::Metrics;
use crate::store;

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
    if req.uri().path() == "/sessions/revoke" {
        return revoke(req, live).await;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/sessions" => list(req.uri().query(), live).await,
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

/// Largest `POST /sessions/revoke` body read.
const FORM_LIMIT: usize = 4096;

/// `GET /sessions?user=NAME` (SPEC §7).
async fn list(query: Option<&str>, live: &Shared) -> Response<Full<Bytes>> {
    // Owned, not a guard: the store is asked across awaits.
    let live = live.load_full();
    let Some(store) = live.service.store() else {
        return json(
            StatusCode::CONFLICT,
            &serde_json::json!({ "error": store::NEEDS_REDIS }),
        );
    };
    let users: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "user")
        .map(|(_, v)| v.into_owned())
        .collect();
    let [user] = users.as_slice() else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": "give user=NAME exactly once" }),
        );
    };
    match store::list_doc(store, user).await {
        Ok(doc) => json(StatusCode::OK, &doc),
        Err(e) => store_failed(&e),
    }
}

/// `POST /sessions/revoke` with `user=` or `id=` in the query or a form body.
async fn revoke(req: Request<Incoming>, live: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    // A browser page elsewhere must not revoke sessions through an admin
    // port it can reach: browsers send `Origin` on cross-site POSTs; curl
    // and `usher session revoke` send none.
    if req.headers().contains_key(header::ORIGIN) {
        return json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "error": "requests from web pages (with Origin) are refused" }),
        );
    }
    // Owned, not a guard: the store is asked across awaits.
    let live = live.load_full();
    let Some(store) = live.service.store() else {
        return json(
            StatusCode::CONFLICT,
            &serde_json::json!({ "error": store::NEEDS_REDIS }),
        );
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), FORM_LIMIT).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({ "error": "the form is too large" }),
            );
        }
    };
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .chain(form_urlencoded::parse(&body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let what = match store::Revoke::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(w) => w,
        Err(why) => return json(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": why })),
    };
    match store::revoke_doc(store, &what).await {
        Ok(doc) => {
            info!(what = ?what, revoked = %doc["revoked"], "sessions revoked through the admin listener");
            json(StatusCode::OK, &doc)
        }
        Err(e) => store_failed(&e),
    }
}

fn store_failed(e: &store::StoreError) -> Response<Full<Bytes>> {
    let mut res = json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "error": e.to_string() }),
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    res
}

fn json(status: StatusCode, doc: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut res = text(status, &format!("{doc}\n"));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Ready when the current upstream accepts a TCP connection and, with the
/// Redis store, a connection to it is up.
async fn ready(live: &Shared) -> Response<Full<Bytes>> {
    if live.load().service.store().is_some_and(|s| !s.connected()) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "session store unreachable\n");
    }
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
