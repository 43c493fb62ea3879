//! `[[oidc]]` validation (SPEC §6), offline: the form of every value, the
//! client secret from its file or `$USHER_OIDC_<ID>_SECRET` (never echoed),
//! and that each redirect URL points at usher's own callback. What the
//! provider says about itself is checked at run time (and by
//! `usher check --online`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;

use super::{Problems, positive_duration};
use crate::config::oidc::{Claims, ClientSecret, Provider, is_loopback_url};
use crate::config::raw::RawOidc;
use crate::config::{Environment, parse_duration};

/// Longest provider id: it is part of paths, cookie names and labels.
const MAX_ID_LEN: usize = 32;

pub(super) fn providers(
    raw: &[RawOidc],
    prefix: Option<&str>,
    env: &Environment<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<Vec<Provider>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    let before = p.0.len();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("oidc[{i}]");
        let id = match r.id.as_deref().map(check_id) {
            Some(Ok(id)) => id,
            Some(Err(why)) => {
                p.push(&format!("{key}.id"), why);
                continue;
            }
            None => {
                p.push(
                    &format!("{key}.id"),
                    "every provider needs an id such as \"corp\"".into(),
                );
                continue;
            }
        };
        if !seen.insert(id.clone()) {
            p.push(&format!("{key}.id"), format!("provider id {id:?} is used twice"));
            continue;
        }
        if let Some(provider) = provider(r, id, &key, prefix, env, p, warnings) {
            out.push(provider);
        }
    }
    (p.0.len() == before).then_some(out)
}

fn provider(
    r: &RawOidc,
    id: String,
    key: &str,
    prefix: Option<&str>,
    env: &Environment<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<Provider> {
    let k = |name: &str| format!("{key}.{name}");
    let issuer = match r.issuer.as_deref() {
        Some(text) => check_url(text, true)
            .map_err(|why| p.push(&k("issuer"), why))
            .ok()
            .map(|_| text.to_string()),
        None => {
            p.push(&k("issuer"), format!("provider {id:?} needs an issuer URL"));
            None
        }
    };
    let client_id = r.client_id.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if client_id.is_none() {
        p.push(
            &k("client_id"),
            format!("provider {id:?} needs the client_id registered there"),
        );
    }
    let secret = client_secret(r.client_secret_file.as_deref(), &id, &k("client_secret_file"), env, p);
    let scopes = r
        .scopes
        .clone()
        .unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
    if !scopes.iter().any(|s| s == "openid") {
        p.push(&k("scopes"), "the scopes must include \"openid\"".into());
    }
    if let Some(bad) = scopes.iter().find(|s| s.is_empty() || !s.bytes().all(is_scope_char)) {
        p.push(
            &k("scopes"),
            format!("{bad:?} is not a scope (printable ASCII, no spaces)"),
        );
    }
    let callback = format!("{}/oidc/{id}/callback", prefix.unwrap_or("/.usher"));
    let redirect_url = match r.redirect_url.as_deref() {
        Some(text) => match check_url(text, false) {
            Ok(uri) if uri.path() != callback => {
                p.push(
                    &k("redirect_url"),
                    format!("the path must be usher's callback {callback:?} (register the same URL at the provider)"),
                );
                None
            }
            Ok(uri) => {
                if uri.scheme_str() == Some("http") && !is_loopback_url(&uri) {
                    warnings.push(format!(
                        "{} is plain http: the authorization code travels unencrypted; use https",
                        k("redirect_url")
                    ));
                }
                Some((text.to_string(), origin(&uri)))
            }
            Err(why) => {
                p.push(&k("redirect_url"), why);
                None
            }
        },
        None => {
            p.push(
                &k("redirect_url"),
                format!("provider {id:?} needs redirect_url, e.g. \"https://app.example.com{callback}\""),
            );
            None
        }
    };
    let post_logout = match (r.post_logout_redirect_url.as_deref(), &redirect_url) {
        (Some(text), _) => check_url(text, false)
            .map(|_| text.to_string())
            .map_err(|why| p.push(&k("post_logout_redirect_url"), why))
            .ok(),
        (None, Some((_, origin))) => Some(format!("{origin}/")),
        (None, None) => None,
    };
    let domains: Vec<String> = r
        .allowed_email_domains
        .iter()
        .flatten()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .collect();
    if domains.iter().any(|d| d.is_empty() || d.contains(['@', '/', ' '])) {
        p.push(
            &k("allowed_email_domains"),
            "expected domains such as \"example.com\"".into(),
        );
    }
    let timeout = p.check(
        &k("timeout"),
        r.timeout.as_deref(),
        Duration::from_secs(5),
        positive_duration,
    );
    let skew = p.check(
        &k("clock_skew"),
        r.clock_skew.as_deref(),
        Duration::from_secs(60),
        |t| {
            parse_duration(t)
                .filter(|d| *d <= Duration::from_secs(600))
                .ok_or_else(|| format!("expected a duration up to \"10m\" such as \"60s\", got {t:?}"))
        },
    );
    let claims = Claims {
        user: claim(r.claims.user.as_deref(), "preferred_username", &k("claims.user"), p)?,
        email: claim(r.claims.email.as_deref(), "email", &k("claims.email"), p)?,
        groups: claim(r.claims.groups.as_deref(), "groups", &k("claims.groups"), p)?,
    };
    let client_id = client_id?.to_string();
    let audiences = r.audiences.clone().unwrap_or_else(|| vec![client_id.clone()]);
    if audiences.is_empty() && r.accept_bearer == Some(true) {
        p.push(&k("audiences"), "bearer tokens need at least one audience".into());
    }
    let (redirect_url, _) = redirect_url?;
    Some(Provider {
        display_name: r.display_name.clone().unwrap_or_else(|| id.clone()),
        id,
        issuer: issuer?,
        client_id,
        client_secret: secret?,
        scopes,
        redirect_url,
        post_logout_redirect_url: post_logout?,
        allowed_email_domains: domains,
        allowed_groups: r.allowed_groups.clone().unwrap_or_default(),
        accept_bearer: r.accept_bearer.unwrap_or(false),
        audiences,
        claims,
        timeout: timeout?,
        clock_skew: skew?,
        ca_file: r.ca_file.as_ref().map(PathBuf::from),
    })
}

/// `[a-z0-9-]`, 1 to 32 characters, not starting with `-`.
fn check_id(id: &str) -> Result<String, String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!(
            "provider id {id:?} must be 1 to {MAX_ID_LEN} of a-z, 0-9 and '-' (it appears in URLs)"
        ))
    }
}

