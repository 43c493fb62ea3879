//! The `Authorization` credentials usher handles (SPEC §9): Basic and API
//! keys (judged by `auth::machine`), and bearer tokens from identity
//! providers (SPEC §6 `accept_bearer`):
//! `Authorization: Bearer <JWT>` whose `iss` is a provider with
//! `accept_bearer` is usher's to judge. A good one is a session for this
//! request only; a bad one is 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"`, never a redirect. Either way the header is
//! removed before forwarding. Any other `Authorization` header (another
//! scheme, another issuer, an opaque token) reaches the upstream untouched.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde_json::Value;
use tracing::info;

use super::{Service, Trace};
use crate::auth::machine;
use crate::carrier::Found;
use crate::oidc::BearerError;
use crate::oidc::token::claimed_issuer;
use crate::respond;
use crate::respond::Body;

impl Service {
    /// The session an `Authorization` header usher handles gives (SPEC
    /// §9): Basic with `basic_auth`, an API key, a provider's JWT. `None`
    /// when the request carries none of those (any other `Authorization`
    /// reaches the app untouched), or the refusal.
    pub(super) async fn authorization(
        &self,
        headers: &mut HeaderMap,
        now: u64,
        trace: &Trace,
    ) -> Result<Option<Found>, Response<Body>> {
        let (basic, keys) = (self.auth.basic_auth(), self.auth.api_keys());
        if basic || keys {
            let mut ours = headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .filter_map(|v| machine::parse(v.to_str().ok()?, basic, keys));
            let (first, second) = (ours.next(), ours.next());
            let count = headers.get_all(header::AUTHORIZATION).iter().count();
            if let Some(credential) = first {
                // Ours to judge: the credential never reaches the upstream.
                headers.remove(header::AUTHORIZATION);
                if second.is_some() || count > 1 {
                    // Which one would the app read? Neither is believed.
                    return Err(crate::auth::machine::ambiguous());
                }
                let id = super::request_id::text(&trace.request_id);
                // Boxed, like the provider check below: a password or key
                // check is a large future that most requests never need,
                // and the pipeline's own future would otherwise carry it.
                let session = Box::pin(self.auth.machine(credential, trace.client, id)).await?;
                return Ok(Some(Found::request_only(session, now)));
            }
        }
        if !self.providers.accept_bearer() {
            return Ok(None);
        }
        Box::pin(self.bearer(headers, now, trace)).await
    }

    /// The session a provider's bearer token gives, `None` when the
    /// request carries no token usher handles, or the refusal.
    async fn bearer(&self, headers: &mut HeaderMap, now: u64, trace: &Trace) -> Result<Option<Found>, Response<Body>> {
        if !self.providers.accept_bearer() {
            return Ok(None);
        }
        let Some(token) = jwt(headers) else {
            return Ok(None);
        };
        let Some(provider) = claimed_issuer(&token).and_then(|iss| self.providers.bearer_issuer(&iss)) else {
            return Ok(None);
        };
        // Ours to judge: the credential never reaches the upstream.
        headers.remove(header::AUTHORIZATION);
        let label = format!("bearer:{}", provider.config.id);
        self.auth.credential_allowed(trace.client, &label).await?;
        match provider.verify_bearer(&token, now).await {
            Ok(person) => {
                provider.count_bearer("valid");
                let mut session = crate::oidc::claims::session(&person, &provider.config);
                session.insert("kind".into(), Value::from("bearer"));
                Ok(Some(Found::request_only(session, now)))
            }
            Err(e) => {
                let reason = match e {
                    BearerError::Invalid(t) => t.as_str(),
                    BearerError::Unavailable => "unavailable",
                    BearerError::NoUser => "no_user",
                    BearerError::Refused(_) => "refused",
                };
                provider.count_bearer(reason);
                if matches!(e, BearerError::Invalid(_) | BearerError::NoUser) {
                    // A bad token is a failed credential like a bad password.
                    self.auth.count_failure(trace.client, &label).await;
                }
                info!(provider = %provider.config.id, reason, client = %trace.client,
                    request_id = super::request_id::text(&trace.request_id), "bearer token refused");
                Err(refusal(e))
            }
        }
    }
}

/// The token of a lone `Authorization: Bearer <a.b.c>` header.
fn jwt(headers: &HeaderMap) -> Option<String> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let (value, None) = (all.next()?, all.next()) else {
        return None;
    };
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    let jws = token.split('.').count() == 3 && !token.starts_with("usher_");
    (scheme.eq_ignore_ascii_case("bearer") && jws).then(|| token.to_string())
}

fn refusal(e: BearerError) -> Response<Body> {
    let (status, challenge, code, message) = match e {
        BearerError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "provider_unavailable",
            "The token's issuer cannot be reached to check it; try again shortly.",
        ),
        BearerError::Refused(_) => (
            StatusCode::FORBIDDEN,
            Some("Bearer error=\"insufficient_scope\""),
            "forbidden",
            "The token's subject is not allowed here.",
        ),
        BearerError::Invalid(_) | BearerError::NoUser => (
            StatusCode::UNAUTHORIZED,
            Some("Bearer error=\"invalid_token\""),
            "invalid_token",
            "The bearer token is not valid.",
        ),
    };
    let mut res = respond::error(status, code, message, false);
    if let Some(c) = challenge {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(2));
    }
    res
}
