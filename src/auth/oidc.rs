//! The browser side of provider sign-in (SPEC §6):
//! `GET <prefix>/oidc/<id>/start?rd=` and `GET <prefix>/oidc/<id>/callback`.
//!
//! Start answers 503 until the provider is discovered, else sets the flow
//! cookie and sends the browser to the provider. The callback refuses,
//! with a page and no session, anything but the answer to a flow this
//! browser started: no flow cookie for the `state` (forged, replayed after
//! use, another browser), an `iss` that is not the provider (RFC 9207), or
//! a provider error; then the code exchange and every ID-token check.
//! The flow cookie is cleared whatever the outcome.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use tracing::{info, warn};

use super::{Auth, Context, redirect, try_again_after};
use crate::oidc::flow::{self, Flow};
use crate::oidc::{Provider, SignInError};
use crate::respond;
use crate::respond::Body;
use crate::session::codec::AUTH_TIME_FIELD;
use crate::session::cookie;

impl Auth {
    /// Route `/oidc/<id>/<step>`.
    pub(super) async fn oidc(
        &self,
        rest: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        cx: &Context<'_>,
    ) -> Response<Body> {
        let Some((id, step)) = rest.split_once('/') else {
            return not_found(cx);
        };
        let Some(provider) = self.providers.get(id) else {
            return not_found(cx);
        };
        match step {
            "start" => self.oidc_start(provider, query, cx),
            "callback" => self.oidc_callback(provider, query, headers, cx).await,
            _ => not_found(cx),
        }
    }

    /// Set the flow cookie and send the browser to the provider.
    pub(super) fn oidc_start(&self, provider: &Provider, query: Option<&str>, cx: &Context<'_>) -> Response<Body> {
        let Some(known) = provider.known() else {
            provider.count("unavailable");
            let msg = "The sign-in provider cannot be reached right now. Please try again in a few seconds.";
            return try_again_after(2, StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", msg, cx.html);
        };
        let rd = self.rd(&super::rd_param(query));
        let Some(flow) = Flow::new(&provider.config.id, &rd, cx.now) else {
            return respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rng",
                "Sign-in is unavailable.",
                cx.html,
            );
        };
        let s = &self.config.session;
        let attrs = flow::cookie(&flow.state, s.cookie.secure());
        let mut res = redirect(StatusCode::FOUND, &provider.authorization_url(&known, &flow));
        match cookie::set_cookie(&attrs, &flow::seal(&s.keys, attrs.name(), &flow)) {
            Ok(v) => {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Err(e) => {
                warn!(error = %e, "sign-in flow cookie not set");
                return respond::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "flow",
                    "Sign-in is unavailable.",
                    cx.html,
                );
            }
        }
        res
    }

