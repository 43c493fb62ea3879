//! The demo app's responses: pages, JSON, the 303 that carries a session
//! write, and the one table from a rejected request to its status. Every
//! response is small and whole, so the body is always `Full<Bytes>`.

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::Full;
use serde_json::Value;

use super::context::Context;
use super::page;

/// Every response the app sends.
pub(super) type Response = http::Response<Full<Bytes>>;

/// The response header carrying the session merge patch back to usher.
pub(super) const USHER_SESSION: HeaderName = HeaderName::from_static("usher-session");

/// The only thing a page may load is its own inline style, and forms post
/// only back here: the demo has no script at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reject {
    /// No such page.
    NotFound,
    /// The page exists; these methods are allowed on it.
    WrongMethod(&'static str),
    /// The form is missing a field or holds a value the app does not take.
    BadForm(&'static str),
    /// The form body is over the size limit.
    TooLarge,
    /// A response header could not be built (a bug, not the client's fault).
    Internal,
}

impl Reject {
    /// The one table from rejection to status.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Reject::NotFound => StatusCode::NOT_FOUND,
            Reject::WrongMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            Reject::BadForm(_) => StatusCode::BAD_REQUEST,
            Reject::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Reject::NotFound => "there is no page here",
            Reject::WrongMethod(_) => "this page does not take that method",
            Reject::BadForm(why) => why,
            Reject::TooLarge => "the form is too large",
            Reject::Internal => "the demo app could not build its response",
        }
    }
}

/// An HTML page, 200.
pub(super) fn html(body: String) -> Response {
    let mut response = with_type(body.into(), "text/html; charset=utf-8");
    set(
        &mut response,
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// A JSON document, 200.
pub(super) fn json(value: &Value) -> Response {
    with_type(value.to_string().into(), "application/json")
}

/// 303 to `location`, asking usher to apply `patch` to the session.
pub(super) fn see_other(location: &str, patch: &str) -> Result<Response, Reject> {
    let location = HeaderValue::from_str(location).map_err(|_| Reject::Internal)?;
    let patch = HeaderValue::from_str(patch).map_err(|_| Reject::Internal)?;
    let mut response = with_type(Bytes::new(), "text/plain; charset=utf-8");
    *response.status_mut() = StatusCode::SEE_OTHER;
    set(&mut response, header::LOCATION, location);
    set(&mut response, USHER_SESSION, patch);
    Ok(response)
}

/// The error page for `reject`, in the visitor's theme.
pub(super) fn rejected(reject: Reject, ctx: &Context) -> Response {
    let status = reject.status();
    let mut response = html(page::error(ctx, status, reject.message()));
    *response.status_mut() = status;
    if let Reject::WrongMethod(allow) = reject {
        set(&mut response, header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

fn with_type(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Full::new(body));
    set(
        &mut response,
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    // Every answer depends on the session, so no cache may keep one.
    set(
        &mut response,
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    set(
        &mut response,
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn set(response: &mut Response, name: HeaderName, value: HeaderValue) {
    response.headers_mut().insert(name, value);
}
