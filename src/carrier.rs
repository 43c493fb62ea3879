//! The session phases of the pipeline: read the cookie on the way in,
//! write it back on the way out (SPEC §3.3, §3.7 and §7).
//!
//! A bad cookie is never an error here: it is no session, counted and
//! logged at debug with its reason. On the way out, the backend's merge
//! patch (if allowed and the status is not 5xx) is applied, and the cookie
//! is re-issued when it is old or was signed by a previous key, or cleared
//! when the client sent one that was rejected.
//!
//! With the Redis store the cookie holds only `{"sid", "auth_time"}`: the
//! fields are loaded by that id, a backend write is a compare-and-set in
//! the store, a refresh slides the stored TTL. When the store cannot be
//! reached the request is neither signed in nor signed out: the session is
//! `unavailable`, nothing is cleared and no write is applied.
//!
//! Store calls are boxed: their futures would otherwise be part of every
//! request's future (the pipeline's state machine holds the largest of its
//! branches), and hyper moves that future a few times per request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName};
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::access::Identity;
use crate::config;
use crate::metrics::Metrics;
use crate::session::codec::{AUTH_METHOD_FIELD, AUTH_TIME_FIELD, BY_PASSWORD, DEFAULT_MAX_VALUE_LEN};
use crate::session::patch::{self, Outcome};
use crate::session::verified::Verified;
use crate::session::{self, Limits, Rejected, SetCookieError, cookie};
use crate::store::{Meta, Record, RedisStore, SID_FIELD, StoreError, Updated, id_payload, is_sid};
use crate::users::Users;

/// The signed-in identity in a session: a non-empty string `user` and the
/// string members of `groups` (a list, or one string). A session without a
/// user (say, an anonymous cart) is not signed in.
pub fn identity(session: &Map<String, Value>) -> Option<Identity<'_>> {
    let user = session.get("user").and_then(Value::as_str).filter(|u| !u.is_empty())?;
    Some(Identity::new(user, session.get("groups")))
}

/// What the session phases need besides the request: built per request
/// from the service's parts (references only).
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    /// `[session]`.
    pub cfg: &'a config::Session,
    /// The Redis store, when that is `[session.store] kind`.
    pub store: Option<&'a RedisStore>,
    /// The configured users (a password session of a removed user ends).
    pub users: &'a Users,
    /// Counters.
    pub metrics: &'a Metrics,
    /// Unix seconds.
    pub now: u64,
    /// Cookie values already verified (the proxy's; `None` elsewhere).
    pub verified: Option<&'a Verified>,
}

impl<'a> Sessions<'a> {
    /// The view of `config` (and its store) at `now`.
    pub fn new(config: &'a config::Config, store: Option<&'a RedisStore>, metrics: &'a Metrics, now: u64) -> Self {
        Sessions {
            cfg: &config.session,
            store,
            users: &config.login.users,
            metrics,
            now,
            verified: None,
        }
    }

    /// Remember verified cookie values in `memory`.
    pub fn remembering(self, memory: &'a Verified) -> Self {
        Sessions {
            verified: Some(memory),
            ..self
        }
    }
}

/// The session as the request brought it.
#[derive(Debug, Default)]
pub struct Found {
    /// The verified session fields; `None` when signed out.
    /// Shared with the verified-signature memory: not copied per request.
    pub session: Option<Arc<Map<String, Value>>>,
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
    /// Redis store: the cookie's session id and the record it loaded,
    /// without its fields (they are `session`; not copied per request).
    stored: Option<(String, Record)>,
    /// Redis store: a session cookie was sent but the store could not be
    /// asked. Neither signed in nor signed out.
    pub unavailable: bool,
    /// Redis store: the client, for a session a backend write creates.
    client: Option<(IpAddr, String)>,
}

impl Found {
    /// A session for this request only, from a credential it carried.
    pub fn request_only(session: Map<String, Value>, now: u64) -> Found {
        Found {
            session: Some(Arc::new(session)),
            issued_at: now,
            request_only: true,
            ..Found::default()
        }
    }

