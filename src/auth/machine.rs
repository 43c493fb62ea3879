//! Credentials from machine clients (SPEC §9): `Authorization: Basic` for
//! local users when `[login] basic_auth` is on, and API keys
//! (`Authorization: Bearer usher_<id>_<secret>`). Each is a session for
//! that request only. A bad one is 401 with `WWW-Authenticate` naming its
//! scheme, never a redirect, and fills the same brute-force buckets as the
//! form; the credential is never logged.
//!
//! An API key is looked up by its public id; a key that verified once is
//! remembered (by an HMAC of the whole key under a per-generation random
//! key, never the key itself) until the next reload, so a busy script
//! costs one argon2 check per reload, not one per request.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde_json::{Map, Value};
use sha2::Sha256;
use tracing::{info, warn};

use super::{Auth, Checked, limit};
use crate::config::machine::ApiKey;
use crate::metrics::LoginResult;
use crate::respond;
use crate::respond::Body;
use crate::users;

/// Verified keys remembered at most; past it the memory starts over.
const VERIFIED_MAX: usize = 10_000;
/// The `WWW-Authenticate` challenges.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"usher\", charset=\"UTF-8\"";
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"usher\"";
const BEARER_INVALID: &str = "Bearer realm=\"usher\", error=\"invalid_token\"";

/// A credential from an `Authorization` header usher handles.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Basic`: a user name and password.
    Basic { user: String, password: String },
    /// `Bearer usher_...`: an API key.
    ApiKey(String),
    /// A scheme usher handles, but unreadable (bad base64, no `:`).
    Malformed(&'static str),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach a log line, not even through Debug.
        f.write_str("Credential(..)")
    }
}

