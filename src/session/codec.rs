//! usher's own cookie format: a JSON object, its issue time and an
//! HMAC-SHA256 tag, in one cookie-safe string.
//!
//! Wire value: `v1.<issued_at>.<base64url(json)>.<base64url(tag)>`, where the
//! tag covers the cookie name, the format version, the issue time and the
//! JSON bytes (see `docs/cookie-format.md` for the byte layout). This module
//! owns sealing, verifying against every rotation key in constant time, and
//! the time checks; it takes `now` from the caller and never reads the clock.
//! It knows nothing of HTTP headers (that is `session::cookie`) or of what
//! the payload fields mean, except `auth_time` for the absolute lifetime.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde_json::{Map, Value};
use subtle::{Choice, ConstantTimeEq};

use super::key::{Key, Keys};

/// The format version, first field of every value and under the MAC.
pub const VERSION: &str = "v1";

/// How far in the future an issue time may lie (clock skew between
/// replicas), in seconds. Further ahead is [`Rejected::Future`].
pub const MAX_FUTURE_SKEW: u64 = 300;

/// A sensible [`Limits::max_value_len`]: browsers keep at most about 4096
/// bytes per cookie, so a longer value was never set by us.
pub const DEFAULT_MAX_VALUE_LEN: usize = 4096;

/// The cookie payload field holding the session id (Redis store).
pub const SID_FIELD: &str = "sid";

/// The payload field holding the login time (integer unix seconds) that
/// [`Limits::max_lifetime`] is measured from.
pub const AUTH_TIME_FIELD: &str = "auth_time";

/// The payload field saying how the session was made; `"password"` for
/// usher's own sign-in form, whose sessions end when their user is removed
/// from the configuration. Never writable by the backend.
pub const AUTH_METHOD_FIELD: &str = "auth_method";

/// [`AUTH_METHOD_FIELD`]'s value for usher's password sign-in.
pub const BY_PASSWORD: &str = "password";

/// Domain separation: no other MAC made with the same key can collide with
/// a session tag.
const CONTEXT: &[u8] = b"usher-session";

/// HMAC-SHA256 output length in bytes.
const TAG_LEN: usize = 32;

/// Bounds applied by [`open`]; all durations are in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inactivity bound: the longest time since the value was issued.
    pub max_age: u64,
    /// Absolute bound since login, measured from the payload's `auth_time`.
    pub max_lifetime: Option<u64>,
    /// Longest accepted wire value in bytes; longer is refused before any
    /// decoding.
    pub max_value_len: usize,
}

/// A verified, unexpired session value.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The session fields, shared (with the verified-signature memory);
    /// `Arc::make_mut` or `Arc::unwrap_or_clone` to change them.
    pub payload: Arc<Map<String, Value>>,
    /// When the value was sealed (unix seconds).
    pub issued_at: u64,
    /// True when a previous key, not the signing key, verified the value:
    /// re-seal it so that the old key can be retired.
    pub stale_key: bool,
}

/// Why a cookie gave no session. Not an error to show anyone: the client
/// always gets the same unauthenticated answer, and this is for logs and
/// metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejected {
    /// No session cookie was sent (or it was empty).
    #[error("no session cookie")]
    Missing,
    /// The value does not have the `v1.<time>.<payload>.<tag>` shape.
    #[error("session cookie is malformed")]
    Malformed,
    /// The value names a format version this build does not read.
    #[error("session cookie has an unknown format version")]
    UnknownVersion,
    /// No configured key produced the tag (tampered, wrong key or wrong name).
    #[error("session cookie signature does not match any configured key")]
    BadMac,
    /// Issued longer ago than `max_age`.
    #[error("session cookie is older than max_age")]
    Expired,
    /// Issued (or logged in) more than the allowed skew in the future.
    #[error("session cookie is dated in the future")]
    Future,
    /// Logged in longer ago than `max_lifetime`.
    #[error("session is older than max_lifetime")]
    LifetimeExceeded,
    /// The value is longer than `max_value_len`.
    #[error("session cookie is too large")]
    TooLarge,
    /// The request carries our cookie name more than once.
    #[error("session cookie is sent more than once")]
    Duplicate,
    /// The session store holds no session for the cookie's id (logged
    /// out, revoked, expired there).
    #[error("the session has ended in the store")]
    Ended,
    /// Signed in by usher's password form as a user who is no longer
    /// configured.
    #[error("the session's user was removed from the configuration")]
    UserRemoved,
}

