use std::io::Write as _;

use flate2::write::ZlibEncoder;
use serde_json::json;

use super::*;
use crate::session::compat::vectors::{self, Case, Decision, Duplicates, Tally, VectorFile, big_integers_exact};

const FILE: &str = "flask_sessions.json";
const SECRET: &[u8] = b"flask-shared-secret-0001";
const T0: u64 = 1_700_000_000;

/// Valid cases whose JSON Flask did not write (unsorted, raw UTF-8): only
/// their meaning can be reproduced.
const NOT_FLASK_OUTPUT: &[&str] = &["valid_uncompressed_unsorted_raw_utf8"];

/// Our side of each Python leniency (FORMATS.md section 6).
const EDGE_DECISIONS: &[Decision] = &[
    // Strict base64url: one spelling per signature and payload.
    (
        "edge_signature_noncanonical_last_char",
        Some(CompatRejected::BadSignature),
    ),
    ("edge_signature_with_junk_chars", Some(CompatRejected::BadSignature)),
    ("edge_payload_padding", Some(CompatRejected::Malformed)),
    // serde_json is strict JSON.
    ("edge_payload_nan", Some(CompatRejected::Malformed)),
    ("edge_quoted_cookie_value", None),
    ("edge_duplicate_cookie_first_wins", None),
    ("edge_duplicate_cookie_last_ignored", Some(CompatRejected::Malformed)),
    ("edge_top_level_single_tag_key", Some(CompatRejected::Malformed)),
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

/// What [`open_tagged`] gives: what Flask read, tags kept, except that an
/// integer beyond 64 bits is refused unless `serde_json` keeps it exactly.
fn expected_tagged(case: &Case) -> Result<Map<String, Value>, CompatRejected> {
    if case.name == "valid_big_integer" && !big_integers_exact() {
        return Err(CompatRejected::Unsupported);
    }
    match vectors::expected_rejection(case) {
        Some(rejection) => Err(rejection),
        None => Ok(case.payload.clone().expect("valid cases carry a payload")),
    }
}

/// What [`open`] gives: the tagged payload with the mapping of
/// [`tag`], written out by hand for every case that carries a tag.
fn expected_plain(case: &Case) -> Result<Map<String, Value>, CompatRejected> {
    let plain = match case.name.as_str() {
        "valid_tag_tuple" => json!({"point": [1, 2, "three"]}),
        "valid_tag_datetime" => json!({"when": "Tue, 14 Nov 2023 22:13:20 GMT"}),
        "valid_tag_uuid" => json!({"id": "12345678123456781234567812345678"}),
        "valid_tag_markup" => json!({"html": "<b>bold</b>"}),
        "valid_tag_dict_escape" => json!({"wrapped": {" t": "not a tuple"}}),
        "valid_flashes_and_login" => json!({
            "_flashes": [["message", "Logged in"], ["error", "Bad <input>"]],
            "_fresh": true,
            "_user_id": "42",
            "csrf_token": "0f3c9a1be2d44e5f",
        }),
        // Both hold `bytes`.
        "valid_tag_bytes" | "valid_tag_nested_mix" => return Err(CompatRejected::Unsupported),
        _ => {
            let expected = expected_tagged(case)?;
            assert!(
                !has_tag(&Value::Object(expected.clone())),
                "case {}: tagged, add it above",
                case.name
            );
            return Ok(expected);
        }
    };
    Ok(object(plain))
}

/// Whether any object in `value` is a tagged value.
fn has_tag(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            (map.len() == 1 && map.keys().all(|k| tag::TAGS.contains(&k.as_str()))) || map.values().any(has_tag)
        }
        Value::Array(items) => items.iter().any(has_tag),
        _ => false,
    }
}

