//! Python's `json` module, as far as these cookies need it: reading a
//! session object, and writing one byte for byte as `json.dumps` does with
//! `ensure_ascii=True` (Starlette with its default separators, Flask compact
//! with sorted keys).
//!
//! Writing follows `json.dumps`: non-printable and non-ASCII characters as
//! `\uXXXX` (lowercase hex, surrogate pairs above U+FFFF, DEL included), the
//! short escapes `\" \\ \n \r \t \b \f`, `/` unescaped, and floats as Python's
//! `repr` (shortest round-trip digits; exponent form below 1e-4 and from 1e16
//! on, as `1e-07`, `1e+16`; otherwise at least one decimal, as `1.0`).
//!
//! Reading is `serde_json`, which is stricter than Python: `NaN`,
//! `Infinity`, lone surrogate escapes and a UTF-8 byte order mark are
//! refused as malformed (no framework writes them). Duplicate keys keep the
//! last value, as in Python. An integer that this build's `serde_json` could
//! keep only as a float (beyond 64 bits without its `arbitrary_precision`
//! feature, or `-0`) is [`CompatRejected::Unsupported`] rather than silently
//! turned into a float; so is, with that feature, a float beyond `f64`
//! (refused as malformed without it).

use serde_json::{Map, Number, Value};

use super::CompatRejected;

/// Lowercase hex digits for `\uXXXX` escapes.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// How `json.dumps` was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Style {
    /// Between items of an array or object.
    item_separator: &'static str,
    /// Between an object key and its value.
    key_separator: &'static str,
    /// Whether object keys are sorted (by code point) instead of kept in map
    /// order.
    sort_keys: bool,
}

impl Style {
    /// Starlette: `json.dumps(session)`, keys in map order.
    pub(super) const STARLETTE: Style = Style {
        item_separator: ", ",
        key_separator: ": ",
        sort_keys: false,
    };

    /// Flask: `separators=(",", ":")` and `sort_keys=True`.
    pub(super) const FLASK: Style = Style {
        item_separator: ",",
        key_separator: ":",
        sort_keys: true,
    };
}

/// `json.dumps(object)` in `style`.
pub(super) fn to_string(object: &Map<String, Value>, style: Style) -> String {
    let mut out = String::new();
    write_object(&mut out, object, style);
    out
}

/// Parses `json` (UTF-8) as a JSON object.
pub(super) fn parse_object(json: &[u8]) -> Result<Map<String, Value>, CompatRejected> {
    let Ok(Value::Object(object)) = serde_json::from_slice(json) else {
        return Err(CompatRejected::Malformed);
    };
    // `from_slice` succeeded, so the text is valid UTF-8.
    let text = std::str::from_utf8(json).map_err(|_| CompatRejected::Malformed)?;
    if number_tokens(text).any(is_lossy_number) {
        return Err(CompatRejected::Unsupported);
    }
    Ok(object)
}

fn write_value(out: &mut String, value: &Value, style: Style) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_str(out, text),
        Value::Array(items) => write_array(out, items, style),
        Value::Object(object) => write_object(out, object, style),
    }
}

fn write_array(out: &mut String, items: &[Value], style: Style) {
    out.push('[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push_str(style.item_separator);
        }
        write_value(out, item, style);
    }
    out.push(']');
}

fn write_object(out: &mut String, object: &Map<String, Value>, style: Style) {
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    if style.sort_keys {
        // `String` orders by UTF-8 bytes, which is code point order, as Python.
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    out.push('{');
    for (index, (key, value)) in entries.into_iter().enumerate() {
        if index > 0 {
            out.push_str(style.item_separator);
        }
        write_str(out, key);
        out.push_str(style.key_separator);
        write_value(out, value, style);
    }
    out.push('}');
}

fn write_number(out: &mut String, number: &Number) {
    if let Some(n) = number.as_u64() {
        out.push_str(&n.to_string());
    } else if let Some(n) = number.as_i64() {
        out.push_str(&n.to_string());
    } else if let (true, Some(f)) = (number.is_f64(), number.as_f64()) {
        out.push_str(&float_repr(f));
    } else {
        // Only with serde_json's `arbitrary_precision`: an integer beyond 64
        // bits, kept as its exact digits.
        out.push_str(&number.to_string());
    }
}

fn write_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => write_unicode_escape(out, c),
        }
    }
    out.push('"');
}

