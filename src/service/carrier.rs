//! The session phases of the pipeline: read the cookie on the way in,
//! write it back on the way out (SPEC §3.3 and §3.7).
//!
//! A bad cookie is never an error here: it is no session, counted and
//! logged at debug with its reason. On the way out, the backend's merge
//! patch (if allowed and the status is not 5xx) is applied, and the cookie
//! is re-issued when it is old or was signed by a previous key, or cleared
//! when the client sent one that was rejected.

use http::header::{self, HeaderMap, HeaderName};
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::config;
use crate::metrics::Metrics;
use crate::session::codec::{AUTH_TIME_FIELD, DEFAULT_MAX_VALUE_LEN};
use crate::session::patch::{self, Outcome};
use crate::session::{self, Limits, Rejected, SetCookieError, cookie};

/// The session as the request brought it.
#[derive(Debug, Default)]
pub struct Found {
    /// The verified session fields; `None` when signed out.
    pub session: Option<Map<String, Value>>,
    /// Re-issue the cookie on the response (old, or signed by an old key).
    refresh: bool,
    /// A cookie was sent but rejected: clear it on the response.
    clear: bool,
    /// A session cookie was sent, readable or not.
    sent: bool,
    /// It came under the old default name: clear that one on the response.
    legacy: bool,
    /// When the verified session was issued (0 without one).
    pub issued_at: u64,
    /// The session lives for this request only (a bearer token, an API
    /// key): no cookie is ever set for it, and backend writes are dropped.
    request_only: bool,
}

impl Found {
    /// A session for this request only, from a credential it carried.
    pub fn request_only(session: Map<String, Value>, now: u64) -> Found {
        Found {
            session: Some(session),
            issued_at: now,
            request_only: true,
            ..Found::default()
        }
    }

    /// Whether the request carried the session cookie at all (valid or not).
    pub fn present(&self) -> bool {
        self.session.is_some() || self.sent
    }
}

/// Verify the request's session cookie.
pub fn read(headers: &HeaderMap, cfg: &config::Session, now: u64, metrics: &Metrics) -> Found {
    let limits = Limits {
        max_age: cfg.max_age.as_secs(),
        max_lifetime: cfg.max_lifetime.map(|d| d.as_secs()),
        max_value_len: DEFAULT_MAX_VALUE_LEN,
    };
    let open = |name: &str| {
        cookie::find(headers, name).and_then(|value| cfg.format.open(name, value, &cfg.keys, now, &limits))
    };
    let mut legacy = false;
    let mut opened = open(cfg.cookie.name());
    if let (Err(Rejected::Missing), Some(old)) = (&opened, &cfg.legacy_cookie) {
        // Signed before the default name moved to `__Host-`: read it once,
        // then move it over (re-issue under the new name, clear the old).
        opened = open(old.name());
        legacy = opened.is_ok();
    }
    match opened {
        Ok(o) => Found {
            refresh: legacy || o.stale_key || session::needs_refresh(o.issued_at, now, limits.max_age),
            session: Some(o.payload),
            clear: false,
            sent: true,
            legacy,
            issued_at: o.issued_at,
            request_only: false,
        },
        Err(Rejected::Missing) => Found::default(),
        Err(reason) => {
            debug!(reason = reason.as_str(), "session cookie rejected");
            metrics.session_rejected(reason);
            // An app-format cookie belongs to the app too: one usher cannot
            // read (a Flask session holding bytes, a key only the app has)
            // may still be the app's valid session, so it is left alone,
            // except past max_lifetime, which usher enforces.
            let clear = !cfg.format.shared_with_app() || reason == Rejected::LifetimeExceeded;
            Found {
                clear,
                sent: true,
                ..Found::default()
            }
        }
    }
}

/// The write header's default name, removed from responses even when
/// `[session.upstream]` is omitted.
const DEFAULT_WRITE_HEADER: &str = "usher-session";

