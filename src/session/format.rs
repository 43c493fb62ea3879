//! Which wire format the session cookie uses, and opening and sealing in
//! it: usher's own (`codec`), or a Starlette / Flask app's (`compat`), so
//! usher can sit in front of an existing app and share its sessions. Pure.
//!
//! In the app formats the cookie belongs to the app as much as to usher:
//! it is forwarded to the app, usher re-issues it only when it changes it
//! (a backend write, a sign-in), and the issue time is the frameworks'
//! (itsdangerous) rather than usher's.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::codec::{self, Limits, Opened, Rejected};
use super::compat::{CompatRejected, flask, starlette};
use super::key::Keys;
use super::sealed;
use super::verified::Verified;

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
            payload: Arc::new(payload),
            issued_at: now,
            stale_key: false,
        })
    }

    /// [`Format::open`], remembering verified values in `memory`: a value
    /// seen before skips the MAC (or decryption) and the JSON parse, never
    /// the time checks. Only usher's own formats are remembered (the app
    /// formats' times are inside their signed values).
    pub fn open_remembered(
        self,
        memory: &Verified,
        name: &str,
        value: &str,
        keys: &Keys,
        now: u64,
        limits: &Limits,
    ) -> Result<Opened, Rejected> {
        if self.shared_with_app() || value.len() > limits.max_value_len {
            return self.open(name, value, keys, now, limits);
        }
        if let Some(opened) = memory.get(name, value) {
            codec::check_times(opened.issued_at, &opened.payload, now, limits)?;
            return Ok(opened);
        }
        let opened = self.open(name, value, keys, now, limits)?;
        memory.remember(name, value, &opened);
        Ok(opened)
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
            assert_eq!(&*opened.payload, payload, "{format:?}");
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

    #[test]
    fn a_remembered_value_skips_only_the_signature() {
        let keys = Keys::new(vec![Key::new(b"short-app-secret".to_vec(), 0).expect("key")]).expect("keys");
        let limits = Limits {
            max_age: 3600,
            max_lifetime: Some(7200),
            max_value_len: 4096,
        };
        let payload = json!({"user": "alice", "auth_time": 1000});
        let payload = payload.as_object().expect("map");
        for format in [Format::Usher, Format::Sealed] {
            let memory = Verified::default();
            let value = format.seal("session", payload, 1000, &keys);
            let open = |now, limits: &Limits| format.open_remembered(&memory, "session", &value, &keys, now, limits);
            assert_eq!(
                open(1010, &limits).map(|o| Arc::unwrap_or_clone(o.payload)),
                Ok(payload.clone())
            );
            assert_eq!(memory.len(), 1, "{format:?}: remembered once verified");
            assert_eq!(
                open(1020, &limits).map(|o| Arc::unwrap_or_clone(o.payload)),
                Ok(payload.clone())
            );
            assert_eq!(open(1000 + 3601, &limits), Err(Rejected::Expired), "{format:?}");
            assert_eq!(open(600, &limits), Err(Rejected::Future), "{format:?}");
            let shorter = Limits {
                max_age: 9000,
                ..limits
            };
            assert_eq!(
                open(1000 + 7201, &shorter),
                Err(Rejected::LifetimeExceeded),
                "{format:?}"
            );
            // A tampered value is never remembered, and the name still counts.
            let mut forged = value.clone();
            forged.pop();
            forged.push(if value.ends_with('A') { 'B' } else { 'A' });
            let forged_open = format.open_remembered(&memory, "session", &forged, &keys, 1010, &limits);
            assert!(forged_open.is_err(), "{format:?}");
            assert!(
                format
                    .open_remembered(&memory, "other", &value, &keys, 1010, &limits)
                    .is_err()
            );
            assert_eq!(memory.len(), 1, "{format:?}: nothing but the valid value");
        }
        // The app formats are never remembered: their times are signed in.
        let memory = Verified::default();
        let value = Format::Flask.seal("session", payload, 1000, &keys);
        assert!(
            Format::Flask
                .open_remembered(&memory, "session", &value, &keys, 1010, &limits)
                .is_ok()
        );
        assert!(memory.is_empty());
    }
}
