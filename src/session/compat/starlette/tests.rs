use serde_json::json;

use super::*;
use crate::session::compat::vectors::{
    self, Case, Decision, Duplicates, Tally, VectorFile, big_integers_exact, map_keeps_insertion_order,
};

const FILE: &str = "starlette_sessions.json";
const SECRET: &[u8] = b"starlette-shared-secret-0001";
const T0: u64 = 1_700_000_000;

/// Valid cases whose JSON was written by hand, not by `json.dumps`: only
/// their meaning can be reproduced.
const NOT_DUMPS_OUTPUT: &[&str] = &["valid_compact_raw_utf8_json"];

/// Our side of each Python leniency (FORMATS.md section 6).
const EDGE_DECISIONS: &[Decision] = &[
    // Strict base64url: one spelling per signature.
    (
        "edge_signature_noncanonical_last_char",
        Some(CompatRejected::BadSignature),
    ),
    ("edge_signature_with_junk_chars", Some(CompatRejected::BadSignature)),
    ("edge_signature_with_padding", Some(CompatRejected::BadSignature)),
    // serde_json is strict JSON.
    ("edge_payload_nan_infinity", Some(CompatRejected::Malformed)),
    ("edge_payload_lone_surrogate", Some(CompatRejected::Malformed)),
    // Last duplicate key wins, as in Python.
    ("edge_payload_duplicate_keys", None),
    ("edge_timestamp_zero_empty_segment", None),
    ("edge_quoted_cookie_value", None),
    ("edge_duplicate_cookie_last_wins", None),
    ("edge_duplicate_cookie_first_ignored", Some(CompatRejected::Malformed)),
];

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test value must be an object, got {other}"),
    }
}

fn load() -> VectorFile {
    vectors::load(FILE)
}

fn valid_cases(file: &VectorFile) -> impl Iterator<Item = &Case> {
    file.cases.iter().filter(|c| c.expect == vectors::Expect::Valid)
}

/// What [`open`] gives for a case: what Starlette did, except that an
/// integer beyond 64 bits is refused unless `serde_json` keeps it exactly.
fn expected(case: &Case) -> Result<Map<String, Value>, CompatRejected> {
    if case.name == "valid_big_integer" && !big_integers_exact() {
        return Err(CompatRejected::Unsupported);
    }
    match vectors::expected_rejection(case) {
        Some(rejection) => Err(rejection),
        None => Ok(case.payload.clone().expect("valid cases carry a payload")),
    }
}

fn decoded_json(cookie: &str) -> String {
    let bytes = STANDARD
        .decode(vectors::payload_segment(cookie))
        .expect("our payload is base64");
    String::from_utf8(bytes).expect("our JSON is ASCII")
}

#[test]
fn every_case_opens_as_starlette_did() {
    let file = load();
    let seen = vectors::check_cases(&file, open, expected);
    eprintln!("{FILE}: {} cases: {seen:?}", file.cases.len());
    assert_eq!(seen.total(), 66);
}

#[test]
fn every_edge_case_has_a_decided_outcome() {
    let ran = vectors::check_edge_cases(&load(), open, Duplicates::LastWins, EDGE_DECISIONS);
    assert_eq!(ran, 10);
}

/// FORMATS.md section 7, test 2: the cookie's own payload segment, signed
/// at its timestamp with the key that made it, is the cookie.
#[test]
fn every_valid_cookie_re_signs_byte_for_byte() {
    let file = load();
    let mut count = 0;
    for case in valid_cases(&file) {
        let (Some(timestamp), Some(key)) = (case.timestamp, &case.signed_with) else {
            panic!("case {}: valid without timestamp/signed_with", case.name);
        };
        let payload = vectors::payload_segment(&case.cookie);
        let signed = itsdangerous::sign(STARLETTE, key.as_bytes(), payload, timestamp);
        assert_eq!(signed, case.cookie, "case {}", case.name);
        count += 1;
    }
    assert_eq!(count, valid_cases(&file).count());
}

