//! The header plan: which request headers carry session fields, compiled
//! once from `[session.forward]` at startup. Pure.
//!
//! Strip, then inject, on every request: every configured name is removed
//! in every spelling a backend could fold to it (case, `_` or `.` for `-`,
//! repeated), whether or not the client is signed in, and only then are
//! usher's own values added. A client can therefore never supply a value
//! that the backend would take for one of usher's.

use std::borrow::Cow;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::config;
use crate::hop::{fold, remove_where};

/// Bytes escaped in a forwarded value: controls, non-ASCII (always, by the
/// crate) and `%` itself, so decoding a value is never ambiguous.
const VALUE: &AsciiSet = &CONTROLS.add(b'%');
/// Inside a list element `,` is escaped too, since `,` joins the elements.
const LIST_ELEMENT: &AsciiSet = &VALUE.add(b',');

/// `[session.forward]` compiled for the request path.
#[derive(Debug, Clone)]
pub struct HeaderPlan {
    forward: Vec<(HeaderName, String)>,
    /// Names usher sets but not from a field (the identity assertion):
    /// stripped the same way.
    also: Vec<HeaderName>,
    /// Lower-case names with `_` and `.` folded to `-`, to catch variants.
    folded: Vec<String>,
}

impl HeaderPlan {
    /// Compile the plan.
    pub fn new(forward: &[config::Forward]) -> HeaderPlan {
        HeaderPlan {
            forward: forward.iter().map(|f| (f.header.clone(), f.field.clone())).collect(),
            also: Vec::new(),
            folded: forward.iter().map(|f| fold(f.header.as_str())).collect(),
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
                || (n.as_str().contains(['_', '.']) && self.folded.contains(&fold(n.as_str())))
        });
    }

    /// Add each configured header whose field is present in `session`.
    /// Call after [`strip`](Self::strip).
    pub fn inject(&self, headers: &mut HeaderMap, session: Option<&Map<String, Value>>) {
        let Some(session) = session else { return };
        for (name, field) in &self.forward {
            if let Some(value) = session.get(field).and_then(header_value) {
                headers.insert(name.clone(), value);
            }
        }
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
