//! Validated, typed configuration.
//!
//! The TOML file is read once into [`raw`] structs, then [`validate`] turns it
//! into the types below, collecting every problem at once. Request code sees
//! only these types: it never parses text and never fails on configuration.
//! This module reads no environment variables; callers pass what they read.

mod duration;
mod raw;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use ipnet::IpNet;

pub use duration::{format_duration, parse_duration};
pub use validate::{ConfigError, Problem};

/// Everything usher needs to serve, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`: the client-facing listener.
    pub server: Server,
    /// `[upstream]`: where requests are forwarded.
    pub upstream: Upstream,
}

/// `[server]`
#[derive(Debug, Clone)]
pub struct Server {
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-*` and `Forwarded` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// How long a client may take to send its request head.
    pub header_read_timeout: Duration,
    /// Largest request head accepted, in bytes.
    pub max_header_bytes: usize,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Scheme of the backend (`http`).
    pub scheme: Scheme,
    /// `host:port` of the backend.
    pub authority: Authority,
    /// Limit on establishing a TCP connection to the backend.
    pub connect_timeout: Duration,
    /// Limit from sending the request until the response head arrives.
    pub timeout: Duration,
    /// Forward the client's `Host` (true) or the upstream's authority (false).
    pub preserve_host: bool,
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
    /// Parse and validate configuration text. Pure: reads no files.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate::from_toml_str(text)
    }

    /// Read `path` and validate it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.kind().to_string(),
        })?;
        Config::from_toml_str(&text)
    }

    /// The configuration used when no file is given at all.
    pub fn defaults() -> Config {
        // The empty document is valid by construction: every key has a default.
        Config::from_toml_str("").expect("defaults are valid")
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
        format!(
            "listen           {}\n\
             upstream         {}://{} (connect {}, response {}, host {})\n\
             trusted proxies  {}\n\
             limits           headers {} bytes within {}\n",
            s.listen,
            u.scheme,
            u.authority,
            format_duration(u.connect_timeout),
            format_duration(u.timeout),
            if u.preserve_host { "preserved" } else { "rewritten" },
            trusted,
            s.max_header_bytes,
            format_duration(s.header_read_timeout),
        )
    }
}