/// The compression marker and the JSON text of a payload segment.
fn decoded_json(cookie: &str) -> (bool, String) {
    let segment = vectors::payload_segment(cookie);
    let (compressed, data) = match segment.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, segment),
    };
    let bytes = URL_SAFE_NO_PAD.decode(data).expect("payload is base64url");
    let json = if compressed {
        inflate(&bytes).expect("payload inflates")
    } else {
        bytes
    };
    (compressed, String::from_utf8(json).expect("JSON is UTF-8"))
}

#[test]
fn every_case_opens_tagged_as_flask_did() {
    let file = load();
    let seen = vectors::check_cases(&file, open_tagged, expected_tagged);
    eprintln!("{FILE}: {} cases (tagged): {seen:?}", file.cases.len());
    assert_eq!(seen.total(), 68);
}

#[test]
fn every_case_opens_as_plain_json() {
    let file = load();
    let seen = vectors::check_cases(&file, open, expected_plain);
    eprintln!("{FILE}: {} cases (plain): {seen:?}", file.cases.len());
    assert_eq!(seen.total(), 68);
}

#[test]
fn every_edge_case_has_a_decided_outcome() {
    let file = load();
    assert_eq!(
        vectors::check_edge_cases(&file, open_tagged, Duplicates::FirstWins, EDGE_DECISIONS),
        8
    );
    assert_eq!(
        vectors::check_edge_cases(&file, open, Duplicates::FirstWins, EDGE_DECISIONS),
        8
    );
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
        let signed = itsdangerous::sign(FLASK, key.as_bytes(), payload, timestamp);
        assert_eq!(signed, case.cookie, "case {}", case.name);
        count += 1;
    }
    assert_eq!(count, valid_cases(&file).count());
}

/// [`seal_tagged`] of each valid payload at its timestamp and key: Flask's
/// JSON bytes and compression decision always; the very cookie whenever the
/// payload is not compressed (a compressed one comes from another deflate).
#[test]
fn every_valid_payload_seals_like_flask() {
    let file = load();
    let mut outcome = Tally::default();
    for case in valid_cases(&file) {
        outcome.add(check_seal(case));
    }
    eprintln!("{FILE}: seal outcomes: {outcome:?}");
    assert_eq!(outcome.total(), valid_cases(&file).count());
    assert!(outcome.get("byte_identical") >= 15, "{outcome:?}");
}

fn check_seal(case: &Case) -> &'static str {
    let payload = case.payload.as_ref().expect("valid cases carry a payload");
    let key = case
        .signed_with
        .as_deref()
        .expect("valid cases name their key")
        .as_bytes();
    let timestamp = case.timestamp.expect("valid cases carry a timestamp");
    let sealed = seal_tagged(payload, key, timestamp);
    assert_eq!(
        open_tagged(&sealed, &[key], timestamp, Some(0)).as_ref(),
        Ok(payload),
        "case {}",
        case.name
    );
    if NOT_FLASK_OUTPUT.contains(&case.name.as_str()) {
        return "not_flask_output";
    }
    if case.name == "valid_big_integer" && !big_integers_exact() {
        return "big_integer_as_float";
    }
    let (compressed, json) = decoded_json(&sealed);
    assert_eq!(
        Some(json.as_str()),
        case.serialized_json.as_deref(),
        "case {}",
        case.name
    );
    assert_eq!(
        Some(compressed),
        case.compressed,
        "case {}: compression decision",
        case.name
    );
    match (compressed, sealed == case.cookie) {
        (false, identical) => {
            assert!(identical, "case {}: {sealed} != {}", case.name, case.cookie);
            "byte_identical"
        }
        (true, true) => "byte_identical_compressed",
        (true, false) => "compressed_by_other_deflate",
    }
}

