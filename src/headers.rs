//! The header plan: which request headers carry session fields, compiled
//! once from `[session.forward]` at startup. Pure.
//!
//! Strip, then inject, on every request: every configured name is removed
//! in every spelling a backend could fold to it (case, `_` or `.` for `-`,
//! repeated), whether or not the client is signed in, and only then are
//! usher's own values added. A client can therefore never supply a value
//! that the backend would take for one of usher's.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::config;
use crate::hop::{Added, X_REQUEST_ID, fold, folds, remove_where};

/// Bytes escaped in a forwarded value: controls, non-ASCII (always, by the
/// crate) and `%` itself, so decoding a value is never ambiguous.
const VALUE: &AsciiSet = &CONTROLS.add(b'%');
/// Inside a list element `,` is escaped too, since `,` joins the elements.
const LIST_ELEMENT: &AsciiSet = &VALUE.add(b',');

/// Shared session fields whose header values [`HeaderPlan::inject`]
/// remembers, at most; the memory starts again when it is full.
const MEMO_ENTRIES: usize = 1024;

/// `[session.forward]` compiled for the request path.
pub struct HeaderPlan {
    forward: Vec<(HeaderName, String)>,
    /// Names usher sets but not from a field (the identity assertion):
    /// stripped the same way.
    also: Vec<HeaderName>,
    /// Lower-case names with `_` and `.` folded to `-`, to catch variants.
    folded: Vec<String>,
    /// Which `forward` entry, if any, is `X-Request-Id`: the one name a
    /// session field may share with a header usher sets before the plan's
    /// (configuration refuses the `X-Forwarded-*` ones, and twins).
    request_id_at: Option<usize>,
    /// The values `forward` makes from shared session fields (a remembered
    /// cookie's), by the fields' address; see [`HeaderPlan::inject`].
    memo: Mutex<Memo>,
}

/// Field address -> (the fields, weakly: this keeps their allocation, so
/// the address names them alone; the value made for each entry of
/// `forward`, in order).
type Memo = HashMap<usize, (Weak<Map<String, Value>>, Arc<[Option<HeaderValue>]>), BuildHasherDefault<AddressHasher>>;