/// `$USHER_OIDC_<ID>_SECRET` wins over `client_secret_file`; neither is a
/// public client. An empty secret is refused (a file left blank).
fn client_secret(
    file: Option<&str>,
    id: &str,
    key: &str,
    env: &Environment<'_>,
    p: &mut Problems,
) -> Option<Option<ClientSecret>> {
    let var = Provider::secret_env(id);
    let text = match ((env.var)(&var), file) {
        (Some(from_env), _) => from_env,
        (None, Some(path)) => match (env.read_file)(Path::new(path)) {
            Ok(t) => t,
            Err(why) => {
                p.push(key, format!("cannot read {path:?}: {why}"));
                return None;
            }
        },
        (None, None) => return Some(None),
    };
    let secret = text.trim();
    if secret.is_empty() {
        p.push(key, format!("the client secret (from {var} or the file) is empty"));
        return None;
    }
    Some(Some(ClientSecret::new(secret.to_string())))
}

fn claim(value: Option<&str>, default: &str, key: &str, p: &mut Problems) -> Option<String> {
    let path = value.unwrap_or(default);
    if path.is_empty() || path.split('.').any(str::is_empty) {
        p.push(
            key,
            format!("expected a claim name or dotted path such as \"realm_access.roles\", got {path:?}"),
        );
        return None;
    }
    Some(path.to_string())
}

/// An absolute http(s) URL without userinfo or fragment. `issuer`: plain
/// http only for a loopback host, and no query.
pub(crate) fn check_url(text: &str, issuer: bool) -> Result<Uri, String> {
    let uri: Uri = text
        .parse()
        .map_err(|_| format!("expected an absolute URL such as \"https://idp.example.com\", got {text:?}"))?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
    if !scheme_ok || authority.is_empty() || authority.contains('@') || text.contains('#') {
        return Err(format!(
            "expected an absolute http(s) URL without user info or fragment, got {text:?}"
        ));
    }
    if issuer && uri.query().is_some() {
        return Err(format!("an issuer has no query string, got {text:?}"));
    }
    if issuer && uri.scheme_str() == Some("http") && !is_loopback_url(&uri) {
        return Err(format!(
            "an issuer must be https (plain http only on a loopback host such as 127.0.0.1), got {text:?}"
        ));
    }
    Ok(uri)
}

fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    format!("{scheme}://{authority}")
}

/// RFC 6749 scope-token characters.
fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback() {
        assert!(check_url("https://idp.example.com", true).is_ok());
        assert!(check_url("https://idp.example.com/realms/x", true).is_ok());
        assert!(check_url("http://127.0.0.1:9400", true).is_ok());
        assert!(check_url("http://localhost:9400", true).is_ok());
        assert!(check_url("http://[::1]:9400", true).is_ok());
        for bad in [
            "http://idp.example.com",
            "http://127.0.0.1.example.com",
            "ftp://idp.example.com",
            "https://user@idp.example.com",
            "https://idp.example.com?x=1",
            "https://idp.example.com#x",
            "idp.example.com",
            "/relative",
            "",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_url_safe() {
        assert!(check_id("corp").is_ok());
        assert!(check_id("corp-2").is_ok());
        for bad in ["", "Corp", "-x", "a/b", "a b", "ä", &"x".repeat(33)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_env_name() {
        assert_eq!(Provider::secret_env("corp-sso"), "USHER_OIDC_CORP_SSO_SECRET");
    }
}
