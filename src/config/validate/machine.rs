//! `[upstream.assertion]` and `[[api_keys]]` validation (SPEC §8, §9).
//! Key files are read here and proven to sign (a throwaway token is made),
//! so a wrong curve or a public key where a private one belongs is a
//! config error, not a failure on the first request. Problems name the
//! file, never its content.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header};

use super::{Problems, positive_duration};
use crate::config::Environment;
use crate::config::machine::{ApiKey, Assertion, SigningKey, encoding_key};
use crate::config::raw::{RawApiKey, RawAssertion};
use crate::hop::fold;
use crate::users::Hash;

/// Claims usher sets itself: not mappable from the session.
const REGISTERED: [&str; 6] = ["iss", "aud", "iat", "exp", "jti", "nbf"];
/// Headers the assertion may not be carried in.
const RESERVED: [&str; 8] = [
    "host",
    "cookie",
    "authorization",
    "content-length",
    "transfer-encoding",
    "connection",
    "x-forwarded-for",
    "x-forwarded-host",
];

pub(super) fn assertion(
    raw: Option<&RawAssertion>,
    forward: &[String],
    env: &Environment<'_>,
    p: &mut Problems,
) -> Option<Option<Assertion>> {
    let Some(raw) = raw else { return Some(None) };
    let key = "upstream.assertion";
    let header = match HeaderName::try_from(raw.header.as_deref().unwrap_or("X-Usher-Assertion")) {
        Ok(h) if RESERVED.contains(&h.as_str()) || forward.iter().any(|f| fold(f) == fold(h.as_str())) => {
            p.push(
                &format!("{key}.header"),
                format!("{:?} is reserved or already a [session.forward] header", h.as_str()),
            );
            None
        }
        Ok(h) => Some(h),
        Err(_) => {
            p.push(&format!("{key}.header"), "is not a valid header name".into());
            None
        }
    };
    let algorithm = match raw.algorithm.as_deref().unwrap_or("ES256") {
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        "EdDSA" => Some(Algorithm::EdDSA),
        other => {
            p.push(
                &format!("{key}.algorithm"),
                format!("expected one of ES256, RS256, EdDSA, got {other:?}"),
            );
            None
        }
    };
    let signing = match (&raw.key_file, algorithm) {
        (None, _) => {
            p.push(
                &format!("{key}.key_file"),
                "is required: the PKCS#8 PEM private key that signs (see docs/backend-identity.md)".into(),
            );
            None
        }
        (Some(path), Some(alg)) => match read(env, path).and_then(|pem| signs(&pem, alg).map(|()| pem)) {
            Ok(pem) => Some(SigningKey(pem)),
            Err(why) => {
                p.push(&format!("{key}.key_file"), format!("{path:?}: {why}"));
                None
            }
        },
        (Some(_), None) => None,
    };
    let mut previous = Vec::new();
    let mut previous_ok = true;
    for (i, path) in raw.previous_key_files.iter().flatten().enumerate() {
        match read(env, path).and_then(|pem| public_jwk(&pem)) {
            Ok(jwk) => previous.push(jwk),
            Err(why) => {
                p.push(&format!("{key}.previous_key_files[{i}]"), format!("{path:?}: {why}"));
                previous_ok = false;
            }
        }
    }
    let ttl = p.check(
        &format!("{key}.ttl"),
        raw.ttl.as_deref(),
        Duration::from_secs(300),
        |t| match positive_duration(t)? {
            d if (Duration::from_secs(10)..=Duration::from_secs(3600)).contains(&d) => Ok(d),
            _ => Err("expected from 10s to 1h: the backend accepts a token until it expires".into()),
        },
    );
    let audience = match raw.audience.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => Some(a.to_string()),
        _ => {
            p.push(
                &format!("{key}.audience"),
                "is required: the `aud` the backend checks (such as its own URL)".into(),
            );
            None
        }
    };
    let issuer = match raw.issuer.as_deref().map(str::trim) {
        Some("") => {
            p.push(
                &format!("{key}.issuer"),
                "is empty; omit it to use the request's proto://host".into(),
            );
            None
        }
        other => Some(other.map(str::to_string)),
    };
    let default: BTreeMap<String, String> = [("email", "email"), ("groups", "groups"), ("sub", "user")]
        .into_iter()
        .map(|(c, f)| (c.to_string(), f.to_string()))
        .collect();
    let claims: Vec<(String, String)> = raw.claims.clone().unwrap_or(default).into_iter().collect();
    let mut claims_ok = true;
    for (claim, field) in &claims {
        if REGISTERED.contains(&claim.as_str()) || claim.is_empty() || field.is_empty() {
            p.push(
                &format!("{key}.claims.{claim}"),
                format!("{claim:?} is set by usher (iss, aud, iat, exp, jti, nbf) or empty"),
            );
            claims_ok = false;
        }
    }
    if !previous_ok {
        return None;
    }
    Some(Some(Assertion {
        header: header?,
        algorithm: algorithm?,
        key: signing?,
        previous,
        issuer: issuer?,
        audience: audience?,
        ttl: ttl?,
        claims: claims_ok.then_some(claims)?,
    }))
}

