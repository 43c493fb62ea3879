use super::*;

const STARLETTE_SECRET: &[u8] = b"starlette-shared-secret-0001";
const FLASK_SECRET: &[u8] = b"flask-shared-secret-0001";
const T0: u64 = 1_700_000_000;

/// FORMATS.md, "Worked example".
const STARLETTE_COOKIE: &str = "eyJhIjogMX0=.ZVPxAA.5KYMbk6VuijWccRD0uxGIJd7224";
const FLASK_COOKIE: &str = "eyJhIjoxfQ.ZVPxAA.bzWcebgv3aNfLLjnE53SNtw27d8";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn derived_keys_match_the_worked_example() {
    let cases = [
        (STARLETTE, STARLETTE_SECRET, "6506b2f834c1acdfce9958f790b0928be4da5f2a"),
        (FLASK, FLASK_SECRET, "9d426acde1ff93de33c1337f450cf03eb8285213"),
    ];
    for (profile, secret, expected) in cases {
        assert_eq!(hex(&derive_key(profile, secret)), expected, "{profile:?}");
    }
}

#[test]
fn sign_matches_the_worked_example() {
    assert_eq!(sign(STARLETTE, STARLETTE_SECRET, "eyJhIjogMX0=", T0), STARLETTE_COOKIE);
    assert_eq!(sign(FLASK, FLASK_SECRET, "eyJhIjoxfQ", T0), FLASK_COOKIE);
}

#[test]
fn signature_is_27_characters() {
    let cookie = sign(FLASK, b"", "", 0);
    let (_, signature) = cookie.rsplit_once('.').expect("signed value has dots");
    assert_eq!(signature.len(), 27);
    assert_eq!(
        cookie.len(),
        2 + 27,
        "empty payload and time 0: `..` then the signature"
    );
}

#[test]
fn timestamps_encode_and_decode() {
    #[track_caller]
    fn check(timestamp: u64, segment: &str) {
        assert_eq!(encode_timestamp(timestamp), segment, "encode {timestamp}");
        assert_eq!(decode_timestamp(segment), Ok(timestamp), "decode {segment:?}");
    }
    check(0, "");
    check(1, "AQ");
    check(255, "_w");
    check(256, "AQA");
    check(1 << 24, "AQAAAA");
    check(T0, "ZVPxAA");
    check(u64::from(u32::MAX), "_____w");
    check(1 << 32, "AQAAAAA");
    check(u64::MAX, "__________8");
}

#[test]
fn odd_timestamp_segments() {
    #[track_caller]
    fn check(segment: &str, expected: Result<u64, CompatRejected>) {
        assert_eq!(decode_timestamp(segment), expected, "{segment:?}");
    }
    // Leading zero bytes are not canonical but itsdangerous reads them.
    check("AABlU_EA", Ok(T0));
    check("AAAAAAAAAAA", Ok(0));
    // Nine bytes do not fit.
    check("AQAAAAAAAAAA", Err(CompatRejected::Malformed));
    check("ZVPx!A", Err(CompatRejected::Malformed));
    check("ZVPxAA==", Err(CompatRejected::Malformed));
    check("Z", Err(CompatRejected::Malformed));
}

#[test]
fn age_rules() {
    #[track_caller]
    fn check(timestamp: u64, now: u64, max_age: Option<u64>, expected: Result<(), CompatRejected>) {
        assert_eq!(
            check_age(timestamp, now, max_age),
            expected,
            "signed {timestamp}, now {now}, max_age {max_age:?}"
        );
    }
    check(T0, T0, Some(0), Ok(()));
    check(T0, T0 + 1, Some(0), Err(CompatRejected::Expired));
    check(T0, T0 + 60, Some(60), Ok(()));
    check(T0, T0 + 61, Some(60), Err(CompatRejected::Expired));
    check(T0, T0 - 1, Some(60), Err(CompatRejected::Future));
    check(u64::MAX, 0, Some(u64::MAX), Err(CompatRejected::Future));
    check(0, u64::MAX, Some(u64::MAX), Ok(()));
    check(T0, 0, None, Ok(()));
    check(0, u64::MAX, None, Ok(()));
}

