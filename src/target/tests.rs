use super::*;

#[track_caller]
fn check(target: &str, expected: Result<&str, BadTarget>) {
    let uri: Uri = target.parse().expect("test targets parse as URIs");
    let got = normalise_path(&uri);
    assert_eq!(got.as_deref().map_err(|e| *e), expected, "{target:?}");
}

#[test]
fn plain_paths_are_untouched() {
    check("/", Ok("/"));
    check("/a/b", Ok("/a/b"));
    check("/a/b/", Ok("/a/b/"));
    check("/a/b?x=1&y=%2F", Ok("/a/b"));
    check("/a;v=1/b", Ok("/a;v=1/b"));
    check("/a.b/c..d/.well-known", Ok("/a.b/c..d/.well-known"));
    check("http://example.com/a/b", Ok("/a/b"));
}

#[test]
fn dot_segments_are_removed() {
    check("/a/./b", Ok("/a/b"));
    check("/a/../b", Ok("/b"));
    check("/public/../admin", Ok("/admin"));
    check("/a/b/..", Ok("/a/"));
    check("/a/b/.", Ok("/a/b/"));
    check("/..", Ok("/"));
    check("/../../etc/passwd", Ok("/etc/passwd"));
    check("/a/b/../../..", Ok("/"));
}

#[test]
fn escaped_dot_segments_are_removed() {
    check("/public/%2e%2e/admin", Ok("/admin"));
    check("/public/%2E%2E/admin", Ok("/admin"));
    check("/public/.%2e/admin", Ok("/admin"));
    check("/public/%2e./admin", Ok("/admin"));
    check("/a/%2e/b", Ok("/a/b"));
}

#[test]
fn repeated_slashes_are_merged() {
    check("//admin", Ok("/admin"));
    check("/a//b///c", Ok("/a/b/c"));
    check("/a//", Ok("/a/"));
}

#[test]
fn unreserved_escapes_are_decoded_others_uppercased() {
    check("/%61dmin", Ok("/admin"));
    check("/a%7eb", Ok("/a~b"));
    check("/a%20b", Ok("/a%20b"));
    check("/a%3fb", Ok("/a%3Fb"));
    check("/caf%c3%a9", Ok("/caf%C3%A9"));
}

#[test]
fn ambiguous_forms_are_refused() {
    check("/a%2fb", Err(BadTarget::EncodedSeparator));
    check("/a%2Fb", Err(BadTarget::EncodedSeparator));
    check("/a%5cb", Err(BadTarget::EncodedSeparator));
    check("/a%5Cb", Err(BadTarget::EncodedSeparator));
    check("/a%00b", Err(BadTarget::Nul));
    check("/a%", Err(BadTarget::Escape));
    check("/a%2", Err(BadTarget::Escape));
    check("/a%zz", Err(BadTarget::Escape));
    check("/a%+1", Err(BadTarget::Escape));
    check("/static/..;/admin", Err(BadTarget::DotSegmentParameter));
    check("/static/.;x/admin", Err(BadTarget::DotSegmentParameter));
    check("/static/%2e%2e;/admin", Err(BadTarget::DotSegmentParameter));
    check("/a%3Bx", Err(BadTarget::EncodedSemicolon));
    check("/admin%3b/x", Err(BadTarget::EncodedSemicolon));
}

/// Bytes that a backend decoding twice would read differently
/// (attack review of 9e8e3e0: `%252e%252e`, `%252f`).
#[test]
fn double_encoded_bytes_are_refused() {
    check("/public/%252e%252e/admin", Err(BadTarget::DoubleEncoded));
    check("/a%252fb", Err(BadTarget::DoubleEncoded));
    check("/a%252F", Err(BadTarget::DoubleEncoded));
    check("/a%2500", Err(BadTarget::DoubleEncoded));
    // Decoding the unreserved escapes must not build one either (fuzzing).
    check("/%25%32%65%25%32%65/admin", Err(BadTarget::DoubleEncoded));
    check("/a%25%32F", Err(BadTarget::DoubleEncoded));
    check("/a%25%7e2e", Ok("/a%25~2e"));
    // A lone escaped `%` that is not followed by an escape is still text.
    check("/100%25", Ok("/100%25"));
    check("/100%25off", Ok("/100%25off"));
    check("/a%25zz", Ok("/a%25zz"));
}

#[test]
fn non_path_forms_are_refused() {
    check("*", Err(BadTarget::Form));
    check("example.com:443", Err(BadTarget::Form));
}

/// Every path of up to six bytes from an alphabet of the bytes that matter:
/// the one-pass fast path says "plain" exactly when the three whole-string
/// checks it replaced do, and a plain path is its own canonical form.
#[test]
fn the_fast_path_takes_only_paths_that_are_already_canonical() {
    const ALPHABET: &[u8] = b"/.a%\\;2e\0";
    let reference = |path: &str| {
        !path.bytes().any(|b| b == b'%' || b == b'\\' || b == 0)
            && !path.contains("//")
            && !path.split('/').any(|seg| seg.starts_with('.'))
    };
    let mut tails: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..5 {
        let longer: Vec<Vec<u8>> = tails
            .iter()
            .filter(|t| t.len() == tails.last().map_or(0, Vec::len))
            .flat_map(|t| {
                ALPHABET.iter().map(move |&b| {
                    let mut t = t.clone();
                    t.push(b);
                    t
                })
            })
            .collect();
        tails.extend(longer);
    }
    let mut plain = 0;
    for tail in &tails {
        let path = format!("/{}", String::from_utf8(tail.clone()).expect("ascii"));
        assert_eq!(is_plain(&path), reference(&path), "{path:?}");
        if is_plain(&path) {
            plain += 1;
            assert_eq!(canonical(&path).as_deref(), Ok(path.as_str()), "{path:?}");
        }
    }
    assert!(
        plain > 1000 && plain < tails.len(),
        "both kinds were tried: {plain} plain"
    );
}