impl Rejected {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [Rejected; 11] = [
        Rejected::Missing,
        Rejected::Malformed,
        Rejected::UnknownVersion,
        Rejected::BadMac,
        Rejected::Expired,
        Rejected::Future,
        Rejected::LifetimeExceeded,
        Rejected::TooLarge,
        Rejected::Duplicate,
        Rejected::Ended,
        Rejected::UserRemoved,
    ];

    /// A stable snake_case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Missing => "missing",
            Rejected::Malformed => "malformed",
            Rejected::UnknownVersion => "unknown_version",
            Rejected::BadMac => "bad_mac",
            Rejected::Expired => "expired",
            Rejected::Future => "future",
            Rejected::LifetimeExceeded => "lifetime_exceeded",
            Rejected::TooLarge => "too_large",
            Rejected::Duplicate => "duplicate",
            Rejected::Ended => "ended",
            Rejected::UserRemoved => "user_removed",
        }
    }
}

/// Seals `payload` as the value of cookie `name`, issued at `issued_at`
/// (unix seconds), with `key` (normally [`Keys::signing`]).
pub fn seal(name: &str, payload: &Map<String, Value>, issued_at: u64, key: &Key) -> String {
    // A map with string keys always serializes, and a Vec writer cannot fail.
    let json = serde_json::to_vec(payload).expect("a JSON map always serializes");
    let tag = tag(key, &mac_input(name, issued_at, &json));
    format!(
        "{VERSION}.{issued_at}.{}.{}",
        URL_SAFE_NO_PAD.encode(&json),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Verifies `value` as the value of cookie `name` against every key in
/// `keys`, then checks its age at `now` (unix seconds).
///
/// Order: length, structure and version, MAC; only a value whose MAC
/// verifies is parsed as JSON and checked for time.
pub fn open(name: &str, value: &str, keys: &Keys, now: u64, limits: &Limits) -> Result<Opened, Rejected> {
    let fields = Fields::split(value, limits.max_value_len)?;
    let stale_key = verify(keys, &mac_input(name, fields.issued_at, &fields.json), &fields.tag)?;
    let payload: Map<String, Value> = serde_json::from_slice(&fields.json).map_err(|_| Rejected::Malformed)?;
    check_times(fields.issued_at, &payload, now, limits)?;
    Ok(Opened {
        payload: Arc::new(payload),
        issued_at: fields.issued_at,
        stale_key,
    })
}

/// True once a session issued at `issued_at` is older than a quarter of
/// `max_age` at `now`: time to re-issue it with a fresh timestamp.
pub fn needs_refresh(issued_at: u64, now: u64, max_age: u64) -> bool {
    now.saturating_sub(issued_at).saturating_mul(4) > max_age
}

/// The decoded parts of a wire value, before the MAC is checked.
struct Fields {
    issued_at: u64,
    json: Vec<u8>,
    tag: Vec<u8>,
}

impl Fields {
    fn split(value: &str, max_len: usize) -> Result<Fields, Rejected> {
        if value.len() > max_len {
            return Err(Rejected::TooLarge);
        }
        if value.is_empty() {
            return Err(Rejected::Missing);
        }
        let mut parts = value.split('.');
        check_version(parts.next().unwrap_or_default())?;
        let (Some(time), Some(json), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Rejected::Malformed);
        };
        let tag = decode(tag)?;
        if tag.len() != TAG_LEN {
            return Err(Rejected::Malformed);
        }
        Ok(Fields {
            issued_at: parse_time(time)?,
            json: decode(json)?,
            tag,
        })
    }
}

/// The exact bytes the tag covers: five fields, each as an 8-byte big-endian
/// length followed by its bytes. Length prefixes make the encoding
/// injective, so a `.` (or any byte) in the cookie name cannot shift one
/// field into another.
fn mac_input(name: &str, issued_at: u64, json: &[u8]) -> Vec<u8> {
    let fields: [&[u8]; 5] = [
        CONTEXT,
        VERSION.as_bytes(),
        name.as_bytes(),
        &issued_at.to_be_bytes(),
        json,
    ];
    let capacity = fields.iter().map(|f| f.len().saturating_add(8)).sum();
    let mut input = Vec::with_capacity(capacity);
    for field in fields {
        // usize is at most 64 bits on every target Rust supports.
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field);
    }
    input
}

