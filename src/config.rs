//! Validated, typed configuration.
//!
//! The TOML file is read once into [`raw`] structs, then [`validate`] turns it
//! into the types below, collecting every problem at once. Request code sees
//! only these types: it never parses text and never fails on configuration.
//! This module reads no environment variables; callers pass what they read.

mod duration;
pub mod machine;
pub mod oidc;
mod raw;
pub mod store;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use http::Uri;
use http::uri::{Authority, Scheme};
use ipnet::IpNet;

use crate::access::Policy;
use crate::redirect::AllowedHosts;
use crate::session::format::Format;
use crate::session::{CookieAttrs, Keys};
use crate::users::Users;

pub use crate::session::patch::Writable;
pub use duration::{format_duration, parse_duration};
pub use oidc::is_loopback_url;
pub use validate::{ConfigError, Problem};

/// Everything usher needs to serve, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: the client-facing listener.
    pub server: Server,
    /// `[upstream]`: where requests are forwarded.
    pub upstream: Upstream,
    /// `[session]`: the signed cookie and what it carries.
    pub session: Session,
    /// `[login]` and `[[users]]`: built-in sign-in.
    pub login: Login,
    /// `[access]`: who may reach which path.
    pub access: Policy,
    /// `[forward_auth]`: the auth-request endpoint and cross-host sign-in.
    pub forward_auth: ForwardAuth,
    /// `[admin] listen`: health and metrics listener; `None` when disabled.
    pub admin: Option<SocketAddr>,
    /// `[log] format`.
    pub log: LogFormat,
    /// `[[oidc]]`: identity providers, in the order of the file.
    pub oidc: Vec<oidc::Provider>,
    /// `[upstream.assertion]`: the signed identity for the backend.
    pub assertion: Option<machine::Assertion>,
    /// `[[api_keys]]`: keys for scripts and services.
    pub api_keys: Vec<machine::ApiKey>,
    /// Settings that work but weaken security; logged at startup and
    /// printed by `usher check`.
    pub warnings: Vec<String>,
}

/// `[session]`
#[derive(Debug, Clone)]
pub struct Session {
    /// Cookie name and attributes, checked.
    pub cookie: CookieAttrs,
    /// The old default cookie (`usher_session`), still read and then
    /// replaced, when the name defaulted to `__Host-usher_session`.
    pub legacy_cookie: Option<CookieAttrs>,
    /// First key signs; all verify.
    pub keys: Keys,
    /// Inactivity bound, checked from the signed issue time.
    pub max_age: Duration,
    /// Absolute bound since `auth_time`; `None` when switched off.
    pub max_lifetime: Option<Duration>,
    /// Upstream request headers filled from session fields.
    pub forward: Vec<Forward>,
    /// Backend session writes; `None` when not allowed.
    pub writes: Option<Writes>,
    /// Refuse unsafe cross-site requests that carry the session cookie.
    pub cross_site_guard: bool,
    /// The sign-in form's CSRF cookie (`<cookie_name>_csrf`, SameSite=Strict).
    pub csrf_cookie: CookieAttrs,
    /// The cookie's wire format.
    pub format: Format,
    /// `[session.store]`: the cookie alone, or Redis.
    pub store: store::Store,
}

impl Session {
    /// The longest a session can live: `max_lifetime`, or `max_age` when
    /// that is longer or the lifetime is off.
    pub fn longest_life(&self) -> Duration {
        self.max_lifetime.unwrap_or(self.max_age).max(self.max_age)
    }
}

/// `[forward_auth]`
#[derive(Debug, Clone, Default)]
pub struct ForwardAuth {
    /// Hosts an absolute `rd` may name (single sign-on across subdomains).
    pub allowed_hosts: AllowedHosts,
    /// Where `/.usher/auth?redirect=1` sends browsers to sign in; default
    /// `<prefix>/login` on the same host.
    pub login_url: Option<String>,
}

