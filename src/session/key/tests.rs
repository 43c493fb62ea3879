use super::*;

const LONG: &[u8] = b"0123456789abcdef0123456789abcdef";

fn key(bytes: &[u8]) -> Key {
    Key::new(bytes.to_vec(), MIN_KEY_LEN).expect("test key is long enough")
}

#[track_caller]
fn check_new(bytes: &[u8], min_len: usize, expected: Result<(), &str>) {
    let got = Key::new(bytes.to_vec(), min_len).map(|_| ()).map_err(|e| e.to_string());
    assert_eq!(got, expected.map_err(str::to_owned));
}

#[test]
fn key_length_is_checked() {
    check_new(LONG, 32, Ok(()));
    check_new(&LONG[..31], 32, Err("key #1 is 31 bytes; at least 32 are required"));
    check_new(b"short", 0, Ok(()));
    check_new(b"", 0, Err("key #1 is 0 bytes; at least 1 are required"));
    check_new(b"", 32, Err("key #1 is 0 bytes; at least 32 are required"));
}

#[test]
fn from_bytes_numbers_every_short_key() {
    let raw = vec![LONG.to_vec(), b"twelve bytes".to_vec(), b"x".to_vec()];
    let errors: Vec<String> = Keys::from_bytes(raw, 32)
        .expect_err("two keys are short")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "key #2 is 12 bytes; at least 32 are required",
            "key #3 is 1 bytes; at least 32 are required",
        ]
    );
}

#[test]
fn empty_key_lists_are_refused() {
    assert_eq!(Keys::new(vec![]).map(|_| ()), Err(KeyError::Empty));
    let errors = Keys::from_bytes(vec![], 32).expect_err("empty");
    assert_eq!(errors, [KeyError::Empty]);
}

#[test]
fn first_key_signs_and_all_verify_in_order() {
    let other = b"ffffffffffffffffffffffffffffffff";
    let keys = Keys::new(vec![key(LONG), key(other)]).expect("non-empty");
    assert_eq!(keys.signing().as_bytes(), LONG);
    let all: Vec<&[u8]> = keys.iter().map(Key::as_bytes).collect();
    assert_eq!(all, [LONG, other.as_slice()]);
}

#[test]
fn debug_never_shows_key_bytes() {
    let keys = Keys::new(vec![key(LONG), key(LONG)]).expect("non-empty");
    assert_eq!(format!("{:?}", key(LONG)), "Key(<redacted>)");
    assert_eq!(format!("{keys:?}"), "Keys { count: 2, .. }");
    assert!(!format!("{keys:#?}").contains("0123"));
}

#[track_caller]
fn check_split(got: Vec<Vec<u8>>, expected: &[&str]) {
    let got: Vec<String> = got
        .into_iter()
        .map(|k| String::from_utf8(k).expect("test keys are UTF-8"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn key_files_are_split_by_line() {
    check_split(parse_key_list(""), &[]);
    check_split(parse_key_list("new\nold\n"), &["new", "old"]);
    check_split(
        parse_key_list("# rotated 2024-05\n  new  \r\n\n\t\nold\n  # comment\n"),
        &["new", "old"],
    );
    check_split(parse_key_list("a b c\n"), &["a b c"]);
}

#[test]
fn env_keys_are_split_by_comma() {
    check_split(parse_key_env(""), &[]);
    check_split(parse_key_env("new,old"), &["new", "old"]);
    check_split(parse_key_env(" new , ,old,"), &["new", "old"]);
}

#[test]
fn generated_keys_are_43_base64url_chars_of_32_random_bytes() {
    let a = generate().expect("os rng");
    let b = generate().expect("os rng");
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
    let decoded = URL_SAFE_NO_PAD.decode(&a).expect("base64url");
    assert_eq!(decoded.len(), 32);
    assert!(Key::new(a.into_bytes(), MIN_KEY_LEN).is_ok());
}
