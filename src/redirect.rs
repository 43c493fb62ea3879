//! The check on `rd`, where the browser goes after login or logout
//! (SPEC §4). Pure.
//!
//! Owns one question: may usher send the browser to this `rd`? Only a
//! same-origin absolute path is accepted, and it is returned exactly as
//! given: path, query and fragment. Anything else is `None`, and the caller
//! falls back to `/`. Does not own decoding the form or query that carried
//! `rd` (the caller does that once, as for any field), building the
//! `Location` header, or knowing the origin (a path needs no host).
//!
//! The rule describes the shape a safe target has, rather than listing
//! known tricks. An `rd` is accepted when all of these hold:
//!
//! 1. **At most 2048 bytes.** This bounds the work and the header.
//! 2. **It starts with `/`.** Anything else is a scheme (`https:`,
//!    `javascript:`), a host, a relative path or junk.
//! 3. **It is plain URI text.** Only printable ASCII is allowed, without
//!    space, `"`, `<`, `>`, `` ` `` or `\`, and every `%` starts a two-digit
//!    escape. Such a value can stand in a `Location` header or an HTML
//!    attribute as it is. Look-alikes (`〱`, `／`, `。`) and raw whitespace
//!    cannot get in. `[ ] { } | ^` are allowed, since browsers send them
//!    unescaped in queries.
//! 4. **No `//`, no `\` and no control character, now or after decoding.**
//!    The value is percent-decoded again and again until it stops changing,
//!    and every round is checked. A value still changing after four
//!    decodings is refused. Each
//!    layer that handles the value (a backend's redirect helper, a framework
//!    router) may decode it once more. So no number of decodings, up to
//!    the bound, may turn an accepted value into a dangerous one:
//!    - `//` at the start is a scheme-relative URL naming another host.
//!      Elsewhere it is harmless to a browser. But the attack corpus
//!      refuses it in queries (`/?next=//evil`,
//!      `/redirect?url=https://evil`: pages that pass their own query on to
//!      a redirect) and in paths that some servers collapse
//!      (`/evil.com/%2f%2e%2e`). Refusing every `//` is simpler than telling
//!      these apart. The only cost is a query that carries a whole URL: it
//!      falls back to `/`.
//!    - `\` is read as `/` in http(s) URLs by browsers (WHATWG), so `/\evil`
//!      is `//evil`.
//!    - Browsers delete tab, CR and LF anywhere in a URL, so `/%09/evil`,
//!      decoded once, is `//evil`. NUL truncates strings in C backends. The
//!      rest of C0 and DEL have no use in a path.
//!
//! These are all the clauses needed. A value that starts with one `/` and
//! then not `/` or `\` is a path-absolute reference (RFC 3986 §4.2, WHATWG).
//! A `:` or `@` after that is path or query text, never a scheme or
//! userinfo, so `/cb?next=/a&email=a@b.c&t=12:00` is accepted. Dot-segments
//! cannot leave the origin: `/../x` is `/x`. An escaped space (`%20`) is
//! accepted: URL parsers trim spaces only at the ends, and the first byte
//! here is always `/`. A fragment is kept. It never leaves the browser, it
//! cannot change the origin, and it passes the same checks.

mod absolute;

use std::borrow::Cow;

pub use absolute::AllowedHosts;

use percent_encoding::percent_decode;

/// Longest `rd` accepted, in bytes.
pub const MAX_LEN: usize = 2048;

/// Decodings tried before giving up on a value that keeps changing.
const ROUNDS: usize = 5;

/// `rd` if it is a same-origin absolute path that is safe to redirect to
/// (see the module docs), else `None`: the caller then uses `/`.
pub fn same_origin_path(rd: &str) -> Option<&str> {
    let bytes = rd.as_bytes();
    let safe = bytes.len() <= MAX_LEN
        && bytes.first() == Some(&b'/')
        && bytes.iter().all(|&b| plain_byte(b))
        && escapes_are_whole(bytes)
        && every_decoding_is_clean(bytes);
    safe.then_some(rd)
}

/// Clause 3: printable ASCII without space, `"`, `<`, `>`, `\` or `` ` ``.
fn plain_byte(b: u8) -> bool {
    matches!(b, b'!' | b'#'..=b';' | b'=' | b'?'..=b'[' | b']'..=b'_' | b'a'..=b'~')
}

/// Clause 3: every `%` is followed by two hex digits.
fn escapes_are_whole(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().filter(|&(_, &b)| b == b'%').all(|(i, _)| {
        bytes
            .get(i + 1..i + 3)
            .is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Clause 4, on the value and each decoding of it until it is stable.
fn every_decoding_is_clean(raw: &[u8]) -> bool {
    let mut text = Cow::Borrowed(raw);
    for _ in 0..ROUNDS {
        if !is_clean(&text) {
            return false;
        }
        let next: Vec<u8> = percent_decode(&text).collect();
        if next == *text {
            return true;
        }
        text = Cow::Owned(next);
    }
    false
}

/// Clause 4 on one form: no `//`, no `\`, no C0 control or DEL.
fn is_clean(text: &[u8]) -> bool {
    !text.windows(2).any(|pair| pair == b"//") && !text.iter().any(|&b| b == b'\\' || b.is_ascii_control())
}

#[cfg(test)]
mod tests;
