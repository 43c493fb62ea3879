//! The encrypted cookie (`[session.store] encrypt = true`): usher's session
//! sealed with XChaCha20-Poly1305, so whoever holds the cookie cannot read
//! its fields.
//!
//! Wire value: `e1.<issued_at>.<base64url(nonce ‖ ciphertext ‖ tag)>`. Each
//! configured secret gives its own 256-bit key through HKDF-SHA256 (so the
//! AEAD key is never the HMAC key of the signed format); the associated
//! data binds the format version, the cookie name and the issue time, so
//! a value moved to another cookie name or re-dated does not open. The
//! nonce is 192 random bits from the OS, safe to pick at random. Rotation
//! is the signed format's: the first secret seals, every secret opens.
//! Pure apart from the nonce.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::codec::{self, Limits, Opened, Rejected};
use super::key::{Key, Keys};

/// The format version, first field of every value and in the associated data.
pub const VERSION: &str = "e1";

/// HKDF info: this key is for sealing session cookies and nothing else.
const INFO: &[u8] = b"usher-session-sealed-v1 xchacha20poly1305";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, key.as_bytes())
        .expand(INFO, &mut okm)
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        .expect("32 bytes of HKDF output");
    XChaCha20Poly1305::new(&okm.into())
}

/// The associated data: each field length-prefixed (as the signed format's
/// MAC input), so no name or time can shift into another field.
fn aad(name: &str, issued_at: u64) -> Vec<u8> {
    let fields: [&[u8]; 3] = [VERSION.as_bytes(), name.as_bytes(), &issued_at.to_be_bytes()];
    let mut out = Vec::with_capacity(64 + name.len());
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Seal `payload` as the value of cookie `name`, issued at `issued_at`.
pub fn seal(name: &str, payload: &Map<String, Value>, issued_at: u64, key: &Key) -> String {
    let json = serde_json::to_vec(payload).expect("a JSON map always serializes");
    let mut nonce = [0u8; NONCE_LEN];
    // The OS random number generator does not fail on a running Linux.
    getrandom::fill(&mut nonce).expect("the OS random number generator works");
    let aad = aad(name, issued_at);
    let sealed = cipher(key)
        .encrypt(&XNonce::from(nonce), Payload { msg: &json, aad: &aad })
        .expect("a session is far below the AEAD's length limit");
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    format!("{VERSION}.{issued_at}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Open `value` (cookie `name`'s) with any key in `keys`, then check its
/// ages at `now`. Only a value that decrypts and authenticates is parsed.
pub fn open(name: &str, value: &str, keys: &Keys, now: u64, limits: &Limits) -> Result<Opened, Rejected> {
    if value.len() > limits.max_value_len {
        return Err(Rejected::TooLarge);
    }
    if value.is_empty() {
        return Err(Rejected::Missing);
    }
    let mut parts = value.split('.');
    match parts.next() {
        Some(VERSION) => {}
        // A signed usher cookie (from before `encrypt` was turned on) or
        // another version: not ours to read.
        Some(v) if v.starts_with(['v', 'e']) && v.len() > 1 && v[1..].bytes().all(|b| b.is_ascii_digit()) => {
            return Err(Rejected::UnknownVersion);
        }
        _ => return Err(Rejected::Malformed),
    }
    let (Some(time), Some(body), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Rejected::Malformed);
    };
    let issued_at = codec::parse_time(time)?;
    let bytes = codec::decode(body)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(Rejected::Malformed);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| Rejected::Malformed)?;
    let aad = aad(name, issued_at);
    // Authentication tags are checked by the AEAD in constant time; a
    // wrong key and a tampered value fail the same way.
    let opened = keys.iter().enumerate().find_map(|(index, key)| {
        cipher(key)
            .decrypt(&nonce, Payload { msg: sealed, aad: &aad })
            .ok()
            .map(|json| (index, json))
    });
    let Some((index, json)) = opened else {
        return Err(Rejected::BadMac);
    };
    let payload: Map<String, Value> = serde_json::from_slice(&json).map_err(|_| Rejected::Malformed)?;
    codec::check_times(issued_at, &payload, now, limits)?;
    Ok(Opened {
        payload: Arc::new(payload),
        issued_at,
        stale_key: index != 0,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(secrets: &[&[u8]]) -> Keys {
        Keys::new(secrets.iter().map(|s| Key::new(s.to_vec(), 32).expect("key")).collect()).expect("keys")
    }

    const LIMITS: Limits = Limits {
        max_age: 3600,
        max_lifetime: Some(86_400),
        max_value_len: 4096,
    };
    const A: &[u8] = b"0123456789abcdef0123456789abcdef-a";
    const B: &[u8] = b"0123456789abcdef0123456789abcdef-b";

    fn payload() -> Map<String, Value> {
        json!({"user": "alice", "email": "alice@example.com", "auth_time": 1000})
            .as_object()
            .cloned()
            .expect("map")
    }

    #[test]
    fn round_trips_and_hides_the_fields() {
        let value = seal("s", &payload(), 1000, keys(&[A]).signing());
        let opened = open("s", &value, &keys(&[A]), 1010, &LIMITS).expect("opens");
        assert_eq!(*opened.payload, payload());
        assert!(!opened.stale_key);
        for readable in ["alice", "example", "user", "YWxpY2", "auth_time"] {
            assert!(!value.contains(readable), "{readable} visible in {value}");
        }
        // A fresh nonce each time: two seals of one session differ.
        assert_ne!(value, seal("s", &payload(), 1000, keys(&[A]).signing()));
    }

    #[test]
    fn tampering_renaming_and_redating_are_refused() {
        let value = seal("s", &payload(), 1000, keys(&[A]).signing());
        let k = keys(&[A]);
        assert_eq!(open("other", &value, &k, 1010, &LIMITS), Err(Rejected::BadMac));
        let redated = value.replacen("e1.1000.", "e1.1001.", 1);
        assert_eq!(open("s", &redated, &k, 1010, &LIMITS), Err(Rejected::BadMac));
        let body = value.rsplit('.').next().expect("body");
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("b64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let forged = format!("e1.1000.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(open("s", &forged, &k, 1010, &LIMITS), Err(Rejected::BadMac), "byte {i}");
            bytes[i] ^= 1;
        }
        assert_eq!(open("s", &value, &keys(&[B]), 1010, &LIMITS), Err(Rejected::BadMac));
        for malformed in [
            "e1",
            "e1.1000",
            "e1.01000.AAAA",
            "e1.1000.!!",
            "e1.1000.AAAA",
            "x.1.2",
            "e1.1.2.3",
        ] {
            assert!(open("s", malformed, &k, 1010, &LIMITS).is_err(), "{malformed}");
        }
        // A signed cookie from before `encrypt` was turned on.
        let signed = codec::seal("s", &payload(), 1000, k.signing());
        assert_eq!(open("s", &signed, &k, 1010, &LIMITS), Err(Rejected::UnknownVersion));
    }

    #[test]
    fn rotation_and_ages() {
        let old = seal("s", &payload(), 1000, keys(&[A]).signing());
        let rotated = keys(&[B, A]);
        assert!(
            open("s", &old, &rotated, 1010, &LIMITS)
                .expect("old key opens")
                .stale_key
        );
        assert_eq!(open("s", &old, &rotated, 1000 + 3601, &LIMITS), Err(Rejected::Expired));
        assert_eq!(open("s", &old, &rotated, 0, &LIMITS), Err(Rejected::Future));
        let long_ago = seal("s", &payload(), 90_000, rotated.signing());
        assert_eq!(
            open("s", &long_ago, &rotated, 90_010, &LIMITS),
            Err(Rejected::LifetimeExceeded)
        );
        let short = Limits {
            max_value_len: 40,
            ..LIMITS
        };
        assert_eq!(open("s", &old, &rotated, 1010, &short), Err(Rejected::TooLarge));
    }
}
