//! Attributes of the session cookie and the rules browsers enforce on them.
//!
//! [`CookieAttrs`] is checked once, when config is validated, so that
//! building a `Set-Cookie` later cannot fail on them: the name is an HTTP
//! token, the path and domain are plain visible ASCII, a `__Host-` or
//! `__Secure-` name carries what its prefix demands, and `SameSite=None`
//! comes with `Secure`. Rendering the header is `session::cookie`'s job.

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on subrequests.
    Lax,
    /// Never sent on requests initiated by other sites.
    Strict,
    /// Sent everywhere; requires `Secure`.
    None,
}

/// Checked attributes of the session cookie, shared by [`set_cookie`](super::set_cookie) and
/// [`clear_cookie`](super::clear_cookie) so that a clear always matches what was set.
/// `HttpOnly` is always emitted: no script needs the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttrs {
    name: String,
    secure: bool,
    same_site: SameSite,
    path: String,
    domain: Option<String>,
    max_age: Option<u64>,
}

/// Why cookie attributes were refused. Messages name the offending value,
/// which is never secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    /// The name is empty or holds a character outside an HTTP token.
    #[error("cookie name {0:?} must be a non-empty token (letters, digits, !#$%&'*+-.^_`|~)")]
    Name(String),
    /// The path does not start with `/` or holds `;`, space or a control.
    #[error("cookie path {0:?} must start with / and hold no ';', spaces or control characters")]
    Path(String),
    /// The domain is not a plain host name.
    #[error("cookie domain {0:?} must be a host name (letters, digits, '-' and '.')")]
    Domain(String),
    /// `SameSite=None` without `Secure`, which browsers reject.
    #[error("same_site none requires secure (browsers drop the cookie otherwise)")]
    SameSiteNoneInsecure,
    /// A `__Host-` name without `Secure`, `Path=/` and no `Domain`.
    #[error("cookie name {0:?} has the __Host- prefix, which requires secure, path / and no domain")]
    HostPrefix(String),
    /// A `__Secure-` name without `Secure`.
    #[error("cookie name {0:?} has the __Secure- prefix, which requires secure")]
    SecurePrefix(String),
}

impl CookieAttrs {
    /// Checks and builds the attributes. `max_age` (seconds) becomes
    /// `Max-Age`; `None` makes a browser-session cookie. A leading `.` on
    /// `domain` is dropped, as browsers do.
    pub fn new(
        name: &str,
        secure: bool,
        same_site: SameSite,
        path: &str,
        domain: Option<&str>,
        max_age: Option<u64>,
    ) -> Result<CookieAttrs, AttrError> {
        let domain = domain.map(|d| d.strip_prefix('.').unwrap_or(d));
        check_name(name)?;
        check_path(path)?;
        domain.map(check_domain).transpose()?;
        check_combination(name, secure, same_site, path, domain)?;
        Ok(CookieAttrs {
            name: name.to_owned(),
            secure,
            same_site,
            path: path.to_owned(),
            domain: domain.map(str::to_owned),
            max_age,
        })
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `Secure` is set.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The `SameSite` attribute.
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }

    /// The `Path` attribute.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Domain` attribute, if any (without a leading `.`).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The `Max-Age` attribute in seconds, if any.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }
}

impl From<SameSite> for cookie::SameSite {
    fn from(same_site: SameSite) -> Self {
        match same_site {
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::None => cookie::SameSite::None,
        }
    }
}

fn check_name(name: &str) -> Result<(), AttrError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(AttrError::Name(name.to_owned()));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), AttrError> {
    let allowed = |b: u8| b.is_ascii_graphic() && b != b';';
    if !path.starts_with('/') || !path.bytes().all(allowed) {
        return Err(AttrError::Path(path.to_owned()));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AttrError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    let labels_ok = domain.split('.').all(|label| !label.is_empty());
    if domain.is_empty() || !labels_ok || !domain.bytes().all(allowed) {
        return Err(AttrError::Domain(domain.to_owned()));
    }
    Ok(())
}

/// Rules browsers enforce across attributes (RFC 6265bis §4.1.3, §5.6).
fn check_combination(
    name: &str,
    secure: bool,
    same_site: SameSite,
    path: &str,
    domain: Option<&str>,
) -> Result<(), AttrError> {
    let has_prefix = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    if has_prefix("__Host-") && !(secure && path == "/" && domain.is_none()) {
        return Err(AttrError::HostPrefix(name.to_owned()));
    }
    if has_prefix("__Secure-") && !secure {
        return Err(AttrError::SecurePrefix(name.to_owned()));
    }
    if same_site == SameSite::None && !secure {
        return Err(AttrError::SameSiteNoneInsecure);
    }
    Ok(())
}
