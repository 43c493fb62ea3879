//! Forwarding to the upstream: pooled keep-alive connections (http or
//! https; HTTP/1.1 through our own pool, with usher's own exchange for
//! requests without a body and hyper's client connection for the rest;
//! HTTP/2 through hyper-util's client), the response timeout, protocol
//! upgrades, and the classification of upstream failures.
//!
//! This module receives a request whose URI and headers are already final
//! and sends it. It knows nothing of cookies, sessions or header policy.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tracing::debug;

use crate::body::paced::Side;
use crate::body::{ClientBodyError, Paced, Progress, Stalled};
use crate::config;
use crate::conn::{ClientIo, HandOff, RequestBody};
use crate::error::RequestError;
use crate::hop::{self, Added};
use crate::metrics::Metrics;
use crate::tls::{self, TlsError};

mod pool;
mod wire;

use pool::{Failure, Pool};
pub use pool::{HyperBody, WireBody};
pub use wire::WireError;

/// An upstream response body: from hyper's client connection, or from
/// usher's own exchange.
pub type ResponseBody = Either<HyperBody, WireBody>;

/// A request body on its way upstream: as received, or held to
/// `server.max_body_bytes`; paced by `server.body_timeout`.
pub type UpstreamBody = Paced<Either<RequestBody, Limited<RequestBody>>>;

/// A response body on its way to the client, paced by `upstream.body_timeout`.
pub type Streamed = Paced<ResponseBody>;

/// The upstream and the pooled connections that reach it.
#[derive(Clone)]
pub struct Upstream {
    client: Connections,
    timeout: Duration,
    body_timeout: Duration,
}

#[derive(Clone)]
enum Connections {
    /// HTTP/1.1: one exchange per connection at a time, our own pool.
    Http1(Arc<Pool>),
    /// HTTP/2 (`upstream.http2`): multiplexed, hyper-util's client.
    Http2(Box<Client<HttpsConnector<HttpConnector>, UpstreamBody>>),
}

