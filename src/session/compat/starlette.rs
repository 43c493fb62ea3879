//! Starlette's `SessionMiddleware` cookie (what FastAPI apps use): the
//! session dict as `json.dumps` text, in **standard** base64 with `=`
//! padding, signed by itsdangerous with Starlette's key derivation.
//!
//! This module owns the payload segment. Reading accepts any JSON object
//! text (compact, raw UTF-8, any key order), as the middleware does, but the
//! base64 must be standard and padded: the middleware fails on anything else.
//! Writing reproduces `json.dumps` byte for byte, with keys in the map's
//! iteration order. Starlette keeps insertion order; `serde_json::Map` keeps
//! it only with `serde_json`'s `preserve_order` feature and sorts keys
//! otherwise. The app reads either order. To re-issue a session unchanged
//! byte for byte, use [`refresh`], which reuses the received payload segment.
//!
//! Starlette takes a single `secret_key`; accepting several keys here is
//! usher's rotation, in the same format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::CompatRejected;
use super::itsdangerous::{self, STARLETTE};
use super::pyjson::{self, Style};

/// Starlette's default `max_age`: 14 days, in seconds.
pub const DEFAULT_MAX_AGE: u64 = 1_209_600;

/// Verifies `value` against `keys` (first = signing key, all accepted) and
/// returns the session at `now` (unix seconds). `max_age` is the middleware's
/// `max_age` (`None`: no age check at all).
pub fn open(value: &str, keys: &[&[u8]], now: u64, max_age: Option<u64>) -> Result<Map<String, Value>, CompatRejected> {
    let verified = itsdangerous::verify(STARLETTE, value, keys, now, max_age)?;
    decode_payload(verified.payload)
}

/// Writes `payload` as Starlette would at `now` (unix seconds), signed with
/// `key`. Browsers drop values longer than about 4 KB (and [`open`] refuses
/// those over [`super::MAX_VALUE_LEN`]): keep sessions small.
pub fn seal(payload: &Map<String, Value>, key: &[u8], now: u64) -> String {
    itsdangerous::sign(STARLETTE, key, &encode_payload(payload), now)
}

/// Verifies `value` like [`open`] and, if it holds a readable session,
/// signs the same payload segment again at `now` with the first of `keys`:
/// a fresh timestamp with the data kept byte for byte.
pub fn refresh(value: &str, keys: &[&[u8]], now: u64, max_age: Option<u64>) -> Result<String, CompatRejected> {
    let verified = itsdangerous::verify(STARLETTE, value, keys, now, max_age)?;
    decode_payload(verified.payload)?;
    let key = keys.first().ok_or(CompatRejected::BadSignature)?;
    Ok(itsdangerous::sign(STARLETTE, key, verified.payload, now))
}

fn encode_payload(payload: &Map<String, Value>) -> String {
    STANDARD.encode(pyjson::to_string(payload, Style::STARLETTE))
}

fn decode_payload(segment: &str) -> Result<Map<String, Value>, CompatRejected> {
    let json = STANDARD.decode(segment).map_err(|_| CompatRejected::Malformed)?;
    pyjson::parse_object(&json)
}

#[cfg(test)]
mod tests;
