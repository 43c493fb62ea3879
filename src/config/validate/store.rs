//! `[session.store]` validation (SPEC §7).
//!
//! `$USHER_REDIS_URL` replaces `url`; in cluster and sentinel modes the
//! nodes take its credentials and scheme when they carry none, so a
//! password never has to be in the file.

use std::path::PathBuf;
use std::time::Duration;

use super::{Problems, positive_duration};
use crate::config::Environment;
use crate::config::raw::RawStore;
use crate::config::store::{REDIS_URL_ENV, Redis, RedisMode, RedisUrl, Store};
use crate::session::format::Format;

/// The URL when neither `url` nor `$USHER_REDIS_URL` gives one.
const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";
/// The longest accepted `timeout`: a request waits at most this long.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// The store and whether `encrypt` is on; `None` after recording problems.
pub(super) fn store(
    raw: Option<&RawStore>,
    format: Option<Format>,
    env: &Environment<'_>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> Option<(Store, bool)> {
    let default = RawStore::default();
    let raw = raw.unwrap_or(&default);
    let encrypt = raw.encrypt.unwrap_or(false);
    let app_format = format.filter(|f| f.shared_with_app());
    let kind = raw.kind.as_deref().unwrap_or("cookie");
    match kind {
        "cookie" => {
            let stray = [
                ("url", raw.url.is_some()),
                ("mode", raw.mode.is_some()),
                ("nodes", raw.nodes.is_some()),
                ("timeout", raw.timeout.is_some()),
                ("sentinel_service", raw.sentinel_service.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("ca_file", raw.ca_file.is_some()),
            ];
            for (key, _) in stray.iter().filter(|(_, set)| *set) {
                p.push(
                    &format!("session.store.{key}"),
                    "only applies with kind = \"redis\"; remove it or set the kind".into(),
                );
            }
            if let (true, Some(f)) = (encrypt, app_format) {
                p.push(
                    "session.store.encrypt",
                    format!(
                        "cannot be combined with format = {:?}: the app must still read its own cookie",
                        f.as_str()
                    ),
                );
                return None;
            }
            Some((Store::Cookie, encrypt))
        }
        "redis" => {
            if encrypt {
                p.push(
                    "session.store.encrypt",
                    "applies to the cookie store only: with Redis the cookie holds just a signed session id".into(),
                );
            }
            if let Some(f) = app_format {
                p.push(
                    "session.store.kind",
                    format!(
                        "\"redis\" cannot be combined with format = {:?}: the app must still read its own cookie",
                        f.as_str()
                    ),
                );
                return None;
            }
            let redis = redis(raw, env, p, warnings)?;
            (!encrypt).then_some((Store::Redis(redis), false))
        }
        other => {
            p.push(
                "session.store.kind",
                format!("expected one of cookie, redis, got {other:?}"),
            );
            None
        }
    }
}

fn redis(raw: &RawStore, env: &Environment<'_>, p: &mut Problems, warnings: &mut Vec<String>) -> Option<Redis> {
    let from_env = (env.var)(REDIS_URL_ENV).filter(|v| !v.trim().is_empty());
    let url = match (&from_env, &raw.url) {
        (Some(v), _) => RedisUrl::parse(v.trim()).map_err(|e| p.push(REDIS_URL_ENV, e)).ok(),
        (None, Some(v)) => {
            let url = RedisUrl::parse(v).map_err(|e| p.push("session.store.url", e)).ok();
            if url.as_ref().is_some_and(RedisUrl::has_credentials) {
                warnings.push(format!(
                    "session.store.url holds credentials in the file; ${REDIS_URL_ENV} keeps them out of it"
                ));
            }
            url
        }
        (None, None) => RedisUrl::parse(DEFAULT_URL).ok(),
    };
    let mode = match raw.mode.as_deref().unwrap_or("standalone") {
        "standalone" => Some(RedisMode::Standalone),
        "cluster" => Some(RedisMode::Cluster),
        "sentinel" => Some(RedisMode::Sentinel),
        other => {
            p.push(
                "session.store.mode",
                format!("expected one of standalone, cluster, sentinel, got {other:?}"),
            );
            None
        }
    };
    let nodes = nodes(raw.nodes.as_deref().unwrap_or(&[]), p);
    let servers = match (mode?, url) {
        (RedisMode::Standalone, url) => {
            if raw.nodes.is_some() {
                p.push(
                    "session.store.nodes",
                    "only applies to mode = \"cluster\" or \"sentinel\"; a standalone server is `url`".into(),
                );
            }
            vec![url?]
        }
        (mode, url) => {
            let nodes = nodes?;
            if nodes.is_empty() {
                p.push(
                    "session.store.nodes",
                    format!(
                        "mode = {:?} needs the {} as a list of redis://host:port",
                        mode.as_str(),
                        if mode == RedisMode::Cluster {
                            "seed nodes"
                        } else {
                            "sentinels"
                        }
                    ),
                );
                return None;
            }
            let url = url?;
            let servers: Vec<RedisUrl> = nodes.iter().map(|n| n.with_credentials_of(&url)).collect();
            if mode == RedisMode::Cluster && servers.iter().any(|s| s.database() != 0) {
                p.push(
                    "session.store.nodes",
                    "a Redis Cluster has only database 0; remove the /N".into(),
                );
                return None;
            }
            servers
        }
    };
    let sentinel_service = match (mode?, raw.sentinel_service.as_deref()) {
        (RedisMode::Sentinel, Some(name)) if valid_name(name) => Some(name.to_string()),
        (RedisMode::Sentinel, Some(name)) => {
            p.push(
                "session.store.sentinel_service",
                format!("expected the primary's name (letters, digits, - _ .), got {name:?}"),
            );
            return None;
        }
        (RedisMode::Sentinel, None) => {
            p.push(
                "session.store.sentinel_service",
                "mode = \"sentinel\" needs the primary's name, such as \"mymaster\"".into(),
            );
            return None;
        }
        (_, Some(_)) => {
            p.push(
                "session.store.sentinel_service",
                "only applies to mode = \"sentinel\"".into(),
            );
            return None;
        }
        (_, None) => None,
    };
    let timeout = p.check(
        "session.store.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(1),
        |t| {
            let d = positive_duration(t)?;
            if d > MAX_TIMEOUT {
                return Err(format!(
                    "at most {}s: every request that needs a session may wait this long",
                    MAX_TIMEOUT.as_secs()
                ));
            }
            Ok(d)
        },
    );
    let prefix = p.check(
        "session.store.prefix",
        raw.prefix.as_deref(),
        "usher:".to_string(),
        |t| {
            let ok =
                !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
            if ok {
                Ok(t.to_string())
            } else {
                Err(format!(
                    "expected 1 to 64 printable characters without spaces or braces (braces pick cluster hash slots), \
                 got {t:?}"
                ))
            }
        },
    );
    let ca_file = raw.ca_file.as_ref().map(PathBuf::from);
    if ca_file.is_some() && !servers.iter().any(RedisUrl::tls) {
        p.push(
            "session.store.ca_file",
            "only applies to rediss:// (TLS) servers".into(),
        );
        return None;
    }
    Some(Redis {
        mode: mode?,
        servers,
        sentinel_service,
        timeout: timeout?,
        prefix: prefix?,
        ca_file,
    })
}

/// `nodes`: `redis://host:port` (or bare `host:port`, which takes the
/// scheme and credentials of `url`).
fn nodes(raw: &[String], p: &mut Problems) -> Option<Vec<RedisUrl>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, node) in raw.iter().enumerate() {
        let text = if node.contains("://") {
            node.clone()
        } else {
            format!("redis://{node}")
        };
        match RedisUrl::parse(&text) {
            Ok(url) => out.push(url),
            Err(e) => {
                p.push(&format!("session.store.nodes[{i}]"), e);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