/// Every Set-Cookie the app sent opens and seals back byte for byte; the
/// re-issues of an unchanged session equal [`refresh`] of the request
/// cookie; request cookies open unless tampered.
#[test]
fn http_examples_replay() {
    let file = load();
    let mut steps = 0;
    for example in &file.http_examples {
        let secret = example.config["SECRET_KEY"]
            .as_str()
            .expect("config has SECRET_KEY")
            .as_bytes();
        let max_age = Some(DEFAULT_MAX_AGE);
        let name = example
            .config
            .get("SESSION_COOKIE_NAME")
            .and_then(Value::as_str)
            .unwrap_or("session");
        for step in &example.steps {
            let label = format!("{} / {}", example.name, step.step);
            let request = step.request.cookie_header.as_deref().map(|header| {
                let value =
                    vectors::cookie_from_header(header, name, Duplicates::FirstWins).expect("request sends the cookie");
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
                value
            });
            for header in &step.response.set_cookie {
                let value = vectors::set_cookie_value(header);
                check_issued(value, request, secret, step.now, &step.response.session_after, &label);
            }
            steps += 1;
        }
    }
    assert_eq!(steps, 13);
}

fn check_issued(
    value: &str,
    request: Option<&str>,
    secret: &[u8],
    now: u64,
    session: &Map<String, Value>,
    label: &str,
) {
    if value.is_empty() {
        // Flask's deletion cookie.
        assert!(session.is_empty(), "{label}");
        return;
    }
    let opened = open(value, &[secret], now, Some(DEFAULT_MAX_AGE)).unwrap_or_else(|e| panic!("{label}: {e}"));
    // The view records the session only when it touched it.
    if !session.is_empty() {
        assert_eq!(&opened, session, "{label}");
    }
    assert_eq!(seal(&opened, secret, now), value, "{label}");
    let unchanged = request.and_then(|r| open(r, &[secret], now, Some(DEFAULT_MAX_AGE)).ok()) == Some(opened);
    if let (true, Some(request)) = (unchanged, request) {
        assert_eq!(
            refresh(request, &[secret], now, Some(DEFAULT_MAX_AGE)).as_deref(),
            Ok(value),
            "{label}"
        );
    }
}

#[test]
fn seal_compresses_exactly_when_it_saves_two_bytes() {
    #[track_caller]
    fn check(payload: Value, compressed: bool) {
        let payload = object(payload);
        let sealed = seal(&payload, SECRET, T0);
        assert_eq!(sealed.starts_with('.'), compressed, "{sealed}");
        assert_eq!(open(&sealed, &[SECRET], T0, None), Ok(payload));
    }
    check(json!({"a": 1}), false);
    check(json!({"s": "ab".repeat(40)}), true);
    check(json!({"s": "x".repeat(3000)}), true);
    check(json!({"k": "q7Zp2Lx9"}), false);
    // With flate2's deflate these save exactly one and exactly two bytes.
    check(json!({"k": "ahovcjqxelsahovcjqxel"}), false);
    check(json!({"k": "ahovcjqxelsahovcjqxelsa"}), true);
}

#[test]
fn seal_matches_flask_for_small_sessions() {
    let sealed = seal(&object(json!({"a": 1})), SECRET, T0);
    assert_eq!(sealed, "eyJhIjoxfQ.ZVPxAA.bzWcebgv3aNfLLjnE53SNtw27d8");
    let permanent = seal(&object(json!({"user": "alice", "_permanent": true})), SECRET, T0);
    assert_eq!(
        permanent,
        "eyJfcGVybWFuZW50Ijp0cnVlLCJ1c2VyIjoiYWxpY2UifQ.ZVPxAA.WW8YPh0h_rj39XtR3-1CED0fLgU"
    );
}

fn zlib(json: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(level));
    encoder.write_all(json).expect("write to Vec");
    encoder.finish().expect("finish to Vec")
}

/// A correctly signed value whose payload segment is marked compressed.
fn signed_compressed(data: &[u8]) -> String {
    itsdangerous::sign(FLASK, SECRET, &format!(".{}", URL_SAFE_NO_PAD.encode(data)), T0)
}