impl Upstream {
    /// Build the pooled client. No connection is made until the first
    /// request; a bad `ca_file` is an error here, at startup.
    /// New HTTP/1.1 connections are counted in `metrics`.
    pub fn new(cfg: &config::Upstream, metrics: Arc<Metrics>) -> Result<Upstream, TlsError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = tls::client_config(cfg.ca_file.as_deref())?;
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
        // Offer h2 in ALPN only when asked to: upgrades need HTTP/1.1.
        let connector = if cfg.http2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        let client = if cfg.http2 {
            let mut client = Client::builder(TokioExecutor::new());
            client
                .pool_idle_timeout(cfg.idle_timeout)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .http2_only(true);
            Connections::Http2(Box::new(client.build(connector)))
        } else {
            Connections::Http1(Arc::new(Pool::new(
                connector,
                cfg.origin.clone(),
                cfg.idle_timeout,
                metrics,
            )))
        };
        Ok(Upstream {
            client,
            timeout: cfg.timeout,
            body_timeout: cfg.body_timeout,
        })
    }

    /// Use `previous`'s pooled connections instead of this client's own
    /// (empty) pool: the caller checked that they are made the same way.
    pub fn share_connections(&mut self, previous: &Upstream) {
        self.client = previous.client.clone();
    }

    /// Whether requests carry the absolute URI (HTTP/2's `:scheme` and
    /// `:authority`) rather than the origin-form target HTTP/1.1 sends.
    pub fn wants_absolute_uri(&self) -> bool {
        matches!(self.client, Connections::Http2(_))
    }

    /// Send `req` and wait for the response head, at most the configured
    /// timeout; also returns how long that took. `upgrade`: the permitted
    /// protocol the client asked to switch to. When the upstream agrees
    /// (101 naming that protocol), the two upgraded connections are joined
    /// in a task; a 101 to anything else is a failure (502), never a tunnel.
    /// A request without a body that asks for no upgrade goes to an
    /// HTTP/1.1 upstream by usher's own exchange (`proxy/wire.rs`); the rest by
    /// hyper's client connection.
    pub async fn forward(
        &self,
        mut req: Request<UpstreamBody>,
        added: Added,
        upgrade: Option<&HeaderValue>,
    ) -> Result<(Response<Streamed>, Duration), RequestError> {
        if let (None, Connections::Http1(pool)) = (upgrade, &self.client)
            && bodyless(req.body())
        {
            let started = Instant::now();
            let res = self.send_wire(pool, req, &added).await?;
            if res.status() == StatusCode::SWITCHING_PROTOCOLS {
                // Nobody asked for it; the connection is closed.
                return Err(RequestError::UpstreamUpgrade);
            }
            return Ok((res.map(|body| self.paced(Either::Right(body))), started.elapsed()));
        }
        added.insert_into(req.headers_mut());
        let client_side = upgrade.map(|_| match req.extensions_mut().remove::<HandOff>() {
            Some(hand_off) => ClientSide::Cycle(hand_off),
            None => ClientSide::Hyper(hyper::upgrade::on(&mut req)),
        });
        let started = Instant::now();
        let (mut res, lease) = self.send_timed(req).await?;
        let took = started.elapsed();
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the tunnel, or is closed.
            drop(lease);
            let agreed = upgrade.is_some_and(|asked| hop::upgrade_agrees(res.headers(), asked));
            if !agreed {
                return Err(RequestError::UpstreamUpgrade);
            }
            if let Some(client_side) = client_side {
                let upstream_side = hyper::upgrade::on(&mut res);
                let client_side = match client_side {
                    ClientSide::Cycle(hand_off) => Claimed::Cycle(hand_off.claim()),
                    ClientSide::Hyper(on) => Claimed::Hyper(on),
                };
                tokio::spawn(tunnel(client_side, upstream_side));
            }
            return Ok((
                res.map(|body| self.paced(Either::Left(HyperBody::new(body, None)))),
                took,
            ));
        }
        Ok((
            res.map(|body| self.paced(Either::Left(HyperBody::new(body, lease)))),
            took,
        ))
    }

    /// Send a request without a body by usher's own exchange, waiting for
    /// the response head at most `upstream.timeout`.
    async fn send_wire(
        &self,
        pool: &Arc<Pool>,
        req: Request<UpstreamBody>,
        added: &Added,
    ) -> Result<Response<WireBody>, RequestError> {
        let (parts, body) = req.into_parts();
        // Read to its end already: dropping it says so to the request cycle.
        drop(body);
        match tokio::time::timeout(self.timeout, pool.send_wire(parts, added)).await {
            Err(_elapsed) => Err(RequestError::UpstreamTimeout),
            Ok(Ok(res)) => Ok(res),
            Ok(Err(Failure::Connect(e))) => Err(classify(&*e, true)),
            Ok(Err(Failure::Wire(e))) => Err(classify(&e, false)),
            Ok(Err(Failure::Send(e))) => Err(classify(&e, false)),
        }
    }

    fn paced(&self, body: ResponseBody) -> Streamed {
        Paced::new(body, Side::Upstream, self.body_timeout)
    }

    /// Send, and wait for the response head at most `upstream.timeout`
    /// after the request body has been sent: an upload may take as long as
    /// it keeps moving (its own pace is `server.body_timeout`'s). While it
    /// is sent, `upstream.timeout` bounds only a wait in which no byte of
    /// it moves (an upstream that reads nothing and answers nothing).
    async fn send_timed(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Option<pool::Lease>), RequestError> {
        // A request without a body has no upload to watch: no progress
        // report to allocate, and nothing to notify at its end.
        let progress = (!http_body::Body::is_end_stream(req.body())).then(|| Arc::new(Progress::default()));
        let req = match &progress {
            Some(progress) => req.map(|body| body.reporting(Arc::clone(progress))),
            None => req,
        };
        let send = self.send(req);
        tokio::pin!(send);
        if let Some(progress) = progress {
            let mut moved = progress.frames();
            loop {
                tokio::select! {
                    sent = &mut send => return sent,
                    () = progress.wait_ended() => break,
                    () = tokio::time::sleep(self.timeout) => {
                        let now = progress.frames();
                        if now == moved {
                            return Err(RequestError::UpstreamTimeout);
                        }
                        moved = now;
                    }
                }
            }
        }
        match tokio::time::timeout(self.timeout, send).await {
            Err(_elapsed) => Err(RequestError::UpstreamTimeout),
            Ok(sent) => sent,
        }
    }

    async fn send(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Option<pool::Lease>), RequestError> {
        match &self.client {
            Connections::Http1(pool) => match pool.send(req).await {
                Ok((res, lease)) => Ok((res, Some(lease))),
                Err(Failure::Connect(e)) => Err(classify(&*e, true)),
                Err(Failure::Send(e)) => Err(classify(&e, false)),
                Err(Failure::Wire(e)) => Err(classify(&e, false)),
            },
            Connections::Http2(client) => match client.request(req).await {
                Ok(res) => Ok((res, None)),
                Err(e) => Err(classify(&e, e.is_connect())),
            },
        }
    }
}

