//! A bounded memory of session cookie values whose signature (or seal) was
//! verified: the exact bytes, the cookie name they were verified under, and
//! the payload they carry. Nothing else is remembered: expiry, the
//! absolute lifetime, a removed user and the session store are consulted on
//! every request, hit or miss, by the caller (`Format::open_remembered`).
//!
//! Only a value that opened completely is remembered, so a client cannot
//! fill the memory with forgeries: every entry was signed with a configured
//! key. The memory belongs to one service generation, so a reload (new
//! keys) starts it empty.
//!
//! Lookups hash the value with std's keyed SipHash (a random key per map),
//! so a client can neither aim values at one bucket nor learn from timing
//! how close a forgery is to a remembered value: bytes are compared only
//! after a 64-bit keyed hash matched. The hash covers the value's length
//! and its last [`HASHED_TAIL`] bytes: both remembered formats end with
//! their tag (HMAC-SHA256, or the AEAD's tag after its ciphertext), bytes
//! no client can choose for a value that verifies, so remembered values
//! spread over the buckets as well as with the whole value hashed, and a
//! forgery reaches the byte comparison only by carrying a remembered
//! value's tag, which is the secret part already.
//!
//! Two generations bound it: lookups find a value in the current one or
//! the previous one (and move it to the current); once the current one
//! holds [`MAX_ENTRIES`] values or [`MAX_BYTES`] bytes of them, it becomes
//! the previous one and the oldest is dropped. Pure: no IO, no clock.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

use super::codec::Opened;

/// Values per generation, at most.
pub const MAX_ENTRIES: usize = 1024;

/// Bytes of cookie values per generation, at most (the payloads they
/// decode to are smaller than the values); two generations are kept.
pub const MAX_BYTES: usize = 1 << 20;

/// Bytes at the end of a value that its hash covers (with its length).
pub const HASHED_TAIL: usize = 32;

/// See the module docs.
#[derive(Default)]
pub struct Verified {
    generations: Mutex<Generations>,
}

type Values = HashMap<Box<str>, Entry, TailHash>;

#[derive(Default)]
struct Generations {
    current: Values,
    previous: Values,
    /// Bytes of values in `current`.
    bytes: usize,
}

struct Entry {
    /// The cookie name the value was verified under (it is under the MAC).
    name: Box<str>,
    payload: Arc<Map<String, Value>>,
    issued_at: u64,
    stale_key: bool,
}

impl Entry {
    fn opened(&self) -> Opened {
        Opened {
            payload: Arc::clone(&self.payload),
            issued_at: self.issued_at,
            stale_key: self.stale_key,
        }
    }
}

impl Verified {
    /// What `value` verified to under cookie `name`, if it is remembered.
    /// The caller still checks its times.
    pub fn get(&self, name: &str, value: &str) -> Option<Opened> {
        let mut g = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = g.current.get(value) {
            return (*e.name == *name).then(|| e.opened());
        }
        let (key, entry) = g.previous.remove_entry(value)?;
        let opened = (*entry.name == *name).then(|| entry.opened());
        g.insert(key, entry);
        opened
    }

    /// Remember that `value`, under cookie `name`, verified to `opened`.
    pub fn remember(&self, name: &str, value: &str, opened: &Opened) {
        let entry = Entry {
            name: name.into(),
            payload: Arc::clone(&opened.payload),
            issued_at: opened.issued_at,
            stale_key: opened.stale_key,
        };
        let mut g = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        g.previous.remove(value);
        g.insert(value.into(), entry);
    }

    /// Values remembered now (both generations).
    pub fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(PoisonError::into_inner);
        g.current.len() + g.previous.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Generations {
    fn insert(&mut self, key: Box<str>, entry: Entry) {
        if self.current.len() >= MAX_ENTRIES || self.bytes.saturating_add(key.len()) > MAX_BYTES {
            self.previous = std::mem::take(&mut self.current);
            self.bytes = 0;
        }
        self.bytes = self.bytes.saturating_add(key.len());
        self.current.insert(key, entry);
    }
}

/// std's keyed SipHash over the length and the last [`HASHED_TAIL`] bytes
/// of what is hashed (a `str` key hashes as one write of its bytes and a
/// `0xff` terminator, which is what reaches [`TailHasher`]).
#[derive(Clone, Default)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(std::hash::DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes.len().saturating_sub(HASHED_TAIL);
        self.0.write_usize(bytes.len());
        self.0.write(&bytes[tail..]);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

impl std::fmt::Debug for Verified {
    /// The values are bearer credentials: only their count is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("values", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn opened(user: &str, issued_at: u64) -> Opened {
        Opened {
            payload: Arc::new(json!({ "user": user }).as_object().expect("map").clone()),
            issued_at,
            stale_key: false,
        }
    }

