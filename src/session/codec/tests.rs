use serde_json::json;

use super::*;

const NAME: &str = "usher_session";
const T0: u64 = 1_700_000_000;
const NEW: &[u8] = b"new-key-0123456789abcdef01234567";
const OLD: &[u8] = b"old-key-0123456789abcdef01234567";

const LIMITS: Limits = Limits {
    max_age: 3600,
    max_lifetime: None,
    max_value_len: DEFAULT_MAX_VALUE_LEN,
};

fn key(bytes: &[u8]) -> Key {
    Key::new(bytes.to_vec(), 32).expect("test key is long enough")
}

fn keys(list: &[&[u8]]) -> Keys {
    Keys::new(list.iter().map(|k| key(k)).collect()).expect("non-empty")
}

fn payload(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payload must be an object, got {other}"),
    }
}

fn alice() -> Map<String, Value> {
    payload(json!({"user": "alice", "groups": ["admin"], "auth_time": T0}))
}

fn sealed() -> String {
    seal(NAME, &alice(), T0, &key(NEW))
}

/// Seals arbitrary bytes (not necessarily a JSON object) with a valid tag.
fn seal_raw(json: &[u8], issued_at: u64) -> String {
    let tag = tag(&key(NEW), &mac_input(NAME, issued_at, json));
    let (json, tag) = (URL_SAFE_NO_PAD.encode(json), URL_SAFE_NO_PAD.encode(tag));
    format!("v1.{issued_at}.{json}.{tag}")
}

#[track_caller]
fn check(value: &str, now: u64, limits: &Limits, expected: Result<(), Rejected>) {
    let got = open(NAME, value, &keys(&[NEW]), now, limits).map(|_| ());
    assert_eq!(got, expected, "value {value:?}");
}

#[test]
fn round_trip() {
    let opened = open(NAME, &sealed(), &keys(&[NEW]), T0 + 10, &LIMITS).expect("valid");
    assert_eq!(*opened.payload, alice());
    assert_eq!(opened.issued_at, T0);
    assert!(!opened.stale_key);
}

#[test]
fn empty_payload_round_trips() {
    let value = seal(NAME, &Map::new(), T0, &key(NEW));
    let opened = open(NAME, &value, &keys(&[NEW]), T0, &LIMITS).expect("valid");
    assert!(opened.payload.is_empty());
}

#[test]
fn wire_value_is_cookie_safe() {
    let value = sealed();
    assert!(value.starts_with("v1.1700000000."));
    assert_eq!(value.split('.').count(), 4);
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    assert!(value.bytes().all(safe), "{value}");
}

/// The worked example in docs/cookie-format.md, which this test reads so
/// that the two cannot drift apart.
#[test]
fn documented_example() {
    const DOC: &str = include_str!("../../../docs/cookie-format.md");
    const KEY: &str = "an-example-key-that-is-32-bytes!";
    const JSON: &str = r#"{"auth_time":1700000000,"groups":["admin"],"user":"alice"}"#;
    const TAG: &str = "0ac86d552d426e8e3787d5f3f58762268b5fc812917119ad327b4f8ca3022d39";
    const VALUE: &str = "v1.1700000000.\
        eyJhdXRoX3RpbWUiOjE3MDAwMDAwMDAsImdyb3VwcyI6WyJhZG1pbiJdLCJ1c2VyIjoiYWxpY2UifQ.\
        CshtVS1Cbo43h9Xz9YdiJotfyBKRcRmtMntPjKMCLTk";
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };

    let input = mac_input("usher_session", 1_700_000_000, JSON.as_bytes());
    assert_eq!(
        hex(&input),
        "000000000000000d75736865722d73657373696f6e\
         00000000000000027631\
         000000000000000d75736865725f73657373696f6e\
         0000000000000008000000006553f100\
         000000000000003a7b22617574685f74696d65223a313730303030303030302c2267726f7570\
         73223a5b2261646d696e225d2c2275736572223a22616c696365227d"
    );
    assert_eq!(hex(&tag(&key(KEY.as_bytes()), &input)), TAG);
    let payload: Map<String, Value> = serde_json::from_str(JSON).expect("example JSON");
    let sealed = seal("usher_session", &payload, 1_700_000_000, &key(KEY.as_bytes()));
    assert_eq!(sealed, VALUE);

    for needle in [KEY, JSON, TAG, VALUE, "000000006553f100"] {
        assert!(DOC.contains(needle), "docs/cookie-format.md lacks {needle}");
    }
}

