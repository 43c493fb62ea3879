use super::*;

/// The open-redirect corpus (SPEC §4); every line must be refused.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/attacks/openredirects.txt");
const CORPUS_LINES: usize = 559;

#[track_caller]
fn accepted(rd: &str) {
    assert_eq!(same_origin_path(rd), Some(rd), "should be accepted: {rd:?}");
}

#[track_caller]
fn refused(rd: &str) {
    assert_eq!(same_origin_path(rd), None, "should be refused: {rd:?}");
}

/// One round of URL query-unescaping, as Go's `url.QueryUnescape` (the
/// corpus's origin) does: `+` to space, then percent-decoding.
fn query_unescape(line: &str) -> String {
    let spaced = line.replace('+', " ");
    String::from_utf8_lossy(&percent_decode(spaced.as_bytes()).collect::<Vec<u8>>()).into_owned()
}

#[test]
fn every_corpus_line_is_refused_as_written_and_unescaped() {
    let corpus = std::fs::read_to_string(CORPUS).expect("the attack corpus is readable");
    let lines: Vec<&str> = corpus.lines().collect();
    assert_eq!(lines.len(), CORPUS_LINES, "no line may be skipped");
    for line in lines {
        refused(line);
        refused(&query_unescape(line));
    }
}

#[test]
fn same_origin_paths_are_accepted() {
    for rd in [
        "/",
        "/x",
        "/a/b",
        "/a/b/",
        "/a/b?c=d&e=/f",
        "/search?q=a%20b",
        "/search?q=a+b",
        "/#frag",
        "/a#frag/with/slashes?and=query",
        "/a?b#c",
        "/?",
        "/cb?next=/a&email=a@b.c&t=12:00",
        "/a:b/c@d",
        "/users/@alice",
        "/a;jsessionid=1/b",
        "/caf%C3%A9",
        "/caf%c3%a9",
        "/discount?pct=100%25",
        "/q?v=%252F",
        "/list?filter[name]=x&sort[]=a",
        "/json?x={a|b}^",
        "/a/../b",
        "/..",
        "/.well-known/x",
        "/~user/it's(fine)!*$,=",
        "/a-b_c.d",
        "/api/v1/items/42?fields=a,b&limit=10",
        "/next?path=%2Fdashboard",
        "/oauth/cb?code=abc&state=x%3Ay",
    ] {
        accepted(rd);
    }
}

#[test]
fn a_long_path_is_accepted_up_to_the_cap() {
    let at_cap = format!("/{}", "a".repeat(MAX_LEN - 1));
    accepted(&at_cap);
    refused(&format!("{at_cap}a"));
}

#[test]
fn tricky_targets_beyond_the_corpus_are_refused() {
    for rd in [
        "",
        "x",
        "./x",
        "?/x",
        "#/x",
        " /x",
        "%2Fx",
        "//",
        "///",
        "/\\",
        "/\\evil.com",
        "/a\\b",
        "/%5Cevil.com",
        "/%5cevil.com",
        "/%2F",
        "/%2f/evil.com",
        "/%2F%2Fevil.com",
        "/.%2F%2Fevil.com",
        "/%252F%252Fevil.com",
        "/%25252F%25252Fevil.com",
        "/%25%32%46%25%32%46evil.com",
        "/a//b",
        "/x?next=//evil.com",
        "/x?next=https://evil.com",
        "/x?next=https:%2F%2Fevil.com",
        "/x#//evil.com",
        "/\t/evil.com",
        "/%09/evil.com",
        "/%0A/evil.com",
        "/%0d/evil.com",
        "/%2509/evil.com",
        "/a%00b",
        "/a%7F",
        "/a b",
        "/a\u{00a0}b",
        "/\u{3031}evil.com",
        "/\u{ff0f}evil.com",
        "/a\"onload=\"x",
        "/<script>",
        "/a`b",
        "/a%",
        "/a%2",
        "/a%zz",
        "/a%%32%46",
    ] {
        refused(rd);
    }
}

/// More than four changing decodings is refused even when every stage is
/// clean; four is accepted.
#[test]
fn decoding_depth_is_bounded() {
    accepted("/a%25252541");
    refused("/a%2525252541");
}