    /// Whether the request carried the session cookie at all (valid or not).
    pub fn present(&self) -> bool {
        self.session.is_some() || self.sent
    }

    /// Redis store: the session id the cookie carried and the user it is
    /// indexed under, when it was found.
    pub fn stored(&self) -> Option<(&str, &str)> {
        self.stored.as_ref().map(|(sid, r)| (sid.as_str(), r.user.as_str()))
    }

    fn rejected(reason: Rejected, clear: bool, s: &Sessions<'_>) -> Found {
        debug!(reason = reason.as_str(), "session cookie rejected");
        s.metrics.session_rejected(reason);
        Found {
            clear,
            sent: true,
            ..Found::default()
        }
    }
}

/// Verify the request's session cookie (and, with the Redis store, load
/// the session it names).
pub async fn read(headers: &HeaderMap, client: IpAddr, s: &Sessions<'_>) -> Found {
    let cfg = s.cfg;
    let limits = limits(cfg);
    let open = |name: &str| {
        cookie::find(headers, name).and_then(|value| match s.verified {
            Some(memory) => cfg
                .format
                .open_remembered(memory, name, value, &cfg.keys, s.now, &limits),
            None => cfg.format.open(name, value, &cfg.keys, s.now, &limits),
        })
    };
    let mut legacy = false;
    let mut opened = open(cfg.cookie.name());
    if let (Err(Rejected::Missing), Some(old)) = (&opened, &cfg.legacy_cookie) {
        // Signed before the default name moved to `__Host-`: read it once,
        // then move it over (re-issue under the new name, clear the old).
        opened = open(old.name());
        legacy = opened.is_ok();
    }
    let mut found = match opened {
        Ok(o) => Found {
            refresh: legacy || o.stale_key || session::needs_refresh(o.issued_at, s.now, limits.max_age),
            session: Some(o.payload),
            sent: true,
            legacy,
            issued_at: o.issued_at,
            ..Found::default()
        },
        Err(Rejected::Missing) => Found::default(),
        Err(reason) => {
            // An app-format cookie belongs to the app too: one usher cannot
            // read (a Flask session holding bytes, a key only the app has)
            // may still be the app's valid session, so it is left alone,
            // except past max_lifetime, which usher enforces.
            let clear = !cfg.format.shared_with_app() || reason == Rejected::LifetimeExceeded;
            return Found::rejected(reason, clear, s);
        }
    };
    if let Some(store) = s.store {
        if let Some(payload) = found.session.take() {
            found = Box::pin(load(store, payload, found, headers, client, s)).await;
        } else {
            // A session a backend write makes for this browser records it.
            found.client = Some((client, user_agent(headers)));
        }
    }
    if found.session.as_deref().is_some_and(|f| user_removed(f, s.users)) {
        if let (Some(store), Some((sid, record))) = (s.store, &found.stored)
            && let Err(e) = Box::pin(store.delete(sid, &record.user)).await
        {
            warn!(error = %e, "could not delete the session of a removed user from the store");
        }
        return Found::rejected(Rejected::UserRemoved, true, s);
    }
    found
}

/// Redis store: the record the cookie's id names.
async fn load(
    store: &RedisStore,
    payload: Arc<Map<String, Value>>,
    found: Found,
    headers: &HeaderMap,
    client: IpAddr,
    s: &Sessions<'_>,
) -> Found {
    let Some(sid) = payload.get(SID_FIELD).and_then(Value::as_str).filter(|v| is_sid(v)) else {
        // Signed by our key but not a session id: an old cookie-store
        // session after the switch to Redis. It is not honoured.
        return Found::rejected(Rejected::Malformed, true, s);
    };
    match store.load(sid).await {
        Ok(Some(mut record)) => Found {
            // The fields move to `session`; the record keeps the rest.
            session: Some(Arc::new(std::mem::take(&mut record.data))),
            stored: Some((sid.to_string(), record)),
            client: Some((client, user_agent(headers))),
            ..found
        },
        Ok(None) => Found::rejected(Rejected::Ended, true, s),
        Err(e) => {
            warn!(error = %e, "session store unavailable: the request is neither signed in nor out");
            Found {
                unavailable: true,
                sent: true,
                ..Found::default()
            }
        }
    }
}