/// Hashes an address in a few instructions instead of SipHash's hundred or
/// so: the keys are allocation addresses picked by the allocator, not
/// bytes a client chooses, so there is nothing to aim at one bucket. The
/// product's high half is folded down because hashbrown picks buckets by
/// the low bits and addresses are multiples of 16.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 32);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl HeaderPlan {
    /// Compile the plan.
    pub fn new(forward: &[config::Forward]) -> HeaderPlan {
        HeaderPlan {
            forward: forward.iter().map(|f| (f.header.clone(), f.field.clone())).collect(),
            also: Vec::new(),
            folded: forward.iter().map(|f| fold(f.header.as_str())).collect(),
            request_id_at: forward.iter().position(|f| f.header == X_REQUEST_ID),
            memo: Mutex::default(),
        }
    }

    /// Strip `name` too, in every spelling (usher fills it itself).
    pub fn also_strip(mut self, name: HeaderName) -> HeaderPlan {
        self.folded.push(fold(name.as_str()));
        self.also.push(name);
        self
    }

    /// Remove every configured header in every spelling.
    pub fn strip(&self, headers: &mut HeaderMap) {
        // Header names are already lower-case; beyond the exact names only
        // `_`/`.` spellings remain, and only those are folded.
        remove_where(headers, |n| {
            self.forward.iter().any(|(name, _)| name == n)
                || self.also.contains(n)
                || (folds(n.as_str()) && self.folded.contains(&fold(n.as_str())))
        });
    }

    /// Add each configured header whose field is present in `session` to
    /// `added`, which may hold only usher's `X-Forwarded-*` fields and
    /// `X-Request-Id` (a session field named so replaces the latter). Call
    /// after [`strip`](Self::strip).
    ///
    /// Fields shared with the verified-signature memory (the same `Arc` on
    /// every request with that cookie) have their values made once and
    /// remembered by address. The address is a sound key: the memory holds
    /// a `Weak` to the fields, so their allocation is not freed while the
    /// entry exists and no other fields can have that address, and fields
    /// with a `Weak` on them are never changed in place (`Arc::get_mut`
    /// refuses, `Arc::make_mut` moves them). Fields only this request holds
    /// (a Redis record, a credential's) are encoded directly.
    pub fn inject(&self, added: &mut Added, session: Option<&Arc<Map<String, Value>>>) {
        let Some(fields) = session else { return };
        let values = if Arc::strong_count(fields) > 1 {
            self.shared_values(fields)
        } else {
            self.values(fields)
        };
        for (i, ((name, _), value)) in self.forward.iter().zip(values.iter()).enumerate() {
            match value {
                // The session's value replaces usher's request id.
                Some(value) if Some(i) == self.request_id_at => added.set(name.clone(), value.clone()),
                Some(value) => added.push(name.clone(), value.clone()),
                None => {}
            }
        }
    }

    /// The value of each `forward` entry for `fields`.
    fn values(&self, fields: &Map<String, Value>) -> Arc<[Option<HeaderValue>]> {
        let made = self
            .forward
            .iter()
            .map(|(_, field)| fields.get(field).and_then(header_value));
        made.collect()
    }

    fn shared_values(&self, fields: &Arc<Map<String, Value>>) -> Arc<[Option<HeaderValue>]> {
        let key = Arc::as_ptr(fields) as usize;
        let lock = || self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        // The key alone identifies the fields: the entry's `Weak` keeps
        // their allocation, so no other fields can be at that address.
        if let Some((_pinned, values)) = lock().get(&key) {
            return Arc::clone(values);
        }
        let values = self.values(fields);
        let mut memo = lock();
        if memo.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(key, (Arc::downgrade(fields), Arc::clone(&values)));
        values
    }

    /// Shared fields whose values are remembered now.
    pub fn remembered(&self) -> usize {
        self.memo.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Set every configured header: the session's value, or empty when the
    /// field (or the session) is absent. For forward-auth answers, so that a
    /// front proxy copying them always overwrites any client copy.
    pub fn fill_all(&self, headers: &mut HeaderMap, session: Option<&Map<String, Value>>) {
        for (name, field) in &self.forward {
            let value = session.and_then(|s| s.get(field)).and_then(header_value);
            headers.insert(name.clone(), value.unwrap_or_else(|| HeaderValue::from_static("")));
        }
    }

    /// How many headers the plan may add.
    pub fn len(&self) -> usize {
        self.forward.len()
    }

    /// Whether the plan forwards nothing.
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// The configured header names, in order.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.forward.iter().map(|(n, _)| n)
    }
}

impl std::fmt::Debug for HeaderPlan {
    /// The names only: remembered values are session data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderPlan")
            .field("forward", &self.forward)
            .field("also", &self.also)
            .field("remembered", &self.remembered())
            .finish()
    }
}

/// A session value as header text: strings as they are, lists joined with
/// `,`, numbers and booleans as text, objects as compact JSON, `null` as no
/// header. Controls, non-ASCII and `%` are percent-encoded (and `,` inside
/// list elements).
pub fn header_value(value: &Value) -> Option<HeaderValue> {
    let text = match value {
        Value::Null => return None,
        // The common case, a plain string, is copied once: straight into the
        // header value when nothing needs escaping.
        Value::String(s) => return HeaderValue::from_str(&Cow::from(utf8_percent_encode(s, VALUE))).ok(),
        // Elements are encoded straight into one buffer: `null`s are left
        // out, every other element (even an empty one) gets its comma.
        Value::Array(items) => {
            let mut text = String::new();
            for (n, item) in items.iter().filter(|item| !item.is_null()).enumerate() {
                if n > 0 {
                    text.push(',');
                }
                match item {
                    Value::String(s) => text.extend(utf8_percent_encode(s, LIST_ELEMENT)),
                    other => text.extend(utf8_percent_encode(&other.to_string(), LIST_ELEMENT)),
                }
            }
            text
        }
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => {
            utf8_percent_encode(&value.to_string(), VALUE).to_string()
        }
    };
    // Every byte outside visible ASCII and space was escaped above; the
    // buffer becomes the header value without another copy.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()
}

#[cfg(test)]
mod tests;
