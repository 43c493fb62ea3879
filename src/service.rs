//! THE pipeline: what happens to each request, phase by phase (SPEC §3).
//!
//! normalise → strip → session → decide → inject → forward → respond
//!
//! This is the only module that composes the pure parts (`target`, `hop`,
//! `headers`, `session`, `access`, `guard`, `respond`) with IO (`proxy`,
//! `auth`). Requests under the reserved prefix go to `auth` after the
//! session phase and are never forwarded.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{Either, Limited};
use tracing::{Level, debug, event};

use crate::assertion::Signer;
use crate::auth::{self, Auth};
use crate::body::Paced;
use crate::body::paced::Side;
use crate::carrier::{self, Sessions};
use crate::config::Config;
use crate::conn::RequestBody;
use crate::error::{Fault, RequestError};
use crate::headers::HeaderPlan;
use crate::hop::{self, Peer};
use crate::metrics::Metrics;
use crate::oidc::Providers;
use crate::proxy::{Upstream, UpstreamBody};
use crate::respond::Body;
use crate::session::cookie;
use crate::session::verified::Verified;
use crate::store::{RedisStore, StoreError};
use crate::tls::TlsError;
use crate::{guard, respond, target};

mod bearer;
mod decide;
mod failures;
mod forward;
mod request_id;

/// Everything a request needs, built once at startup and shared.
pub struct Service {
    config: Arc<Config>,
    upstream: Upstream,
    /// `Host` value used when the client's is not preserved.
    upstream_host: HeaderValue,
    /// `[session.forward]`, compiled.
    plan: HeaderPlan,
    /// Counters read by the admin endpoint.
    metrics: Arc<Metrics>,
    /// usher's own endpoints.
    auth: Auth,
    /// `[[oidc]]` providers (shared with `auth`).
    providers: Arc<Providers>,
    /// The Redis session store, when configured (shared with `auth`).
    store: Option<Arc<RedisStore>>,
    /// `[upstream.assertion]`, when configured (shared with `auth` for the JWKS).
    signer: Option<Arc<Signer>>,
    /// Upstream failure lines, at most one per interval.
    failures: failures::FailureLog,
    /// Session cookie values whose signature verified (this generation's
    /// keys only: a reload starts it empty).
    verified: Verified,
}

/// Why a service could not be built from a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Certificates or keys could not be used.
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsError),
    /// The session store could not be set up.
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    /// The assertion key could not be used.
    #[error("upstream.assertion: {0}")]
    Assertion(String),
}

/// What the accept loop knows about a connection.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// The TCP peer.
    pub remote: SocketAddr,
    /// Whether the client connected over TLS.
    pub tls: bool,
}

impl Connection {
    /// `http` or `https`.
    pub fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

impl Service {
    /// Build the service from a validated configuration, recording into
    /// `metrics` (shared across reloads). Fails only on unusable TLS
    /// material (upstream, providers, the store).
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>) -> Result<Service, BuildError> {
        let upstream = Upstream::new(&config.upstream, Arc::clone(&metrics))?;
        let upstream_host = HeaderValue::from_str(config.upstream.authority.as_str())
            // An `Authority` holds only characters valid in a header value.
            .expect("an authority is a valid header value");
        let signer = match &config.assertion {
            Some(a) => Some(Arc::new(Signer::new(a).map_err(BuildError::Assertion)?)),
            None => None,
        };
        let mut plan = HeaderPlan::new(&config.session.forward);
        if let Some(s) = &signer {
            plan = plan.also_strip(s.header().clone());
        }
        let providers = Arc::new(Providers::new(&config.oidc, &metrics)?);
        providers.start();
        let store = match config.session.store.redis() {
            Some(redis) => {
                // Connected by `start`, after a reload had the chance to
                // keep the previous generation's pool instead.
                Some(Arc::new(RedisStore::new(
                    redis,
                    config.session.longest_life(),
                    Arc::clone(&metrics),
                )?))
            }
            None => None,
        };
        let auth = Auth::new(
            Arc::clone(&config),
            Arc::clone(&metrics),
            Arc::clone(&providers),
            store.clone(),
            signer.clone(),
        );
        Ok(Service {
            config,
            upstream,
            upstream_host,
            plan,
            metrics,
            auth,
            providers,
            store,
            signer,
            failures: failures::FailureLog::default(),
            verified: Verified::default(),
        })
    }