/// [`seal`] of each valid payload at its timestamp and key: the same cookie
/// whenever the map iterates in Starlette's insertion order; otherwise the
/// same `json.dumps` bytes in another key order.
#[test]
fn every_valid_payload_seals_like_starlette() {
    let file = load();
    let mut outcome = Tally::default();
    for case in valid_cases(&file) {
        outcome.add(check_seal(case));
    }
    eprintln!("{FILE}: seal outcomes: {outcome:?}");
    assert_eq!(outcome.total(), valid_cases(&file).count());
    assert!(outcome.get("byte_identical") >= 10, "{outcome:?}");
}

fn check_seal(case: &Case) -> &'static str {
    let payload = case.payload.as_ref().expect("valid cases carry a payload");
    let key = case
        .signed_with
        .as_deref()
        .expect("valid cases name their key")
        .as_bytes();
    let timestamp = case.timestamp.expect("valid cases carry a timestamp");
    let sealed = seal(payload, key, timestamp);
    assert_eq!(
        open(&sealed, &[key], timestamp, Some(0)).as_ref(),
        Ok(payload),
        "case {}",
        case.name
    );
    let ours = decoded_json(&sealed);
    let theirs = case.serialized_json.as_deref().expect("valid cases carry their JSON");
    if ours == theirs {
        assert_eq!(sealed, case.cookie, "case {}", case.name);
        return "byte_identical";
    }
    if NOT_DUMPS_OUTPUT.contains(&case.name.as_str()) {
        return "not_dumps_output";
    }
    if case.name == "valid_big_integer" && !big_integers_exact() {
        return "big_integer_as_float";
    }
    assert!(!map_keeps_insertion_order(), "case {}: {ours} != {theirs}", case.name);
    assert!(
        vectors::same_json_reordered(&ours, theirs),
        "case {}: {ours} != {theirs}",
        case.name
    );
    "key_order"
}

/// Every Set-Cookie the app sent opens to the session it recorded and
/// seals back (up to key order); request cookies open unless tampered.
#[test]
fn http_examples_replay() {
    let file = load();
    let mut steps = 0;
    for example in &file.http_examples {
        let secret = example.config["secret_key"]
            .as_str()
            .expect("config has secret_key")
            .as_bytes();
        let max_age = match example.config.get("max_age") {
            None => Some(DEFAULT_MAX_AGE),
            Some(value) => value.as_u64(),
        };
        for step in &example.steps {
            let label = format!("{} / {}", example.name, step.step);
            for header in &step.response.set_cookie {
                check_issued(
                    vectors::set_cookie_value(header),
                    secret,
                    step.now,
                    max_age,
                    &step.response.session_after,
                    &label,
                );
            }
            if let Some(header) = &step.request.cookie_header {
                let name = example
                    .config
                    .get("session_cookie")
                    .and_then(Value::as_str)
                    .unwrap_or("session");
                let value =
                    vectors::cookie_from_header(header, name, Duplicates::LastWins).expect("request sends the cookie");
                let expected = if step.step.contains("tampered") {
                    Err(CompatRejected::BadSignature)
                } else {
                    Ok(())
                };
                assert_eq!(
                    open(value, &[secret], step.now, max_age).map(|_| ()),
                    expected,
                    "{label}"
                );
            }
            steps += 1;
        }
    }
    assert_eq!(steps, 11);
}

fn check_issued(value: &str, secret: &[u8], now: u64, max_age: Option<u64>, session: &Map<String, Value>, label: &str) {
    if value == "null" {
        // Starlette's deletion cookie.
        assert!(session.is_empty(), "{label}");
        assert_eq!(
            open(value, &[secret], now, max_age),
            Err(CompatRejected::Malformed),
            "{label}"
        );
        return;
    }
    assert_eq!(open(value, &[secret], now, max_age).as_ref(), Ok(session), "{label}");
    let sealed = seal(session, secret, now);
    if sealed != value {
        assert!(!map_keeps_insertion_order(), "{label}");
        assert!(
            vectors::same_json_reordered(&decoded_json(&sealed), &decoded_json(value)),
            "{label}"
        );
    }
}

