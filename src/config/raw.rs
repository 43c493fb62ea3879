//! Serde structs that mirror the TOML file one to one.
//!
//! No logic lives here: every field is optional or defaulted text so that
//! `validate` can report every problem at once, naming the key. Unknown
//! keys are not refused here but collected by `validate` (serde_ignored)
//! and reported, all of them, as problems: a misspelt security setting
//! stops the proxy rather than being ignored. Only `config::validate`
//! imports this module.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub login: RawLogin,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub access: RawAccess,
    #[serde(default)]
    pub forward_auth: RawForwardAuth,
    /// `None` when the section is absent: no admin listener.
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub log: RawLog,
    /// `[[oidc]]` providers.
    #[serde(default)]
    pub oidc: Vec<RawOidc>,
    /// `[[api_keys]]`.
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
}

/// One `[[api_keys]]` entry.
#[derive(Debug, Default, Deserialize)]
pub struct RawApiKey {
    pub name: Option<String>,
    pub id: Option<String>,
    pub key_hash: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `[upstream.assertion]`
#[derive(Debug, Default, Deserialize)]
pub struct RawAssertion {
    pub header: Option<String>,
    pub algorithm: Option<String>,
    pub key_file: Option<String>,
    pub previous_key_files: Option<Vec<String>>,
    pub issuer: Option<String>,
    pub ttl: Option<String>,
    pub audience: Option<String>,
    /// `[upstream.assertion.claims]`: claim name → session field.
    pub claims: Option<BTreeMap<String, String>>,
}

/// One `[[oidc]]` table.
#[derive(Debug, Default, Deserialize)]
pub struct RawOidc {
    pub id: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub redirect_url: Option<String>,
    pub post_logout_redirect_url: Option<String>,
    pub display_name: Option<String>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub allowed_groups: Option<Vec<String>>,
    pub accept_bearer: Option<bool>,
    pub audiences: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub clock_skew: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub claims: RawClaims,
}

/// `[oidc.claims]`
#[derive(Debug, Default, Deserialize)]
pub struct RawClaims {
    pub user: Option<String>,
    pub email: Option<String>,
    pub groups: Option<String>,
}

/// `[forward_auth]`
#[derive(Debug, Default, Deserialize)]
pub struct RawForwardAuth {
    pub allowed_hosts: Option<Vec<String>>,
    pub allow_http: Option<bool>,
    pub login_url: Option<String>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub listen: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub header_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_header_bytes: Option<i64>,
    pub prefix: Option<String>,
    pub max_connections: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub worker_threads: Option<i64>,
    pub write_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub backlog: Option<i64>,
    pub shutdown_timeout: Option<String>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    pub listen: Option<String>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
pub struct RawLog {
    pub format: Option<String>,
}

/// `[upstream]`
#[derive(Debug, Default, Deserialize)]
pub struct RawUpstream {
    pub url: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub preserve_host: Option<bool>,
    pub ca_file: Option<String>,
    pub http2: Option<bool>,
    pub max_per_client: Option<i64>,
    pub body_timeout: Option<String>,
    pub upgrades: Option<Vec<String>>,
    /// `[upstream.assertion]`: the signed identity for the backend.
    pub assertion: Option<RawAssertion>,
}

/// `[session]`
#[derive(Debug, Default, Deserialize)]
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
    pub cross_site_guard: Option<bool>,
    /// `[session.forward]`: upstream request header name → session field.
    pub forward: Option<BTreeMap<String, String>>,
    /// `[session.upstream]`: backend writes.
    pub upstream: Option<RawSessionWrites>,
    /// `[session.store]`: where the fields live.
    pub store: Option<RawStore>,
}

/// `[session.store]`
#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub kind: Option<String>,
    pub url: Option<String>,
    pub mode: Option<String>,
    pub nodes: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub sentinel_service: Option<String>,
    pub prefix: Option<String>,
    pub encrypt: Option<bool>,
    pub ca_file: Option<String>,
}

/// `[session.upstream]`
#[derive(Debug, Default, Deserialize)]
pub struct RawSessionWrites {
    pub header: Option<String>,
    pub writable: Option<Vec<String>>,
}

/// `[login]`
#[derive(Debug, Default, Deserialize)]
pub struct RawLogin {
    pub htpasswd_file: Option<String>,
    pub app_name: Option<String>,
    pub hint: Option<String>,
    pub ip_attempts_per_minute: Option<i64>,
    pub user_attempts_per_minute: Option<i64>,
    pub concurrent_hashes: Option<i64>,
    pub auto_redirect: Option<String>,
    pub provider_logout: Option<bool>,
    pub basic_auth: Option<bool>,
}

/// One `[[users]]` entry.
#[derive(Debug, Default, Deserialize)]
pub struct RawUser {
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `[access]`
#[derive(Debug, Default, Deserialize)]
pub struct RawAccess {
    pub default: Option<String>,
    pub case_insensitive: Option<bool>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One `[[access.rules]]` entry.
#[derive(Debug, Default, Deserialize)]
pub struct RawRule {
    pub path: Option<String>,
    pub allow: Option<String>,
    pub methods: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub users: Option<Vec<String>>,
}
