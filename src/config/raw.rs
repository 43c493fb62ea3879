//! Serde structs that mirror the TOML file one to one.
//!
//! No logic lives here: every field is optional or defaulted text so that
//! `validate` can report every problem at once, naming the key. Every struct
//! denies unknown fields, because a misspelt security setting must stop the
//! proxy rather than be ignored. Only `config::validate` imports this module.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub session: RawSession,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub header_read_timeout: Option<String>,
    pub max_header_bytes: Option<i64>,
}

/// `[upstream]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub preserve_host: Option<bool>,
}

/// `[session]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub cookie_name: Option<String>,
    pub secret_keys_file: Option<String>,
    pub secret_keys: Option<Vec<String>>,
    pub max_age: Option<String>,
    pub max_lifetime: Option<String>,
    pub secure: Option<bool>,
    pub same_site: Option<String>,
    pub domain: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
    /// `[session.forward]`: upstream request header name → session field.
    pub forward: Option<BTreeMap<String, String>>,
    /// `[session.upstream]`: backend writes.
    pub upstream: Option<RawSessionWrites>,
}

/// `[session.upstream]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionWrites {
    pub header: Option<String>,
    pub writable: Option<Vec<String>>,
}
