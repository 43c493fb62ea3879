//! The HTTP side of the session cookie: finding it in request `Cookie`
//! headers, removing it before forwarding, and building `Set-Cookie` values.
//!
//! Pure functions over `http` types. This module owns the cookie-tossing
//! defence (our name sent twice is [`Rejected::Duplicate`], never "pick
//! one") and the attribute rules browsers enforce (`__Host-` and `__Secure-`
//! prefixes, `SameSite=None` only with `Secure`; see [`CookieAttrs`]). It does
//! not look inside the value: that is `session::codec`.

use cookie::time::{Duration, OffsetDateTime};
use http::header::{COOKIE, HeaderMap, HeaderValue};

use super::codec::Rejected;

mod attrs;

pub use attrs::{AttrError, CookieAttrs, SameSite};

/// Longest `Set-Cookie` header value (name, value and attributes) we emit;
/// browsers drop longer cookies silently.
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// Why a `Set-Cookie` value was not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetCookieError {
    /// The header would exceed [`MAX_SET_COOKIE_LEN`]; browsers would drop it.
    #[error("set-cookie header would be {len} bytes; the limit is 4096")]
    TooLarge {
        /// Length the header value would have had.
        len: usize,
    },
    /// The value holds a character not allowed in a cookie value.
    #[error("cookie value holds a character not allowed in a cookie")]
    InvalidValue,
}

/// Finds the value of cookie `name` across every `Cookie` header (HTTP/2
/// sends one per cookie). Zero occurrences is [`Rejected::Missing`]; two or
/// more, even with equal values, is [`Rejected::Duplicate`], since a sibling
/// domain may have planted one. Headers are read as bytes, so a non-UTF-8
/// header cannot hide a copy; a match whose value is not UTF-8 is
/// [`Rejected::Malformed`]. An empty `name` finds nothing.
pub fn find<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Rejected> {
    if name.is_empty() {
        return Err(Rejected::Missing);
    }
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        for pair in pairs(header.as_bytes()).filter(|p| p.name == name.as_bytes()) {
            if found.replace(pair.value).is_some() {
                return Err(Rejected::Duplicate);
            }
        }
    }
    let value = found.ok_or(Rejected::Missing)?;
    std::str::from_utf8(value).map_err(|_| Rejected::Malformed)
}

/// Removes every occurrence of cookie `name` from every `Cookie` header.
/// Other cookies keep their bytes and order (rejoined with `"; "`); a header
/// left empty is removed, and headers without our cookie are untouched.
/// Each header is read once.
pub fn strip(headers: &mut HeaderMap, name: &str) {
    let mut kept: Vec<HeaderValue> = Vec::new();
    let mut found = false;
    for value in headers.get_all(COOKIE) {
        match without(value, name) {
            Without::Absent => kept.push(value.clone()),
            Without::Rest(rest) => {
                found = true;
                kept.extend(rest);
            }
        }
    }
    if !found {
        return;
    }
    headers.remove(COOKIE);
    for value in kept {
        headers.append(COOKIE, value);
    }
}

/// Builds the `Set-Cookie` value carrying `value`, refusing one longer than
/// [`MAX_SET_COOKIE_LEN`] (the caller logs and counts that).
pub fn set_cookie(attrs: &CookieAttrs, value: &str) -> Result<HeaderValue, SetCookieError> {
    if !value.bytes().all(is_cookie_octet) {
        return Err(SetCookieError::InvalidValue);
    }
    let header = render(attrs, value, attrs.max_age(), None);
    if header.len() > MAX_SET_COOKIE_LEN {
        return Err(SetCookieError::TooLarge { len: header.len() });
    }
    HeaderValue::from_str(&header).map_err(|_| SetCookieError::InvalidValue)
}

/// Builds the `Set-Cookie` value that deletes the cookie: same name, path,
/// domain and flags, an empty value, `Max-Age=0` and an `Expires` at the
/// Unix epoch (for clients that ignore `Max-Age`).
pub fn clear_cookie(attrs: &CookieAttrs) -> HeaderValue {
    let header = render(attrs, "", Some(0), Some(OffsetDateTime::UNIX_EPOCH));
    // `CookieAttrs::new` admitted only visible ASCII in the name, path and
    // domain, and the rest is fixed text, so this is a valid header value.
    HeaderValue::from_str(&header).expect("checked cookie attributes form a valid header value")
}

/// One `name=value` pair of a `Cookie` header, as bytes.
struct Pair<'a> {
    name: &'a [u8],
    value: &'a [u8],
    /// The whole pair, trimmed, as it appeared.
    raw: &'a [u8],
}

/// Splits a `Cookie` header as browsers send it (RFC 6265 §4.2.1), leniently:
/// `;` separates pairs, whitespace around names and values is ignored, empty
/// pieces are skipped, and a piece without `=` has an empty name.
fn pairs(header: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    // memchr finds each `;` with SIMD: session cookies are long and this
    // runs on every request.
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        loop {
            let bytes = rest?;
            let piece = match memchr::memchr(b';', bytes) {
                Some(at) => {
                    rest = Some(&bytes[at + 1..]);
                    &bytes[..at]
                }
                None => {
                    rest = None;
                    bytes
                }
            };
            let raw = piece.trim_ascii();
            if raw.is_empty() {
                continue;
            }
            return Some(match memchr::memchr(b'=', raw) {
                Some(at) => Pair {
                    name: raw[..at].trim_ascii(),
                    value: raw[at + 1..].trim_ascii(),
                    raw,
                },
                None => Pair {
                    name: b"",
                    value: raw,
                    raw,
                },
            });
        }
    })
}

/// What is left of a `Cookie` header once cookie `name` is taken out.
enum Without {
    /// The header does not hold the cookie.
    Absent,
    /// It did; here is the rest, or `None` when nothing else was in it.
    Rest(Option<HeaderValue>),
}

/// `value` without cookie `name`, in one reading of the header.
fn without(value: &HeaderValue, name: &str) -> Without {
    let mut found = false;
    let mut kept: Vec<&[u8]> = Vec::new();
    for pair in pairs(value.as_bytes()) {
        if pair.name == name.as_bytes() {
            found = true;
        } else {
            kept.push(pair.raw);
        }
    }
    if !found {
        return Without::Absent;
    }
    if kept.is_empty() {
        return Without::Rest(None);
    }
    // The pieces came out of a valid header value, so this cannot fail; if it
    // ever did, dropping the header is the safe side (our cookie stays out).
    let rest = HeaderValue::from_bytes(&kept.join(&b"; "[..]))
        .ok()
        .map(|mut stripped| {
            stripped.set_sensitive(value.is_sensitive());
            stripped
        });
    Without::Rest(rest)
}

fn render(attrs: &CookieAttrs, value: &str, max_age: Option<u64>, expires: Option<OffsetDateTime>) -> String {
    let mut cookie = cookie::Cookie::build((attrs.name(), value))
        .http_only(true)
        .secure(attrs.secure())
        .same_site(attrs.same_site().into())
        .path(attrs.path())
        .build();
    if let Some(domain) = attrs.domain() {
        cookie.set_domain(domain);
    }
    if let Some(seconds) = max_age {
        cookie.set_max_age(Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)));
    }
    if let Some(expires) = expires {
        cookie.set_expires(expires);
    }
    cookie.to_string()
}

/// RFC 6265 §4.1.1 `cookie-octet`: visible ASCII except `"`, `,`, `;`, `\`.
fn is_cookie_octet(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\')
}

#[cfg(test)]
mod tests;