/// `[login]` with the users it checks.
#[derive(Debug, Clone)]
pub struct Login {
    /// Name shown on the sign-in page.
    pub app_name: String,
    /// A line shown under the sign-in form.
    pub hint: Option<String>,
    /// Local users from `[[users]]` and `htpasswd_file`.
    pub users: Users,
    /// Sign-in attempts a minute per client IP.
    pub per_ip: NonZeroU32,
    /// Sign-in attempts a minute per user name.
    pub per_user: NonZeroU32,
    /// Password hash checks run at once; `None`: one per CPU the process
    /// may use. More sign-ins wait their turn.
    pub concurrent_hashes: Option<NonZeroUsize>,
    /// `auto_redirect`: the provider browsers are sent to instead of the
    /// sign-in page.
    pub auto_redirect: Option<String>,
    /// `provider_logout`: signing out also ends the provider's session.
    pub provider_logout: bool,
    /// `basic_auth`: `Authorization: Basic` for local users on API requests.
    pub basic_auth: bool,
}

/// One `[session.forward]` entry.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Upstream request header.
    pub header: HeaderName,
    /// Session field whose value fills it.
    pub field: String,
}

/// `[session.upstream]`: how the backend writes the session.
#[derive(Debug, Clone)]
pub struct Writes {
    /// Response header carrying a JSON Merge Patch.
    pub header: HeaderName,
    /// Fields the backend may set.
    pub writable: Writable,
}

/// The variable holding the session keys (overrides the file).
pub const SECRET_KEYS_ENV: &str = "USHER_SECRET_KEYS";

/// What the validator may read besides the TOML text: the value of
/// `$USHER_SECRET_KEYS` and a way to read `secret_keys_file`. Injected so
/// validation stays testable without touching the process environment.
pub struct Environment<'a> {
    /// `$USHER_SECRET_KEYS`, when set.
    pub secret_keys: Option<String>,
    /// Reads a file; the error is a short reason (no file content).
    pub read_file: &'a dyn Fn(&Path) -> Result<String, String>,
    /// Reads another environment variable (`$USHER_OIDC_<ID>_SECRET`).
    pub var: &'a dyn Fn(&str) -> Option<String>,
}

impl Environment<'_> {
    /// No environment variable, and files cannot be read.
    pub fn none() -> Environment<'static> {
        Environment {
            secret_keys: None,
            read_file: &|_| Err("files are not read here".to_string()),
            var: &|_| None,
        }
    }
}

/// Read a file for [`Environment::read_file`] from the real file system.
pub fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| e.kind().to_string())
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct Server {
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-*` and `Forwarded` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// How long a client may take to send a request head, from its first
    /// byte (plain HTTP/1.1) or from the end of the previous exchange (TLS).
    pub header_read_timeout: Duration,
    /// How long a plain HTTP/1.1 keep-alive connection may sit idle between
    /// requests.
    pub idle_timeout: Duration,
    /// Largest request head accepted, in bytes.
    pub max_header_bytes: usize,
    /// Path prefix of usher's own endpoints (`/.usher`), never forwarded.
    pub prefix: String,
    /// PEM certificate chain and key: HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// Client connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Largest request body accepted, in bytes; `None`: no limit.
    pub max_body_bytes: Option<u64>,
    /// Threads that serve requests; `None`: one per CPU the process may
    /// use. One thread means a single-threaded runtime.
    pub worker_threads: Option<NonZeroUsize>,

    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a write to a client may make no progress before the
    /// connection is closed (a client that stops reading, an HTTP/2 stream
    /// that opens no window).
    pub write_timeout: Duration,
    /// How long a client's request body may send nothing before the
    /// request is answered 408.
    pub body_timeout: Duration,
    /// The listen queue's length; `None`: the kernel's
    /// `net.core.somaxconn` (read at bind), else 1024.
    pub backlog: Option<u32>,
}

/// Certificate and key paths for the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The backend's URL as configured: `scheme://authority`, no path.
    pub origin: Uri,
    /// Scheme of the backend (`http`).
    pub scheme: Scheme,
    /// `host:port` of the backend.
    pub authority: Authority,
    /// Limit on establishing a TCP connection to the backend.
    pub connect_timeout: Duration,
    /// Limit from the end of the request body until the response head
    /// arrives (and on a request body that makes no progress at all).
    pub timeout: Duration,
    /// How long a pooled keep-alive connection may sit unused.
    pub idle_timeout: Duration,
    /// Forward the client's `Host` (true) or the upstream's authority (false).
    pub preserve_host: bool,
    /// Extra CA certificates (PEM) trusted for an `https` upstream.
    pub ca_file: Option<PathBuf>,
    /// Speak HTTP/2 to the upstream (h2 over TLS, or h2c prior knowledge).
    pub http2: bool,
    /// Upstream exchanges one client connection may have open at once
    /// (HTTP/2 streams beyond it wait their turn).
    pub max_per_client: usize,
    /// How long the upstream's response body may send nothing before the
    /// response is cut.
    pub body_timeout: Duration,
    /// `Upgrade` tokens tunnelled (lower case); `h2c` never is.
    pub upgrades: Vec<String>,
}