#[test]
fn seal_then_open_round_trips() {
    #[track_caller]
    fn check(payload: Value) {
        let payload = object(payload);
        let sealed = seal(&payload, SECRET, T0);
        assert_eq!(open(&sealed, &[SECRET], T0 + 10, Some(DEFAULT_MAX_AGE)), Ok(payload));
    }
    check(json!({}));
    check(json!({"user": "alice", "groups": ["admin", "ops"], "n": 1}));
    check(json!({"text": "é 日本 🎉 \u{0} \" \\ /", "f": -0.5, "big": u64::MAX, "neg": i64::MIN}));
    check(json!({"nested": {"a": [1, [2, [3, {"b": null}]]]}, "t": true, "f": false}));
    check(json!({" t": [1], " di": {"x": 1}}));
}

#[test]
fn seal_pads_standard_base64() {
    let sealed = seal(&object(json!({"k": "~~~???>>>"})), SECRET, T0);
    assert_eq!(sealed, "eyJrIjogIn5+fj8/Pz4+PiJ9.ZVPxAA.tac7pQWUxYP46hGRFYaRO22dsr8");
    let sealed = seal(&object(json!({"k": "v"})), SECRET, T0);
    assert!(sealed.starts_with("eyJrIjogInYifQ==."), "{sealed}");
}

#[test]
fn refresh_keeps_the_payload_and_signs_with_the_first_key() {
    let old: &[u8] = b"old-secret";
    let original = seal(&object(json!({"b": 1, "a": 2})), old, T0);
    let refreshed = refresh(&original, &[SECRET, old], T0 + 100, Some(3600)).expect("valid cookie refreshes");
    assert_eq!(
        vectors::payload_segment(&refreshed),
        vectors::payload_segment(&original)
    );
    assert_eq!(
        itsdangerous::verify(STARLETTE, &refreshed, &[SECRET], T0 + 100, Some(0)).map(|v| v.timestamp),
        Ok(T0 + 100)
    );
    assert_eq!(
        refresh(&original, &[SECRET, old], T0 + 3601, Some(3600)),
        Err(CompatRejected::Expired)
    );
    assert_eq!(
        refresh(&original, &[SECRET], T0, None),
        Err(CompatRejected::BadSignature)
    );
    let not_an_object = itsdangerous::sign(STARLETTE, SECRET, "WzFd", T0);
    assert_eq!(
        refresh(&not_an_object, &[SECRET], T0, None),
        Err(CompatRejected::Malformed)
    );
}

#[test]
fn payload_segment_must_be_padded_standard_base64() {
    #[track_caller]
    fn check(segment: &str, expected: Result<Value, CompatRejected>) {
        let cookie = itsdangerous::sign(STARLETTE, SECRET, segment, T0);
        assert_eq!(
            open(&cookie, &[SECRET], T0, None).map(Value::Object),
            expected,
            "{segment:?}"
        );
    }
    check("eyJrIjogInYifQ==", Ok(json!({"k": "v"})));
    check("eyJrIjogInYifQ", Err(CompatRejected::Malformed));
    check("eyJrIjogIn5-fj8_Pz4-PiJ9", Err(CompatRejected::Malformed));
    check("", Err(CompatRejected::Malformed));
    check("bnVsbA==", Err(CompatRejected::Malformed));
}

#[test]
fn no_single_character_change_opens() {
    let tried = vectors::check_single_char_tampering(&load(), open);
    assert!(tried > 1000, "{tried}");
}

#[test]
fn signed_garbage_is_rejected_without_panicking() {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=.!eJ";
    for segment in vectors::garbage_segments(alphabet, 2000) {
        let cookie = itsdangerous::sign(STARLETTE, SECRET, &segment, T0);
        let _ = open(&cookie, &[SECRET], T0, None);
    }
}
