//! The bodies of the fuzz targets in `fuzz/`: one function per parser that
//! sees client or backend bytes. Each takes arbitrary bytes, must never
//! panic, and asserts what must hold whatever the input (a normalised path
//! normalises to itself, a sealed cookie opens to what was sealed, a checked
//! `rd` never leaves the origin, ...). cargo-fuzz drives them under
//! libFuzzer (`scripts/fuzz.sh`); the test suite runs them over the
//! committed corpus and every crash input (`fuzz/corpus`, `fuzz/artifacts`),
//! so a fixed crash stays fixed without cargo-fuzz installed.
//!
//! Not part of usher's interface: public only so that the fuzz crate can
//! reach the parsers.

use http::header::{COOKIE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use serde_json::{Map, Value};

use crate::access::{Allow, PathPattern, Policy, Rule};
use crate::config::Writable;
use crate::session::{self, Key, Keys, Limits, cookie, patch};
use crate::{redirect, target};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its file under `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("normalise_path", normalise_path),
    ("redirect_rd", redirect_rd),
    ("cookie_codec", cookie_codec),
    ("python_codecs", python_codecs),
    ("merge_patch", merge_patch),
    ("cookie_header", cookie_header),
    ("forward_auth", forward_auth),
    ("access_pattern", access_pattern),
    ("config", config),
    ("upstream_response", upstream_response),
];

const KEY: &[u8] = b"fuzz-key-0123456789abcdef01234567";
const NOW: u64 = 1_700_000_000;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `target::normalise_path`: a canonical path starts with `/`, holds no dot
/// or empty segment, and is its own canonical form.
pub fn normalise_path(data: &[u8]) {
    let Ok(uri) = Uri::try_from(data) else { return };
    let Ok(path) = target::normalise_path(&uri) else { return };
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    for seg in path.split('/') {
        assert!(seg != "." && seg != "..", "{path:?}");
    }
    let again: Uri = path.parse().expect("a canonical path is a valid target");
    assert_eq!(target::normalise_path(&again).as_deref(), Ok(&*path), "idempotent");
}

/// `redirect::same_origin_path`: what passes is a path on this origin that
/// no browser reads as another host.
pub fn redirect_rd(data: &[u8]) {
    let Some(rd) = text(data) else { return };
    let Some(ok) = redirect::same_origin_path(rd) else {
        return;
    };
    assert!(ok.starts_with('/'), "{ok:?}");
    assert!(!ok.starts_with("//") && !ok.starts_with("/\\"), "{ok:?}");
    assert!(!ok.chars().any(|c| c.is_control() || c == '\\'), "{ok:?}");
    assert!(HeaderValue::from_str(ok).is_ok(), "{ok:?} must fit in Location");
}

fn keys() -> Keys {
    Keys::new(vec![Key::new(KEY.to_vec(), 32).expect("fuzz key")]).expect("keys")
}

fn limits() -> Limits {
    Limits {
        max_age: 14 * 86_400,
        max_lifetime: None,
        max_value_len: 4096,
    }
}

/// usher's cookie codec: arbitrary values never open (without the key they
/// cannot carry a valid MAC), and any JSON object seals and opens back.
pub fn cookie_codec(data: &[u8]) {
    let keys = keys();
    if let Some(value) = text(data) {
        let opened = session::codec::open("usher_session", value, &keys, NOW, &limits());
        if let Ok(o) = opened {
            // Only possible if the input is a sealed cookie (the corpus
            // holds some); it must then reseal to something that opens.
            let again = session::seal("usher_session", &o.payload, o.issued_at, keys.signing());
            assert!(session::codec::open("usher_session", &again, &keys, NOW, &limits()).is_ok());
        }
    }
    if let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(data) {
        let sealed = session::seal("usher_session", &payload, NOW, keys.signing());
        let big = Limits {
            max_value_len: usize::MAX,
            ..limits()
        };
        let opened = session::codec::open("usher_session", &sealed, &keys, NOW, &big).expect("round trip");
        assert_eq!(*opened.payload, payload);
        let other = session::codec::open("other_name", &sealed, &keys, NOW, &big);
        assert!(other.is_err(), "the name is under the MAC");
    }
}

/// The Starlette and Flask codecs: arbitrary values open only when they
/// verify, and never panic the Python-JSON or zlib readers.
pub fn python_codecs(data: &[u8]) {
    let Some(value) = text(data) else { return };
    let keys: [&[u8]; 1] = [KEY];
    let _ = session::compat::starlette::open(value, &keys, NOW, Some(86_400));
    let _ = session::compat::flask::open(value, &keys, NOW, Some(86_400));
    let _ = session::compat::flask::refresh(value, &keys, NOW, Some(86_400));
    if let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(data) {
        let sealed = session::compat::starlette::seal(&payload, KEY, NOW);
        let _ = session::compat::starlette::open(&sealed, &keys, NOW, Some(86_400));
        let sealed = session::compat::flask::seal(&payload, KEY, NOW);
        let _ = session::compat::flask::open(&sealed, &keys, NOW, Some(86_400));
    }
}

/// A backend's merge patch: never writes `auth_time`, never a field outside
/// `writable`.
pub fn merge_patch(data: &[u8]) {
    let mut current = Map::new();
    current.insert("user".into(), Value::from("alice"));
    current.insert("auth_time".into(), Value::from(NOW));
    let writable = Writable::Fields(vec!["cart".into(), "prefs".into()]);
    match patch::apply(Some(&current), data, &writable) {
        patch::Outcome::Update { session, .. } => {
            assert_eq!(session.get("user"), current.get("user"), "not writable");
            assert_eq!(session.get("auth_time"), current.get("auth_time"), "never writable");
            assert!(
                session
                    .keys()
                    .all(|k| ["user", "auth_time", "cart", "prefs"].contains(&k.as_str()))
            );
        }
        patch::Outcome::Clear | patch::Outcome::Invalid(_) => {}
    }
    if let patch::Outcome::Update { session, .. } = patch::apply(Some(&current), data, &Writable::Any) {
        assert_eq!(session.get("auth_time"), current.get("auth_time"), "never writable");
    }
}

/// `Cookie` header parsing: finding usher's cookie, and stripping it so
/// that no copy reaches the backend.
pub fn cookie_header(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    let _ = cookie::find(&headers, "usher_session");
    cookie::strip(&mut headers, "usher_session");
    assert_eq!(
        cookie::find(&headers, "usher_session").err(),
        Some(session::Rejected::Missing),
        "stripped: {headers:?}"
    );
}

/// The forward-auth description: whatever the headers say, a described
/// request is decided, refused or unreadable, never a panic; and an allowed
/// answer means both spellings of the path were allowed.
pub fn forward_auth(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    crate::service::fuzz_describe(&headers, &policy());
}

fn policy() -> Policy {
    let rule = |path: &str, allow| Rule {
        pattern: PathPattern::parse(path).expect("pattern"),
        methods: None,
        allow,
        groups: vec![],
        users: vec![],
    };
    Policy::new(
        vec![rule("/public/**", Allow::Anyone), rule("/admin/**", Allow::Nobody)],
        Allow::Authenticated,
        false,
    )
}

/// Access patterns: any text either parses or is refused; a parsed pattern
/// matches any path without panicking, and case-folding never loosens a
/// decision.
pub fn access_pattern(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, "/"));
    let Ok(parsed) = PathPattern::parse(pattern) else {
        return;
    };
    let exact = parsed.matches(path, false);
    let folded = parsed.matches(path, true);
    assert!(!exact || folded, "{pattern:?} {path:?}: folding matches a superset");
    let rule = Rule {
        pattern: parsed,
        methods: Some(vec![Method::DELETE]),
        allow: Allow::Nobody,
        groups: vec![],
        users: vec![],
    };
    let policy = Policy::new(vec![rule], Allow::Anyone, false);
    let _ = policy.decide(&Method::DELETE, path, None);
    let _ = policy.decide_any_method(path, None);
}

/// The config parser: any text is a config or a list of problems, and a
/// problem never quotes a secret-looking value from the file.
pub fn config(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Err(e) = crate::Config::from_toml_str(text) {
        let message = e.to_string();
        assert!(!message.contains("fuzz-secret-value"), "{message}");
    }
}

/// usher's own HTTP/1.1 response parser and body decoder (an upstream's
/// bytes): no panic; no accepted head with both `Transfer-Encoding` and
/// `Content-Length`; a body never yields more bytes than arrived nor more
/// than its length, and ends only at its length.
pub fn upstream_response(data: &[u8]) {
    crate::proxy::fuzz_response(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_survives_empty_and_simple_inputs() {
        for (name, target) in TARGETS {
            for input in [&b""[..], b"/", b"{}", b"\xff\xfe", b"/a/../b?x"] {
                target(input);
                let _ = name;
            }
        }
    }
}
