//! `RawConfig` → `Config`: every check, every problem reported at once.
//!
//! Messages name the TOML key, the offending value and what is accepted.
//! Values of secret keys are never echoed, and neither is the text of the
//! file: a TOML syntax error is reported by line and key only, with any
//! quoted value in the parser's message hidden.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use ipnet::IpNet;

use super::raw::{RawAdmin, RawConfig, RawForwardAuth, RawLog, RawServer, RawUpstream};
use super::{Config, Environment, Server, TrustedProxies, Upstream, parse_duration};
use super::{ForwardAuth, LogFormat, TlsFiles};
use crate::redirect::AllowedHosts;

mod access;
mod login;
mod machine;
mod oidc;
mod session;
mod store;

/// Why a configuration could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: String, reason: String },
    /// The file is not valid TOML, or a value has the wrong type.
    Syntax { location: String, message: String },
    /// The file parsed, but values are unacceptable.
    Invalid(Vec<Problem>),
}

/// One unacceptable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted TOML key, e.g. `server.listen`.
    pub key: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, reason } => write!(f, "cannot read config file {path}: {reason}"),
            ConfigError::Syntax { location, message } => write!(f, "config {location}: {message}"),
            ConfigError::Invalid(problems) => {
                write!(f, "config has {} problem(s):", problems.len())?;
                for p in problems {
                    write!(f, "\n  {}: {}", p.key, p.message)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parse and validate configuration text.
pub fn from_toml_str(text: &str, env: &Environment<'_>) -> Result<Config, ConfigError> {
    let document = toml::Deserializer::parse(text).map_err(|e| syntax_error(text, &e))?;
    // Every unknown key is collected, so `check` names them all at once
    // together with every other problem.
    let mut unknown = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(document, |path| unknown.push(path.to_string()))
        .map_err(|e| syntax_error(text, &e))?;
    let mut problems = Problems::default();
    for path in &unknown {
        let message = format!(
            "unknown key at {}; a misspelt setting must not be silently ignored",
            locate_key(text, path)
        );
        // The name comes from the file: shown only when it cannot be a key
        // (found by fuzzing: a secret written as a key was echoed).
        let shown = if is_plain_key(path) {
            path.as_str()
        } else {
            "(a key not shown: it could be a secret)"
        };
        problems.push(shown, message);
    }
    let mut warnings = Vec::new();
    let server = server(&raw.server, &mut problems);
    let upstream = upstream(&raw.upstream, &mut problems);
    let session = session::session(&raw.session, env, &mut problems, &mut warnings);
    let login = login::login(&raw.login, &raw.users, env, &mut problems);
    let access = access::access(&raw.access, &mut problems);
    if raw.access.case_insensitive == Some(true) {
        warnings.push(
            "access.case_insensitive no longer changes anything: every path is judged as written and \
             case-folded, the stricter decision applies; the key can be removed"
                .into(),
        );
    }
    let forward_auth = forward_auth(&raw.forward_auth, &mut problems);
    let admin = admin(raw.admin.as_ref(), &mut problems);
    let log = log(&raw.log, &mut problems);
    let prefix = server.as_ref().map(|s| s.prefix.as_str());
    let oidc = oidc::providers(&raw.oidc, prefix, env, &mut problems, &mut warnings);
    let forward_names: Vec<String> = session
        .as_ref()
        .map(|s| s.forward.iter().map(|f| f.header.as_str().to_string()).collect())
        .unwrap_or_default();
    let assertion = machine::assertion(raw.upstream.assertion.as_ref(), &forward_names, env, &mut problems);
    let api_keys = machine::api_keys(&raw.api_keys, &mut problems);
    if raw.login.basic_auth == Some(true) && login.as_ref().is_some_and(|l| l.users.is_empty()) {
        warnings.push(
            "login.basic_auth = true, but there are no [[users]] or htpasswd entries to check: it does nothing".into(),
        );
    }
    if let Some(id) = raw.login.auto_redirect.as_deref()
        && !raw.oidc.iter().any(|p| p.id.as_deref() == Some(id))
    {
        problems.push("login.auto_redirect", format!("no [[oidc]] provider has id {id:?}"));
    }
    let config = (|| {
        Some(Config {
            server: server?,
            upstream: upstream?,
            session: session?,
            login: login?,
            access: access?,
            forward_auth: forward_auth?,
            admin: admin?,
            log: log?,
            oidc: oidc?,
            assertion: assertion?,
            api_keys: api_keys?,
            warnings,
        })
    })();
    match config {
        Some(config) if problems.0.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid(problems.0)),
    }
}

/// Collects problems; each check records and returns `None` on failure.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: &str, message: String) {
        self.0.push(Problem {
            key: key.to_string(),
            message,
        });
    }

    /// Parse an optional value, recording a problem when it is unacceptable.
    fn check<T, R: ?Sized>(
        &mut self,
        key: &str,
        value: Option<&R>,
        default: T,
        parse: impl FnOnce(&R) -> Result<T, String>,
    ) -> Option<T> {
        match value.map(parse) {
            None => Some(default),
            Some(Ok(v)) => Some(v),
            Some(Err(message)) => {
                self.push(key, message);
                None
            }
        }
    }
}