/// A session made by usher's password form whose user is gone.
fn user_removed(fields: &Map<String, Value>, users: &Users) -> bool {
    if fields.get(AUTH_METHOD_FIELD).and_then(Value::as_str) != Some(BY_PASSWORD) {
        return false;
    }
    !fields
        .get("user")
        .and_then(Value::as_str)
        .is_some_and(|u| users.contains(u))
}

fn user_agent(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ua.chars().take(256).collect()
}

fn limits(cfg: &config::Session) -> Limits {
    Limits {
        max_age: cfg.max_age.as_secs(),
        max_lifetime: cfg.max_lifetime.map(|d| d.as_secs()),
        max_value_len: DEFAULT_MAX_VALUE_LEN,
    }
}

/// The write header's default name, removed from responses even when
/// `[session.upstream]` is omitted. A `HeaderName`, not text: looking a
/// header up by `&str` parses the name on every call.
const DEFAULT_WRITE_HEADER: HeaderName = HeaderName::from_static("usher-session");

/// Apply the backend's write (if any) and set, refresh or clear the cookie
/// on the response headers. `server_error` suppresses writes.
pub async fn write_back(res: &mut HeaderMap, server_error: bool, found: Found, s: &Sessions<'_>) {
    let cfg = s.cfg;
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
        Some(_) if found.unavailable => {
            warn!("backend session write lost: the session store is unavailable");
            None
        }
        Some((bytes, writable)) => Some((
            patch::apply(found.session.as_deref(), &bytes, writable),
            bytes,
            writable,
        )),
        None => None,
    };
    if found.legacy && !matches!(outcome, Some((Outcome::Clear, ..))) {
        clear_legacy(res, cfg);
    }
    match outcome {
        Some((Outcome::Clear, ..)) => {
            if let Err(e) = Box::pin(end(res, found.stored(), s)).await {
                warn!(error = %e, "backend cleared the session; the stored copy may live on until its TTL");
            }
        }
        Some((Outcome::Update { mut session, ignored }, bytes, writable)) => {
            if !ignored.is_empty() {
                warn!(fields = ?ignored, "backend session write named fields that are not writable; ignored");
            }
            match (s.store, found.stored) {
                (Some(store), Some((sid, mut record))) => {
                    // The compare-and-set starts from the fields as loaded.
                    record.data = found.session.map(Arc::unwrap_or_clone).unwrap_or_default();
                    // Re-applied to the newest fields until it lands.
                    let change = |current: &Map<String, Value>| match patch::apply(Some(current), &bytes, writable) {
                        Outcome::Update { session, .. } => Some(session),
                        _ => None,
                    };
                    let ttl = ttl(&session, cfg, s.now);
                    match Box::pin(store.update(&sid, record, change, s.now, ttl)).await {
                        Ok(Updated::Written(_) | Updated::Unchanged) => {
                            if found.refresh {
                                set_sid(res, &sid, &session, s);
                            }
                        }
                        Ok(Updated::Gone) => clear(res, cfg),
                        Err(e) => warn!(error = %e, "backend session write lost: the session store failed"),
                    }
                }
                (store, _) => {
                    if found.session.is_none() {
                        session.insert(AUTH_TIME_FIELD.into(), Value::from(s.now));
                    }
                    let (ip, ua) = found.client.unwrap_or((IpAddr::from([0, 0, 0, 0]), String::new()));
                    let meta = Meta {
                        user: session.get("user").and_then(Value::as_str).unwrap_or(""),
                        ip,
                        user_agent: &ua,
                    };
                    if let Err(e) = Box::pin(set_with(res, &session, meta, store, s)).await {
                        warn!(error = %e, "backend session write lost: the session store failed");
                    }
                }
            }
        }
        Some((Outcome::Invalid(why), ..)) => {
            warn!(reason = why, "backend session write ignored");
            keep(res, found, s).await;
        }
        None => keep(res, found, s).await,
    }
}