#[test]
fn every_single_character_change_is_rejected() {
    let value = sealed();
    for (index, original) in value.char_indices() {
        for replacement in ['A', 'B', '0', '1', '-', '_', '.', 'v'] {
            if replacement == original {
                continue;
            }
            let mut tampered = value.clone();
            tampered.replace_range(index..=index, &replacement.to_string());
            assert!(
                open(NAME, &tampered, &keys(&[NEW]), T0, &LIMITS).is_err(),
                "accepted {tampered:?}"
            );
        }
    }
}

#[test]
fn tampering_with_each_field_is_rejected() {
    let value = sealed();
    let fields: Vec<&str> = value.split('.').collect();
    let [_, time, json, tag] = fields[..] else {
        panic!("four fields")
    };
    let forged = URL_SAFE_NO_PAD.encode(br#"{"user":"mallory"}"#);
    let cases = [
        (format!("v2.{time}.{json}.{tag}"), Rejected::UnknownVersion),
        (format!("V1.{time}.{json}.{tag}"), Rejected::Malformed),
        (format!("v1.{}.{json}.{tag}", T0 + 1), Rejected::BadMac),
        (format!("v1.{}.{json}.{tag}", T0 - 1), Rejected::BadMac),
        (format!("v1.{time}.{forged}.{tag}"), Rejected::BadMac),
        (format!("v1.{time}.{json}.{}", flip_middle(tag)), Rejected::BadMac),
        (format!("v1.{time}.{}.{tag}", flip_middle(json)), Rejected::BadMac),
        (format!("v1.{time}.{json}.{}", &tag[..42]), Rejected::Malformed),
        (format!("v1.{time}.{json}"), Rejected::Malformed),
        (format!("v1.{time}.{json}.{tag}.extra"), Rejected::Malformed),
        (format!("v1.0{time}.{json}.{tag}"), Rejected::Malformed),
        (format!("v1.+{time}.{json}.{tag}"), Rejected::Malformed),
        (format!("v1.{time}.{json}=.{tag}"), Rejected::Malformed),
        (format!("v1.{time}.{json}.{tag}="), Rejected::Malformed),
    ];
    for (tampered, expected) in cases {
        check(&tampered, T0, &LIMITS, Err(expected));
    }
}

fn flip_middle(field: &str) -> String {
    let middle = field.len() / 2;
    let flipped = if &field[middle..=middle] == "A" { "B" } else { "A" };
    format!("{}{flipped}{}", &field[..middle], &field[middle + 1..])
}

#[test]
fn wrong_key_is_rejected() {
    let value = seal(NAME, &alice(), T0, &key(OLD));
    check(&value, T0, &LIMITS, Err(Rejected::BadMac));
}

#[test]
fn value_replayed_under_another_name_is_rejected() {
    let value = sealed();
    for other in [
        "usher_session2",
        "other",
        "usher",
        "usher_session.",
        "__Host-usher_session",
    ] {
        let got = open(other, &value, &keys(&[NEW]), T0, &LIMITS);
        assert_eq!(got.map(|_| ()), Err(Rejected::BadMac), "name {other:?}");
    }
}

#[test]
fn mac_input_is_unambiguous() {
    // Plain concatenation would make each pair equal.
    let pairs = [
        (("a", 1, b"bc".as_slice()), ("ab", 1, b"c".as_slice())),
        (("a.b", 1, b"".as_slice()), ("a", 1, b".b".as_slice())),
        (("", 0, b"x".as_slice()), ("x", 0, b"".as_slice())),
    ];
    for ((n1, t1, j1), (n2, t2, j2)) in pairs {
        assert_ne!(mac_input(n1, t1, j1), mac_input(n2, t2, j2));
    }
}

#[test]
fn expiry_is_inclusive_of_max_age() {
    let value = sealed();
    check(&value, T0 + 3600, &LIMITS, Ok(()));
    check(&value, T0 + 3601, &LIMITS, Err(Rejected::Expired));
    check(&value, u64::MAX, &LIMITS, Err(Rejected::Expired));
}

#[test]
fn future_dated_values_are_allowed_300_seconds_of_skew() {
    let value = sealed();
    check(&value, T0 - 299, &LIMITS, Ok(()));
    check(&value, T0 - 300, &LIMITS, Ok(()));
    check(&value, T0 - 301, &LIMITS, Err(Rejected::Future));
    check(&value, 0, &LIMITS, Err(Rejected::Future));
}

#[test]
fn lifetime_is_measured_from_auth_time() {
    let limits = Limits {
        max_age: u64::MAX,
        max_lifetime: Some(86_400),
        ..LIMITS
    };
    let logged_in_at = |auth_time: Value| {
        seal(
            NAME,
            &payload(json!({ "auth_time": auth_time })),
            T0 + 50_000,
            &key(NEW),
        )
    };
    let at = T0 + 86_400;
    check(&logged_in_at(json!(T0)), at, &limits, Ok(()));
    check(
        &logged_in_at(json!(T0)),
        at + 1,
        &limits,
        Err(Rejected::LifetimeExceeded),
    );
    check(&logged_in_at(json!(T0)), at + 1, &LIMITS, Err(Rejected::Expired));
    let no_lifetime = Limits {
        max_age: u64::MAX,
        ..LIMITS
    };
    check(&logged_in_at(json!(T0)), at + 1, &no_lifetime, Ok(()));
    check(&logged_in_at(json!(at + 301)), at, &limits, Err(Rejected::Future));
    check(&logged_in_at(json!("yesterday")), at, &limits, Err(Rejected::Malformed));
    check(&logged_in_at(json!(-1)), at, &limits, Err(Rejected::Malformed));
    check(&logged_in_at(json!(1.5)), at, &limits, Err(Rejected::Malformed));
    let no_auth_time = seal(NAME, &Map::new(), T0 + 50_000, &key(NEW));
    check(&no_auth_time, at + 1, &limits, Ok(()));
}

#[test]
fn rotation_new_key_signs_old_key_verifies_removed_key_fails() {
    let rotated = keys(&[NEW, OLD]);
    let by_old = seal(NAME, &alice(), T0, &key(OLD));
    let by_new = seal(NAME, &alice(), T0, rotated.signing());

    let opened = open(NAME, &by_old, &rotated, T0, &LIMITS).expect("old key verifies");
    assert!(opened.stale_key);
    let opened = open(NAME, &by_new, &rotated, T0, &LIMITS).expect("new key verifies");
    assert!(!opened.stale_key);
    assert_eq!(by_new, sealed());

    let retired = keys(&[NEW]);
    let got = open(NAME, &by_old, &retired, T0, &LIMITS).map(|_| ());
    assert_eq!(got, Err(Rejected::BadMac));
}

#[test]
fn oversized_values_are_refused_before_decoding() {
    let limits = Limits {
        max_value_len: 100,
        ..LIMITS
    };
    check(&"!".repeat(101), T0, &limits, Err(Rejected::TooLarge));
    check(&"!".repeat(100), T0, &limits, Err(Rejected::Malformed));
    let value = sealed();
    let exact = Limits {
        max_value_len: value.len(),
        ..LIMITS
    };
    check(&value, T0, &exact, Ok(()));
    let short = Limits {
        max_value_len: value.len() - 1,
        ..LIMITS
    };
    check(&value, T0, &short, Err(Rejected::TooLarge));
}

#[test]
fn garbage_never_panics() {
    let huge = "9".repeat(30);
    let max = u64::MAX.to_string();
    let cases = [
        ("", Rejected::Missing),
        (".", Rejected::Malformed),
        ("...", Rejected::Malformed),
        ("....", Rejected::Malformed),
        ("v1", Rejected::Malformed),
        ("v1...", Rejected::Malformed),
        ("v", Rejected::Malformed),
        ("v99999999999999999999999", Rejected::UnknownVersion),
        ("v1.1.!!!.###", Rejected::Malformed),
        ("v1.1.e30.AAAA", Rejected::Malformed),
        ("v1.-1.e30.AAAA", Rejected::Malformed),
        ("v1. 1.e30.AAAA", Rejected::Malformed),
        ("ünïcödé.1.2.3", Rejected::Malformed),
        (
            "v1.1.e30.ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            Rejected::Malformed,
        ),
        ("v1.1.e30.ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZA", Rejected::BadMac),
    ];
    for (value, expected) in cases {
        check(value, T0, &LIMITS, Err(expected));
    }
    let tag = "A".repeat(43);
    check(&format!("v1.{huge}.e30.{tag}"), T0, &LIMITS, Err(Rejected::Malformed));
    check(&format!("v1.{max}.e30.{tag}"), T0, &LIMITS, Err(Rejected::BadMac));
    for now in [0, T0, u64::MAX] {
        check(
            &seal_raw(b"{}", u64::MAX),
            now,
            &LIMITS,
            ok_if(now == u64::MAX, Rejected::Future),
        );
        check(&seal_raw(b"{}", 0), now, &LIMITS, ok_if(now <= 3600, Rejected::Expired));
    }
}

fn ok_if(ok: bool, otherwise: Rejected) -> Result<(), Rejected> {
    if ok { Ok(()) } else { Err(otherwise) }
}

#[test]
fn authentic_non_object_payloads_are_malformed() {
    for json in [&b"[1,2]"[..], b"\"alice\"", b"null", b"42", b"", b"{", b"\xff"] {
        check(&seal_raw(json, T0), T0, &LIMITS, Err(Rejected::Malformed));
    }
    check(&seal_raw(b"{}", T0), T0, &LIMITS, Ok(()));
}

#[test]
fn extreme_limits_do_not_overflow() {
    let value = sealed();
    let unlimited = Limits {
        max_age: u64::MAX,
        max_lifetime: Some(u64::MAX),
        max_value_len: usize::MAX,
    };
    check(&value, u64::MAX, &unlimited, Ok(()));
    let zero = Limits {
        max_age: 0,
        max_lifetime: Some(0),
        max_value_len: usize::MAX,
    };
    check(&value, T0, &zero, Ok(()));
    check(&value, T0 + 1, &zero, Err(Rejected::Expired));
}

#[track_caller]
fn check_refresh(age: u64, max_age: u64, expected: bool) {
    assert_eq!(needs_refresh(T0, T0 + age, max_age), expected);
}

#[test]
fn refresh_after_a_quarter_of_max_age() {
    check_refresh(0, 3600, false);
    check_refresh(900, 3600, false);
    check_refresh(901, 3600, true);
    check_refresh(2, 10, false);
    check_refresh(3, 10, true);
    check_refresh(u64::MAX - T0, u64::MAX, false);
    check_refresh(1, 0, true);
    assert!(!needs_refresh(T0, 0, 3600), "future issue time is fresh");
}

#[test]
fn rejection_labels_are_stable_and_distinct() {
    let labels: Vec<&str> = Rejected::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "missing",
            "malformed",
            "unknown_version",
            "bad_mac",
            "expired",
            "future",
            "lifetime_exceeded",
            "too_large",
            "duplicate",
            "ended",
            "user_removed",
        ]
    );
}

#[test]
fn random_near_miss_values_never_panic_or_verify() {
    // Deterministic xorshift so that a failure reproduces.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"v1.0123456789-_AZaz=+/ \xc3\xa9";
    let base = sealed();
    for _ in 0..20_000 {
        let mut bytes = base.clone().into_bytes();
        for _ in 0..=(next() % 4) {
            let at = usize::try_from(next()).unwrap_or_default() % bytes.len();
            let with = alphabet[usize::try_from(next()).unwrap_or_default() % alphabet.len()];
            match next() % 3 {
                0 => bytes[at] = with,
                1 => bytes.insert(at, with),
                _ => drop(bytes.remove(at)),
            }
        }
        let value = String::from_utf8_lossy(&bytes);
        if value != base {
            let got = open(NAME, &value, &keys(&[NEW]), T0, &LIMITS);
            assert!(got.is_err(), "accepted {value:?}");
        }
    }
}
