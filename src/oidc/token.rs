//! A provider's signing keys (its JWKS) and the checks every token passes
//! before usher believes a claim in it: an asymmetric algorithm the
//! provider advertises (never `none`, never HMAC: an HS256 token "signed"
//! with a public key is refused before any key is looked at), the key named
//! by `kid`, the signature, then `iss`, `aud`, `exp`, `nbf`, `iat` and, for
//! ID tokens, `azp` and `nonce`. JOSE parsing and signature checks are
//! jsonwebtoken's; this module only chooses what to ask of it.

use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Algorithms usher verifies: public-key signatures only.
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The usable keys of a JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when it names one.
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
        write!(f, "KeySet{kids:?}")
    }
}

impl KeySet {
    /// The signature keys of a JWKS document. Keys usher cannot use
    /// (encryption keys, symmetric keys, unknown types or curves) are
    /// skipped; a document with none left is an error.
    pub fn from_jwks(doc: &Value) -> Result<KeySet, String> {
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let keys: Vec<Key> = list.iter().filter_map(usable).collect();
        if keys.is_empty() {
            return Err(format!("none of the JWKS's {} keys can verify signatures", list.len()));
        }
        Ok(KeySet { keys })
    }

    /// The `kid`s, for `usher check --online` and logs.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_else(|| "(no kid)".into()))
            .collect()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is none (never, once built).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token signed with `alg` naming `kid`. Without a `kid`,
    /// only an unambiguous key (the one key of that family) is used.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&DecodingKey> {
        let fits = |k: &&Key| k.family == alg.family() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| &k.key),
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(&only.key),
                    _ => None,
                }
            }
        }
    }
}

fn usable(value: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        // Symmetric or unknown keys never verify a provider's tokens.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        Some(a) => Some(
            Algorithm::from_str(&a.to_string())
                .ok()
                .filter(|a| ASYMMETRIC.contains(a))?,
        ),
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        family,
        key,
    })
}

/// What a token must say to be believed.
pub struct Expect<'a> {
    /// The provider's issuer, exactly.
    pub issuer: &'a str,
    /// `aud` must hold one of these.
    pub audiences: &'a [String],
    /// ID tokens: our client id (the `azp` rule); `None` for bearer tokens.
    pub client_id: Option<&'a str>,
    /// ID tokens: the nonce sent with the authorization request.
    pub nonce: Option<&'a str>,
    /// Tolerated clock difference, seconds.
    pub skew: u64,
    /// Unix seconds.
    pub now: u64,
}

/// Why a token was not believed. Short, stable reasons for logs and
/// metrics; none holds token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWS compact token, or its header is unreadable.
    #[error("not a signed JWT")]
    Malformed,
    /// `none`, HMAC, or an algorithm the provider does not advertise.
    #[error("signing algorithm not accepted")]
    Algorithm,
    /// No key with that `kid` (the caller may refetch the JWKS once).
    #[error("signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `exp` has passed.
    #[error("expired")]
    Expired,
    /// `iat` or `nbf` is in the future.
    #[error("not valid yet")]
    NotYetValid,
    /// `iss` is not the provider.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` names none of our audiences.
    #[error("wrong audience")]
    Audience,
    /// `azp` names another client.
    #[error("issued to another client (azp)")]
    AuthorizedParty,
    /// `nonce` differs from the one this browser's flow sent.
    #[error("nonce does not match")]
    Nonce,
    /// A required claim is missing or has the wrong type.
    #[error("a required claim is missing or malformed")]
    Claims,
}

impl TokenError {
    /// Snake-case label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Algorithm => "algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::Issuer => "issuer",
            TokenError::Audience => "audience",
            TokenError::AuthorizedParty => "azp",
            TokenError::Nonce => "nonce",
            TokenError::Claims => "claims",
        }
    }
}

/// The claims of `token` when every check passes.
///
/// `algorithms` are those the provider advertises (already narrowed to
/// [`ASYMMETRIC`]).
pub fn verify(
    token: &str,
    keys: &KeySet,
    algorithms: &[Algorithm],
    expect: &Expect<'_>,
) -> Result<Map<String, Value>, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    // Before any key is chosen: an algorithm outside the provider's
    // asymmetric list is refused whatever key it would pair with.
    if !ASYMMETRIC.contains(&header.alg) || !algorithms.contains(&header.alg) {
        return Err(TokenError::Algorithm);
    }
    let key = keys
        .find(header.kid.as_deref(), header.alg)
        .ok_or(TokenError::UnknownKey)?;
    let mut v = Validation::new(header.alg);
    v.leeway = expect.skew;
    v.validate_nbf = true;
    v.set_issuer(&[expect.issuer]);
    v.set_audience(expect.audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v).map_err(|e| classify(&e))?;
    let claims = data.claims;
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or(TokenError::Claims)?;
    if iat > expect.now.saturating_add(expect.skew) {
        return Err(TokenError::NotYetValid);
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    if sub.is_empty() {
        return Err(TokenError::Claims);
    }
    if let Some(client_id) = expect.client_id {
        check_azp(&claims, client_id)?;
    }
    if let Some(nonce) = expect.nonce {
        let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) || nonce.is_empty() {
            return Err(TokenError::Nonce);
        }
    }
    Ok(claims)
}

/// OpenID Connect Core §3.1.3.7: with several audiences `azp` must be
/// present, and when present it must be our client.
fn check_azp(claims: &Map<String, Value>, client_id: &str) -> Result<(), TokenError> {
    let several = claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(TokenError::AuthorizedParty),
        None if several => Err(TokenError::AuthorizedParty),
        None => Ok(()),
    }
}

fn classify(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidIssuer => TokenError::Issuer,
        K::InvalidAudience => TokenError::Audience,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => TokenError::Algorithm,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) => TokenError::Claims,
        K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidEddsaKey | K::InvalidKeyFormat => TokenError::Signature,
        _ => TokenError::Malformed,
    }
}

/// The `iss` a token claims, read without verifying anything: only to
/// choose which provider's keys to verify it with.
pub fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token)
        .ok()
        .map(|c| c.iss)
}