/// The API keys of one generation and what it has verified.
pub struct ApiKeys {
    by_id: HashMap<String, ApiKey>,
    /// Random per generation: the digests mean nothing elsewhere.
    digest_key: [u8; 32],
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl ApiKeys {
    pub fn new(keys: &[ApiKey]) -> ApiKeys {
        let mut digest_key = [0u8; 32];
        // Without the OS RNG the cache key is all zeros: still keyed by
        // nothing a client knows, and nothing is stored that opens a key.
        let _ = getrandom::fill(&mut digest_key);
        ApiKeys {
            by_id: keys.iter().map(|k| (k.id.clone(), k.clone())).collect(),
            digest_key,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn digest(&self, key: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.digest_key).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn known(&self, digest: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut set = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if set.len() >= VERIFIED_MAX {
            set.clear();
        }
        set.insert(digest);
    }
}

/// Read an `Authorization` value as a credential usher handles, given
/// what is configured; `None` for anything else (it reaches the app).
pub fn parse(value: &str, basic: bool, api_keys: bool) -> Option<Credential> {
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if basic && scheme.eq_ignore_ascii_case("basic") {
        let Ok(bytes) = STANDARD.decode(rest) else {
            return Some(Credential::Malformed(BASIC_CHALLENGE));
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Some(Credential::Malformed(BASIC_CHALLENGE));
        };
        let Some((user, password)) = text.split_once(':') else {
            return Some(Credential::Malformed(BASIC_CHALLENGE));
        };
        return Some(Credential::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    if api_keys && scheme.eq_ignore_ascii_case("bearer") && rest.starts_with("usher_") {
        return Some(Credential::ApiKey(rest.to_string()));
    }
    None
}

/// `usher_<id>_<secret>` → (id, secret), when it has that shape: an id of
/// 4 to 32 lower-case letters and digits, 32 bytes of base64url secret.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix("usher_")?.split_once('_')?;
    let id_ok = (4..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = URL_SAFE_NO_PAD.decode(secret).is_ok_and(|b| b.len() == 32);
    (id_ok && secret_ok).then_some((id, secret))
}

/// A new key: `(key, id, argon2id of the secret)` for `usher gen-api-key`.
pub fn generate() -> Result<(String, String, String), String> {
    let mut id = [0u8; 4];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|_| "the OS random number generator failed".to_string())?;
    getrandom::fill(&mut secret).map_err(|_| "the OS random number generator failed".to_string())?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = users::hash_password(&secret)?;
    Ok((format!("usher_{id}_{secret}"), id, hash))
}

impl Auth {
    /// Whether `[login] basic_auth` is on.
    pub fn basic_auth(&self) -> bool {
        self.config.login.basic_auth && !self.config.login.users.is_empty()
    }

    /// Whether `[[api_keys]]` are configured.
    pub fn api_keys(&self) -> bool {
        !self.api_keys.is_empty()
    }

    /// The session a credential gives, or the refusal (401, 429, 503).
    pub async fn machine(
        &self,
        credential: Credential,
        ip: IpAddr,
        request_id: &str,
    ) -> Result<Map<String, Value>, Response<Body>> {
        match credential {
            Credential::Malformed(challenge) => {
                info!(client = %ip, request_id, "unreadable credential refused");
                // Counted like a wrong password: junk is not free.
                self.count_failure(ip, "(malformed)").await;
                Err(unauthorized(challenge))
            }
            Credential::Basic { user, password } => self.basic(&user, &password, ip, request_id).await,
            Credential::ApiKey(key) => self.api_key(&key, ip, request_id).await,
        }
    }

    async fn basic(
        &self,
        user: &str,
        password: &str,
        ip: IpAddr,
        request_id: &str,
    ) -> Result<Map<String, Value>, Response<Body>> {
        let canonical = users::canonical(user);
        self.credential_allowed(ip, &canonical).await?;
        match self.check_password(user, password).await {
            Checked::SignedIn(mut session) => {
                session.remove(crate::session::codec::AUTH_METHOD_FIELD);
                session.insert("kind".into(), Value::from("basic"));
                Ok(session)
            }
            Checked::Failed => {
                self.count_failure(ip, &canonical).await;
                self.metrics.login(LoginResult::failure);
                info!(user = %user, client = %ip, request_id, "Basic credentials refused");
                Err(unauthorized(BASIC_CHALLENGE))
            }
            Checked::Busy => Err(busy()),
        }
    }

    async fn api_key(&self, key: &str, ip: IpAddr, request_id: &str) -> Result<Map<String, Value>, Response<Body>> {
        let keys = &self.api_keys;
        let digest = keys.digest(key);
        let found = split_key(key).and_then(|(id, secret)| keys.by_id.get(id).map(|k| (k, secret)));
        if let Some((k, _)) = found
            && keys.known(&digest)
        {
            return Ok(api_session(k));
        }
        let label = match found {
            Some((k, _)) => format!("api_key:{}", k.id),
            None => "api_key:(unknown)".to_string(),
        };
        self.credential_allowed(ip, &label).await?;
        let (hash, secret) = match found {
            Some((k, secret)) => (Some(k.hash.clone()), secret.to_string()),
            None => (None, key.to_string()),
        };
        let config = Arc::clone(&self.config);
        let checked = self
            .hash_turn(move || match hash {
                Some(h) => h.verify(&secret),
                // An unknown id costs one hash, like a wrong secret.
                None => {
                    let _ = config.login.users.verify("\0usher-api-key", &secret);
                    false
                }
            })
            .await;
        let Some(ok) = checked else {
            return Err(busy());
        };
        self.metrics.api_key_hash();
        match found {
            Some((k, _)) if ok => {
                keys.remember(digest);
                Ok(api_session(k))
            }
            _ => {
                self.count_failure(ip, &label).await;
                self.metrics.login(LoginResult::failure);
                info!(%label, client = %ip, request_id, "API key refused");
                Err(unauthorized(BEARER_INVALID))
            }
        }
    }

    /// The brute-force buckets for `ip` and `label` (a user name, an API
    /// key id): a full one answers 429, an unreadable shared one 503.
    pub(crate) async fn credential_allowed(&self, ip: IpAddr, label: &str) -> Result<(), Response<Body>> {
        match self.limits.allowed(ip, label).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(wait)) => {
                self.metrics.login(LoginResult::rate_limited);
                let secs = limit::retry_after_secs(wait);
                warn!(retry_after = secs, client = %ip, "credential rate limit reached");
                let mut res = respond::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "Too many failed credentials. Please wait a little and try again.",
                    false,
                );
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                Err(res)
            }
            Err(e) => {
                warn!(error = %e, "credential refused: the shared rate limit cannot be read");
                Err(crate::respond::store_unavailable(false))
            }
        }
    }

    /// Count a failed credential for `ip` and `label`.
    pub(crate) async fn count_failure(&self, ip: IpAddr, label: &str) {
        if let Err(e) = self.limits.failed(ip, label).await {
            warn!(error = %e, "a failed credential could not be counted in the shared rate limit");
        }
    }
}

fn api_session(k: &ApiKey) -> Map<String, Value> {
    let mut session = Map::new();
    session.insert("user".into(), Value::from(k.name.as_str()));
    session.insert("groups".into(), Value::from(k.groups.clone()));
    session.insert("kind".into(), Value::from("api_key"));
    session
}

fn unauthorized(challenge: &'static str) -> Response<Body> {
    let mut res = respond::error(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "The credentials are not valid.",
        false,
    );
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res
}

/// Two `Authorization` headers, one of them usher's: 401, neither believed.
pub fn ambiguous() -> Response<Body> {
    let mut res = respond::error(
        StatusCode::UNAUTHORIZED,
        "ambiguous_credentials",
        "Send one Authorization header.",
        false,
    );
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
    res
}

fn busy() -> Response<Body> {
    let mut res = respond::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "Too many credential checks at once. Please try again in a moment.",
        false,
    );
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_schemes_are_read() {
        let basic = format!("Basic {}", STANDARD.encode("alice:pa:ss"));
        assert_eq!(
            parse(&basic, true, false),
            Some(Credential::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            parse(&basic, false, true),
            None,
            "Basic without basic_auth reaches the app"
        );
        assert_eq!(
            parse("Bearer usher_abcd_x", true, true),
            Some(Credential::ApiKey("usher_abcd_x".into()))
        );
        assert_eq!(parse("Bearer usher_abcd_x", true, false), None);
        assert_eq!(
            parse("Bearer eyJhbGciOi.x.y", true, true),
            None,
            "a JWT is not an API key"
        );
        assert_eq!(parse("Token abc", true, true), None);
        for junk in ["Basic !!!", "Basic YWxpY2U=", "basic /w=="] {
            assert!(
                matches!(parse(junk, true, true), Some(Credential::Malformed(_))),
                "{junk}"
            );
        }
        assert_eq!(format!("{:?}", parse(&basic, true, true)), "Some(Credential(..))");
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let (key, id, hash) = generate().expect("key");
        let (kid, secret) = split_key(&key).expect("shape");
        assert_eq!(kid, id);
        assert_eq!(secret.len(), 43);
        assert!(users::Hash::parse(&hash).expect("hash").verify(secret));
        for bad in [
            "usher_",
            "usher_ab_x",
            "usher_ABCD_xx",
            &format!("usher_{id}_{}", &secret[1..]),
            "other",
        ] {
            assert!(split_key(bad).is_none(), "{bad}");
        }
    }
}
