//! Signing keys for session cookies: length checks, rotation order and
//! redaction.
//!
//! This module owns the rule that key material never leaves a [`Key`] except
//! through [`Key::as_bytes`], which the cookie codecs call to key their MAC.
//! `Debug` and every error message name a key only by its position. It does
//! not read files or the environment: callers pass the text in, and
//! [`parse_key_list`] and [`parse_key_env`] split it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit};
use sha2::Sha256;

/// Minimum key length, in bytes, for the `usher` cookie format.
pub const MIN_KEY_LEN: usize = 32;

/// Number of random bytes in a key made by [`generate`].
const GENERATED_KEY_BYTES: usize = 32;

/// One secret key: the bytes of the key text exactly as written (like
/// Starlette's and Flask's `secret_key`), never decoded.
///
/// Purposefully no `PartialEq`: comparing secrets with `==` is not
/// constant-time, and nothing needs it.
#[derive(Clone)]
pub struct Key {
    bytes: Vec<u8>,
    /// HMAC-SHA256 with this key already absorbed (the inner and outer
    /// pads), cloned per use instead of keyed again on every request.
    hmac: Hmac<Sha256>,
}

/// The configured keys in rotation order: the first signs, all verify.
///
/// Never empty, by construction.
#[derive(Clone)]
pub struct Keys {
    signing: Key,
    previous: Vec<Key>,
}

/// Why a key or key list was refused. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key at `position` (1-based) is shorter than the minimum.
    #[error("key #{position} is {len} bytes; at least {min} are required")]
    TooShort {
        /// 1-based position in the configured list.
        position: usize,
        /// Actual length in bytes.
        len: usize,
        /// Required minimum in bytes.
        min: usize,
    },
    /// No key was configured.
    #[error("no secret key is configured; at least one is required")]
    Empty,
}

/// The operating system could not supply random bytes for a new key.
///
/// The cause is in the message rather than `source()`: without its `std`
/// feature, `getrandom::Error` does not implement `std::error::Error`.
#[derive(Debug, thiserror::Error)]
#[error("could not read random bytes from the operating system: {0}")]
pub struct GenerateError(getrandom::Error);

impl Key {
    /// Wraps `bytes` as a key, refusing one shorter than `min_len` bytes
    /// (the `usher` format uses [`MIN_KEY_LEN`]). An empty key is refused
    /// whatever `min_len` says. The error reports position 1; use
    /// [`Keys::from_bytes`] to have a list numbered.
    pub fn new(bytes: Vec<u8>, min_len: usize) -> Result<Key, KeyError> {
        Key::at(1, bytes, min_len)
    }

    /// An HMAC-SHA256 instance keyed with this key, ready for `update`.
    pub fn hmac(&self) -> Hmac<Sha256> {
        self.hmac.clone()
    }

    /// The key material, for keying a MAC. Do not log or compare it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn at(position: usize, bytes: Vec<u8>, min_len: usize) -> Result<Key, KeyError> {
        let min = min_len.max(1);
        if bytes.len() < min {
            return Err(KeyError::TooShort {
                position,
                len: bytes.len(),
                min,
            });
        }
        // HMAC accepts keys of any length (longer are hashed, shorter padded).
        let hmac = <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).expect("HMAC takes any key length");
        Ok(Key { bytes, hmac })
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Keys {
    /// Builds the rotation list; the first key signs. An empty list is refused.
    pub fn new(keys: Vec<Key>) -> Result<Keys, KeyError> {
        let mut keys = keys.into_iter();
        let signing = keys.next().ok_or(KeyError::Empty)?;
        Ok(Keys {
            signing,
            previous: keys.collect(),
        })
    }

    /// Checks every raw key against `min_len` and builds the list, or returns
    /// every problem at once (each naming its 1-based position) so that
    /// config validation can report them together.
    pub fn from_bytes(raw: Vec<Vec<u8>>, min_len: usize) -> Result<Keys, Vec<KeyError>> {
        let mut keys = Vec::with_capacity(raw.len());
        let mut errors = Vec::new();
        for (index, bytes) in raw.into_iter().enumerate() {
            match Key::at(index.saturating_add(1), bytes, min_len) {
                Ok(key) => keys.push(key),
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Keys::new(keys).map_err(|error| vec![error])
    }

    /// The key that signs new cookies.
    pub fn signing(&self) -> &Key {
        &self.signing
    }

    /// Every key, signing key first; each of them verifies.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.signing).chain(&self.previous)
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("count", &self.previous.len().saturating_add(1))
            .finish_non_exhaustive()
    }
}

/// Splits a keys file: one key per line, surrounding whitespace trimmed,
/// blank lines and lines starting with `#` skipped. Order is kept (the first
/// key signs).
pub fn parse_key_list(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.as_bytes().to_vec())
        .collect()
}

/// Splits `USHER_SECRET_KEYS`: comma separated, each trimmed, empty entries
/// skipped. Order is kept (the first key signs).
pub fn parse_key_env(text: &str) -> Vec<Vec<u8>> {
    text.split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| key.as_bytes().to_vec())
        .collect()
}

/// A fresh key for `usher gen-secret`: 32 random bytes from the operating
/// system, as base64url text without padding (43 characters). The text
/// itself is the key, so it is 43 bytes long once configured.
pub fn generate() -> Result<String, GenerateError> {
    let mut bytes = [0u8; GENERATED_KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(GenerateError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests;
