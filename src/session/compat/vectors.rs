//! Test-only loader for the interop vectors in `shared/vectors/`, which the
//! real Python libraries produced (see `FORMATS.md` there). The structs
//! mirror the files field for field and refuse unknown fields, so a change
//! in the files' shape fails the tests instead of being skipped.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Number, Value};

use super::CompatRejected;

mod check;

pub(super) use check::{Decision, Tally, check_cases, check_edge_cases, check_single_char_tampering, garbage_segments};

/// Where the vector files live, relative to this crate.
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/");

/// One vector file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VectorFile {
    pub header: Header,
    pub cases: Vec<Case>,
    pub edge_cases: Vec<EdgeCase>,
    pub http_examples: Vec<HttpExample>,
}

/// The file header; only the counts are checked, the rest is documentation.
#[derive(Debug, Deserialize)]
pub(super) struct Header {
    pub counts: Counts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Counts {
    pub cases: usize,
    pub edge_cases: usize,
    pub http_examples: usize,
}

/// What the real libraries decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Expect {
    Valid,
    Expired,
    BadSignature,
    Malformed,
}

/// An unambiguous case: implement exactly this.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Case {
    pub name: String,
    pub secret: String,
    pub secret_keys: Vec<String>,
    pub max_age: Option<u64>,
    pub now: u64,
    pub cookie: String,
    pub expect: Expect,
    pub payload: Option<Map<String, Value>>,
    pub serialized_json: Option<String>,
    pub compressed: Option<bool>,
    pub timestamp: Option<u64>,
    pub signed_with: Option<String>,
    pub source: String,
    pub set_cookie_header: Option<String>,
    #[serde(rename = "note")]
    _note: Option<IgnoredAny>,
    #[serde(rename = "python")]
    _python: IgnoredAny,
    #[serde(rename = "middleware_config")]
    _middleware_config: Option<IgnoredAny>,
    #[serde(rename = "app_config")]
    _app_config: Option<IgnoredAny>,
}

/// A Python leniency; `recommended` is `accept`, `reject` or `either`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EdgeCase {
    pub name: String,
    pub secret: String,
    pub secret_keys: Vec<String>,
    pub max_age: Option<u64>,
    pub now: u64,
    pub cookie: String,
    pub cookie_header: Option<String>,
    pub python_result: String,
    pub recommended: String,
    pub payload: Option<Map<String, Value>>,
    #[serde(rename = "serialized_json")]
    _serialized_json: Option<IgnoredAny>,
    #[serde(rename = "note")]
    _note: IgnoredAny,
    #[serde(rename = "python")]
    _python: IgnoredAny,
}

/// A request/response flow recorded from the real app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpExample {
    pub name: String,
    pub config: Map<String, Value>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Step {
    pub step: String,
    pub now: u64,
    pub request: Request,
    pub response: Response,
    #[serde(rename = "note")]
    _note: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Request {
    pub cookie_header: Option<String>,
    #[serde(rename = "method")]
    _method: IgnoredAny,
    #[serde(rename = "path")]
    _path: IgnoredAny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Response {
    pub set_cookie: Vec<String>,
    pub session_after: Map<String, Value>,
    #[serde(rename = "status")]
    _status: IgnoredAny,
    #[serde(rename = "vary")]
    _vary: IgnoredAny,
}

/// Loads `file` and checks it holds as many entries as its header says.
pub(super) fn load(file: &str) -> VectorFile {
    let path = format!("{DIR}{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let vectors: VectorFile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    let counts = &vectors.header.counts;
    assert_eq!(vectors.cases.len(), counts.cases, "{file}: cases");
    assert_eq!(vectors.edge_cases.len(), counts.edge_cases, "{file}: edge_cases");
    assert_eq!(
        vectors.http_examples.len(),
        counts.http_examples,
        "{file}: http_examples"
    );
    vectors
}

/// The vectors list keys oldest first (signing key last); usher's API takes
/// the signing key first.
pub(super) fn newest_first(secret_keys: &[String]) -> Vec<&[u8]> {
    secret_keys.iter().rev().map(|k| k.as_bytes()).collect()
}

/// The outcome a case's `expect` calls for, as this crate reports it. A
/// timestamp after `now` is "expired" for itsdangerous and
/// [`CompatRejected::Future`] here.
pub(super) fn expected_rejection(case: &Case) -> Option<CompatRejected> {
    match case.expect {
        Expect::Valid => None,
        Expect::Expired if case.timestamp.is_some_and(|t| t > case.now) => Some(CompatRejected::Future),
        Expect::Expired => Some(CompatRejected::Expired),
        Expect::BadSignature => Some(CompatRejected::BadSignature),
        Expect::Malformed => Some(CompatRejected::Malformed),
    }
}

/// The payload segment of a cookie value (everything before the last two
/// dots).
pub(super) fn payload_segment(cookie: &str) -> &str {
    let mut parts = cookie.rsplitn(3, '.');
    let (_, _, Some(payload)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("{cookie:?} has no payload segment");
    };
    payload
}

/// The cookie value a `Set-Cookie` header sets.
pub(super) fn set_cookie_value(header: &str) -> &str {
    let pair = header.split(';').next().unwrap_or_default();
    let (_, value) = pair
        .split_once('=')
        .unwrap_or_else(|| panic!("{header:?} sets no value"));
    value
}

/// Which of several same-named cookies an app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Duplicates {
    /// Starlette.
    LastWins,
    /// Flask (Werkzeug).
    FirstWins,
}

/// Picks cookie `name` out of a `Cookie` header the way the app does
/// (`FORMATS.md` section 5), removing surrounding double quotes. This is
/// `session::cookie`'s job in usher; the tests need it only to run the edge
/// cases that give a whole header.
pub(super) fn cookie_from_header<'a>(header: &'a str, name: &str, rule: Duplicates) -> Option<&'a str> {
    let mut values = header.split(';').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    });
    match rule {
        Duplicates::FirstWins => values.next(),
        Duplicates::LastWins => values.next_back(),
    }
}

/// Whether this build's `serde_json` keeps integers beyond 64 bits exactly
/// (its `arbitrary_precision` feature).
pub(super) fn big_integers_exact() -> bool {
    serde_json::from_str::<Number>("18446744073709551616").is_ok_and(|n| !n.is_f64())
}

/// Whether this build's `serde_json::Map` keeps insertion order (its
/// `preserve_order` feature) rather than sorting keys.
pub(super) fn map_keeps_insertion_order() -> bool {
    serde_json::from_str::<Map<String, Value>>(r#"{"b":1,"a":2}"#)
        .is_ok_and(|map| map.keys().next().is_some_and(|k| k == "b"))
}

/// True when `a` and `b` are the same JSON object written with the same
/// bytes, only in another key order.
pub(super) fn same_json_reordered(a: &str, b: &str) -> bool {
    let mut a_bytes = a.as_bytes().to_vec();
    let mut b_bytes = b.as_bytes().to_vec();
    a_bytes.sort_unstable();
    b_bytes.sort_unstable();
    let parse = |text: &str| serde_json::from_str::<Value>(text).ok();
    a_bytes == b_bytes && parse(a).is_some() && parse(a) == parse(b)
}