/// usher's own exchange's response parser, for the fuzz target; not part
/// of usher's interface.
#[doc(hidden)]
pub fn fuzz_response(data: &[u8]) {
    wire::fuzz(data);
}

/// Whether a request body is known to be empty: ended, and no length
/// but 0 declared.
fn bodyless(body: &UpstreamBody) -> bool {
    http_body::Body::is_end_stream(body) && http_body::Body::size_hint(body).exact() == Some(0)
}

/// Where the client side of a tunnel comes from: hyper's own upgrade
/// (HTTP/2 connections), or the HTTP/1.1 request cycle (plain or TLS),
/// which hands over its stream once the `101` is written.
enum ClientSide {
    Hyper(OnUpgrade),
    Cycle(HandOff),
}

/// A client side whose `101` is on its way.
enum Claimed {
    Hyper(OnUpgrade),
    Cycle(oneshot::Receiver<ClientIo>),
}

/// Copy bytes both ways between the upgraded client and upstream connections.
async fn tunnel(client: Claimed, upstream: OnUpgrade) {
    let upstream = match upstream.await {
        Ok(upgraded) => upgraded,
        Err(e) => return debug!(error = %e, "upstream upgrade did not complete"),
    };
    let mut upstream = TokioIo::new(upstream);
    let copied = match client {
        Claimed::Hyper(on) => match on.await {
            Ok(upgraded) => tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await,
            Err(e) => return debug!(error = %e, "client upgrade did not complete"),
        },
        Claimed::Cycle(handed) => match handed.await {
            Ok(mut io) => tokio::io::copy_bidirectional(&mut io, &mut upstream).await,
            Err(_) => return debug!("client connection closed before the upgrade"),
        },
    };
    if let Err(e) = copied {
        debug!(error = %e, "upgraded connection closed with an error");
    }
}

/// Sort an upstream error: body over the limit, the client's body failing,
/// TLS, timeout, connect failure (`connect`: it happened while connecting)
/// or protocol failure.
fn classify(err: &(dyn StdError + 'static), connect: bool) -> RequestError {
    let mut cause = Some(err);
    let mut timed_out = false;
    let mut deepest = err;
    while let Some(e) = cause {
        deepest = e;
        if e.is::<LengthLimitError>() {
            return RequestError::PayloadTooLarge;
        }
        if e.is::<ClientBodyError>() {
            return RequestError::BadRequestBody;
        }
        if e.downcast_ref::<Stalled>().is_some_and(|s| s.side == Side::Client) {
            return RequestError::ClientBodyTimeout;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return RequestError::UpstreamTls(tls.to_string());
        }
        let io = e.downcast_ref::<io::Error>();
        timed_out |= io.is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
        // An `io::Error`'s `source` skips the error it wraps (rustls's
        // travels wrapped twice): step into it instead.
        cause = match io.and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    // The innermost cause says what happened ("Connection refused (os
    // error 111)", "connection closed before message completed").
    let why = deepest.to_string();
    if timed_out {
        RequestError::UpstreamTimeout
    } else if connect {
        RequestError::UpstreamConnect(why)
    } else {
        RequestError::UpstreamProtocol(why)
    }
}