fn server(raw: &RawServer, p: &mut Problems) -> Option<Server> {
    let listen = p.check("server.listen", raw.listen.as_deref(), default_listen(), socket_addr);
    let trusted = p.check(
        "server.trusted_proxies",
        raw.trusted_proxies.as_deref(),
        TrustedProxies::default(),
        cidrs,
    );
    let header_timeout = duration(p, "server.header_read_timeout", raw.header_read_timeout.as_deref(), 10);
    let idle = duration(p, "server.idle_timeout", raw.idle_timeout.as_deref(), 60);
    let write = duration(p, "server.write_timeout", raw.write_timeout.as_deref(), 30);
    let body = duration(p, "server.body_timeout", raw.body_timeout.as_deref(), 30);
    let backlog = p.check("server.backlog", raw.backlog.as_ref(), None, |n| {
        count(*n, 1, 1 << 20).map(|n| u32::try_from(n).ok())
    });
    let drain = duration(p, "server.shutdown_timeout", raw.shutdown_timeout.as_deref(), 30);
    let prefix = p.check(
        "server.prefix",
        raw.prefix.as_deref(),
        "/.usher".to_string(),
        endpoint_prefix,
    );
    let max_header = p.check(
        "server.max_header_bytes",
        raw.max_header_bytes.as_ref(),
        16 * 1024,
        |n| header_limit(*n),
    );
    let max_conns = p.check("server.max_connections", raw.max_connections.as_ref(), 10_000, |n| {
        count(*n, 1, 1_000_000)
    });
    let max_body = p.check("server.max_body_bytes", raw.max_body_bytes.as_ref(), None, |n| {
        count(*n, 1, i64::MAX).map(|n| Some(n as u64))
    });
    let workers = p.check("server.worker_threads", raw.worker_threads.as_ref(), None, |n| {
        count(*n, 0, 1024).map(NonZeroUsize::new)
    });
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => Some(Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        })),
        (None, None) => Some(None),
        _ => {
            p.push(
                "server.tls_cert",
                "set both tls_cert and tls_key for HTTPS, or neither".into(),
            );
            None
        }
    };
    Some(Server {
        listen: listen?,
        trusted_proxies: trusted?,
        header_read_timeout: header_timeout?,
        idle_timeout: idle?,
        max_header_bytes: max_header?,
        prefix: prefix?,
        tls: tls?,
        max_connections: max_conns?,
        max_body_bytes: max_body?,
        worker_threads: workers?,
        write_timeout: write?,
        body_timeout: body?,
        backlog: backlog?,
        shutdown_timeout: drain?,
    })
}

/// A positive duration under `key`, `default_secs` when absent.
fn duration(p: &mut Problems, key: &str, raw: Option<&str>, default_secs: u64) -> Option<Duration> {
    p.check(key, raw, Duration::from_secs(default_secs), positive_duration)
}

fn count(n: i64, min: i64, max: i64) -> Result<usize, String> {
    if (min..=max).contains(&n) {
        usize::try_from(n).map_err(|_| format!("{n} is too large"))
    } else {
        Err(format!("expected a number from {min} to {max}, got {n}"))
    }
}

