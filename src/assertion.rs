//! The signed identity assertion for the backend (SPEC §8): a JWT on every
//! forwarded request with a session, so a backend can verify who is
//! asking instead of trusting a header a misrouted request could carry.
//!
//! Tokens are cached per (issuer, session fields) and re-signed once half
//! their `ttl` has passed, so a busy session is signed about twice per
//! `ttl`, not on every request; a cached token keeps its `jti`. The cache
//! is bounded and dropped with the generation on reload (new keys sign at
//! once). Every key, current and previous, is published at
//! `<prefix>/jwks.json` with its RFC 7638 thumbprint as `kid`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::config::machine::Assertion;

/// Cached tokens at most; past it, expired ones go, then all.
const CACHE_MAX: usize = 10_000;

/// Signs assertions for one configuration generation.
pub struct Signer {
    header: HeaderName,
    algorithm: Algorithm,
    key: EncodingKey,
    kid: String,
    issuer: Option<String>,
    audience: String,
    ttl: u64,
    claims: Vec<(String, String)>,
    jwks: Bytes,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Cached {
    token: HeaderValue,
    iat: u64,
    exp: u64,
}

impl Signer {
    /// Build from validated settings (the key was proven to sign then).
    pub fn new(cfg: &Assertion) -> Result<Signer, String> {
        let key = crate::config::machine::encoding_key(cfg.key.pem(), cfg.algorithm)
            .map_err(|e| format!("the assertion key cannot be used: {e}"))?;
        let current = Jwk::from_encoding_key(&key, cfg.algorithm).map_err(|e| format!("the assertion key: {e}"))?;
        let mut keys = Vec::with_capacity(1 + cfg.previous.len());
        let mut kid = String::new();
        for (i, jwk) in std::iter::once(current).chain(cfg.previous.iter().cloned()).enumerate() {
            let published = publish(jwk)?;
            if i == 0 {
                kid = published.common.key_id.clone().unwrap_or_default();
            }
            // The same key listed twice (current and previous) once.
            if !keys.iter().any(|k: &Jwk| k.common.key_id == published.common.key_id) {
                keys.push(published);
            }
        }
        let jwks = serde_json::to_vec(&JwkSet { keys }).map_err(|e| e.to_string())?;
        Ok(Signer {
            header: cfg.header.clone(),
            algorithm: cfg.algorithm,
            key,
            kid,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            ttl: cfg.ttl.as_secs(),
            claims: cfg.claims.clone(),
            jwks: Bytes::from(jwks),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The request header it travels in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// `{"keys": [...]}`: every public key, with `kid`, `alg` and `use`.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The assertion for `session` at `now`; `origin` (`proto://host`) is
    /// the issuer unless one is configured. `None` only if signing failed
    /// (logged): the request then goes without one, as if signed out.
    pub fn token(&self, session: &Map<String, Value>, origin: &str, now: u64) -> Option<HeaderValue> {
        let issuer = self.issuer.as_deref().unwrap_or(origin);
        let id = cache_key(issuer, session);
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Re-signed once half the lifetime has passed: a backend never
        // receives a token that is about to expire.
        if let Some(hit) = cache.get(&id)
            && now >= hit.iat
            && now.saturating_sub(hit.iat).saturating_mul(2) < self.ttl
        {
            return Some(hit.token.clone());
        }
        drop(cache);
        let token = self.sign(session, issuer, now)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, c| c.exp > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(
            id,
            Cached {
                token: token.clone(),
                iat: now,
                exp: now + self.ttl,
            },
        );
        Some(token)
    }

    /// Put the assertion for `session` into `headers` (see [`Signer::token`]).
    pub fn insert_into(&self, headers: &mut http::HeaderMap, session: &Map<String, Value>, origin: &str, now: u64) {
        if let Some(token) = self.token(session, origin, now) {
            headers.insert(self.header.clone(), token);
        }
    }

    fn sign(&self, session: &Map<String, Value>, issuer: &str, now: u64) -> Option<HeaderValue> {
        let mut claims = Map::new();
        for (claim, field) in &self.claims {
            if let Some(v) = session.get(field) {
                claims.insert(claim.clone(), v.clone());
            }
        }
        let mut jti = [0u8; 16];
        if getrandom::fill(&mut jti).is_err() {
            warn!("no assertion: the OS random number generator failed");
            return None;
        }
        claims.insert("iss".into(), Value::from(issuer));
        claims.insert("aud".into(), Value::from(self.audience.as_str()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now + self.ttl));
        claims.insert("jti".into(), Value::from(URL_SAFE_NO_PAD.encode(jti)));
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        match jsonwebtoken::encode(&header, &claims, &self.key) {
            Ok(token) => HeaderValue::try_from(token).ok(),
            Err(e) => {
                warn!(error = %e, "no assertion: signing failed");
                None
            }
        }
    }
}

/// A JWK as published: its thumbprint as `kid`, `use: sig`.
fn publish(mut jwk: Jwk) -> Result<Jwk, String> {
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| e.to_string())?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(jwk)
}

/// The cache key: a digest of the issuer and the session's fields.
fn cache_key(issuer: &str, session: &Map<String, Value>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((issuer.len() as u64).to_be_bytes());
    h.update(issuer.as_bytes());
    // A JSON map always serializes; its keys come out sorted.
    h.update(serde_json::to_vec(session).unwrap_or_default());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
    use serde_json::json;

    use super::*;
    use crate::config::machine::{Assertion, SigningKey};

    fn signer() -> Signer {
        let pem = rcgen::KeyPair::generate().expect("key").serialize_pem();
        Signer::new(&Assertion {
            header: HeaderName::from_static("x-usher-assertion"),
            algorithm: Algorithm::ES256,
            key: SigningKey(pem),
            previous: Vec::new(),
            issuer: None,
            audience: "https://app".into(),
            ttl: Duration::from_secs(300),
            claims: vec![("sub".into(), "user".into())],
        })
        .expect("signer")
    }

    #[test]
    fn tokens_are_cached_for_half_their_life_and_verify_with_the_jwks() {
        let s = signer();
        let session = json!({"user": "alice", "cart": {"a": 1}})
            .as_object()
            .cloned()
            .expect("map");
        let t0 = s.token(&session, "https://app", 1000).expect("token");
        assert_eq!(s.token(&session, "https://app", 1149), Some(t0.clone()), "cached");
        let t1 = s.token(&session, "https://app", 1150).expect("re-signed");
        assert_ne!(t0, t1, "re-signed at half the ttl");
        assert_ne!(s.token(&session, "https://other", 1150), Some(t1.clone()), "per issuer");
        let mut other = session.clone();
        other.insert("cart".into(), json!({"b": 2}));
        assert_ne!(s.token(&other, "https://app", 1150), Some(t1.clone()), "per session");
        // The published key verifies it, by kid.
        let token = t1.to_str().expect("ascii");
        let jwks: JwkSet = serde_json::from_slice(&s.jwks()).expect("jwks");
        let kid = decode_header(token).expect("header").kid.expect("kid");
        let jwk = jwks.find(&kid).expect("published");
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["https://app"]);
        v.validate_exp = false;
        let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).expect("key"), &v).expect("verifies");
        assert_eq!(claims.claims["sub"], "alice");
        assert_eq!(claims.claims["iss"], "https://app");
        assert_eq!(claims.claims["exp"], 1450);
        assert!(claims.claims.get("cart").is_none(), "only mapped claims");
    }
}
