//! Flask's default session cookie (`SecureCookieSessionInterface`): the
//! session dict as compact, key-sorted tagged JSON, in base64url, zlib-
//! compressed (marked by a leading `.`) when that is shorter, signed by
//! itsdangerous with Flask's key derivation.
//!
//! This module owns the payload segment and its compression; [`tag`] owns
//! Flask's tagged JSON. Two views of a session are offered:
//! - plain JSON ([`open`], [`seal`]): tags decoded where JSON has a
//!   counterpart, with the losses listed in [`tag`]; `bytes` is refused as
//!   [`CompatRejected::Unsupported`];
//! - tagged JSON ([`open_tagged`], [`seal_tagged`]): the tree exactly as
//!   Flask wrote it, so that a session can be changed and written back
//!   without turning the app's tuples, datetimes or bytes into plain values.
//!
//! [`seal`] and [`seal_tagged`] compress exactly when Flask does: when the
//! zlib stream at level 6 is shorter than the JSON by at least two bytes.
//! The deflate implementation is `flate2`'s pure-Rust backend, not CPython's
//! C zlib, so a compressed payload differs in its bytes from Flask's (Flask
//! reads either), and in a rare borderline case the two could disagree on
//! whether compressing pays. Uncompressed payloads match Flask byte for byte.
//! [`refresh`] re-signs the received payload segment and always matches.
//!
//! Flask checks the age against `PERMANENT_SESSION_LIFETIME` for every
//! session, permanent or not; pass that as `max_age`.

pub mod tag;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use serde_json::{Map, Value};

use super::CompatRejected;
use super::itsdangerous::{self, FLASK};
use super::pyjson::{self, Style};

/// Flask's default `PERMANENT_SESSION_LIFETIME`: 31 days, in seconds.
pub const DEFAULT_MAX_AGE: u64 = 2_678_400;

/// Largest inflated payload accepted, in bytes. A cookie of at most
/// [`super::MAX_VALUE_LEN`] bytes could otherwise inflate to megabytes.
pub const MAX_INFLATED_LEN: usize = 64 * 1024;

/// The zlib level of Python's `zlib.compress` default, which Flask uses.
const ZLIB_LEVEL: u32 = 6;

/// Marks a compressed payload segment.
const COMPRESSED_MARKER: char = '.';

/// Verifies `value` against `keys` (first = signing key, all accepted) and
/// returns the session at `now` (unix seconds) as plain JSON (see [`tag`]
/// for how tags map). `max_age` is the app's `PERMANENT_SESSION_LIFETIME`.
pub fn open(value: &str, keys: &[&[u8]], now: u64, max_age: Option<u64>) -> Result<Map<String, Value>, CompatRejected> {
    let verified = itsdangerous::verify(FLASK, value, keys, now, max_age)?;
    tag::untag_session(decode_payload(verified.payload)?)
}

/// Like [`open`], but returns the tagged JSON as Flask wrote it, after
/// checking that every tag in it is one Flask could read back.
pub fn open_tagged(
    value: &str,
    keys: &[&[u8]],
    now: u64,
    max_age: Option<u64>,
) -> Result<Map<String, Value>, CompatRejected> {
    let verified = itsdangerous::verify(FLASK, value, keys, now, max_age)?;
    let tagged = decode_payload(verified.payload)?;
    tag::check_session(&tagged)?;
    Ok(tagged)
}

/// Writes the plain-JSON `payload` as Flask would at `now` (unix seconds),
/// signed with `key`. Objects whose only key is a tag name are escaped as
/// Flask escapes them, so the app reads back exactly `payload` (arrays as
/// lists, strings as `str`). Keep sessions well under 4 KB.
pub fn seal(payload: &Map<String, Value>, key: &[u8], now: u64) -> String {
    seal_tagged(&tag::tag_session(payload), key, now)
}

/// Writes already-tagged JSON (as from [`open_tagged`]) unchanged, as Flask
/// would at `now` (unix seconds), signed with `key`.
pub fn seal_tagged(payload: &Map<String, Value>, key: &[u8], now: u64) -> String {
    itsdangerous::sign(FLASK, key, &encode_payload(payload), now)
}

/// Verifies `value` like [`open_tagged`] and, if it holds a readable
/// session, signs the same payload segment again at `now` with the first of
/// `keys`, as Flask does for a permanent session on every response.
pub fn refresh(value: &str, keys: &[&[u8]], now: u64, max_age: Option<u64>) -> Result<String, CompatRejected> {
    let verified = itsdangerous::verify(FLASK, value, keys, now, max_age)?;
    tag::check_session(&decode_payload(verified.payload)?)?;
    let key = keys.first().ok_or(CompatRejected::BadSignature)?;
    Ok(itsdangerous::sign(FLASK, key, verified.payload, now))
}

fn encode_payload(payload: &Map<String, Value>) -> String {
    let json = pyjson::to_string(payload, Style::FLASK);
    match deflate(json.as_bytes()) {
        Some(compressed) => format!("{COMPRESSED_MARKER}{}", URL_SAFE_NO_PAD.encode(compressed)),
        None => URL_SAFE_NO_PAD.encode(json),
    }
}

/// Decodes a payload segment to the tagged JSON object inside it.
fn decode_payload(segment: &str) -> Result<Map<String, Value>, CompatRejected> {
    let (compressed, data) = match segment.strip_prefix(COMPRESSED_MARKER) {
        Some(rest) => (true, rest),
        None => (false, segment),
    };
    let bytes = URL_SAFE_NO_PAD.decode(data).map_err(|_| CompatRejected::Malformed)?;
    let json = if compressed { inflate(&bytes)? } else { bytes };
    pyjson::parse_object(&json)
}

/// Flask's rule: the zlib stream, if it is shorter than `json` by at least
/// two bytes. Any compressor failure means "do not compress": the plain
/// form is always valid.
fn deflate(json: &[u8]) -> Option<Vec<u8>> {
    let mut compressor = Compress::new(Compression::new(ZLIB_LEVEL), true);
    // Room for every useful result: a stream this long would not be used.
    let mut out = Vec::with_capacity(json.len());
    match compressor.compress_vec(json, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) if out.len().saturating_add(1) < json.len() => Some(out),
        _ => None,
    }
}

/// Inflates one zlib stream (header and checksum required), refusing output
/// past [`MAX_INFLATED_LEN`].
fn inflate(data: &[u8]) -> Result<Vec<u8>, CompatRejected> {
    let mut decompressor = Decompress::new(true);
    let mut out = Vec::with_capacity(MAX_INFLATED_LEN.saturating_add(1));
    let status = decompressor.decompress_vec(data, &mut out, FlushDecompress::Finish);
    if out.len() > MAX_INFLATED_LEN {
        return Err(CompatRejected::TooLarge);
    }
    match status {
        Ok(Status::StreamEnd) => Ok(out),
        _ => Err(CompatRejected::Malformed),
    }
}

#[cfg(test)]
mod tests;
