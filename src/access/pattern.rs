//! Path patterns of access rules: parsing and matching. Pure.
//!
//! A pattern is `/` followed by `/`-separated segments. `*` matches exactly
//! one non-empty segment. `**` matches zero or more segments at any depth,
//! so `/static/**` matches `/static`, `/static/` and `/static/a/b`. Any other
//! segment is a literal. A trailing `/` is a literal empty last segment:
//! `/admin/` matches the path `/admin/` only, not `/admin` or `/admin/x`.
//! To cover a subtree, write `/admin/**`.
//!
//! Paths are usher's normalised paths: dot-segments removed, repeated
//! slashes merged, unreserved escapes decoded, other escapes upper-case. A
//! literal is compared with a path segment after one round of
//! percent-decoding on both sides, so `%C3%A9` and a raw `é` are the same
//! text, and an escaped `%3B` stays an ordinary character, never a `;`
//! that starts parameters. The comparison can ignore ASCII case.
//!
//! How the `;parameters` of a segment are read is chosen by the caller, as a
//! [`Reading`]. This module does not decide which reading wins, and it knows
//! nothing of methods, users or rules. That belongs to the parent module.

use percent_encoding::percent_decode_str;
use std::fmt;

/// A compiled path pattern; see the module docs for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

/// How the `;parameters` of a path segment are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The servlet reading (Tomcat, Jetty, Spring). A segment is its text
    /// before the first `;`. A segment with nothing before its `;` vanishes:
    /// `/;x/admin` becomes `//admin`, which those servers merge to `/admin`.
    /// As the last segment it is the empty trailing segment, so `/a/;x` is
    /// read as `/a/`.
    Servlet,
    /// The reading of most other servers: `;` is an ordinary character.
    Raw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Percent-decoded text.
    Literal(Vec<u8>),
    /// `*`
    One,
    /// `**`
    Any,
}

impl PathPattern {
    /// Parse a pattern. The error is a lowercase message that names the
    /// pattern.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("path pattern {text:?} must start with \"/\""));
        };
        let last = rest.split('/').count() - 1;
        let segments = rest
            .split('/')
            .enumerate()
            .map(|(i, seg)| segment(seg, i == last))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| format!("path pattern {text:?}: {why}"))?;
        let text = text.to_owned();
        Ok(PathPattern { text, segments })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the normalised `path` (no query) matches, in the servlet
    /// reading of `;parameters`: `/admin;jsessionid=1/x` matches
    /// `/admin/**`. A path that does not start with `/` matches nothing.
    pub fn matches(&self, path: &str, case_insensitive: bool) -> bool {
        self.matches_as(path, Reading::Servlet, case_insensitive)
    }

    /// Whether `path` matches in the given reading. Allocation-free: the
    /// path is split on the fly, and a `**` backtracks by resuming from a
    /// saved segment iterator. This is the classic wildcard algorithm that
    /// keeps only the last star, so it takes at most (path segments ×
    /// pattern segments) steps.
    pub(crate) fn matches_as(&self, path: &str, reading: Reading, case_insensitive: bool) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut at = (0, Segments::new(rest, reading));
        let mut resume = None;
        loop {
            if let Some(Segment::Any) = self.segments.get(at.0) {
                at.0 += 1;
                resume = Some(at.clone());
                continue;
            }
            let mut next = at.1.clone();
            match (self.segments.get(at.0), next.next()) {
                (None, None) => return true,
                (Some(want), Some(seg)) if want.accepts(seg, case_insensitive) => at = (at.0 + 1, next),
                _ => match swallow_one_more(&mut resume) {
                    Some(back) => at = back,
                    None => return false,
                },
            }
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// After a mismatch, let the last `**` take one more path segment and retry
/// from there; `None` when there is no `**` or no segment left.
fn swallow_one_more<'a>(resume: &mut Option<(usize, Segments<'a>)>) -> Option<(usize, Segments<'a>)> {
    let (p, segs) = resume.as_mut()?;
    segs.next()?;
    Some((*p, segs.clone()))
}