    /// Carry state that must outlive a reload (the sign-in buckets) over
    /// from the generation this one replaces.
    pub fn carry_over(&mut self, previous: &Service) {
        // The same store settings keep the connected pool (the new one,
        // still connecting, is dropped).
        if let (Some(new), Some(old)) = (&self.store, &previous.store)
            && new.settings() == old.settings()
        {
            self.store = Some(Arc::clone(old));
            self.auth.use_store(Arc::clone(old));
        }
        self.auth.carry_over(&previous.auth);
        self.providers.carry_over(&previous.providers);
        // Pooled upstream connections survive a reload that does not
        // change how they are made (31 reloads opened 2,048 of them).
        let (old, new) = (&previous.config.upstream, &self.config.upstream);
        let same = old.origin == new.origin
            && old.http2 == new.http2
            && old.connect_timeout == new.connect_timeout
            && old.idle_timeout == new.idle_timeout
            // A CA file may hold new certificates under the same name.
            && old.ca_file.is_none()
            && new.ca_file.is_none();
        if same {
            self.upstream.share_connections(&previous.upstream);
        }
    }

    /// Start what connects in the background (the session store); after
    /// [`Service::carry_over`].
    pub fn start(&self) {
        if let Some(store) = &self.store {
            store.start();
        }
    }

    /// The configuration this service was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The Redis session store, when configured.
    pub fn store(&self) -> Option<&Arc<RedisStore>> {
        self.store.as_ref()
    }

