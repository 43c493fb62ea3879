//! The provider's metadata (`<issuer>/.well-known/openid-configuration`,
//! OpenID Connect Discovery 1.0), checked before usher relies on it: the
//! issuer it names is exactly the configured one (§4.3), every endpoint is
//! https (plain http only on loopback), it signs ID tokens with an
//! asymmetric algorithm usher verifies, and it does not rule out PKCE S256.

use std::str::FromStr;

use http::Uri;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

use super::token::ASYMMETRIC;
use crate::config::oidc::Provider;

/// What usher uses of the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    /// Advertised ID-token algorithms usher accepts, in the provider's order.
    pub algorithms: Vec<Algorithm>,
    /// `client_secret_post` only (no `client_secret_basic`).
    pub secret_in_form: bool,
    /// RFC 9207: authorization responses carry `iss`.
    pub iss_parameter: bool,
}

#[derive(Deserialize)]
struct Raw {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: Option<String>,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// Where the metadata of `issuer` lives.
pub fn url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// Check a discovery document against the configured provider.
pub fn parse(doc: Value, provider: &Provider) -> Result<Metadata, String> {
    let raw: Raw = serde_json::from_value(doc).map_err(|e| format!("the discovery document is not usable: {e}"))?;
    if raw.issuer != provider.issuer {
        return Err(format!(
            "the discovery document names issuer {:?}, not the configured {:?} (they must be identical)",
            raw.issuer, provider.issuer
        ));
    }
    let token = raw
        .token_endpoint
        .ok_or("the provider has no token_endpoint (usher needs the authorization code flow)")?;
    for (name, value) in [
        ("authorization_endpoint", Some(&raw.authorization_endpoint)),
        ("token_endpoint", Some(&token)),
        ("jwks_uri", Some(&raw.jwks_uri)),
        ("userinfo_endpoint", raw.userinfo_endpoint.as_ref()),
        ("end_session_endpoint", raw.end_session_endpoint.as_ref()),
    ] {
        if let Some(url) = value {
            endpoint(url).map_err(|why| format!("{name}: {why}"))?;
        }
    }
    let algorithms: Vec<Algorithm> = raw
        .id_token_signing_alg_values_supported
        .iter()
        .filter_map(|a| Algorithm::from_str(a).ok())
        .filter(|a| ASYMMETRIC.contains(a))
        .collect();
    if algorithms.is_empty() {
        return Err(format!(
            "the provider advertises no ID-token algorithm usher accepts ({:?}; usher verifies RS*, PS*, ES256, \
             ES384 and EdDSA, never none or HS*)",
            raw.id_token_signing_alg_values_supported
        ));
    }
    if let Some(methods) = &raw.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err("the provider does not support PKCE with S256".into());
    }
    let secret_in_form = raw
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|m| !m.iter().any(|x| x == "client_secret_basic") && m.iter().any(|x| x == "client_secret_post"));
    Ok(Metadata {
        issuer: raw.issuer,
        authorization_endpoint: raw.authorization_endpoint,
        token_endpoint: token,
        jwks_uri: raw.jwks_uri,
        userinfo_endpoint: raw.userinfo_endpoint,
        end_session_endpoint: raw.end_session_endpoint,
        algorithms,
        secret_in_form,
        iss_parameter: raw.authorization_response_iss_parameter_supported,
    })
}

/// An absolute https URL, or http on a loopback host.
fn endpoint(url: &str) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("https") if uri.host().is_some() => Ok(()),
        Some("http") if crate::config::is_loopback_url(&uri) => Ok(()),
        _ => Err(format!("{url:?} must be https (http only on a loopback host)")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn provider(issuer: &str) -> Provider {
        crate::config::oidc::tests_support::provider("corp", issuer)
    }

    fn doc(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    #[test]
    fn accepts_a_sound_document_keeping_only_asymmetric_algorithms() {
        let m = parse(doc("https://idp.example.com"), &provider("https://idp.example.com")).expect("usable");
        assert_eq!(m.algorithms, vec![Algorithm::RS256]);
        assert!(m.iss_parameter && !m.secret_in_form);
    }

    #[test]
    fn refuses_what_usher_must_not_rely_on() {
        let p = provider("https://idp.example.com");
        let mut other = doc("https://idp.example.com/");
        assert!(parse(other.clone(), &p).expect_err("refused").contains("identical"));
        other = doc("https://idp.example.com");
        other["id_token_signing_alg_values_supported"] = json!(["HS256", "none"]);
        assert!(parse(other, &p).expect_err("refused").contains("never none"));
        other = doc("https://idp.example.com");
        other["token_endpoint"] = json!("http://idp.example.com/token");
        assert!(parse(other, &p).expect_err("refused").contains("token_endpoint"));
        other = doc("https://idp.example.com");
        other["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(parse(other, &p).expect_err("refused").contains("S256"));
        other = doc("https://idp.example.com");
        other.as_object_mut().expect("object").remove("jwks_uri");
        assert!(parse(other, &p).is_err());
    }

    #[test]
    fn secret_goes_in_the_form_only_when_basic_is_not_offered() {
        let p = provider("https://idp.example.com");
        let mut d = doc("https://idp.example.com");
        d["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
        assert!(parse(d.clone(), &p).expect("ok").secret_in_form);
        d["token_endpoint_auth_methods_supported"] = json!(["client_secret_post", "client_secret_basic"]);
        assert!(!parse(d, &p).expect("ok").secret_in_form);
    }
}