fn read(env: &Environment<'_>, path: &str) -> Result<String, String> {
    (env.read_file)(Path::new(path)).map_err(|why| format!("cannot be read: {why}"))
}

/// Whether `pem` is a private key that signs with `alg` (a token is made).
fn signs(pem: &str, alg: Algorithm) -> Result<(), String> {
    let key = encoding_key(pem.as_bytes(), alg).map_err(|_| format!("is not a PKCS#8 PEM private key for {alg:?}"))?;
    jsonwebtoken::encode(&Header::new(alg), &serde_json::json!({}), &key)
        .map(drop)
        .map_err(|_| format!("does not sign with {alg:?} (ES256 needs a P-256 key, EdDSA an Ed25519 key)"))
}

/// A previous key (public, or private) as the public JWK to publish.
fn public_jwk(pem: &str) -> Result<Jwk, String> {
    let bytes = pem.as_bytes();
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        if let Ok(key) = encoding_key(bytes, alg)
            && signs(pem, alg).is_ok()
            && let Ok(jwk) = Jwk::from_encoding_key(&key, alg)
        {
            return Ok(jwk);
        }
        let public = match alg {
            Algorithm::ES256 => DecodingKey::from_ec_pem(bytes),
            Algorithm::RS256 => DecodingKey::from_rsa_pem(bytes),
            _ => DecodingKey::from_ed_pem(bytes),
        };
        if let Ok(key) = public
            && let Ok(jwk) = Jwk::from_decoding_key(&key, Some(alg))
        {
            return Ok(jwk);
        }
    }
    Err("is not a PEM public or private key for ES256, RS256 or EdDSA".into())
}

pub(super) fn api_keys(raw: &[RawApiKey], p: &mut Problems) -> Option<Vec<ApiKey>> {
    let mut keys = Vec::with_capacity(raw.len());
    let (mut names, mut ids) = (HashSet::new(), HashSet::new());
    let mut ok = true;
    for (i, k) in raw.iter().enumerate() {
        let at = |field: &str| format!("api_keys[{i}].{field}");
        let name = k.name.as_deref().map(str::trim).unwrap_or("");
        if name.is_empty() || !names.insert(name.to_string()) {
            p.push(
                &at("name"),
                "is required and must be unique (it is the sessions' user)".into(),
            );
            ok = false;
        }
        let id = k.id.as_deref().unwrap_or("");
        let id_ok = (4..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !id_ok || !ids.insert(id.to_string()) {
            p.push(
                &at("id"),
                "expected 4 to 32 lower-case letters and digits, unique (`usher gen-api-key` makes one)".into(),
            );
            ok = false;
        }
        let hash = match k.key_hash.as_deref().map(Hash::parse) {
            Some(Ok(h @ Hash::Argon2(_))) => Some(h),
            Some(Ok(_)) => {
                p.push(
                    &at("key_hash"),
                    "must be argon2id (`usher gen-api-key` makes one)".into(),
                );
                None
            }
            Some(Err(why)) => {
                p.push(&at("key_hash"), why);
                None
            }
            None => {
                p.push(&at("key_hash"), "is required (`usher gen-api-key` makes one)".into());
                None
            }
        };
        if let Some(hash) = hash {
            keys.push(ApiKey {
                name: name.to_string(),
                id: id.to_string(),
                hash,
                groups: k.groups.clone(),
            });
        } else {
            ok = false;
        }
    }
    ok.then_some(keys)
}
