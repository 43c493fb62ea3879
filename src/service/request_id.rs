//! `X-Request-Id` (SPEC §3.2): kept from a trusted proxy, else made here;
//! forwarded upstream, written on the access and sign-in lines, and
//! returned to the client.
//!
//! A made id is a per-process random prefix and a counter: unique without
//! a system call per request, and it reveals nothing but the order of
//! requests within one process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{HeaderMap, HeaderValue};

/// The header's name (defined with the other forwarding headers).
pub use crate::hop::X_REQUEST_ID;

/// Longest id accepted from a trusted proxy.
const MAX_LEN: usize = 128;

/// The request's id: a trusted proxy's own (one value of printable ASCII,
/// at most 128 bytes), else a new one.
pub fn of(headers: &HeaderMap, trusted: bool) -> HeaderValue {
    if !trusted {
        return fresh();
    }
    let mut given = headers.get_all(X_REQUEST_ID).iter();
    match (given.next(), given.next()) {
        (Some(id), None) if acceptable(id.as_bytes()) => id.clone(),
        _ => fresh(),
    }
}

/// The id as text for a log field (ids are printable ASCII by construction).
pub fn text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or("-")
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

fn fresh() -> HeaderValue {
    static PREFIX: OnceLock<[u8; 16]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without the OS RNG the ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        let mut hex = [0u8; 16];
        write_hex(&mut hex, u64::from_le_bytes(bytes));
        hex
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The prefix as 16 hex digits, the counter as at least 8, written
    // directly (`format!` was a tenth of the request's own work here). The
    // buffer becomes the value's owner: one allocation, and the copies
    // the request needs (upstream, response, log) only count references
    // (a `Vec` turned `Bytes` allocates again at its first clone).
    let counter_digits = ((u64::BITS - n.leading_zeros()).div_ceil(4).max(8)) as usize;
    let mut text = [0u8; 32];
    text[..16].copy_from_slice(prefix);
    let len = 16 + counter_digits;
    write_hex(&mut text[16..len], n);
    let bytes = bytes::Bytes::from_owner(text).slice(..len);
    HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Fill `out` with the low `out.len()` hex digits of `v`, most significant
/// first.
fn write_hex(out: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut v = v;
    for digit in out.iter_mut().rev() {
        *digit = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(ids: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for id in ids {
            h.append(X_REQUEST_ID, HeaderValue::from_bytes(id).expect("value"));
        }
        h
    }

    #[test]
    fn a_trusted_proxys_id_is_kept_and_anything_else_replaced() {
        assert_eq!(of(&with(&[b"abc-123"]), true), "abc-123");
        let made = of(&with(&[b"abc-123"]), false);
        assert_ne!(made, "abc-123", "an untrusted client's id is replaced");
        assert_eq!(made.len(), 24);
        assert_ne!(of(&with(&[b"two", b"ids"]), true), "two");
        assert_ne!(of(&with(&[b"has space"]), true), "has space");
        assert_ne!(of(&with(&[&[b'x'; 129]]), true).len(), 129);
        assert_ne!(
            of(&HeaderMap::new(), true),
            of(&HeaderMap::new(), true),
            "made ids differ"
        );
    }

    #[test]
    fn hex_digits_match_the_formatter_for_every_width_the_counter_reaches() {
        for (v, digits) in [
            (0u64, 16),
            (0xdead_beef, 16),
            (u64::MAX, 16),
            (7, 8),
            (0x1_0000_0000, 9),
        ] {
            let mut out = vec![0u8; digits as usize];
            write_hex(&mut out, v);
            assert_eq!(
                String::from_utf8(out).expect("ascii"),
                format!("{v:0width$x}", width = digits as usize)
            );
        }
    }
}