fn upstream(raw: &RawUpstream, p: &mut Problems) -> Option<Upstream> {
    let default_url: Uri = Uri::from_static("http://127.0.0.1:8000");
    let url = p.check("upstream.url", raw.url.as_deref(), default_url, upstream_url);
    let connect = duration(p, "upstream.connect_timeout", raw.connect_timeout.as_deref(), 5);
    let timeout = duration(p, "upstream.timeout", raw.timeout.as_deref(), 60);
    let idle = duration(p, "upstream.idle_timeout", raw.idle_timeout.as_deref(), 90);
    let per_client = p.check("upstream.max_per_client", raw.max_per_client.as_ref(), 16, |n| {
        count(*n, 1, 1024)
    });
    let body = duration(p, "upstream.body_timeout", raw.body_timeout.as_deref(), 60);
    let upgrades = p.check(
        "upstream.upgrades",
        raw.upgrades.as_deref(),
        vec!["websocket".to_string()],
        upgrade_tokens,
    );
    let url = url?;
    Some(Upstream {
        origin: url.clone(),
        scheme: url.scheme()?.clone(),
        authority: url.authority()?.clone(),
        connect_timeout: connect?,
        timeout: timeout?,
        idle_timeout: idle?,
        preserve_host: raw.preserve_host.unwrap_or(true),
        ca_file: raw.ca_file.as_ref().map(Into::into),
        http2: raw.http2.unwrap_or(false),
        max_per_client: per_client?,
        body_timeout: body?,
        upgrades: upgrades?,
    })
}

/// `Upgrade` protocol names (RFC 9110 §7.8 tokens), lower-cased; `h2c` is
/// refused (an HTTP/2 upgrade would let a client speak past usher).
fn upgrade_tokens(list: &[String]) -> Result<Vec<String>, String> {
    list.iter()
        .map(|t| {
            let name = t.split('/').next().unwrap_or("");
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            };
            if !token(name) || !t.split('/').all(token) || t.matches('/').count() > 1 {
                Err(format!("expected protocol names such as \"websocket\", got {t:?}"))
            } else if name.eq_ignore_ascii_case("h2c") {
                Err("\"h2c\" cannot be tunnelled: usher judges every HTTP/2 request itself".to_string())
            } else {
                Ok(t.to_ascii_lowercase())
            }
        })
        .collect()
}

fn admin(raw: Option<&RawAdmin>, p: &mut Problems) -> Option<Option<SocketAddr>> {
    let Some(raw) = raw else { return Some(None) };
    let default = SocketAddr::from(([127, 0, 0, 1], 9090));
    p.check("admin.listen", raw.listen.as_deref(), default, socket_addr)
        .map(Some)
}

fn log(raw: &RawLog, p: &mut Problems) -> Option<LogFormat> {
    p.check("log.format", raw.format.as_deref(), LogFormat::Human, |t| match t {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("expected human or json, got {other:?}")),
    })
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("expected an IP address and port such as \"0.0.0.0:8080\" or \"[::]:8080\", got {text:?}"))
}

fn cidrs(list: &[String]) -> Result<TrustedProxies, String> {
    let mut nets = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for item in list {
        match cidr(item) {
            Some(net) => nets.push(net),
            None => bad.push(format!("{item:?}")),
        }
    }
    if bad.is_empty() {
        Ok(TrustedProxies::new(nets))
    } else {
        Err(format!(
            "expected CIDRs such as \"10.0.0.0/8\" or single addresses such as \"192.0.2.7\", got {}",
            bad.join(", ")
        ))
    }
}

fn cidr(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net);
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

fn forward_auth(raw: &RawForwardAuth, p: &mut Problems) -> Option<ForwardAuth> {
    let list = raw.allowed_hosts.as_deref().unwrap_or(&[]);
    let allowed = AllowedHosts::new(list, raw.allow_http.unwrap_or(false))
        .map_err(|e| p.push("forward_auth.allowed_hosts", e))
        .ok();
    let login_url = match raw.login_url.as_deref() {
        None => None,
        Some(url) => match url.parse::<Uri>() {
            Ok(u) if u.scheme().is_some() && u.authority().is_some() && !url.contains('@') => Some(url.to_string()),
            Ok(u) if u.scheme().is_none() && url.starts_with('/') && !url.starts_with("//") => Some(url.to_string()),
            _ => {
                p.push(
                    "forward_auth.login_url",
                    format!("expected an absolute URL or a path such as \"https://auth.example.com/.usher/login\", got {url:?}"),
                );
                return None;
            }
        },
    };
    Some(ForwardAuth {
        allowed_hosts: allowed?,
        login_url,
    })
}

