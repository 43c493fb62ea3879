//! `usher session decode`: explain a cookie to an operator, in each of its
//! forms (signed, encrypted, a Redis session id). Pure: the caller passes
//! the configuration and `now`.

use std::time::Duration;

use crate::config::{self, format_duration};
use crate::logfmt::rfc3339;
use crate::session::codec::DEFAULT_MAX_VALUE_LEN;
use crate::session::{Limits, Rejected};

/// Seal `json` (a JSON object) as a session issued at `now`, adding
/// `auth_time` when absent; the cookie value, or why the input is refused.
pub fn encode(cfg: &config::Session, json: &str, now: u64) -> Result<String, String> {
    let payload = session_object(json, now)?;
    Ok(cfg.format.seal(cfg.cookie.name(), &payload, now, &cfg.keys))
}

/// `json` as a session: a JSON object, with `auth_time` = `now` when absent.
pub fn session_object(json: &str, now: u64) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(mut payload) = value else {
        return Err("the session must be a JSON object".into());
    };
    payload
        .entry(crate::session::codec::AUTH_TIME_FIELD)
        .or_insert(now.into());
    Ok(payload)
}

/// What `decode` found.
#[derive(Debug)]
pub enum Decoded {
    /// Valid: a printable report.
    Valid(String),
    /// Rejected, with the reason.
    Rejected(Rejected),
}

/// Verify `cookie` (a value, or `name=value`) as the proxy would at `now`.
/// The old default name (`usher_session`) is tried too, as the proxy does.
pub fn decode(cfg: &config::Session, cookie: &str, now: u64) -> Decoded {
    let cookie = cookie.trim();
    let names: Vec<&str> = std::iter::once(cfg.cookie.name())
        .chain(cfg.legacy_cookie.as_ref().map(|c| c.name()))
        .collect();
    let named = names.iter().find_map(|n| {
        let value = cookie.strip_prefix(n)?.strip_prefix('=')?;
        Some((*n, value))
    });
    let limits = Limits {
        max_age: cfg.max_age.as_secs(),
        max_lifetime: cfg.max_lifetime.map(|d| d.as_secs()),
        max_value_len: DEFAULT_MAX_VALUE_LEN,
    };
    let open = |name: &str, value: &str| cfg.format.open(name, value, &cfg.keys, now, &limits);
    let opened = match named {
        Some((name, value)) => open(name, value),
        // A bare value: the name is under the MAC, so try each.
        None => names
            .iter()
            .map(|n| open(n, cookie))
            // A signature that fails under one name says nothing: prefer
            // what the other name found.
            .reduce(|first, next| {
                if matches!(first, Err(Rejected::BadMac)) {
                    next
                } else {
                    first
                }
            })
            .unwrap_or(Err(Rejected::Missing)),
    };
    match opened {
        Err(reason) => Decoded::Rejected(reason),
        Ok(opened) => {
            let age = now.saturating_sub(opened.issued_at);
            let left = limits.max_age.saturating_sub(age);
            let json = serde_json::to_string_pretty(&*opened.payload).unwrap_or_default();
            let key = if opened.stale_key {
                "an older key (re-signed on next use)"
            } else {
                "the signing key"
            };
            let expires = opened.issued_at.saturating_add(limits.max_age);
            Decoded::Valid(
                format!(
                    "valid: signed by {key}\nissued   {} ({} unix), {} ago\nexpires  {} ({} unix), in {} without activity\n{json}\n",
                    rfc3339(opened.issued_at),
                    opened.issued_at,
                    format_duration(Duration::from_secs(age)),
                    rfc3339(expires),
                    expires,
                    format_duration(Duration::from_secs(left)),
                ) + &stored_note(cfg, &opened.payload),
            )
        }
    }
}

/// With the Redis store the cookie names a session kept there: say where.
fn stored_note(cfg: &config::Session, payload: &serde_json::Map<String, serde_json::Value>) -> String {
    let sid = payload.get(crate::store::SID_FIELD).and_then(|v| v.as_str());
    match (cfg.store.redis(), sid) {
        (Some(redis), Some(sid)) => format!(
            "a session id: the fields live in Redis ({}) as session {} (see `usher session list`)\n",
            redis.servers.first().map(ToString::to_string).unwrap_or_default(),
            crate::store::public_id(sid)
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> config::Config {
        config::Config::from_toml_str("[session]\nsecret_keys = [\"0123456789abcdef0123456789abcdef\"]\n")
            .expect("config")
    }

    #[test]
    fn explains_valid_and_rejected_cookies() {
        let c = config();
        let payload = json!({"user": "alice"});
        let value = crate::session::seal(
            "usher_session",
            payload.as_object().expect("map"),
            1000,
            c.session.keys.signing(),
        );
        match decode(&c.session, &format!("usher_session={value}"), 1060) {
            Decoded::Valid(text) => {
                assert!(text.contains("\"alice\"") && text.contains("1m ago"), "{text}");
                assert!(text.contains("issued   1970-01-01T00:16:40Z (1000 unix)"), "{text}");
            }
            Decoded::Rejected(r) => panic!("rejected: {r}"),
        }
        assert!(matches!(
            decode(&c.session, &value, 1000 + 15 * 86_400),
            Decoded::Rejected(Rejected::Expired)
        ));
        assert!(matches!(
            decode(&c.session, "garbage", 1000),
            Decoded::Rejected(Rejected::Malformed)
        ));
        let sealed = encode(&c.session, r#"{"user":"bob"}"#, 5000).expect("encode");
        assert!(matches!(decode(&c.session, &sealed, 5001), Decoded::Valid(t) if t.contains("\"bob\"")));
        assert!(encode(&c.session, "[1]", 5000).is_err());
        assert!(encode(&c.session, "{", 5000).is_err());
    }
}