    #[test]
    fn a_value_is_found_only_under_the_name_it_was_verified_under() {
        let v = Verified::default();
        assert!(v.get("session", "v1.1.abc.def").is_none());
        v.remember("session", "v1.1.abc.def", &opened("alice", 1));
        assert_eq!(v.get("session", "v1.1.abc.def"), Some(opened("alice", 1)));
        assert!(v.get("other", "v1.1.abc.def").is_none(), "the name is under the MAC");
        assert!(v.get("session", "v1.1.abc.deF").is_none());
        assert!(v.get("session", "v1.1.abc.de").is_none());
    }

    #[test]
    fn it_stays_bounded_and_keeps_what_is_in_use() {
        let v = Verified::default();
        v.remember("s", "hot", &opened("hot", 1));
        for i in 0..(3 * MAX_ENTRIES) {
            v.remember("s", &format!("value-{i}"), &opened("x", 1));
            if i % 100 == 0 {
                // Used now and then: moved forward, never dropped.
                assert!(v.get("s", "hot").is_some(), "lost the value in use at {i}");
            }
            assert!(v.len() <= 2 * MAX_ENTRIES, "{} values", v.len());
        }
        assert!(v.get("s", "value-0").is_none(), "the oldest went first");
        assert!(v.get("s", &format!("value-{}", 3 * MAX_ENTRIES - 1)).is_some());
    }

    #[test]
    fn large_values_are_bounded_by_bytes() {
        let v = Verified::default();
        let big = "x".repeat(4000);
        for i in 0..1000 {
            v.remember("s", &format!("{i}{big}"), &opened("x", 1));
        }
        let g = v.generations.lock().expect("lock");
        let bytes: usize = g.current.keys().chain(g.previous.keys()).map(|k| k.len()).sum();
        assert!(bytes <= 2 * MAX_BYTES, "{bytes} bytes kept");
        assert!(!g.current.is_empty());
    }

    #[test]
    fn values_alike_but_for_their_start_are_told_apart() {
        // Same length, same tail: the same hash, so the bytes decide.
        let v = Verified::default();
        let tag = "T".repeat(2 * HASHED_TAIL);
        v.remember("s", &format!("v1.1.aaa.{tag}"), &opened("alice", 1));
        v.remember("s", &format!("v1.1.bbb.{tag}"), &opened("bob", 2));
        assert_eq!(v.get("s", &format!("v1.1.aaa.{tag}")), Some(opened("alice", 1)));
        assert_eq!(v.get("s", &format!("v1.1.bbb.{tag}")), Some(opened("bob", 2)));
        assert!(v.get("s", &format!("v1.1.ccc.{tag}")).is_none());
        assert!(v.get("s", &format!("v1.1.aa.{tag}")).is_none(), "shorter by a byte");
    }

    #[test]
    fn the_hash_covers_the_length_and_the_tail_only() {
        let h = TailHash::default();
        let tag = "0123456789abcdef0123456789abcdef";
        let hash = |s: &str| h.hash_one(s);
        assert_eq!(hash(&format!("x.{tag}")), hash(&format!("y.{tag}")));
        assert_ne!(hash(&format!("x.{tag}")), hash(&format!("xx.{tag}")), "length");
        assert_ne!(hash(&format!("x.{tag}")), hash(&format!("x.{}1", &tag[1..])), "tail");
        assert_ne!(
            hash("short"),
            hash("shorT"),
            "a value shorter than the tail is hashed whole"
        );
    }

    #[test]
    fn debug_shows_no_value() {
        let v = Verified::default();
        v.remember("s", "v1.1.secret-bytes.tag", &opened("alice", 1));
        let shown = format!("{v:?}");
        assert!(!shown.contains("secret") && !shown.contains("alice"), "{shown}");
        assert!(shown.contains("values: 1"), "{shown}");
    }
}
