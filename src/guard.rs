//! The cross-site request guard (SPEC extension): an unsafe request that
//! carries the session cookie but that the browser says was started by
//! another site is refused, so a page elsewhere cannot make a signed-in
//! user's browser change state. Pure.
//!
//! Browsers send `Sec-Fetch-Site` on every request and `Origin` on unsafe
//! ones; non-browser clients send neither and are not affected. `same-site`
//! (a sibling subdomain) is allowed by `Sec-Fetch-Site`, but an `Origin`
//! whose host differs from the request's host is refused.

use http::header::{self, HeaderMap};
use http::{Method, uri::Authority};

/// Whether `method` can change state (everything but GET, HEAD, OPTIONS, TRACE).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether the browser reports the request as cross-site. `host` is the
/// host the client asked for (`Host` or `:authority`).
pub fn is_cross_site(headers: &HeaderMap, host: Option<&str>) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case(b"cross-site")) {
        return true;
    }
    match headers.get(header::ORIGIN) {
        None => false,
        Some(origin) => match (origin.to_str().ok().and_then(origin_authority), host) {
            (Some(origin), Some(host)) => !same_authority(&origin, host),
            // `Origin: null` (sandboxed or privacy-reduced) or unreadable.
            _ => true,
        },
    }
}

/// `scheme://host[:port]` → (host, port or the scheme's default).
fn origin_authority(origin: &str) -> Option<(String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority: Authority = rest.parse().ok()?;
    if authority.as_str().contains('@') || rest.contains('/') {
        return None;
    }
    Some((
        authority.host().to_ascii_lowercase(),
        authority.port_u16().unwrap_or(default),
    ))
}

/// Compare the origin with the `Host` value. A `Host` without a port
/// matches the origin's scheme default, since TLS may end in front of usher.
fn same_authority(origin: &(String, u16), host: &str) -> bool {
    let Ok(host) = host.parse::<Authority>() else {
        return false;
    };
    if !host.host().eq_ignore_ascii_case(&origin.0) {
        return false;
    }
    match host.port_u16() {
        Some(port) => port == origin.1,
        None => matches!(origin.1, 80 | 443),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[track_caller]
    fn check(origin: Option<&str>, site: Option<&str>, host: Option<&str>, cross: bool) {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("value"));
        }
        if let Some(s) = site {
            h.insert("sec-fetch-site", HeaderValue::from_str(s).expect("value"));
        }
        assert_eq!(
            is_cross_site(&h, host),
            cross,
            "origin={origin:?} site={site:?} host={host:?}"
        );
    }

    #[test]
    fn origins() {
        check(None, None, Some("app.example"), false);
        check(Some("https://app.example"), None, Some("app.example"), false);
        check(Some("https://APP.example"), None, Some("app.example"), false);
        check(Some("http://127.0.0.1:8080"), None, Some("127.0.0.1:8080"), false);
        check(Some("https://app.example:8443"), None, Some("app.example:8443"), false);
        check(Some("https://evil.example"), None, Some("app.example"), true);
        check(
            Some("https://app.example.evil.example"),
            None,
            Some("app.example"),
            true,
        );
        check(Some("http://127.0.0.1:9999"), None, Some("127.0.0.1:8080"), true);
        check(Some("null"), None, Some("app.example"), true);
        check(Some("https://user@app.example"), None, Some("app.example"), true);
        check(Some("https://app.example"), None, None, true);
    }

    #[test]
    fn fetch_metadata() {
        check(None, Some("cross-site"), Some("app.example"), true);
        check(None, Some("same-site"), Some("app.example"), false);
        check(None, Some("same-origin"), Some("app.example"), false);
        check(None, Some("none"), Some("app.example"), false);
        check(
            Some("https://app.example"),
            Some("cross-site"),
            Some("app.example"),
            true,
        );
    }

    #[test]
    fn unsafe_methods() {
        assert!(is_unsafe(&Method::POST) && is_unsafe(&Method::DELETE) && is_unsafe(&Method::PATCH));
        assert!(!is_unsafe(&Method::GET) && !is_unsafe(&Method::HEAD) && !is_unsafe(&Method::OPTIONS));
    }
}
