//! itsdangerous' `TimestampSigner`, configured as Starlette and Flask
//! configure it: `payload "." timestamp "." signature`.
//!
//! This module owns the outer layer shared by both frameworks: parsing a
//! value from the right (a Flask payload may itself start with `.`), the
//! timestamp segment (big-endian unix seconds, leading zero bytes dropped,
//! base64url), HMAC-SHA1 over `payload "." timestamp` with each framework's
//! derived key, constant-time verification against every accepted key, and
//! the age rules. It treats the payload segment as opaque text; decoding it
//! is the framework modules' job.
//!
//! Checks run in itsdangerous' order, which decides the outcome when several
//! things are wrong: length, then a `.`, then the signature (so a forged
//! value is [`CompatRejected::BadSignature`] even when it is also expired),
//! then the timestamp, then the age. Decoding is strict (canonical,
//! unpadded base64url only): Python also accepts a few non-canonical
//! spellings of the same signature, which no framework emits.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};
use subtle::{Choice, ConstantTimeEq};

use super::{CompatRejected, MAX_VALUE_LEN};

/// Length in bytes of an HMAC-SHA1 signature and of a derived key. On the
/// wire the signature is 27 base64url characters.
pub const SIGNATURE_LEN: usize = 20;

/// Longest timestamp segment, in decoded bytes: the value must fit a `u64`.
const MAX_TIMESTAMP_BYTES: usize = 8;

type HmacSha1 = Hmac<Sha1>;

/// How a framework turns its secret into the HMAC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDerivation {
    /// itsdangerous' `django-concat`: `SHA1(salt + b"signer" + secret)`.
    DjangoConcat,
    /// itsdangerous' `hmac`: `HMAC-SHA1(key = secret, message = salt)`.
    Hmac,
}

/// The signer settings a framework uses (digest is always SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// itsdangerous' salt, mixed into the derived key.
    pub salt: &'static [u8],
    /// How the secret and salt become the HMAC key.
    pub derivation: KeyDerivation,
}

/// Starlette's `SessionMiddleware`: itsdangerous' default salt with
/// `django-concat`.
pub const STARLETTE: Profile = Profile {
    salt: b"itsdangerous.Signer",
    derivation: KeyDerivation::DjangoConcat,
};

/// Flask's `SecureCookieSessionInterface`: salt `cookie-session` with `hmac`.
pub const FLASK: Profile = Profile {
    salt: b"cookie-session",
    derivation: KeyDerivation::Hmac,
};

/// A value whose signature, timestamp and age checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The payload segment, still encoded: sign it again with a new
    /// timestamp to refresh the value byte for byte.
    pub payload: &'a str,
    /// When the value was signed (unix seconds).
    pub timestamp: u64,
    /// True when a key other than the first (signing) key verified it:
    /// re-sign so that the old key can be retired.
    pub stale_key: bool,
}

/// Signs an encoded payload segment at `timestamp` (unix seconds) with
/// `secret`, giving the full cookie value.
pub fn sign(profile: Profile, secret: &[u8], payload: &str, timestamp: u64) -> String {
    let signed = format!("{payload}.{}", encode_timestamp(timestamp));
    let signature = URL_SAFE_NO_PAD.encode(signature(profile, secret, signed.as_bytes()));
    format!("{signed}.{signature}")
}

/// Verifies `value` against every secret in `secrets` (first = signing key)
/// and, when `max_age` is given, checks its age at `now` (unix seconds).
///
/// The age rule is itsdangerous': `now - timestamp > max_age` is
/// [`CompatRejected::Expired`] (so an age equal to `max_age` passes) and a
/// timestamp after `now` is [`CompatRejected::Future`]. With no `max_age`
/// there is no time check at all, as in Starlette with `max_age=None`.
pub fn verify<'a>(
    profile: Profile,
    value: &'a str,
    secrets: &[&[u8]],
    now: u64,
    max_age: Option<u64>,
) -> Result<Verified<'a>, CompatRejected> {
    if value.len() > MAX_VALUE_LEN {
        return Err(CompatRejected::TooLarge);
    }
    let (signed, presented) = value.rsplit_once('.').ok_or(CompatRejected::Malformed)?;
    let stale_key = check_signature(profile, signed, presented, secrets)?;
    let (payload, stamp) = signed.rsplit_once('.').ok_or(CompatRejected::Malformed)?;
    let timestamp = decode_timestamp(stamp)?;
    check_age(timestamp, now, max_age)?;
    Ok(Verified {
        payload,
        timestamp,
        stale_key,
    })
}

/// The timestamp segment for `timestamp`: big-endian bytes without leading
/// zeros, base64url without padding. Time 0 is the empty string.
pub fn encode_timestamp(timestamp: u64) -> String {
    let bytes = timestamp.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    URL_SAFE_NO_PAD.encode(&bytes[first..])
}

/// Reads a timestamp segment: base64url, big-endian, at most 8 bytes (leading
/// zero bytes allowed, empty = 0).
pub fn decode_timestamp(segment: &str) -> Result<u64, CompatRejected> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| CompatRejected::Malformed)?;
    let start = MAX_TIMESTAMP_BYTES
        .checked_sub(bytes.len())
        .ok_or(CompatRejected::Malformed)?;
    let mut be = [0u8; MAX_TIMESTAMP_BYTES];
    be[start..].copy_from_slice(&bytes);
    Ok(u64::from_be_bytes(be))
}

/// itsdangerous' age rule; see [`verify`].
pub fn check_age(timestamp: u64, now: u64, max_age: Option<u64>) -> Result<(), CompatRejected> {
    let Some(max_age) = max_age else {
        return Ok(());
    };
    let age = now.checked_sub(timestamp).ok_or(CompatRejected::Future)?;
    if age > max_age {
        return Err(CompatRejected::Expired);
    }
    Ok(())
}

/// Compares the presented signature with the one each secret gives, without
/// stopping at the first match, each comparison in constant time. Returns
/// whether a secret other than the first matched.
fn check_signature(profile: Profile, signed: &str, presented: &str, secrets: &[&[u8]]) -> Result<bool, CompatRejected> {
    let presented = URL_SAFE_NO_PAD
        .decode(presented)
        .map_err(|_| CompatRejected::BadSignature)?;
    let mut by_first = Choice::from(0);
    let mut by_any = Choice::from(0);
    for (index, secret) in secrets.iter().enumerate() {
        let matched = signature(profile, secret, signed.as_bytes()).ct_eq(presented.as_slice());
        by_any |= matched;
        if index == 0 {
            by_first = matched;
        }
    }
    if bool::from(by_any) {
        Ok(!bool::from(by_first))
    } else {
        Err(CompatRejected::BadSignature)
    }
}

fn signature(profile: Profile, secret: &[u8], signed: &[u8]) -> [u8; SIGNATURE_LEN] {
    hmac_sha1(&derive_key(profile, secret), signed)
}

fn derive_key(profile: Profile, secret: &[u8]) -> [u8; SIGNATURE_LEN] {
    match profile.derivation {
        KeyDerivation::DjangoConcat => Sha1::new()
            .chain_update(profile.salt)
            .chain_update(b"signer")
            .chain_update(secret)
            .finalize()
            .into(),
        KeyDerivation::Hmac => hmac_sha1(secret, profile.salt),
    }
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; SIGNATURE_LEN] {
    // HMAC accepts keys of any length: hmac's `new_from_slice` always returns
    // `Ok` (longer keys are hashed, shorter ones padded).
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests;