    /// The session phases' view of this service at `now`.
    fn sessions(&self, now: u64) -> Sessions<'_> {
        Sessions::new(&self.config, self.store.as_deref(), &self.metrics, now).remembering(&self.verified)
    }

    /// Handle one request; never fails: errors become responses. Takes
    /// its own `Arc` of the service, so that a connection can box this
    /// future as it is, with no `async` block of its own around it.
    pub async fn handle(self: Arc<Self>, req: Request<RequestBody>, conn: Connection) -> Response<Body> {
        let started = Instant::now();
        // Refusals are pages for a browser whatever the method; only a
        // navigation (GET/HEAD) is sent to sign in.
        let html = respond::prefers_html(req.headers());
        let proxies = &self.config.server.trusted_proxies;
        let trusted = proxies.contains(conn.remote.ip());
        let mut trace = Trace {
            enabled: tracing::enabled!(target: "usher::access", Level::INFO),
            request_id: request_id::of(req.headers(), trusted),
            client: hop::client_ip(req.headers(), conn.remote.ip(), |ip| proxies.contains(ip)),
            trusted,
            user: None,
            upstream: None,
        };
        // Cheap copies (a standard method, a shared `Uri`) for the access
        // and failure lines.
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let mut res = match self.pipeline(req, conn, html, &mut trace).await {
            Ok(res) => res,
            Err(e) => self.error_response(&e, html, &trace, (&method, &uri)),
        };
        res.headers_mut()
            .insert(request_id::X_REQUEST_ID, trace.request_id.clone());
        let took = started.elapsed();
        self.metrics.request(took);
        if let Some(up) = trace.upstream {
            self.metrics.upstream(up);
        }
        if !trace.enabled {
            return res;
        }
        event!(
            target: "usher::access",
            Level::INFO,
            method = %method,
            path = %uri.path(),
            status = res.status().as_u16(),
            client = %trace.client,
            request_id = request_id::text(&trace.request_id),
            micros = took.as_micros() as u64,
            upstream_micros = trace.upstream.map(|d| d.as_micros() as u64),
            user = trace.user.as_deref(),
            "request"
        );
        res
    }

    /// Forget idle sign-in rate-limit buckets; call now and then.
    pub fn housekeeping(&self) {
        self.auth.forget_idle();
    }

    async fn pipeline(
        &self,
        req: Request<RequestBody>,
        conn: Connection,
        html: bool,
        trace: &mut Trace,
    ) -> Result<Response<Body>, RequestError> {
        // 1. normalise: the one path that rules see and the upstream gets,
        // after the request line and Host are known to be unambiguous.
        check_request(&req)?;
        let target = normalised_target(req.uri())?;
        // Read before stripping: `Connection: Host` must not hide the host.
        let host = client_host(&req);
        let (mut parts, body) = req.into_parts();
        // 2. strip: connection-level headers, untrusted forwarding headers,
        // every spelling of the session headers.
        let upgrade = hop::strip_hop_by_hop(&mut parts.headers)
            .and_then(|offered| hop::permitted_upgrade(&offered, &self.config.upstream.upgrades));
        self.plan.strip(&mut parts.headers);
        // 3. session: verify the cookie.
        let now = unix_now();
        let session = &self.config.session;
        let sessions = self.sessions(now);
        let found = match self.authorization(&mut parts.headers, now, trace).await {
            Ok(Some(found)) => found,
            Ok(None) => carrier::read(&parts.headers, trace.client, &sessions).await,
            Err(refusal) => return Ok(refusal),
        };
        if trace.enabled {
            trace.user = found
                .session
                .as_deref()
                .and_then(carrier::identity)
                .map(|who| who.user().to_string());
        }
        let cross_site = session.cross_site_guard
            && guard::is_unsafe(&parts.method)
            && guard::is_cross_site(&parts.headers, host.as_ref().and_then(|h| h.to_str().ok()));
        let trusted = trace.trusted;
        if let Some(endpoint) = self.endpoint(target.path()) {
            if endpoint == "/auth" && matches!(parts.method, Method::GET | Method::HEAD) {
                // The guard here applies to the described request, not this GET.
                let query = parts.uri.query();
                let check = self.forward_auth(&parts.headers, query, trusted, found, &sessions);
                return Ok(Box::pin(check).await);
            }
            if cross_site {
                return Ok(decide::cross_site(html));
            }
            let insecure = insecure_host(&parts.headers, host.as_ref(), trusted, conn, session.cookie.secure());
            let cx = auth::Context {
                insecure_host: insecure.as_deref(),
                ip: trace.client,
                request_id: request_id::text(&trace.request_id),
                session: found.session.as_deref(),
                stored: found.stored(),
                unavailable: found.unavailable,
                issued_at: found.issued_at,
                now,
                html,
            };
            // Boxed: usher's own endpoints (sign-in, provider callbacks)
            // are large futures the proxied requests should not carry.
            return Ok(Box::pin(self.auth.handle(Request::from_parts(parts, body), endpoint, cx)).await);
        }
        // usher's own cookie never reaches the app; an app-format cookie does.
        if !session.format.shared_with_app() {
            cookie::strip(&mut parts.headers, session.cookie.name());
            if let Some(old) = &session.legacy_cookie {
                cookie::strip(&mut parts.headers, old.name());
            }
        }
        // The backend routes on the request line usher judged, nothing else.
        hop::strip_ambiguous(&mut parts.headers);
        // 4. decide: the cross-site guard, then the access rules.
        let denied = if cross_site && found.present() {
            Some(decide::cross_site(html))
        } else {
            decide::Decide {
                config: &self.config,
                html,
                navigating: html && matches!(parts.method, Method::GET | Method::HEAD),
            }
            .access(&parts.method, &target, found.session.as_deref())
        };
        // The store could not say who this is: a path that needs a
        // session waits (503), a public one goes on without one.
        if found.unavailable && denied.is_some() {
            return Ok(respond::store_unavailable(html));
        }
        if let Some(mut res) = denied {
            carrier::write_back(res.headers_mut(), false, found, &sessions).await;
            return Ok(res);
        }
        // 5. inject: usher's own forwarding headers and the session fields.
        let peer = Peer {
            ip: conn.remote.ip(),
            proto: conn.proto(),
            trusted,
        };
        // Beside the map until sent (see `hop::Added`): X-Forwarded-*, the
        // request id, the session fields, the assertion.
        let mut added = hop::Added::with_capacity(5 + self.plan.len());
        hop::set_forwarded(&mut parts.headers, &mut added, peer, host.clone());
        parts.headers.remove(request_id::X_REQUEST_ID);
        added.push(request_id::X_REQUEST_ID, trace.request_id.clone());
        // Stripped in every spelling (`plan.strip`), the assertion's too.
        self.plan.inject(&mut added, found.session.as_ref());
        if let (Some(signer), Some(session)) = (&self.signer, found.session.as_deref()) {
            let origin = forwarded_origin(&parts.headers, &added);
            if let Some(token) = signer.token(session, &origin, now) {
                added.set(signer.header().clone(), token);
            }
        }
        if let Some(protocol) = upgrade.clone() {
            hop::restore_upgrade(&mut parts.headers, protocol);
        }
        // 6. forward.
        self.rewrite_for_upstream(&mut parts, target, host)?;
        let body = self.limit_body(&parts.headers, body)?;
        let (mut res, took) = self
            .upstream
            .forward(Request::from_parts(parts, body), added, upgrade.as_ref())
            .await?;
        trace.upstream = Some(took);
        // 7. respond: connection headers, then the backend's session write.
        let res_upgrade = hop::strip_hop_by_hop(res.headers_mut());
        if let Some(protocol) = res_upgrade.filter(|_| res.status() == StatusCode::SWITCHING_PROTOCOLS) {
            hop::restore_upgrade(res.headers_mut(), protocol);
        }
        let server_error = res.status().is_server_error();
        carrier::write_back(res.headers_mut(), server_error, found, &sessions).await;
        // The upstream may speak HTTP/1.0; the client gets our own version.
        *res.version_mut() = Version::default();
        Ok(res.map(respond::streamed))
    }

    /// Hold the body to `server.max_body_bytes`: refuse a declared length
    /// over it at once, and cut a streamed body that grows past it.
    fn limit_body(&self, headers: &HeaderMap, body: RequestBody) -> Result<UpstreamBody, RequestError> {
        let pace = |body| Paced::new(body, Side::Client, self.config.server.body_timeout);
        let Some(limit) = self.config.server.max_body_bytes else {
            return Ok(pace(Either::Left(body)));
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(RequestError::PayloadTooLarge);
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(pace(Either::Right(Limited::new(body, limit))))
    }

    /// `Some("/login")` for `<prefix>/login`; `None` outside the prefix.
    fn endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.config.server.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Point the request at the upstream: the target (origin-form for
    /// HTTP/1.1, absolute for HTTP/2), the version, `Host`.
    fn rewrite_for_upstream(
        &self,
        parts: &mut http::request::Parts,
        path_and_query: PathAndQuery,
        host: Option<HeaderValue>,
    ) -> Result<(), RequestError> {
        let up = &self.config.upstream;
        parts.uri = if self.upstream.wants_absolute_uri() {
            Uri::builder()
                .scheme(up.scheme.clone())
                .authority(up.authority.clone())
                .path_and_query(path_and_query)
                .build()
                .map_err(|_| RequestError::Internal)?
        } else {
            Uri::from(path_and_query)
        };
        parts.version = if up.http2 { Version::HTTP_2 } else { Version::HTTP_11 };
        let host = match host {
            Some(h) if up.preserve_host => h,
            _ => self.upstream_host.clone(),
        };
        if self.upstream.wants_absolute_uri() {
            // HTTP/2 names the host in `:authority` only (the upstream's, which
            // the pooled client connects to): a `Host` header beside it is a
            // duplicate to servers such as nginx. The client's host still
            // travels in `X-Forwarded-Host`.
            parts.headers.remove(header::HOST);
            return Ok(());
        }
        parts.headers.insert(header::HOST, host);
        Ok(())
    }
}

/// The forward-auth description, for the fuzz target; not part of usher's
/// interface.
#[doc(hidden)]
pub fn fuzz_describe(headers: &HeaderMap, policy: &crate::access::Policy) {
    forward::fuzz(headers, policy);
}

/// Refuse what backends could read differently from usher (SPEC §3.1): a
/// method with a lower-case letter (Flask upper-cases it and runs the
/// method a rule did not judge), two `Host` headers, or none on HTTP/1.1.
fn check_request(req: &Request<RequestBody>) -> Result<(), RequestError> {
    if req.method().as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(RequestError::BadMethod);
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => Err(RequestError::BadHost),
        (None, None) if req.version() == Version::HTTP_11 => Err(RequestError::BadHost),
        _ => Ok(()),
    }
}