impl Segment {
    fn accepts(&self, seg: &str, case_insensitive: bool) -> bool {
        match self {
            Segment::One => !seg.is_empty(),
            Segment::Any => true,
            Segment::Literal(want) => same_text(want, seg, case_insensitive),
        }
    }
}

fn same_text(want: &[u8], seg: &str, case_insensitive: bool) -> bool {
    let got = percent_decode_str(seg);
    if case_insensitive {
        got.map(|b| b.to_ascii_lowercase())
            .eq(want.iter().map(|b| b.to_ascii_lowercase()))
    } else {
        got.eq(want.iter().copied())
    }
}

/// The segments of a path after its leading `/`, in one [`Reading`].
#[derive(Debug, Clone)]
struct Segments<'a> {
    rest: Option<&'a str>,
    reading: Reading,
}

impl<'a> Segments<'a> {
    fn new(rest: &'a str, reading: Reading) -> Segments<'a> {
        Segments {
            rest: Some(rest),
            reading,
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let rest = self.rest?;
            // Paths are short: a plain byte scan beats setting up a
            // searcher for each segment.
            let (seg, tail) = match rest.bytes().position(|b| b == b'/') {
                Some(i) => (&rest[..i], rest.get(i + 1..)),
                None => (rest, None),
            };
            self.rest = tail;
            if self.reading == Reading::Raw {
                return Some(seg);
            }
            let name = seg.bytes().position(|b| b == b';').map_or(seg, |i| &seg[..i]);
            // `;x` between two slashes is an empty segment to a servlet
            // container, which then merges the slashes around it.
            if !(name.is_empty() && !seg.is_empty() && tail.is_some()) {
                return Some(name);
            }
        }
    }
}

fn segment(seg: &str, last: bool) -> Result<Segment, String> {
    match seg {
        "*" => Ok(Segment::One),
        "**" => Ok(Segment::Any),
        "" if last => Ok(Segment::Literal(Vec::new())),
        "" => Err("empty segment (\"//\"): paths are matched with repeated slashes merged".to_owned()),
        _ if seg.contains('*') => Err(format!(
            "segment {seg:?}: a wildcard must be a whole segment, \"*\" (one segment) or \"**\" (any depth)"
        )),
        _ => literal(seg).map(Segment::Literal),
    }
}

fn literal(seg: &str) -> Result<Vec<u8>, String> {
    check_bytes(seg).map_err(|why| format!("segment {seg:?}: {why}"))?;
    let decoded: Vec<u8> = percent_decode_str(seg).collect();
    match decoded.as_slice() {
        b"." | b".." => Err(format!(
            "dot-segment {seg:?}: paths are matched with dot-segments removed"
        )),
        _ => Ok(decoded),
    }
}

/// Refuse what can never occur in a normalised path segment, so that a
/// rule cannot silently match nothing.
fn check_bytes(seg: &str) -> Result<(), String> {
    let bytes = seg.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => check_escape(bytes.get(i + 1..i + 3))?,
            b';' => return Err("\";\" starts segment parameters, which matching ignores; leave them out".to_owned()),
            _ if !path_byte(b) => return Err(format!("{:?} cannot appear in a normalised path", char::from(b))),
            _ => {}
        }
    }
    Ok(())
}

fn check_escape(hex: Option<&[u8]>) -> Result<(), String> {
    let byte = hex
        .and_then(upper_hex_pair)
        .ok_or("\"%\" must start an escape of two upper-case hex digits, as in normalised paths")?;
    match byte {
        b'/' | b'\\' | 0 => Err(format!("%{byte:02X} can never match: usher refuses it in paths")),
        _ => Ok(()),
    }
}

fn upper_hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    Some(digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?)
}

/// Bytes that `http` accepts in a path and usher's normaliser keeps, other
/// than `%` and `;` (checked by the caller): no space, controls, `#`, `?`,
/// `<`, `>`, `` ` `` or `\`. Non-ASCII (UTF-8) is kept.
fn path_byte(b: u8) -> bool {
    matches!(b,
        b'!' | b'"' | b'$'..=b':' | b'=' | b'@'..=b'[' | b']'..=b'_' | b'a'..=b'z' | b'{'..=b'}' | b'~' | 0x80..)
}

#[cfg(test)]
mod tests;
