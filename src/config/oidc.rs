//! `[[oidc]]`: the identity providers usher signs browsers in with (SPEC §6),
//! validated. The client secret is held in [`ClientSecret`], whose `Debug`
//! never shows it.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

/// One `[[oidc]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// `[a-z0-9-]`, unique; in the endpoint paths and metric labels.
    pub id: String,
    /// Exactly as configured; discovery must name the same issuer.
    pub issuer: String,
    /// The client registered at the provider.
    pub client_id: String,
    /// `client_secret_file` or `$USHER_OIDC_<ID>_SECRET`; `None` for a
    /// public client.
    pub client_secret: Option<ClientSecret>,
    /// Requested scopes; always includes `openid`.
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back:
    /// `<origin><prefix>/oidc/<id>/callback`.
    pub redirect_url: String,
    /// Where the provider sends the browser after its own sign-out; default
    /// the origin of `redirect_url` with path `/`.
    pub post_logout_redirect_url: String,
    /// The button text on the sign-in page.
    pub display_name: String,
    /// Lower-case domains the verified email must be in; empty: any.
    pub allowed_email_domains: Vec<String>,
    /// Mapped groups of which one must match; empty: any.
    pub allowed_groups: Vec<String>,
    /// Accept `Authorization: Bearer <JWT>` issued by this provider.
    pub accept_bearer: bool,
    /// Audiences a bearer token may carry (default: `client_id`).
    pub audiences: Vec<String>,
    /// `[oidc.claims]`.
    pub claims: Claims,
    /// Bound on each request to the provider (discovery, JWKS, token,
    /// userinfo).
    pub timeout: Duration,
    /// Tolerated clock difference for `exp`, `iat` and `nbf`.
    pub clock_skew: Duration,
    /// Extra PEM CA certificates for the provider's TLS (internal CAs).
    pub ca_file: Option<PathBuf>,
}

/// `[oidc.claims]`: session field = claim path (dots reach into objects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The claim naming the user; `sub` when it is absent.
    pub user: String,
    /// The email claim.
    pub email: String,
    /// The groups claim (an array of strings, or one string).
    pub groups: String,
}

impl Provider {
    /// Environment variable that may hold this provider's client secret.
    pub fn secret_env(id: &str) -> String {
        format!("USHER_OIDC_{}_SECRET", id.to_ascii_uppercase().replace('-', "_"))
    }

    /// Whether only the provider's connection settings differ from
    /// `other`'s, so what was fetched from it (discovery, keys) still holds.
    pub fn same_endpoint(&self, other: &Provider) -> bool {
        self.issuer == other.issuer && self.ca_file == other.ca_file && self.timeout == other.timeout
    }
}

/// A client secret: compared and used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wrap a secret read from a file or the environment.
    pub fn new(secret: String) -> ClientSecret {
        ClientSecret(secret)
    }

    /// The secret itself, for the token request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Whether the URL's host is `localhost` or a loopback address (where
/// plain http is allowed for an issuer and its endpoints).
pub fn is_loopback_url(uri: &Uri) -> bool {
    let host = uri.host().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A provider for unit tests.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// `id` at `issuer`, client `usher`, default claims.
    pub fn provider(id: &str, issuer: &str) -> Provider {
        Provider {
            id: id.into(),
            issuer: issuer.into(),
            client_id: "usher".into(),
            client_secret: Some(ClientSecret::new("s3cret".into())),
            scopes: vec!["openid".into()],
            redirect_url: format!("https://app.example.com/.usher/oidc/{id}/callback"),
            post_logout_redirect_url: "https://app.example.com/".into(),
            display_name: id.into(),
            allowed_email_domains: Vec::new(),
            allowed_groups: Vec::new(),
            accept_bearer: false,
            audiences: vec!["usher".into()],
            claims: Claims {
                user: "preferred_username".into(),
                email: "email".into(),
                groups: "groups".into(),
            },
            timeout: Duration::from_secs(5),
            clock_skew: Duration::from_secs(60),
            ca_file: None,
        }
    }
}