/// The canonical path plus the untouched query, as the upstream will see it.
fn normalised_target(uri: &Uri) -> Result<PathAndQuery, RequestError> {
    let path = target::normalise_path(uri).map_err(RequestError::BadTarget)?;
    match (&path, uri.path_and_query()) {
        (Cow::Borrowed(_), Some(pq)) => Ok(pq.clone()),
        _ => {
            let text = match uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            };
            PathAndQuery::try_from(text).map_err(|_| RequestError::Internal)
        }
    }
}

/// The host a browser reached over plain HTTP while the cookies are
/// `Secure` (the scheme as a trusted proxy reports it, else the
/// connection's), unless it is loopback, which browsers treat as secure.
fn insecure_host(
    headers: &HeaderMap,
    host: Option<&HeaderValue>,
    trusted: bool,
    conn: Connection,
    secure: bool,
) -> Option<String> {
    if !secure {
        return None;
    }
    let forwarded = trusted
        .then(|| headers.get(hop::X_FORWARDED_PROTO)?.to_str().ok())
        .flatten()
        .map(|p| p.split(',').next().unwrap_or("").trim());
    if forwarded.unwrap_or(conn.proto()) != "http" {
        return None;
    }
    let host = host?.to_str().ok()?;
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_string())
}

/// `proto://host` as usher forwards it (its own `X-Forwarded-Proto` and
/// `-Host`, set just before): the assertion's default issuer.
fn forwarded_origin(headers: &HeaderMap, added: &hop::Added) -> String {
    let first = |name| {
        added
            .get(&name)
            .or_else(|| headers.get(&name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .unwrap_or("")
    };
    format!("{}://{}", first(hop::X_FORWARDED_PROTO), first(hop::X_FORWARDED_HOST))
}

/// The host the client asked for: `Host`, or the HTTP/2 `:authority`.
fn client_host(req: &Request<RequestBody>) -> Option<HeaderValue> {
    if let Some(h) = req.headers().get(header::HOST) {
        return Some(h.clone());
    }
    req.uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
}

impl Service {
    /// Log `e` by whose fault it was (upstream failures at most once per
    /// interval) and answer it.
    fn error_response(&self, e: &RequestError, html: bool, trace: &Trace, line: (&Method, &Uri)) -> Response<Body> {
        let (status, code, message) = e.describe();
        let (client, id) = (trace.client, request_id::text(&trace.request_id));
        let (method, path) = (line.0, line.1.path());
        match e.fault() {
            Fault::Client => debug!(error = %e, %method, path, %client, request_id = id, "request refused"),
            Fault::Upstream => {
                if let Some(left_out) = self.failures.admit(Instant::now()) {
                    event!(
                        Level::WARN,
                        error = %e, %method, path, %client, request_id = id, left_out,
                        "upstream failure (left_out: failures since the last such line, not logged)"
                    );
                }
            }
            Fault::Usher => {
                event!(Level::ERROR, error = %e, %method, path, %client, request_id = id, "internal failure")
            }
        }
        respond::error(status, code, message, html)
    }
}

/// What the access log line reports beyond the request and status.
#[derive(Debug)]
struct Trace {
    /// Whether the access line will be written (else nothing is copied for it).
    enabled: bool,
    /// `X-Request-Id`: a trusted proxy's, else made here.
    request_id: HeaderValue,
    /// The real client (see [`hop::client_ip`]).
    client: std::net::IpAddr,
    /// Whether the TCP peer is a trusted proxy.
    trusted: bool,
    /// The signed-in user, if any.
    user: Option<String>,
    /// How long the upstream took to send its response head.
    upstream: Option<Duration>,
}

/// Seconds since the Unix epoch: the one place usher reads the wall clock
/// (the request path and the `session` commands); everything else takes
/// `now` as a value.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