fn endpoint_prefix(text: &str) -> Result<String, String> {
    let ok = text.len() > 1
        && text.starts_with('/')
        && !text.ends_with('/')
        && text[1..]
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "expected a path such as \"/.usher\" (letters, digits, . _ - ~; no trailing /), got {text:?}"
        ))
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(format!("must be greater than zero, got {text:?}")),
        None => Err(format!(
            "expected a whole number and a unit (ms, s, m, h, d) such as \"90s\" or \"14d\", got {text:?}"
        )),
    }
}

fn header_limit(n: i64) -> Result<usize, String> {
    // hyper's HTTP/1 reader needs at least 8 KiB of buffer to work at all.
    const MIN: i64 = 8 * 1024;
    const MAX: i64 = 1024 * 1024;
    if (MIN..=MAX).contains(&n) {
        Ok(n as usize)
    } else {
        Err(format!("expected a byte count from {MIN} to {MAX}, got {n}"))
    }
}

fn upstream_url(text: &str) -> Result<Uri, String> {
    let accepted = "expected an absolute http or https URL with a host and no path, such as \"http://127.0.0.1:8000\"";
    let uri: Uri = text.parse().map_err(|_| format!("{accepted}, got {text:?}"))?;
    let authority = match (uri.scheme(), uri.authority()) {
        (Some(s), Some(a)) if *s == Scheme::HTTP || *s == Scheme::HTTPS => a,
        _ => return Err(format!("{accepted}, got {text:?}")),
    };
    if authority.as_str().contains('@') {
        return Err(format!("credentials in the URL are not accepted; {accepted}"));
    }
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if !(path.is_empty() || path == "/") {
        return Err(format!("a path prefix is not supported; {accepted}, got {text:?}"));
    }
    Ok(uri)
}

/// Report a TOML error by line and key, never quoting the file.
fn syntax_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let location = match err.span() {
        Some(span) => locate(text, span.start),
        None => "file".to_string(),
    };
    ConfigError::Syntax {
        location,
        message: hide_quoted(err.message()),
    }
}

/// `line N` of the key `path` (`section.key`, as serde_ignored names it),
/// or `the file` when it cannot be found: the last path segment written as
/// a key under a table header that starts with the first segment.
fn locate_key(text: &str, path: &str) -> String {
    let segments: Vec<&str> = path
        .split('.')
        .filter(|s| *s != "?" && s.parse::<usize>().is_err())
        .collect();
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return "the file".into();
    };
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if segments.len() == 1 && section == *first {
                return format!("line {}", n + 1);
            }
            continue;
        }
        let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
        let in_section = segments.len() == 1 || section.split('.').next() == Some(*first);
        if key == Some(*last) && in_section {
            return format!("line {}", n + 1);
        }
    }
    "the file".into()
}

/// `line N (key section.key)` for a byte offset into the file.
fn locate(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    // Named only when they are plain keys: text from a malformed line could
    // be anything the file holds, a secret included (found by fuzzing).
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        .filter(|s| is_plain_key(s));
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| is_plain_key(k));
    match (section, key) {
        (Some(s), Some(k)) => format!("line {line_no} (key {s}.{k})"),
        (None, Some(k)) => format!("line {line_no} (key {k})"),
        _ => format!("line {line_no}"),
    }
}

/// A dotted run of TOML bare keys (`server.listen`, `access.rules`), each
/// part short enough to be a setting's name and not a secret: usher's keys
/// are at least 32 bytes, every setting's name is under 32.
fn is_plain_key(text: &str) -> bool {
    text.split('.').all(|part| {
        (1..32).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    })
}

/// Replace the contents of every double-quoted run with `…`: the parser
/// quotes offending values, and a value may be a secret.
fn hide_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests;