fn write_unicode_escape(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        out.push_str("\\u");
        for shift in [12u16, 8, 4, 0] {
            out.push(char::from(HEX[usize::from((*unit >> shift) & 0xf)]));
        }
    }
}

/// Python's `repr(float)` for a finite `f` (a JSON value cannot hold others).
fn float_repr(f: f64) -> String {
    // `{:e}` prints the shortest digits that round-trip, as Python's repr.
    let scientific = format!("{f:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exponent) {
        positional(&digits, exponent)
    } else {
        exponential(&digits, exponent)
    };
    format!("{sign}{body}")
}

/// `digits` (d.ddd) times 10^`exponent` written as `1e-07`, `1.5e+16`.
fn exponential(digits: &str, exponent: i32) -> String {
    let (first, rest) = digits.split_at(digits.len().min(1));
    let sign = if exponent < 0 { '-' } else { '+' };
    let magnitude = exponent.unsigned_abs();
    if rest.is_empty() {
        format!("{first}e{sign}{magnitude:02}")
    } else {
        format!("{first}.{rest}e{sign}{magnitude:02}")
    }
}

/// `digits` (d.ddd) times 10^`exponent` written positionally, with at least
/// one decimal; `exponent` is in -4..16.
fn positional(digits: &str, exponent: i32) -> String {
    // Number of digits before the decimal point (zero or negative: leading
    // zeros after it).
    let point = exponent.saturating_add(1);
    let before = match usize::try_from(point) {
        Ok(before) if before > 0 => before,
        _ => {
            let zeros = usize::try_from(point.unsigned_abs()).unwrap_or(0);
            return format!("0.{}{digits}", "0".repeat(zeros));
        }
    };
    match digits.get(..before) {
        Some(whole) if before < digits.len() => format!("{whole}.{}", &digits[before..]),
        _ => format!("{digits}{}.0", "0".repeat(before.saturating_sub(digits.len()))),
    }
}

/// The number literals of a JSON text, in order (strings skipped).
fn number_tokens(json: &str) -> impl Iterator<Item = &str> {
    let mut tokens = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut start: Option<usize> = None;
    for (index, c) in json.char_indices() {
        if in_string {
            (in_string, escaped) = string_step(c, escaped);
            continue;
        }
        let numeric = c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
        match start {
            Some(begin) if !numeric => {
                tokens.push(&json[begin..index]);
                start = None;
            }
            None if c == '-' || c.is_ascii_digit() => start = Some(index),
            _ => {}
        }
        in_string = c == '"';
    }
    if let Some(begin) = start {
        tokens.push(&json[begin..]);
    }
    tokens.into_iter()
}

/// One character inside a string literal: returns (still inside, escaped).
fn string_step(c: char, escaped: bool) -> (bool, bool) {
    match (escaped, c) {
        (true, _) => (true, false),
        (false, '\\') => (true, true),
        (false, '"') => (false, false),
        (false, _) => (true, false),
    }
}

/// True for a number literal this build's `serde_json` holds as another
/// kind: an integer held as a float, or (with `arbitrary_precision`) a float
/// out of `f64` range held as digits.
fn is_lossy_number(token: &str) -> bool {
    let is_float_literal = token.contains(['.', 'e', 'E']);
    serde_json::from_str::<Number>(token).is_ok_and(|number| number.is_f64() != is_float_literal)
}

#[cfg(test)]
mod tests;
