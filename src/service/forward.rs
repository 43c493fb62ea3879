//! `GET <prefix>/auth`: the forward-auth check for nginx `auth_request`,
//! Traefik `ForwardAuth` and Caddy `forward_auth` (SPEC §4).
//!
//! The front proxy describes the original request in `X-Forwarded-Method`,
//! `-Proto`, `-Host` and `-Uri` (or nginx's `X-Original-URL`), believed
//! only from `server.trusted_proxies`; from anyone else the check fails
//! closed. The described URI is normalised exactly like a proxied request;
//! the access rules judge it both as normalised and as the front proxy
//! sent it (which is what the app receives), stricter wins. A description
//! proxy mode would answer 400 (bad escapes, an encoded `;`, a lower-case
//! method, ...) is refused, 403. Without
//! `X-Forwarded-Method` the method is unknown and judged as strictly as any
//! method could be: unsafe for the guard, and the strictest decision the
//! rules give any method ([`crate::access::Policy::decide_any_method`]). Allowed:
//! 200 with every `[session.forward]` header (empty when the field is
//! absent). Otherwise 401, or with `?redirect=1` a 302 to sign in; 403 when
//! signed in but not allowed, or a refused target; 400 when no header
//! describes a readable request. Never 2xx on a problem.

use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Method, Response, StatusCode};
use tracing::{debug, warn};

use super::{Service, decide, normalised_target};
use crate::access::Decision;
use crate::carrier::Found;
use crate::error::RequestError;
use crate::respond::Body;
use crate::{auth, guard, respond};

/// The original request, as the front proxy describes it.
struct Described {
    /// `None`: the front proxy did not say (nginx sends no
    /// `X-Forwarded-Method` unless configured to).
    method: Option<Method>,
    /// The path as the front proxy sent it: the backend may route on this.
    raw_path: String,
    /// The path normalised as proxy mode would forward it.
    target: PathAndQuery,
    /// `proto://host` when both are known, for an absolute `rd`.
    origin: Option<String>,
    host: Option<String>,
}

impl Service {
    /// Answer a forward-auth check. `trusted`: the peer is a trusted proxy.
    pub(super) async fn forward_auth(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        trusted: bool,
        found: Found,
        sessions: &super::Sessions<'_>,
    ) -> Response<Body> {
        if !trusted {
            warn!("forward-auth check from a peer not in server.trusted_proxies; refused");
            return respond::error(
                StatusCode::FORBIDDEN,
                "untrusted_forwarder",
                "Forward-auth checks are answered only for trusted proxies.",
                false,
            );
        }
        let described = match describe(headers) {
            Ok(d) => d,
            Err(e @ RequestError::BadForwardedRequest) => {
                let (status, code, message) = e.describe();
                return respond::error(status, code, message, false);
            }
            Err(e) => {
                debug!(error = %e, "forward-auth: described request refused");
                return respond::error(
                    StatusCode::FORBIDDEN,
                    "refused_target",
                    "The request is malformed or ambiguous and was refused.",
                    false,
                );
            }
        };
        let redirect = query.is_some_and(|q| q.split('&').any(|p| p == "redirect=1" || p == "redirect=true"));
        let mut res = self.forward_decision(headers, &described, &found, redirect);
        if found.unavailable && res.status() != StatusCode::OK {
            // Who this is cannot be known now: never a sign-in redirect.
            return respond::store_unavailable(false);
        }
        if res.status() == StatusCode::OK {
            self.plan.fill_all(res.headers_mut(), found.session.as_deref());
            // The front proxy copies the assertion to the app like the others.
            if let (Some(signer), Some(session)) = (&self.signer, found.session.as_deref()) {
                let origin = described.origin.as_deref().unwrap_or("");
                signer.insert_into(res.headers_mut(), session, origin, sessions.now);
            }
        }
        crate::carrier::write_back(res.headers_mut(), false, found, sessions).await;
        res
    }

    fn forward_decision(&self, headers: &HeaderMap, d: &Described, found: &Found, redirect: bool) -> Response<Body> {
        // An unknown method is judged as the strictest one could be: unsafe
        // for the cross-site guard, and the strictest access decision.
        let cross_site = self.config.session.cross_site_guard
            && found.present()
            && d.method.as_ref().is_none_or(guard::is_unsafe)
            && guard::is_cross_site(headers, d.host.as_deref());
        if cross_site {
            return decide::cross_site(false);
        }
        let who = found.session.as_deref().and_then(crate::carrier::identity);
        if d.method.is_none() {
            warn_no_method();
        }
        // The front proxy forwards its own raw target, not usher's
        // normalised one: judge both, the stricter wins.
        let paths = [d.target.path(), d.raw_path.as_str()];
        let decision = self
            .config
            .access
            .decide_described(d.method.as_ref(), &paths, who.as_ref());
        match decision {
            Decision::Allow => {
                let mut res = Response::new(respond::empty());
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            Decision::NeedLogin if redirect => self.login_redirect(d),
            Decision::NeedLogin => auth::unauthenticated(&self.config),
            Decision::Forbidden => respond::error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "You do not have access to this page.",
                false,
            ),
        }
    }