/// The set of peers allowed to speak for clients in `X-Forwarded-*`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trust the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(nets)
    }

    /// Whether `ip` is one of the trusted proxies. IPv4-mapped IPv6
    /// addresses are compared as the IPv4 address they carry.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// True when nobody is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }
}

impl Config {
    /// Parse and validate configuration text with no environment: keys
    /// must be inline. Pure.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate::from_toml_str(text, &Environment::none())
    }

    /// Parse and validate configuration text, reading secrets through `env`.
    pub fn from_toml_str_with(text: &str, env: &Environment<'_>) -> Result<Config, ConfigError> {
        validate::from_toml_str(text, env)
    }

    /// Read `path` and validate it, reading environment variables
    /// (`$USHER_SECRET_KEYS`, `$USHER_OIDC_<ID>_SECRET`) through `var`.
    pub fn load(path: &Path, var: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.kind().to_string(),
        })?;
        let env = Environment {
            secret_keys: var(SECRET_KEYS_ENV),
            read_file: &read_file,
            var,
        };
        Config::from_toml_str_with(&text, &env)
    }

    /// A one-screen human summary for `usher check`. Holds no secrets.
    pub fn summary(&self) -> String {
        let s = &self.server;
        let u = &self.upstream;
        let trusted = if s.trusted_proxies.is_empty() {
            "nobody".to_string()
        } else {
            let nets: Vec<String> = s.trusted_proxies.nets().iter().map(|n| n.to_string()).collect();
            nets.join(", ")
        };
        let names = self.login.users.names();
        let users = match names.len() {
            0 => "none (no password sign-in)".to_string(),
            n if n <= 10 => format!("{n}: {}", names.join(", ")),
            n => format!("{n}: {}, ...", names[..10].join(", ")),
        };
        let default = match self.access.default_allow() {
            crate::access::Allow::Anyone => "anyone",
            crate::access::Allow::Authenticated => "signed in",
            crate::access::Allow::Nobody => "nobody",
        };
        let providers: Vec<String> = self
            .oidc
            .iter()
            .map(|p| {
                let bearer = if p.accept_bearer { ", bearer tokens" } else { "" };
                let client = if p.client_secret.is_some() {
                    ""
                } else {
                    ", public client"
                };
                format!("{} ({}{client}{bearer})", p.id, p.issuer)
            })
            .collect();
        let providers = if providers.is_empty() {
            "none".to_string()
        } else {
            providers.join(", ")
        };
        let machines = format!(
            "{} API key(s){}",
            self.api_keys.len(),
            if self.login.basic_auth {
                ", Basic for local users"
            } else {
                ""
            }
        );
        let assertion = match &self.assertion {
            None => "off".to_string(),
            Some(a) => format!(
                "{:?} in {} (aud {:?}, ttl {}, {} previous key(s))",
                a.algorithm,
                a.header,
                a.audience,
                format_duration(a.ttl),
                a.previous.len()
            ),
        };
        let mut rules = String::new();
        for (i, rule) in self.access.rules().iter().enumerate() {
            rules.push_str(&format!("  {:>2}. {}\n", i + 1, rule.describe()));
        }
        format!(
            "listen           {}\n\
             upstream         {}://{} (connect {}, response {}, host {})\n\
             trusted proxies  {}\n\
             limits           headers {} bytes within {}\n\
             users            {users}\n\
             providers        {providers}\n\
             machine clients  {machines}\n\
             assertion        {assertion}\n\
             access           first match wins; otherwise {default}\n{rules}\
             {}",
            s.listen,
            u.scheme,
            u.authority,
            format_duration(u.connect_timeout),
            format_duration(u.timeout),
            if u.preserve_host { "preserved" } else { "rewritten" },
            trusted,
            s.max_header_bytes,
            format_duration(s.header_read_timeout),
            self.session.summary(),
        )
    }
}