/// Apply the backend's write (if any) and set, refresh or clear the cookie
/// on the response headers. `status_is_5xx` suppresses writes.
pub fn write_back(
    res: &mut HeaderMap,
    server_error: bool,
    found: Found,
    cfg: &config::Session,
    now: u64,
    metrics: &Metrics,
) {
    let patch = match &cfg.writes {
        Some(w) => take_patch(res, &w.header).map(|p| (p, &w.writable)),
        None => {
            // Writes are off, but the header still never reaches a client.
            if res.remove(DEFAULT_WRITE_HEADER).is_some() {
                debug!("backend sent Usher-Session but [session.upstream] is not configured; removed");
            }
            None
        }
    };
    let outcome = match patch {
        Some(_) if found.request_only => {
            debug!("backend session write ignored: the request was signed in by a credential, not a cookie");
            None
        }
        Some(_) if server_error => {
            debug!("backend session write ignored on a 5xx response");
            None
        }
        Some((bytes, writable)) => Some(patch::apply(found.session.as_ref(), &bytes, writable)),
        None => None,
    };
    if found.legacy && !matches!(outcome, Some(Outcome::Clear)) {
        clear_legacy(res, cfg);
    }
    match outcome {
        Some(Outcome::Clear) => clear(res, cfg),
        Some(Outcome::Update { mut session, ignored }) => {
            if !ignored.is_empty() {
                warn!(fields = ?ignored, "backend session write named fields that are not writable; ignored");
            }
            if found.session.is_none() {
                session.insert(AUTH_TIME_FIELD.into(), Value::from(now));
            }
            set(res, &session, cfg, now, metrics);
        }
        Some(Outcome::Invalid(why)) => {
            warn!(reason = why, "backend session write ignored");
            keep(res, found, cfg, now, metrics);
        }
        None => keep(res, found, cfg, now, metrics),
    }
}

/// No write: refresh an old cookie, clear a rejected one, else nothing.
fn keep(res: &mut HeaderMap, found: Found, cfg: &config::Session, now: u64, metrics: &Metrics) {
    match found.session {
        Some(session) if found.refresh => {
            set(res, &session, cfg, now, metrics);
        }
        None if found.clear => clear(res, cfg),
        _ => {}
    }
}

/// Remove the write header from the response; its value when sent once.
fn take_patch(res: &mut HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let count = res.get_all(name).iter().count();
    // `remove` drops every value and returns the first.
    let first = res.remove(name)?;
    if count > 1 {
        warn!(header = %name, "backend sent the session header more than once; ignored");
        return None;
    }
    Some(first.as_bytes().to_vec())
}

/// Seal `session` now and append its `Set-Cookie`, unless too large.
/// Returns whether the cookie could be set.
pub fn set(
    res: &mut HeaderMap,
    session: &Map<String, Value>,
    cfg: &config::Session,
    now: u64,
    metrics: &Metrics,
) -> bool {
    let value = cfg.format.seal(cfg.cookie.name(), session, now, &cfg.keys);
    match cookie::set_cookie(&cfg.cookie, &value) {
        Ok(v) => {
            res.append(header::SET_COOKIE, v);
            true
        }
        Err(e) => {
            if matches!(e, SetCookieError::TooLarge { .. }) {
                metrics.cookie_too_large();
            }
            warn!(error = %e, "session cookie not set");
            false
        }
    }
}

/// Append the clearing `Set-Cookie` (same attributes, expired).
pub fn clear(res: &mut HeaderMap, cfg: &config::Session) {
    res.append(header::SET_COOKIE, cookie::clear_cookie(&cfg.cookie));
    clear_legacy(res, cfg);
}

/// Clear the old default cookie, if this configuration reads one.
fn clear_legacy(res: &mut HeaderMap, cfg: &config::Session) {
    if let Some(old) = &cfg.legacy_cookie {
        res.append(header::SET_COOKIE, cookie::clear_cookie(old));
    }
}
