//! Server-side sessions (SPEC §7): with `[session.store] kind = "redis"`
//! the cookie carries a signed random session id and the fields live in
//! Redis, so a session can be revoked, shared by many replicas, and grow
//! past a cookie's 4 KB.
//!
//! [`redis::RedisStore`] is the one IO edge here: every command bounded by
//! the store's `timeout`, never queued behind a reconnect (a command is
//! refused at once while no connection is up), timed and counted in the
//! metrics. Everything else (the id, the key names) is pure.

pub mod redis;

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use redis::{Meta, Record, RedisStore, SessionInfo, Updated};

pub use crate::session::codec::SID_FIELD;

/// Why a store command gave no answer. Never a reason to treat a request
/// as signed in or as signed out: callers answer 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection is up (reconnecting, or never connected).
    #[error("the session store is not connected")]
    Down,
    /// The command did not finish within the store's timeout.
    #[error("the session store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store answered with an error.
    #[error("the session store failed: {0}")]
    Failed(String),
}

/// The payload of a Redis-store cookie: the session id and the session's
/// `auth_time` (so that the cookie itself ends at `max_lifetime` too).
pub fn id_payload(
    sid: &str,
    session: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use crate::session::codec::AUTH_TIME_FIELD;
    let mut payload = serde_json::Map::new();
    payload.insert(SID_FIELD.into(), serde_json::Value::from(sid));
    if let Some(auth) = session.get(AUTH_TIME_FIELD) {
        payload.insert(AUTH_TIME_FIELD.into(), auth.clone());
    }
    payload
}

/// A new session id: 256 bits from the OS random number generator.
pub fn new_sid() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| StoreError::Failed("the OS random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The public id of a session: a hash of its secret id, so that listing
/// and revoking never show (or need) the value a cookie carries, and a
/// copy of the store's keys opens no session.
pub fn public_id(sid: &str) -> String {
    let digest = Sha256::new_with_prefix(b"usher-session-id\0")
        .chain_update(sid.as_bytes())
        .finalize();
    let mut out = String::with_capacity(32);
    for byte in &digest[..16] {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Whether `id` has the shape [`public_id`] gives (32 lower-case hex
/// digits), before it is put into a key name.
pub fn is_public_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A session id as a cookie may carry it: 43 base64url characters.
pub fn is_sid(sid: &str) -> bool {
    sid.len() == 43 && sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_takes_exactly_one_target() {
        assert_eq!(
            Revoke::from_params([("user", "alice")]),
            Ok(Revoke::User("alice".into()))
        );
        assert_eq!(
            Revoke::from_params([("x", "1"), ("id", "ab")]),
            Ok(Revoke::Id("ab".into()))
        );
        for bad in [
            vec![],
            vec![("user", "")],
            vec![("user", "a"), ("user", "b")],
            vec![("user", "a"), ("id", "b")],
        ] {
            assert!(Revoke::from_params(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_random_and_their_public_form_is_a_hash() {
        let (a, b) = (new_sid().expect("sid"), new_sid().expect("sid"));
        assert_ne!(a, b);
        assert!(is_sid(&a) && is_sid(&b));
        let id = public_id(&a);
        assert!(is_public_id(&id), "{id}");
        assert_eq!(id, public_id(&a));
        assert_ne!(id, public_id(&b));
        assert!(!id.contains(&a[..8]));
        for bad in ["", "ABCDEF0123456789abcdef0123456789", "../../etc", &"a".repeat(33)] {
            assert!(!is_public_id(bad), "{bad}");
        }
        assert!(!is_sid("short") && !is_sid(&format!("{}*", &a[..42])));
    }
}

/// Which sessions `revoke` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    /// Every session of this user.
    User(String),
    /// The session with this public id.
    Id(String),
}

impl Revoke {
    /// From request parameters (query and form, in order): exactly one of
    /// `user=` or `id=`, each given once and not empty.
    pub fn from_params<'p>(params: impl IntoIterator<Item = (&'p str, &'p str)>) -> Result<Revoke, &'static str> {
        let mut found = None;
        for (name, value) in params {
            let next = match name {
                "user" => Revoke::User(value.to_string()),
                "id" => Revoke::Id(value.to_string()),
                _ => continue,
            };
            if found.is_some() {
                return Err("give exactly one user= or id=, once");
            }
            found = Some(next);
        }
        match found {
            Some(Revoke::User(u) | Revoke::Id(u)) if u.is_empty() => Err("user= or id= is empty"),
            Some(r) => Ok(r),
            None => Err("give user= or id="),
        }
    }
}

/// `GET /sessions?user=` and `usher session list`: the JSON of SPEC §7.
pub async fn list_doc(store: &RedisStore, user: &str) -> Result<serde_json::Value, StoreError> {
    let sessions = store.list(user).await?;
    let list: Vec<serde_json::Value> = sessions
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id,
                "created": crate::logfmt::rfc3339(s.created),
                "last_seen": crate::logfmt::rfc3339(s.last_seen),
                "client_ip": s.client_ip,
                "user_agent": s.user_agent,
            })
        })
        .collect();
    Ok(serde_json::json!({ "sessions": list }))
}

/// `POST /sessions/revoke` and `usher session revoke`: `{"revoked": N}`.
pub async fn revoke_doc(store: &RedisStore, what: &Revoke) -> Result<serde_json::Value, StoreError> {
    let revoked = match what {
        Revoke::User(user) => store.revoke_user(user).await?,
        Revoke::Id(id) => store.revoke_id(id).await?,
    };
    Ok(serde_json::json!({ "revoked": revoked }))
}

/// What the admin endpoints and the command line say with the cookie store.
pub const NEEDS_REDIS: &str =
    "listing and revoking sessions needs [session.store] kind = \"redis\": cookie sessions live only in browsers";
