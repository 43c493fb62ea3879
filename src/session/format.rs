//! Which wire format the session cookie uses, and opening and sealing in
//! it: usher's own (`codec`), or a Starlette / Flask app's (`compat`), so
//! usher can sit in front of an existing app and share its sessions. Pure.
//!
//! In the app formats the cookie belongs to the app as much as to usher:
//! it is forwarded to the app, usher re-issues it only when it changes it
//! (a backend write, a sign-in), and the issue time is the frameworks'
//! (itsdangerous) rather than usher's.

use serde_json::{Map, Value};

use super::codec::{self, Limits, Opened, Rejected};
use super::compat::{CompatRejected, flask, starlette};
use super::key::Keys;
use super::sealed;

/// `[session] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// usher's own format (HMAC-SHA256 over name, version, time, payload).
    Usher,
    /// usher's session encrypted (`[session.store] encrypt = true`).
    Sealed,
    /// Starlette / FastAPI `SessionMiddleware`.
    Starlette,
    /// Flask's default signed session.
    Flask,
}

impl Format {
    /// Whether the app behind usher reads this cookie itself (so it is
    /// forwarded rather than stripped).
    pub fn shared_with_app(self) -> bool {
        !matches!(self, Format::Usher | Format::Sealed)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Usher => "usher",
            Format::Sealed => "usher (encrypted)",
            Format::Starlette => "starlette",
            Format::Flask => "flask",
        }
    }

    /// Verify and decode `value` (the cookie `name`'s value) at `now`.
    pub fn open(self, name: &str, value: &str, keys: &Keys, now: u64, limits: &Limits) -> Result<Opened, Rejected> {
        let compat = match self {
            Format::Usher => return codec::open(name, value, keys, now, limits),
            Format::Sealed => return sealed::open(name, value, keys, now, limits),
            Format::Starlette => starlette::open,
            Format::Flask => flask::open,
        };
        if value.is_empty() {
            return Err(Rejected::Missing);
        }
        let secrets: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let payload = compat(value, &secrets, now, Some(limits.max_age)).map_err(rejected)?;
        codec::check_lifetime(&payload, now, limits)?;
        // The frameworks keep their own issue times; usher does not refresh
        // these cookies on its own, so the time it sees is "now".
        Ok(Opened {
            payload,
            issued_at: now,
            stale_key: false,
        })
    }

    /// Seal `payload` as of `now` with the signing key.
    pub fn seal(self, name: &str, payload: &Map<String, Value>, now: u64, keys: &Keys) -> String {
        let key = keys.signing();
        match self {
            Format::Usher => codec::seal(name, payload, now, key),
            Format::Sealed => sealed::seal(name, payload, now, key),
            Format::Starlette => starlette::seal(payload, key.as_bytes(), now),
            Format::Flask => flask::seal(payload, key.as_bytes(), now),
        }
    }
}

/// The app formats' reasons, as usher's labels for logs and metrics.
fn rejected(r: CompatRejected) -> Rejected {
    match r {
        CompatRejected::Malformed | CompatRejected::Unsupported => Rejected::Malformed,
        CompatRejected::BadSignature => Rejected::BadMac,
        CompatRejected::Expired => Rejected::Expired,
        CompatRejected::Future => Rejected::Future,
        CompatRejected::TooLarge => Rejected::TooLarge,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::session::Key;

    #[test]
    fn every_format_round_trips_and_refuses_the_others() {
        let keys = Keys::new(vec![Key::new(b"short-app-secret".to_vec(), 0).expect("key")]).expect("keys");
        let limits = Limits {
            max_age: 3600,
            max_lifetime: None,
            max_value_len: 4096,
        };
        let payload = json!({"user": "alice", "cart": {"apple": 2}});
        let payload = payload.as_object().expect("map");
        for format in [Format::Usher, Format::Starlette, Format::Flask] {
            let value = format.seal("session", payload, 1000, &keys);
            let opened = format.open("session", &value, &keys, 1010, &limits).expect("opens");
            assert_eq!(&opened.payload, payload, "{format:?}");
            assert_eq!(
                format.open("session", &value, &keys, 1000 + 3601, &limits),
                Err(Rejected::Expired)
            );
            for other in [Format::Usher, Format::Starlette, Format::Flask]
                .into_iter()
                .filter(|f| *f != format)
            {
                assert!(
                    other.open("session", &value, &keys, 1010, &limits).is_err(),
                    "{other:?} read {format:?}"
                );
            }
        }
    }
}
