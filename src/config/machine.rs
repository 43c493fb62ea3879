//! `[upstream.assertion]` (SPEC §8) and `[[api_keys]]` (SPEC §9),
//! validated. The signing key's PEM and the keys' hashes are secrets:
//! their `Debug` never shows them.

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;

use crate::users::Hash;

/// `[upstream.assertion]`: a signed JWT for the backend on every forwarded
/// request with a session.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The request header carrying it (stripped from clients in every spelling).
    pub header: HeaderName,
    /// `ES256`, `RS256` or `EdDSA`.
    pub algorithm: Algorithm,
    /// `key_file`: the private key that signs, checked to sign with `algorithm`.
    pub key: SigningKey,
    /// `previous_key_files`: public keys still published for rotation.
    pub previous: Vec<Jwk>,
    /// `iss`; `None`: the request's `proto://host`.
    pub issuer: Option<String>,
    /// `aud`.
    pub audience: String,
    /// `exp` = `iat` + `ttl`.
    pub ttl: Duration,
    /// `[upstream.assertion.claims]`: (claim, session field), sorted by claim.
    pub claims: Vec<(String, String)>,
}

/// A PEM private key; `Debug` shows only that there is one.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(pub(crate) String);

impl SigningKey {
    /// The PEM text, for building the signer.
    pub fn pem(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// `pem` as a private key for `alg` (ES256, RS256, else EdDSA).
pub fn encoding_key(pem: &[u8], alg: Algorithm) -> jsonwebtoken::errors::Result<jsonwebtoken::EncodingKey> {
    use jsonwebtoken::EncodingKey;
    match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    }
}

/// One `[[api_keys]]` entry.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// The `user` of the sessions it makes.
    pub name: String,
    /// The public part of `usher_<id>_<secret>`.
    pub id: String,
    /// argon2id of the secret part (redacted in `Debug`).
    pub hash: Hash,
    /// The sessions' `groups`.
    pub groups: Vec<String>,
}