fn tag(key: &Key, input: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = key.hmac();
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// Compares the tag under every key, without stopping at the first match,
/// each comparison in constant time. Returns whether a previous key (not the
/// signing key) matched.
fn verify(keys: &Keys, input: &[u8], presented: &[u8]) -> Result<bool, Rejected> {
    let mut by_signing = Choice::from(0);
    let mut by_any = Choice::from(0);
    for (index, key) in keys.iter().enumerate() {
        let matched = tag(key, input).ct_eq(presented);
        by_any |= matched;
        if index == 0 {
            by_signing = matched;
        }
    }
    if bool::from(by_any) {
        Ok(!bool::from(by_signing))
    } else {
        Err(Rejected::BadMac)
    }
}

fn check_version(field: &str) -> Result<(), Rejected> {
    if field == VERSION {
        return Ok(());
    }
    match field.strip_prefix('v') {
        Some(digits) if is_digits(digits) => Err(Rejected::UnknownVersion),
        _ => Err(Rejected::Malformed),
    }
}

/// Accepts only the canonical decimal form (no sign, no leading zero), so
/// that each issue time has exactly one spelling on the wire.
pub(crate) fn parse_time(field: &str) -> Result<u64, Rejected> {
    if !is_digits(field) || (field.len() > 1 && field.starts_with('0')) {
        return Err(Rejected::Malformed);
    }
    field.parse().map_err(|_| Rejected::Malformed)
}

fn is_digits(field: &str) -> bool {
    !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit())
}

/// Decodes unpadded base64url; the engine also refuses non-canonical
/// trailing bits, so each byte string has exactly one spelling.
pub(crate) fn decode(field: &str) -> Result<Vec<u8>, Rejected> {
    URL_SAFE_NO_PAD.decode(field).map_err(|_| Rejected::Malformed)
}

pub(crate) fn check_times(
    issued_at: u64,
    payload: &Map<String, Value>,
    now: u64,
    limits: &Limits,
) -> Result<(), Rejected> {
    let latest = now.saturating_add(MAX_FUTURE_SKEW);
    if issued_at > latest {
        return Err(Rejected::Future);
    }
    if now.saturating_sub(issued_at) > limits.max_age {
        return Err(Rejected::Expired);
    }
    check_lifetime(payload, now, limits)
}

/// `max_lifetime`, measured from the payload's `auth_time` when present
/// (shared with the app formats, whose own signatures know nothing of it).
pub(crate) fn check_lifetime(payload: &Map<String, Value>, now: u64, limits: &Limits) -> Result<(), Rejected> {
    let (Some(max_lifetime), Some(auth_time)) = (limits.max_lifetime, payload.get(AUTH_TIME_FIELD)) else {
        return Ok(());
    };
    // Fail closed: a lifetime that cannot be measured is not unlimited.
    let auth_time = auth_time.as_u64().ok_or(Rejected::Malformed)?;
    if auth_time > now.saturating_add(MAX_FUTURE_SKEW) {
        return Err(Rejected::Future);
    }
    if now.saturating_sub(auth_time) > max_lifetime {
        return Err(Rejected::LifetimeExceeded);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
