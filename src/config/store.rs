//! `[session.store]` (SPEC §7), validated: where session fields live.
//! Redis URLs may hold a password; [`RedisUrl`]'s `Debug` and `Display`
//! never show it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The environment variable whose value replaces `[session.store] url`.
pub const REDIS_URL_ENV: &str = "USHER_REDIS_URL";

/// `[session.store] kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Every field in the signed (or, with `encrypt`, sealed) cookie.
    Cookie,
    /// The cookie holds a signed session id; the fields live in Redis.
    Redis(Redis),
}

impl Store {
    /// The config spelling of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Cookie => "cookie",
            Store::Redis(_) => "redis",
        }
    }

    /// The Redis settings, when that is the store.
    pub fn redis(&self) -> Option<&Redis> {
        match self {
            Store::Cookie => None,
            Store::Redis(r) => Some(r),
        }
    }
}

/// `[session.store]` with `kind = "redis"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redis {
    /// `standalone`, `cluster` or `sentinel`.
    pub mode: RedisMode,
    /// Standalone: the one server. Cluster: the seed nodes. Sentinel: the
    /// sentinels. Each with the credentials and scheme it connects with.
    pub servers: Vec<RedisUrl>,
    /// The primary's name at the sentinels (sentinel mode).
    pub sentinel_service: Option<String>,
    /// Bound on each store command; reconnects back off up to 5 s.
    pub timeout: Duration,
    /// Put before every key usher writes.
    pub prefix: String,
    /// Extra PEM CA certificates for `rediss://`.
    pub ca_file: Option<PathBuf>,
}

/// `[session.store] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One server (or a proxy in front of several).
    Standalone,
    /// Redis Cluster: keys spread over masters by hash slot.
    Cluster,
    /// A primary found through Redis Sentinel.
    Sentinel,
}

impl RedisMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Cluster => "cluster",
            RedisMode::Sentinel => "sentinel",
        }
    }
}

/// A `redis://` or `rediss://` URL, checked; may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Check `text`: `redis://` or `rediss://`, a host, an optional port
    /// and database number, nothing else.
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let shown = redact(text);
        let expected = format!("expected redis://[user:password@]host[:port][/db] or rediss://…, got {shown:?}");
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(expected);
        };
        if scheme != "redis" && scheme != "rediss" {
            return Err(expected);
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, p)) => (h, p.strip_prefix(':').unwrap_or(p)),
                None => return Err(expected),
            },
            None => host_port.rsplit_once(':').unwrap_or((host_port, "")),
        };
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
        let port_ok = port.is_empty() || port.parse::<u16>().is_ok_and(|p| p > 0);
        let db_ok = path.is_empty() || path.parse::<u8>().is_ok();
        if !host_ok || !port_ok || !db_ok || text.contains(['?', '#', ' ']) {
            return Err(expected);
        }
        Ok(RedisUrl(text.to_string()))
    }

    /// The URL itself, credentials included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it connects over TLS.
    pub fn tls(&self) -> bool {
        self.0.starts_with("rediss://")
    }

    /// Whether it carries a password (or user) in its authority.
    pub fn has_credentials(&self) -> bool {
        self.authority().contains('@')
    }

    /// The database number; 0 when not given.
    pub fn database(&self) -> u8 {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        rest.split_once('/').and_then(|(_, db)| db.parse().ok()).unwrap_or(0)
    }

    /// `user:password@` from `other` put in front of this URL's host, when
    /// this one has none; `other`'s scheme too.
    pub fn with_credentials_of(&self, other: &RedisUrl) -> RedisUrl {
        if self.has_credentials() {
            return self.clone();
        }
        let scheme = if other.tls() { "rediss" } else { "redis" };
        let userinfo = other.authority().rsplit_once('@').map(|(u, _)| u);
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        match userinfo {
            Some(u) => RedisUrl(format!("{scheme}://{u}@{rest}")),
            None => RedisUrl(format!("{scheme}://{rest}")),
        }
    }

    fn authority(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        rest.split_once('/').map_or(rest, |(a, _)| a)
    }
}

/// The URL with any password replaced by `***`.
fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return "***".into();
    };
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (rest, None),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_string(),
    };
    match path {
        Some(p) => format!("{scheme}://{authority}/{p}"),
        None => format!("{scheme}://{authority}"),
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_shown_with_their_password() {
        for good in [
            "redis://127.0.0.1:6379/0",
            "redis://localhost",
            "rediss://:s3cret@redis.internal:6380/2",
            "redis://user:s3cret@[::1]:6379",
        ] {
            let url = RedisUrl::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(!format!("{url:?} {url}").contains("s3cret"), "{url}");
        }
        for bad in [
            "http://127.0.0.1:6379",
            "redis://",
            "redis://host:0",
            "redis://host:99999",
            "redis://host/db",
            "redis://host/0?x=1",
            "redis://ho st",
            "127.0.0.1:6379",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
        let e = RedisUrl::parse("http://u:s3cret@host").expect_err("scheme");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn nodes_take_the_credentials_and_scheme_of_the_url() {
        let url = RedisUrl::parse("rediss://:pw@seed:7000").expect("url");
        let node = RedisUrl::parse("redis://10.0.0.2:7001").expect("node");
        assert_eq!(node.with_credentials_of(&url).expose(), "rediss://:pw@10.0.0.2:7001");
        let own = RedisUrl::parse("redis://:mine@10.0.0.2:7001").expect("node");
        assert_eq!(own.with_credentials_of(&url).expose(), own.expose());
        assert_eq!(RedisUrl::parse("redis://h/3").expect("db").database(), 3);
    }
}
