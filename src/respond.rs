//! Responses usher writes itself, the response [`Body`] type, and the
//! browser/API rule (SPEC §3.4) that picks HTML or JSON for them. Pure:
//! builds values, does no IO.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{Either, Full};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::proxy::Streamed;

/// Body of every response usher sends: a streamed upstream body or a
/// small body usher wrote itself. An enum rather than a boxed trait object,
/// so the proxied path allocates nothing for it.
pub type Body = Either<Streamed, Full<Bytes>>;

/// A body usher wrote itself.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Right(Full::new(bytes.into()))
}

/// An empty body.
pub fn empty() -> Body {
    Either::Right(Full::new(Bytes::new()))
}

/// A streamed body from the upstream.
pub fn streamed(upstream: Streamed) -> Body {
    Either::Left(upstream)
}

/// Whether a request comes from a browser navigating (sent to sign in
/// rather than answered 401): GET or HEAD, and [`prefers_html`].
pub fn wants_html(method: &Method, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD) && prefers_html(headers)
}

/// Whether usher's own pages and refusals should be HTML (SPEC §3.4),
/// whatever the method (a browser's form POST gets a page too): no
/// `X-Requested-With`, and an `Accept` that prefers `text/html` to JSON.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
    // `Accept` first: most requests that are not a browser's have no
    // `text/html` in it, and then the second lookup is not needed.
    accepts_html(headers) && !headers.contains_key(X_REQUESTED_WITH)
}

/// Whether `Accept` ranks HTML above zero and at least as high as JSON.
fn accepts_html(headers: &HeaderMap) -> bool {
    let mut html = 0.0_f32;
    let mut json = 0.0_f32;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for range in text.split(',') {
            let (media, q) = media_and_q(range);
            if media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml") {
                html = html.max(q);
            } else if media.eq_ignore_ascii_case("application/json") {
                json = json.max(q);
            }
        }
    }
    html > 0.0 && html >= json
}

/// Split `type/sub;q=0.5;x=y` into the media type and its weight.
fn media_and_q(range: &str) -> (&str, f32) {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let q = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
        .and_then(|(_, v)| v.trim().parse::<f32>().ok())
        .filter(|q| (0.0..=1.0).contains(q))
        .unwrap_or(1.0);
    (media, q)
}

/// A short error page or JSON document. `code` is a stable snake_case
/// identifier; `message` is one human sentence holding no request data.
pub fn error(status: StatusCode, code: &str, message: &str, html: bool) -> Response<Body> {
    let (content_type, text) = if html {
        ("text/html; charset=utf-8", error_page(status, message))
    } else {
        let doc = serde_json::json!({ "error": code, "message": message });
        ("application/json", doc.to_string())
    };
    let mut res = Response::new(full(text));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// 403 for a signed-in user who may not see the page: for a browser, with
/// the ways on (switch user, or back to the start page) instead of a dead
/// end.
pub fn forbidden(prefix: &str, html: bool) -> Response<Body> {
    let message = "You do not have access to this page.";
    let mut res = error(StatusCode::FORBIDDEN, "forbidden", message, html);
    if html {
        let login: String = form_urlencoded::byte_serialize(format!("{prefix}/login").as_bytes()).collect();
        let links = html! {
            h1 { "403 Forbidden" }
            p { (message) }
            p {
                a href={ (prefix) "/logout?rd=" (login) } { "Sign in as someone else" }
                " · "
                a href="/" { "Back to the start page" }
            }
        };
        *res.body_mut() = full(page("403 Forbidden", links));
    }
    res
}

fn error_page(status: StatusCode, message: &str) -> String {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let title = format!("{code} {reason}");
    let body = html! { h1 { (title) } p { (message) } };
    page(&title, body)
}

/// A complete HTML document around `body`: no scripts, readable on a
/// phone.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
    .into_string()
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,sans-serif;background:#f5f5f4;color:#1c1917;\
margin:0;padding:0 1rem}main{max-width:24rem;margin:12vh auto;background:#fff;border-radius:.75rem;\
padding:1.5rem 1.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.35rem;margin:0 0 1rem}\
label{display:block;font-size:.9rem;margin:.9rem 0 .3rem}input[type=text],input[type=password]{width:100%;\
box-sizing:border-box;padding:.6rem .7rem;font-size:1rem;border:1px solid #a8a29e;border-radius:.4rem}\
button{margin-top:1.2rem;width:100%;padding:.65rem;font-size:1rem;border:0;border-radius:.4rem;\
background:#1d4ed8;color:#fff;cursor:pointer}.error{background:#fee2e2;color:#991b1b;padding:.6rem .7rem;\
border-radius:.4rem;font-size:.9rem}.muted{color:#78716c;font-size:.85rem}\
a.button{display:block;text-align:center;padding:.65rem;border:1px solid #1d4ed8;border-radius:.4rem;\
color:#1d4ed8;text-decoration:none;font-size:1rem}.or{text-align:center;margin:1rem 0 0}";

/// Escape text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How long a client is asked to wait when the session store is down.
pub const STORE_RETRY_AFTER: &str = "2";

/// The answer when a request needs a session and the store cannot be
/// asked: 503 with `Retry-After`, never a sign-in redirect or a cleared
/// cookie.
pub fn store_unavailable(html: bool) -> Response<Body> {
    let mut res = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "session_store_unavailable",
        "Your session cannot be checked right now. Please try again in a moment.",
        html,
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(STORE_RETRY_AFTER));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(method: Method, accept: Option<&str>, xrw: bool, expected: bool) {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(header::ACCEPT, HeaderValue::from_str(a).expect("value"));
        }
        if xrw {
            h.insert("x-requested-with", HeaderValue::from_static("XMLHttpRequest"));
        }
        assert_eq!(wants_html(&method, &h), expected, "{method} {accept:?} xrw={xrw}");
    }

    #[test]
    fn browser_or_api() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        check(Method::GET, Some(firefox), false, true);
        check(Method::HEAD, Some(firefox), false, true);
        check(Method::GET, Some(firefox), true, false);
        check(Method::POST, Some(firefox), false, false);
        check(Method::GET, Some("*/*"), false, false);
        check(Method::GET, None, false, false);
        check(Method::GET, Some("application/json"), false, false);
        check(Method::GET, Some("application/json, text/html;q=0.5"), false, false);
        check(Method::GET, Some("text/html;q=0"), false, false);
        check(Method::GET, Some("TEXT/HTML"), false, true);
    }

    #[test]
    fn error_bodies() {
        let res = error(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "the upstream is unreachable",
            false,
        );
        assert_eq!(res.status(), 502);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let res = error(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", "too slow", true);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