impl Session {
    fn summary(&self) -> String {
        let c = &self.cookie;
        let lifetime = self.max_lifetime.map_or_else(|| "off".to_string(), format_duration);
        let forward: Vec<String> = self
            .forward
            .iter()
            .map(|f| format!("{}={}", f.header, f.field))
            .collect();
        let writes = match &self.writes {
            None => "not allowed".to_string(),
            Some(w) => match &w.writable {
                Writable::Any => format!("{} (any field)", w.header),
                Writable::Fields(f) => format!("{} ({})", w.header, f.join(", ")),
            },
        };
        let store = match &self.store {
            store::Store::Cookie => format!("cookie ({})", self.format.as_str()),
            store::Store::Redis(r) => {
                let servers: Vec<String> = r.servers.iter().map(ToString::to_string).collect();
                format!(
                    "redis {} {} (timeout {}, prefix {:?})",
                    r.mode.as_str(),
                    servers.join(", "),
                    format_duration(r.timeout),
                    r.prefix
                )
            }
        };
        format!(
            "session cookie   {} (secure {}, same_site {:?}, path {}, domain {})\n\
             session keys     {} (max_age {}, max_lifetime {})\n\
             session store    {store}\n\
             forward          {}\n\
             backend writes   {}\n",
            c.name(),
            c.secure(),
            c.same_site(),
            c.path(),
            c.domain().unwrap_or("-"),
            self.keys.iter().count(),
            format_duration(self.max_age),
            lifetime,
            forward.join(", "),
            writes,
        )
    }
}

/// The `[server]` (and connection-level `[upstream]`) keys whose value in
/// `new` differs from `bound`, the settings the listener and its
/// connections were started with. A reload cannot change these; everything
/// else (rules, users, keys, headers, upstream address and timeouts, TLS
/// files, TLS on or off) applies to the next request.
pub fn needs_restart(bound: (&Server, &Upstream), new: (&Server, &Upstream)) -> Vec<&'static str> {
    let ((b, bu), (n, nu)) = (bound, new);
    let checks: [(&'static str, bool); 10] = [
        ("server.listen", b.listen != n.listen),
        ("server.worker_threads", b.worker_threads != n.worker_threads),
        (
            "server.header_read_timeout",
            b.header_read_timeout != n.header_read_timeout,
        ),
        ("server.idle_timeout", b.idle_timeout != n.idle_timeout),
        ("server.write_timeout", b.write_timeout != n.write_timeout),
        ("server.max_connections", b.max_connections != n.max_connections),
        ("server.max_header_bytes", b.max_header_bytes != n.max_header_bytes),
        ("server.shutdown_timeout", b.shutdown_timeout != n.shutdown_timeout),
        ("server.backlog", b.backlog != n.backlog),
        ("upstream.max_per_client", bu.max_per_client != nu.max_per_client),
    ];
    checks
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(key, _)| key)
        .collect()
}
