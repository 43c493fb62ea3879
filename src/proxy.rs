//! Forwarding to the upstream: one pooled keep-alive client, the response
//! timeout, protocol upgrades, and the classification of upstream failures.
//!
//! This module receives a request whose URI and headers are already final
//! and sends it. It knows nothing of cookies, sessions or header policy.

use std::error::Error as _;
use std::io;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tracing::debug;

use crate::config;
use crate::error::RequestError;

/// The upstream and the pooled client that reaches it.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Incoming>,
    timeout: Duration,
}

impl Upstream {
    /// Build the pooled client. No connection is made until the first request.
    pub fn new(cfg: &config::Upstream) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Upstream {
            client,
            timeout: cfg.timeout,
        }
    }

    /// Send `req` and wait for the response head, at most the configured
    /// timeout. When the client asked for an upgrade and the upstream
    /// agrees (101), the two upgraded connections are joined in a task.
    pub async fn forward(&self, mut req: Request<Incoming>, upgrade: bool) -> Result<Response<Incoming>, RequestError> {
        let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
        let sent = tokio::time::timeout(self.timeout, self.client.request(req)).await;
        let mut res = match sent {
            Err(_elapsed) => return Err(RequestError::UpstreamTimeout),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(res)) => res,
        };
        if let Some(client_side) = client_side.filter(|_| res.status() == StatusCode::SWITCHING_PROTOCOLS) {
            let upstream_side = hyper::upgrade::on(&mut res);
            tokio::spawn(tunnel(client_side, upstream_side));
        }
        Ok(res)
    }
}

/// Copy bytes both ways between the upgraded client and upstream connections.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        debug!(error = %e, "upgraded connection closed with an error");
    }
}

/// Sort a client error into connect failure, timeout or protocol failure.
fn classify(err: &hyper_util::client::legacy::Error) -> RequestError {
    let mut cause = err.source();
    let mut timed_out = false;
    while let Some(e) = cause {
        timed_out |= e
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
        cause = e.source();
    }
    if timed_out {
        RequestError::UpstreamTimeout
    } else if err.is_connect() {
        RequestError::UpstreamConnect
    } else {
        RequestError::UpstreamProtocol
    }
}