#[test]
fn compressed_payloads_are_bounded_and_must_be_zlib() {
    #[track_caller]
    fn check(cookie: &str, expected: Result<(), CompatRejected>) {
        assert_eq!(open(cookie, &[SECRET], T0, None).map(|_| ()), expected, "{cookie:.60}");
    }
    let at_limit = format!("{{\"p\":\"{}\"}}", "a".repeat(MAX_INFLATED_LEN - 8));
    assert_eq!(at_limit.len(), MAX_INFLATED_LEN);
    check(&signed_compressed(&zlib(at_limit.as_bytes(), 9)), Ok(()));
    let over = format!("{{\"p\":\"{}\"}}", "a".repeat(MAX_INFLATED_LEN - 7));
    check(
        &signed_compressed(&zlib(over.as_bytes(), 9)),
        Err(CompatRejected::TooLarge),
    );
    // Under 4 KB of cookie that would inflate to 2 MiB.
    let bomb = signed_compressed(&zlib(&vec![b' '; 2 << 20], 9));
    assert!(bomb.len() <= crate::session::compat::MAX_VALUE_LEN, "{}", bomb.len());
    check(&bomb, Err(CompatRejected::TooLarge));
    let stream = zlib(br#"{"a":1}"#, 6);
    check(&signed_compressed(&stream), Ok(()));
    // Without the Adler-32 trailer, then without the zlib header (raw deflate).
    check(
        &signed_compressed(&stream[..stream.len() - 4]),
        Err(CompatRejected::Malformed),
    );
    check(&signed_compressed(&stream[2..]), Err(CompatRejected::Malformed));
    check(&signed_compressed(b"{\"a\":1}"), Err(CompatRejected::Malformed));
    check(&signed_compressed(b""), Err(CompatRejected::Malformed));
}

#[test]
fn refresh_keeps_the_payload_and_signs_with_the_first_key() {
    let old: &[u8] = b"flask-shared-OLD-0000";
    let original = "eyJ1c2VyIjoibGVnYWN5In0.ZVPxAA.ly9rr9Ilg8-FkqYRhCAR8q7ofJ0";
    let refreshed = refresh(original, &[SECRET, old], T0 + 100, Some(DEFAULT_MAX_AGE)).expect("valid cookie refreshes");
    assert_eq!(vectors::payload_segment(&refreshed), vectors::payload_segment(original));
    assert_eq!(
        open(&refreshed, &[SECRET], T0 + 100, Some(0)),
        Ok(object(json!({"user": "legacy"})))
    );
    assert_eq!(
        refresh(original, &[SECRET], T0, None),
        Err(CompatRejected::BadSignature)
    );
    let single_tag = itsdangerous::sign(FLASK, SECRET, "eyIgdCI6WzEsMl19", T0);
    assert_eq!(
        refresh(&single_tag, &[SECRET], T0, None),
        Err(CompatRejected::Malformed)
    );
}

#[test]
fn plain_seal_round_trips_through_flask_tags() {
    #[track_caller]
    fn check(payload: Value, tagged: Value) {
        let payload = object(payload);
        let sealed = seal(&payload, SECRET, T0);
        assert_eq!(open_tagged(&sealed, &[SECRET], T0, None), Ok(object(tagged)));
        assert_eq!(open(&sealed, &[SECRET], T0, None), Ok(payload));
    }
    check(json!({"a": [1, "x"]}), json!({"a": [1, "x"]}));
    check(json!({"w": {" t": 1}}), json!({"w": {" di": {" t__": 1}}}));
    check(json!({" b": "eA=="}), json!({" di": {" b__": "eA=="}}));
    check(
        json!({"x": [{" di": {" u": 2}}]}),
        json!({"x": [{" di": {" di__": {" di": {" u__": 2}}}}]}),
    );
    check(
        json!({"two": {" t": 1, "other": 2}}),
        json!({"two": {" t": 1, "other": 2}}),
    );
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
        let cookie = itsdangerous::sign(FLASK, SECRET, &segment, T0);
        let _ = open(&cookie, &[SECRET], T0, None);
    }
}