/// No write: refresh an old cookie (sliding the store's TTL), clear a
/// rejected one, else nothing.
async fn keep(res: &mut HeaderMap, found: Found, s: &Sessions<'_>) {
    match (found.session, found.stored) {
        (Some(session), Some((sid, record))) if found.refresh => {
            let Some(store) = s.store else { return };
            let ttl = ttl(&session, s.cfg, s.now);
            match Box::pin(store.touch(&sid, &record.user, s.now, ttl)).await {
                Ok(true) => {
                    set_sid(res, &sid, &session, s);
                }
                Ok(false) => clear(res, s.cfg),
                // The cookie stays as it is: the next request tries again.
                Err(e) => warn!(error = %e, "session refresh skipped: the session store failed"),
            }
        }
        (Some(session), None) if found.refresh => {
            set(res, &session, s.cfg, s.now, s.metrics);
        }
        (None, _) if found.clear => clear(res, s.cfg),
        _ => {}
    }
}

/// How long the store keeps a session written now: `max_age`, and never
/// past `auth_time + max_lifetime`.
fn ttl(session: &Map<String, Value>, cfg: &config::Session, now: u64) -> Duration {
    let left = match (cfg.max_lifetime, session.get(AUTH_TIME_FIELD).and_then(Value::as_u64)) {
        (Some(life), Some(auth)) => auth.saturating_add(life.as_secs()).saturating_sub(now),
        _ => u64::MAX,
    };
    Duration::from_secs(cfg.max_age.as_secs().min(left).max(1))
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

/// A new session (a sign-in): stored first with the Redis store, then its
/// cookie appended. `Ok(false)` when the cookie would be too large.
pub async fn create(
    res: &mut HeaderMap,
    session: &Map<String, Value>,
    meta: Meta<'_>,
    s: &Sessions<'_>,
) -> Result<bool, StoreError> {
    set_with(res, session, meta, s.store, s).await
}

async fn set_with(
    res: &mut HeaderMap,
    session: &Map<String, Value>,
    meta: Meta<'_>,
    store: Option<&RedisStore>,
    s: &Sessions<'_>,
) -> Result<bool, StoreError> {
    match store {
        None => Ok(set(res, session, s.cfg, s.now, s.metrics)),
        Some(store) => {
            let sid = store.create(session, meta, s.now, ttl(session, s.cfg, s.now)).await?;
            Ok(set_sid(res, &sid, session, s))
        }
    }
}

/// Redis store: the cookie naming `sid`, with the session's `auth_time`
/// (so the cookie itself also ends at `max_lifetime`).
fn set_sid(res: &mut HeaderMap, sid: &str, session: &Map<String, Value>, s: &Sessions<'_>) -> bool {
    set(res, &id_payload(sid, session), s.cfg, s.now, s.metrics)
}

/// Seal `session` now and append its `Set-Cookie`, unless too large.
/// Returns whether the cookie could be set.
fn set(res: &mut HeaderMap, session: &Map<String, Value>, cfg: &config::Session, now: u64, metrics: &Metrics) -> bool {
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

/// End the session: delete it from the store (when `stored` names one)
/// and clear the cookie. The cookie is cleared even when the store fails;
/// the error says the stored copy may live on until its TTL.
pub async fn end(res: &mut HeaderMap, stored: Option<(&str, &str)>, s: &Sessions<'_>) -> Result<(), StoreError> {
    let deleted = match (s.store, stored) {
        (Some(store), Some((sid, user))) => store.delete(sid, user).await,
        _ => Ok(()),
    };
    clear(res, s.cfg);
    deleted
}

/// Append the clearing `Set-Cookie` (same attributes, expired).
fn clear(res: &mut HeaderMap, cfg: &config::Session) {
    res.append(header::SET_COOKIE, cookie::clear_cookie(&cfg.cookie));
    clear_legacy(res, cfg);
}

/// Clear the old default cookie, if this configuration reads one.
fn clear_legacy(res: &mut HeaderMap, cfg: &config::Session) {
    if let Some(old) = &cfg.legacy_cookie {
        res.append(header::SET_COOKIE, cookie::clear_cookie(old));
    }
}