#[test]
fn verify_reports_payload_timestamp_and_key() {
    let old: &[u8] = b"old";
    let cookie = sign(FLASK, old, ".eJxLAAA", T0);
    let by_old = verify(FLASK, &cookie, &[b"new", old], T0 + 5, Some(10));
    let expected = Verified {
        payload: ".eJxLAAA",
        timestamp: T0,
        stale_key: true,
    };
    assert_eq!(by_old, Ok(expected));
    let by_new = verify(FLASK, &cookie, &[old, b"new"], T0 + 5, Some(10));
    assert_eq!(by_new.map(|v| v.stale_key), Ok(false));
}

#[test]
fn verify_checks_in_itsdangerous_order() {
    let good = sign(STARLETTE, STARLETTE_SECRET, "e30=", T0);
    let forged = format!("{}A", &good[..good.len() - 1]);
    let too_long = format!("{}.{}", "x".repeat(MAX_VALUE_LEN), good);
    #[track_caller]
    fn check(value: &str, keys: &[&[u8]], now: u64, expected: Result<u64, CompatRejected>) {
        let got = verify(STARLETTE, value, keys, now, Some(60)).map(|v| v.timestamp);
        assert_eq!(got, expected, "{value:?}");
    }
    let keys: &[&[u8]] = &[STARLETTE_SECRET];
    check(&good, keys, T0, Ok(T0));
    check(&too_long, keys, T0, Err(CompatRejected::TooLarge));
    check("", keys, T0, Err(CompatRejected::Malformed));
    check("no-dot-at-all", keys, T0, Err(CompatRejected::Malformed));
    // A forged value is a bad signature even when it is also expired.
    check(&forged, keys, T0 + 3600, Err(CompatRejected::BadSignature));
    check(&good, &[], T0, Err(CompatRejected::BadSignature));
    check(&good, &[b"other"], T0, Err(CompatRejected::BadSignature));
    check(&format!("{good}="), keys, T0, Err(CompatRejected::BadSignature));
    check(&format!("{good}AAAA"), keys, T0, Err(CompatRejected::BadSignature));
    // Re-signed without the timestamp: the signature is over `e30=` only.
    let plain = format!(
        "e30=.{}",
        URL_SAFE_NO_PAD.encode(signature(STARLETTE, STARLETTE_SECRET, b"e30="))
    );
    check(&plain, keys, T0, Err(CompatRejected::Malformed));
    // Dropping the timestamp from a timestamped value breaks its signature.
    check(
        &good.replacen(".ZVPxAA", "", 1),
        keys,
        T0,
        Err(CompatRejected::BadSignature),
    );
    check(&good, keys, T0 + 61, Err(CompatRejected::Expired));
    check(&good, keys, T0 - 1, Err(CompatRejected::Future));
}

#[test]
fn value_length_limit_is_inclusive() {
    let payload_len = MAX_VALUE_LEN - ".ZVPxAA.".len() - 27;
    let at_limit = sign(STARLETTE, STARLETTE_SECRET, &"A".repeat(payload_len), T0);
    assert_eq!(at_limit.len(), MAX_VALUE_LEN);
    assert!(verify(STARLETTE, &at_limit, &[STARLETTE_SECRET], T0, None).is_ok());
    let over = sign(STARLETTE, STARLETTE_SECRET, &"A".repeat(payload_len + 1), T0);
    assert_eq!(
        verify(STARLETTE, &over, &[STARLETTE_SECRET], T0, None),
        Err(CompatRejected::TooLarge)
    );
}

#[test]
fn keys_of_any_length_sign() {
    for secret in [&b""[..], b"k", &[0xffu8; 200]] {
        for profile in [STARLETTE, FLASK] {
            let cookie = sign(profile, secret, "e30", T0);
            assert!(
                verify(profile, &cookie, &[secret], T0, None).is_ok(),
                "{profile:?} {secret:?}"
            );
        }
    }
}

#[test]
fn profiles_do_not_verify_each_other() {
    let cookie = sign(FLASK, FLASK_SECRET, "eyJhIjoxfQ", T0);
    assert_eq!(
        verify(STARLETTE, &cookie, &[FLASK_SECRET], T0, None),
        Err(CompatRejected::BadSignature)
    );
}
