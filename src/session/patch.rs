//! Backend session writes: a JSON Merge Patch (RFC 7386) applied to the
//! session, limited to the writable fields. Pure.

use serde_json::{Map, Value};

use super::codec::{AUTH_METHOD_FIELD, AUTH_TIME_FIELD, SID_FIELD};

/// Which top-level session fields a backend may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writable {
    /// `"*"`: any field except those usher manages.
    Any,
    /// Only these.
    Fields(Vec<String>),
}

impl Writable {
    /// Whether the backend may write `field`. `auth_time` never.
    pub fn allows(&self, field: &str) -> bool {
        if field == AUTH_TIME_FIELD || field == AUTH_METHOD_FIELD || field == SID_FIELD {
            return false;
        }
        match self {
            Writable::Any => true,
            Writable::Fields(fields) => fields.iter().any(|f| f == field),
        }
    }
}

/// What a backend's patch does to the session.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A top-level `null`, or a patch that leaves no field: sign out.
    Clear,
    /// The new session, with the top-level fields that were not writable.
    Update {
        /// The session after the patch.
        session: Map<String, Value>,
        /// Fields the patch named but may not write (ignored).
        ignored: Vec<String>,
    },
    /// Not JSON, or neither an object nor `null`: nothing is written.
    Invalid(&'static str),
}

/// Apply `patch` (the header's bytes) to `current` (empty when signed out).
pub fn apply(current: Option<&Map<String, Value>>, patch: &[u8], writable: &Writable) -> Outcome {
    let patch: Value = match serde_json::from_slice(patch) {
        Ok(v) => v,
        Err(_) => return Outcome::Invalid("not valid JSON"),
    };
    let fields = match patch {
        Value::Null => return Outcome::Clear,
        Value::Object(fields) => fields,
        _ => return Outcome::Invalid("a session patch must be a JSON object or null"),
    };
    let mut session = current.cloned().unwrap_or_default();
    let mut ignored = Vec::new();
    for (name, value) in fields {
        if !writable.allows(&name) {
            ignored.push(name);
        } else if value.is_null() {
            session.remove(&name);
        } else {
            let slot = session.entry(name).or_insert(Value::Null);
            merge(slot, value);
        }
    }
    if session.is_empty() {
        return Outcome::Clear;
    }
    Outcome::Update { session, ignored }
}

/// RFC 7386 §2 MergePatch(target, patch), in place.
fn merge(target: &mut Value, patch: Value) {
    let Value::Object(fields) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (name, value) in fields {
            if value.is_null() {
                map.remove(&name);
            } else {
                merge(map.entry(name).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
