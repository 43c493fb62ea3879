//! The decide phase: who the session says the client is, what the access
//! rules say about this request, and the answers when they say no.

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value};

use crate::access::Decision;
use crate::carrier::identity;
use crate::config::Config;
use crate::respond::Body;
use crate::{auth, respond};

/// What the decide phase needs.
pub struct Decide<'a> {
    /// The configuration (rules, prefix).
    pub config: &'a Config,
    /// Browser (HTML) or API (JSON) refusals.
    pub html: bool,
    /// A browser navigating (GET/HEAD): sent to sign in rather than 401.
    pub navigating: bool,
}

impl Decide<'_> {
    /// `None` when the request may pass; otherwise the refusal to send.
    pub fn access(
        &self,
        method: &Method,
        target: &PathAndQuery,
        session: Option<&Map<String, Value>>,
    ) -> Option<Response<Body>> {
        let who = session.and_then(identity);
        match self.config.access.decide(method, target.path(), who.as_ref()) {
            Decision::Allow => None,
            Decision::NeedLogin => Some(self.need_login(target)),
            Decision::Forbidden => Some(respond::forbidden(&self.config.server.prefix, self.html)),
        }
    }

    /// A browser goes to the sign-in page, coming back here after; an API
    /// client gets 401 JSON.
    fn need_login(&self, target: &PathAndQuery) -> Response<Body> {
        let prefix = &self.config.server.prefix;
        if !self.navigating {
            return auth::unauthenticated(self.config);
        }
        let rd: String = form_urlencoded::byte_serialize(target.as_str().as_bytes()).collect();
        auth::redirect(StatusCode::FOUND, &format!("{prefix}/login?rd={rd}"))
    }
}

/// The cross-site guard's refusal.
pub fn cross_site(html: bool) -> Response<Body> {
    let mut res = respond::error(
        StatusCode::FORBIDDEN,
        "cross_site_request",
        "This request came from another site and was refused to protect your session.",
        html,
    );
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin, Sec-Fetch-Site"));
    res
}