    async fn oidc_callback(
        &self,
        provider: &Provider,
        query: Option<&str>,
        headers: &HeaderMap,
        cx: &Context<'_>,
    ) -> Response<Body> {
        let params = Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        );
        let state = params.get("state").unwrap_or("");
        let s = &self.config.session;
        let attrs = flow::cookie(state, s.cookie.secure());
        let clear = cookie::clear_cookie(&attrs);
        let flow = cookie::find(headers, attrs.name())
            .ok()
            .and_then(|value| flow::open(&s.keys, attrs.name(), value, state, cx.now))
            .filter(|f| f.provider == provider.config.id);
        let Some(flow) = flow else {
            provider.count("bad_state");
            info!(provider = %provider.config.id, client = %cx.ip, request_id = cx.request_id,
                "provider callback without a matching sign-in in this browser");
            let msg = "This sign-in link is not valid in this browser: it expired, was used already, or was \
                       started in another browser. Please sign in again.";
            return with_cookie(self.failure(StatusCode::BAD_REQUEST, "bad_state", msg, cx), clear);
        };
        let result = self.oidc_finish(provider, &flow, &params, headers, cx).await;
        let mut res = match result {
            Ok(res) => res,
            Err((status, code, msg)) => self.failure(status, code, msg, cx),
        };
        res.headers_mut().append(header::SET_COOKIE, clear);
        res
    }

    /// Everything after the flow cookie matched.
    async fn oidc_finish(
        &self,
        provider: &Provider,
        flow: &Flow,
        params: &Params,
        headers: &HeaderMap,
        cx: &Context<'_>,
    ) -> Result<Response<Body>, (StatusCode, &'static str, &'static str)> {
        let id = &provider.config.id;
        let known = provider.known().ok_or_else(|| {
            provider.count("unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", UNREACHABLE)
        })?;
        match params.get("iss") {
            Some(iss) if iss != provider.config.issuer => {
                provider.count("bad_issuer");
                warn!(provider = %id, request_id = cx.request_id, "provider callback with another issuer (iss)");
                return Err((StatusCode::BAD_REQUEST, "bad_issuer", MIXED_UP));
            }
            None if known.metadata.iss_parameter => {
                provider.count("bad_issuer");
                return Err((StatusCode::BAD_REQUEST, "bad_issuer", MIXED_UP));
            }
            _ => {}
        }
        if let Some(error) = params.get("error") {
            provider.count("provider_refused");
            let error = if is_token(error) { error } else { "-" };
            info!(provider = %id, error, request_id = cx.request_id, "the provider refused the sign-in");
            return Err((
                StatusCode::FORBIDDEN,
                "provider_refused",
                "The sign-in provider did not sign you in.",
            ));
        }
        let code = params.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
            provider.count("bad_response");
            (
                StatusCode::BAD_REQUEST,
                "no_code",
                "The sign-in provider sent no authorization code.",
            )
        })?;
        let person = provider.complete(code, flow, cx.now).await.map_err(|e| {
            provider.count(e.result());
            warn!(provider = %id, error = %e, client = %cx.ip, request_id = cx.request_id, "provider sign-in failed");
            match e {
                SignInError::Refused(_) => (
                    StatusCode::FORBIDDEN,
                    "not_allowed",
                    "Your account at the sign-in provider is not allowed here.",
                ),
                SignInError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", UNREACHABLE),
                SignInError::Token(crate::oidc::fetch::FetchError::Status { .. }) => (
                    StatusCode::BAD_REQUEST,
                    "code_refused",
                    "The sign-in could not be completed (the code was refused: used already, or expired). Please \
                     sign in again.",
                ),
                SignInError::Token(_) | SignInError::Userinfo(_) => {
                    (StatusCode::BAD_GATEWAY, "provider_error", UNREACHABLE)
                }
                _ => (
                    StatusCode::FORBIDDEN,
                    "bad_id_token",
                    "The sign-in provider's answer did not pass usher's checks.",
                ),
            }
        })?;
        let mut payload = crate::oidc::claims::session(&person, &provider.config);
        payload.insert(AUTH_TIME_FIELD.into(), cx.now.into());
        let mut res = redirect(StatusCode::SEE_OTHER, &flow.rd);
        let stored = self.new_session(&mut res, &payload, headers, cx).await.map_err(|e| {
            warn!(error = %e, provider = %provider.config.id, "sign-in could not store the session");
            provider.count("store_unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "session_store_unavailable",
                "Your session cannot be stored right now. Please try again in a moment.",
            )
        })?;
        if !stored {
            provider.count("too_large");
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "session_too_large",
                "Your account's details (such as its groups) do not fit in a session cookie; ask the administrator \
                 to map fewer claims.",
            ));
        }
        provider.count("success");
        info!(user = %person.user, idp = %id, client = %cx.ip, request_id = cx.request_id, "signed in");
        Ok(res)
    }

    /// A refusal page with the way back to the sign-in page.
    fn failure(&self, status: StatusCode, code: &str, msg: &str, cx: &Context<'_>) -> Response<Body> {
        respond::error(status, code, msg, cx.html)
    }
}

/// The callback's query parameters.
struct Params(Vec<(String, String)>);

impl Params {
    /// The value of a parameter sent once; a repeated one is ambiguous and
    /// counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }
}

const UNREACHABLE: &str = "The sign-in provider cannot be reached right now. Please try again in a few seconds.";
const MIXED_UP: &str = "The sign-in answer came from another provider than the one it was started with.";

fn with_cookie(mut res: Response<Body>, cookie: HeaderValue) -> Response<Body> {
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

fn not_found(cx: &Context<'_>) -> Response<Body> {
    respond::error(StatusCode::NOT_FOUND, "not_found", "No such page.", cx.html)
}

/// An OAuth error code: short, `[A-Za-z0-9_]` (safe for a log line).
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
