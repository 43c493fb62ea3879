//! Request-target normalisation (SPEC §3.1), pure.
//!
//! The path is parsed once, here, into the single canonical form that access
//! rules see and the upstream receives: there is no second interpretation of
//! the path anywhere in usher. Canonical means: percent-escapes of unreserved
//! characters decoded and all others upper-cased (RFC 3986 §6.2.2), repeated
//! slashes merged, dot-segments removed (§5.2.4, including their escaped
//! spellings), the fragment dropped. Forms that backends disagree about are
//! refused rather than guessed at: a bad escape, NUL, an encoded `/`, `\` or
//! `;`, a double-encoded byte (`%25` and two hex digits), a raw `\`, or a
//! dot-segment carrying `;` parameters (`..;x`). The query is kept byte for
//! byte.

use std::borrow::Cow;
use std::fmt;

use http::Uri;

/// Why a request target was refused (always answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// Not an origin-form or absolute-form target with a path starting `/`.
    Form,
    /// `%` not followed by two hex digits.
    Escape,
    /// `%00` in the path.
    Nul,
    /// `%2F` or `%5C`: a separator hidden from the parser.
    EncodedSeparator,
    /// A raw `\`, which some backends read as `/`.
    Backslash,
    /// `..;x` or `.;x`: Tomcat-style parameters on a dot-segment.
    DotSegmentParameter,
    /// `%3B`: an encoded `;`, which some backends decode before splitting
    /// off `;parameters` and others after.
    EncodedSemicolon,
    /// `%25` followed by two hex digits (`%252e`, `%252f`): a backend that
    /// decodes twice sees a different path than the rules did.
    DoubleEncoded,
}

impl BadTarget {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BadTarget::Form => "form",
            BadTarget::Escape => "bad_escape",
            BadTarget::Nul => "nul",
            BadTarget::EncodedSeparator => "encoded_separator",
            BadTarget::Backslash => "backslash",
            BadTarget::DotSegmentParameter => "dot_segment_parameter",
            BadTarget::EncodedSemicolon => "encoded_semicolon",
            BadTarget::DoubleEncoded => "double_encoded",
        }
    }
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical path of `uri` (without the query).
pub fn normalise_path(uri: &Uri) -> Result<Cow<'_, str>, BadTarget> {
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(BadTarget::Form);
    }
    if is_plain(path) {
        return Ok(Cow::Borrowed(path));
    }
    canonical(path).map(Cow::Owned)
}

/// Fast path: nothing to decode, no dot or empty segment, nothing to refuse.
/// One pass over the bytes (`path` starts with `/`, so every segment
/// follows one): no escape, `\` or NUL anywhere, and no `/` or `.` right
/// after a `/`.
fn is_plain(path: &str) -> bool {
    let mut after_slash = false;
    for &b in path.as_bytes() {
        match b {
            b'%' | b'\\' | 0 => return false,
            b'/' | b'.' if after_slash => return false,
            _ => {}
        }
        after_slash = b == b'/';
    }
    true
}

fn canonical(path: &str) -> Result<String, BadTarget> {
    let mut out: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw in path[1..].split('/') {
        let seg = decode_segment(raw)?;
        let name = seg.split(';').next().unwrap_or("");
        let params = seg.len() != name.len();
        trailing_slash = true;
        match name {
            "." | ".." if params => return Err(BadTarget::DotSegmentParameter),
            "" if !params => {}
            "." => {}
            ".." => {
                out.pop();
            }
            _ => {
                out.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len());
    for seg in &out {
        result.push('/');
        result.push_str(seg);
    }
    if result.is_empty() || trailing_slash {
        result.push('/');
    }
    Ok(result)
}

/// Decode escapes of unreserved characters, upper-case the rest.
fn decode_segment(seg: &str) -> Result<String, BadTarget> {
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let byte = hex_pair(bytes.get(i + 1..i + 3)).ok_or(BadTarget::Escape)?;
                push_escaped(&mut out, byte)?;
                i += 3;
            }
            b'\\' => return Err(BadTarget::Backslash),
            0 => return Err(BadTarget::Nul),
            _ => {
                // Copy the whole run up to the next special byte at once so
                // multi-byte characters stay intact.
                let end = bytes[i..]
                    .iter()
                    .position(|&b| matches!(b, b'%' | b'\\' | 0))
                    .map_or(bytes.len(), |n| i + n);
                out.push_str(&seg[i..end]);
                i = end;
            }
        }
    }
    // Checked on the result, not the input: `%25%32%65` decodes to `%252e`
    // as surely as `%252e` stays it (found by fuzzing).
    if is_double_encoded(out.as_bytes()) {
        return Err(BadTarget::DoubleEncoded);
    }
    Ok(out)
}

/// `%25` followed by two hex digits anywhere in `text`.
fn is_double_encoded(text: &[u8]) -> bool {
    text.windows(5)
        .any(|w| w.starts_with(b"%25") && hex_pair(Some(&w[3..5])).is_some())
}

fn push_escaped(out: &mut String, byte: u8) -> Result<(), BadTarget> {
    match byte {
        0 => Err(BadTarget::Nul),
        b'/' | b'\\' => Err(BadTarget::EncodedSeparator),
        b';' => Err(BadTarget::EncodedSemicolon),
        b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
            out.push(char::from(b));
            Ok(())
        }
        b => {
            out.push_str(&format!("%{b:02X}"));
            Ok(())
        }
    }
}

fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let pair = pair?;
    let hi = char::from(*pair.first()?).to_digit(16)?;
    let lo = char::from(*pair.get(1)?).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

#[cfg(test)]
mod tests;