    /// 302 to the sign-in page, coming back to the original URL.
    fn login_redirect(&self, d: &Described) -> Response<Body> {
        let back = match &d.origin {
            Some(origin) => format!("{origin}{}", d.target),
            None => d.target.to_string(),
        };
        let rd: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let login = match &self.config.forward_auth.login_url {
            Some(url) => url.clone(),
            None => format!("{}/login", self.config.server.prefix),
        };
        let sep = if login.contains('?') { '&' } else { '?' };
        auth::redirect(StatusCode::FOUND, &format!("{login}{sep}rd={rd}"))
    }
}

/// Say once per process that checks arrive without `X-Forwarded-Method`,
/// and what that costs: a warning per check would flood the log.
fn warn_no_method() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        warn!(
            "forward-auth checks arrive without X-Forwarded-Method: each is decided for the strictest method \
             (cross-site guard as for POST, the strictest access rule); have the front proxy send it \
             (nginx: proxy_set_header X-Forwarded-Method $request_method)"
        );
    }
}

/// Read the described request from the front proxy's headers.
/// `BadForwardedRequest`: nothing readable describes it (400); any other
/// error: the described request is one proxy mode would refuse (403).
fn describe(headers: &HeaderMap) -> Result<Described, RequestError> {
    // Two values of one of these headers is ambiguous: refuse rather than pick.
    let names = [
        "x-forwarded-method",
        "x-forwarded-uri",
        "x-original-uri",
        "x-original-url",
        "x-forwarded-host",
    ];
    if names.iter().any(|n| headers.get_all(*n).iter().count() > 1) {
        return Err(RequestError::BadForwardedRequest);
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let method = match text("x-forwarded-method") {
        None => None,
        Some(m) => Some(Method::from_bytes(m.as_bytes()).map_err(|_| RequestError::BadForwardedRequest)?),
    };
    if method
        .as_ref()
        .is_some_and(|m| m.as_str().bytes().any(|b| b.is_ascii_lowercase()))
    {
        return Err(RequestError::BadMethod);
    }
    let (uri, url_host, url_proto) = described_uri(headers)?;
    let target = normalised_target(&uri)?;
    let host = text("x-forwarded-host").map(str::to_string).or(url_host);
    let proto = text("x-forwarded-proto").map(str::to_string).or(url_proto);
    let origin = match (&proto, &host) {
        (Some(p), Some(h)) if matches!(p.as_str(), "http" | "https") => Some(format!("{p}://{h}")),
        _ => None,
    };
    Ok(Described {
        method,
        raw_path: uri.path().to_string(),
        target,
        origin,
        host,
    })
}

/// The described target, and the host and scheme an absolute
/// `X-Original-URL` names. Several headers may name it (Authelia's nginx
/// snippet sends `X-Original-URL` and `X-Forwarded-Uri`): accepted when
/// they name the same target, refused when they differ (a client may have
/// added one that the front proxy passed through).
fn described_uri(headers: &HeaderMap) -> Result<(Uri, Option<String>, Option<String>), RequestError> {
    let mut found: Option<(Uri, Option<String>, Option<String>)> = None;
    for name in ["x-original-url", "x-forwarded-uri", "x-original-uri"] {
        let Some(value) = headers.get(name) else { continue };
        let text = value.to_str().map_err(|_| RequestError::BadForwardedRequest)?.trim();
        let uri: Uri = text.parse().map_err(|_| RequestError::BadForwardedRequest)?;
        let host = uri.authority().map(|a| a.to_string());
        let proto = uri.scheme_str().map(str::to_string);
        match &found {
            None => found = Some((uri, host, proto)),
            Some((seen, _, _)) if seen.path_and_query() == uri.path_and_query() => {}
            Some(_) => return Err(RequestError::BadForwardedRequest),
        }
    }
    found.ok_or(RequestError::BadForwardedRequest)
}

/// For `fuzzing::forward_auth`: describe the request the headers give, and
/// decide it for a signed-out client; an allowed answer must be allowed for
/// each spelling of the path alone.
pub(super) fn fuzz(headers: &HeaderMap, policy: &crate::access::Policy) {
    let Ok(d) = describe(headers) else { return };
    let paths = [d.target.path(), d.raw_path.as_str()];
    if policy.decide_described(d.method.as_ref(), &paths, None) == Decision::Allow {
        for path in paths {
            let alone = policy.decide_described(d.method.as_ref(), &[path], None);
            assert_eq!(alone, Decision::Allow, "{path:?}");
        }
    }
}
