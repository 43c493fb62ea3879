//! Flask's tagged JSON: how a session holding Python types JSON lacks is
//! written, and how usher maps it to plain JSON.
//!
//! Flask writes such a value as an object with exactly one key, a tag
//! ([`TAGS`]), applied recursively; any other object is plain. Reading is
//! bottom-up, as Flask's: children first, then the object itself. The plain
//! mapping, and what it loses when a session read by [`super::open`] is
//! written back by [`super::seal`]:
//!
//! | tag | Python type | plain JSON | lost on the way back |
//! | --- | --- | --- | --- |
//! | `" di"` | dict whose only key is a tag name | that object, `__` suffix removed | nothing ([`super::seal`] escapes it again) |
//! | `" t"` | tuple | array | the app gets a `list` (`flash()` messages still unpack) |
//! | `" m"` | `Markup` | string | the app gets a `str`, so templates escape it again |
//! | `" d"` | `datetime` | its HTTP date string, as written (`Sat, 01 Jan 2000 00:00:00 GMT`) | the app gets a `str` |
//! | `" u"` | `UUID` | its 32 lowercase hex digits, as written | the app gets a `str` |
//! | `" b"` | `bytes` | none: [`CompatRejected::Unsupported`] | |
//!
//! Use [`super::open_tagged`] and [`super::seal_tagged`] to change a session
//! without these losses. A tag whose value does not have the shape Flask
//! writes (a tuple that is not an array, invalid base64, a UUID that is not
//! 32 hex digits, a `" di"` that is not a one-key object with the `__`
//! suffix) is [`CompatRejected::Malformed`]: Flask would fail on most of
//! them or read something it never wrote. Tags an app registers itself are
//! unknown here and read as plain objects, which Flask reads back the same.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::super::CompatRejected;

/// The tags Flask registers by default, each a space and one or two letters.
pub const TAGS: [&str; 6] = [TAG_DICT, TAG_TUPLE, TAG_BYTES, TAG_MARKUP, TAG_UUID, TAG_DATETIME];

const TAG_DICT: &str = " di";
const TAG_TUPLE: &str = " t";
const TAG_BYTES: &str = " b";
const TAG_MARKUP: &str = " m";
const TAG_UUID: &str = " u";
const TAG_DATETIME: &str = " d";

/// Suffix `" di"` appends to the escaped key.
const DICT_SUFFIX: &str = "__";

/// Length of `UUID.hex`.
const UUID_HEX_LEN: usize = 32;

/// What to do with a tag that has no plain JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refuse it ([`CompatRejected::Unsupported`]).
    Plain,
    /// Only check that Flask could read it.
    Check,
}

/// Decodes the tags of a session object into plain JSON. The result must
/// still be an object (a session that is itself a single tag is malformed).
pub(super) fn untag_session(session: Map<String, Value>) -> Result<Map<String, Value>, CompatRejected> {
    match untag_object(session, Mode::Plain)? {
        Value::Object(object) => Ok(object),
        _ => Err(CompatRejected::Malformed),
    }
}

/// Checks that Flask could read every tag of a session object and that it
/// reads as an object, without changing it.
pub(super) fn check_session(session: &Map<String, Value>) -> Result<(), CompatRejected> {
    match untag_object(session.clone(), Mode::Check)? {
        Value::Object(_) => Ok(()),
        _ => Err(CompatRejected::Malformed),
    }
}

/// Tags a plain session object as Flask would tag the same dict: only
/// one-key objects whose key is a tag name need it (escaped with `" di"`).
pub(super) fn tag_session(session: &Map<String, Value>) -> Map<String, Value> {
    let tagged: Map<String, Value> = session.iter().map(|(k, v)| (k.clone(), tag(v))).collect();
    if single_tag(&tagged).is_none() {
        return tagged;
    }
    let escaped = tagged.into_iter().map(|(k, v)| (format!("{k}{DICT_SUFFIX}"), v));
    Map::from_iter([(TAG_DICT.to_owned(), Value::Object(escaped.collect()))])
}

fn tag(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(tag_session(object)),
        Value::Array(items) => Value::Array(items.iter().map(tag).collect()),
        scalar => scalar.clone(),
    }
}

fn untag(value: Value, mode: Mode) -> Result<Value, CompatRejected> {
    match value {
        Value::Object(object) => untag_object(object, mode),
        Value::Array(items) => items
            .into_iter()
            .map(|item| untag(item, mode))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        scalar => Ok(scalar),
    }
}

fn untag_object(object: Map<String, Value>, mode: Mode) -> Result<Value, CompatRejected> {
    let object = object
        .into_iter()
        .map(|(k, v)| Ok((k, untag(v, mode)?)))
        .collect::<Result<Map<String, Value>, CompatRejected>>()?;
    match single_tag(&object) {
        Some((tag, inner)) => decode(tag, inner, mode),
        None => Ok(Value::Object(object)),
    }
}

/// The tag and its value when `object` is a tagged value.
fn single_tag(object: &Map<String, Value>) -> Option<(&str, &Value)> {
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) if TAGS.contains(&key.as_str()) => Some((key, value)),
        _ => None,
    }
}

/// One tag's value (its children already untagged) to plain JSON.
fn decode(tag: &str, value: &Value, mode: Mode) -> Result<Value, CompatRejected> {
    match (tag, value) {
        (TAG_DICT, Value::Object(escaped)) => unescape_dict(escaped),
        (TAG_BYTES, Value::String(encoded)) => decode_bytes(encoded, mode),
        (TAG_UUID, Value::String(hex)) if is_uuid_hex(hex) => Ok(value.clone()),
        (TAG_TUPLE, Value::Array(_)) | (TAG_MARKUP | TAG_DATETIME, Value::String(_)) => Ok(value.clone()),
        _ => Err(CompatRejected::Malformed),
    }
}

fn unescape_dict(escaped: &Map<String, Value>) -> Result<Value, CompatRejected> {
    let mut entries = escaped.iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        return Err(CompatRejected::Malformed);
    };
    let key = key.strip_suffix(DICT_SUFFIX).ok_or(CompatRejected::Malformed)?;
    Ok(Value::Object(Map::from_iter([(key.to_owned(), value.clone())])))
}

/// Valid bytes have no plain form; when only checking, any non-object
/// stands in for them (so that a session that is itself bytes still fails).
fn decode_bytes(encoded: &str, mode: Mode) -> Result<Value, CompatRejected> {
    STANDARD.decode(encoded).map_err(|_| CompatRejected::Malformed)?;
    match mode {
        Mode::Plain => Err(CompatRejected::Unsupported),
        Mode::Check => Ok(Value::Null),
    }
}

fn is_uuid_hex(text: &str) -> bool {
    text.len() == UUID_HEX_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests;
