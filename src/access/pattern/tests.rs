use super::*;

fn pattern(text: &str) -> PathPattern {
    PathPattern::parse(text).expect("test patterns parse")
}

/// Servlet reading, case-sensitive: what [`PathPattern::matches`] does.
#[track_caller]
fn check(text: &str, path: &str, expected: bool) {
    assert_eq!(pattern(text).matches(path, false), expected, "{text:?} vs {path:?}");
}

#[track_caller]
fn check_as(text: &str, path: &str, reading: Reading, case_insensitive: bool, expected: bool) {
    let got = pattern(text).matches_as(path, reading, case_insensitive);
    assert_eq!(
        got, expected,
        "{text:?} vs {path:?} ({reading:?}, ci={case_insensitive})"
    );
}

#[track_caller]
fn check_error(text: &str, expected_part: &str) {
    let err = PathPattern::parse(text).expect_err(text);
    assert!(err.contains(expected_part), "{text:?}: {err}");
    assert!(err.contains(&format!("{text:?}")), "message names the pattern: {err}");
    assert!(err.starts_with(char::is_lowercase), "lowercase: {err}");
}

#[test]
fn literals_match_whole_segments_exactly() {
    check("/admin", "/admin", true);
    check("/admin", "/admin/", false);
    check("/admin", "/admin/x", false);
    check("/admin", "/administrator", false);
    check("/admin", "/adm", false);
    check("/admin", "/x/admin", false);
    check("/a/b", "/a/b", true);
    check("/a/b", "/a/c", false);
    check("/a/b", "/a", false);
    check("/caf%C3%A9", "/caf%C3%A9", true);
    check("/caf%C3%A9", "/café", true);
    check("/café", "/caf%C3%A9", true);
    check("/a%20b", "/a%20b", true);
}

#[test]
fn root_and_trailing_slash() {
    check("/", "/", true);
    check("/", "/a", false);
    check("/admin/", "/admin/", true);
    check("/admin/", "/admin", false);
    check("/admin/", "/admin/x", false);
    check("/a/b/", "/a/b/", true);
}

#[test]
fn one_star_matches_exactly_one_non_empty_segment() {
    check("/*", "/a", true);
    check("/*", "/", false);
    check("/*", "/a/", false);
    check("/*", "/a/b", false);
    check("/a/*", "/a/b", true);
    check("/a/*", "/a/", false);
    check("/a/*", "/a", false);
    check("/a/*/c", "/a/b/c", true);
    check("/a/*/c", "/a/c", false);
    check("/a/*/c", "/a/b/x/c", false);
    check("/*/*", "/a/b", true);
    check("/*/", "/a/", true);
}

#[test]
fn double_star_matches_zero_or_more_segments() {
    check("/**", "/", true);
    check("/**", "/a", true);
    check("/**", "/a/b/c/", true);
    check("/static/**", "/static", true);
    check("/static/**", "/static/", true);
    check("/static/**", "/static/a", true);
    check("/static/**", "/static/a/b/c.css", true);
    check("/static/**", "/statics", false);
    check("/static/**", "/", false);
    check("/static/**", "/x/static/a", false);
    check("/a/**/z", "/a/z", true);
    check("/a/**/z", "/a/b/z", true);
    check("/a/**/z", "/a/b/c/z", true);
    check("/a/**/z", "/a/z/z", true);
    check("/a/**/z", "/a/b/z/c", false);
    check("/**/z", "/z", true);
    check("/**/z", "/a/b/z", true);
    check("/**/z", "/a/b/z/", false);
    check("/a/**/*/z", "/a/z", false);
    check("/a/**/*/z", "/a/b/z", true);
    check("/**/**", "/a/b", true);
    check("/a/**/", "/a/b/", true);
    check("/a/**/", "/a/b", false);
}

#[test]
fn servlet_reading_ignores_parameters_for_literals() {
    check("/admin", "/admin;jsessionid=1", true);
    check("/admin/**", "/admin;jsessionid=1/x", true);
    check("/admin/**", "/admin;a=1;b=2/x", true);
    check("/admin/x", "/admin/x;v=2", true);
    check("/admin/**", "/;x/admin", true);
    check("/admin/**", "/;x/;y/admin/z", true);
    check("/a/", "/a/;x", true);
    check("/", "/;x", true);
    check("/a/*", "/a/b;x", true);
    check("/a/*", "/a/;x", false);
    check("/a/*/c", "/a/;x/c", false);
    check("/admin", "/admin%3B/x", false);
    check("/admin", "/admin%3Bx", false);
}

#[test]
fn raw_reading_keeps_parameters() {
    use Reading::Raw;
    check_as("/admin", "/admin;x", Raw, false, false);
    check_as("/admin/**", "/;x/admin", Raw, false, false);
    check_as("/a/*/c", "/a/;x/c", Raw, false, true);
    check_as("/a/*", "/a/b;x", Raw, false, true);
    check_as("/**", "/a;x/b", Raw, false, true);
    check_as("/admin/**", "/admin/x;y", Raw, false, true);
}

#[test]
fn case_insensitive_mode_folds_ascii_only() {
    use Reading::Servlet;
    check_as("/admin/**", "/ADMIN/x", Servlet, false, false);
    check_as("/admin/**", "/ADMIN/x", Servlet, true, true);
    check_as("/Admin", "/aDMIN;x", Servlet, true, true);
    check_as("/caf%C3%A9", "/CAF%C3%A9", Servlet, true, true);
    check_as("/%C3%A9", "/%C3%89", Servlet, true, false);
}

#[test]
fn paths_that_are_not_absolute_match_nothing() {
    check("/**", "", false);
    check("/**", "admin", false);
    check("/**", "*", false);
}

#[test]
fn parse_keeps_the_text() {
    assert_eq!(pattern("/static/**").as_str(), "/static/**");
    assert_eq!(pattern("/a/*/").to_string(), "/a/*/");
}

#[test]
fn bad_patterns_are_refused() {
    check_error("", "must start with \"/\"");
    check_error("admin/**", "must start with \"/\"");
    check_error("*", "must start with \"/\"");
    check_error("/a//b", "empty segment");
    check_error("//", "empty segment");
    check_error("/a/./b", "dot-segment");
    check_error("/a/..", "dot-segment");
    check_error("/%2E%2E/a", "dot-segment");
    check_error("/a*", "whole segment");
    check_error("/*a", "whole segment");
    check_error("/a/*.css", "whole segment");
    check_error("/***", "whole segment");
    check_error("/a/****/b", "whole segment");
    check_error("/a%2fb", "upper-case hex");
    check_error("/a%zz", "upper-case hex");
    check_error("/a%", "upper-case hex");
    check_error("/a%4", "upper-case hex");
    check_error("/a%2Fb", "%2F can never match");
    check_error("/a%5C", "%5C can never match");
    check_error("/a%00", "%00 can never match");
    check_error("/admin;x", "parameters");
    check_error("/a?b=1", "cannot appear");
    check_error("/a#b", "cannot appear");
    check_error("/a b", "cannot appear");
    check_error("/a\\b", "cannot appear");
    check_error("/a\tb", "cannot appear");
    check_error("/<a>", "cannot appear");
}

#[test]
fn good_patterns_parse() {
    for text in [
        "/",
        "/**",
        "/*",
        "/a/",
        "/a/**/b/*",
        "/%C3%A9",
        "/é",
        "/a:b@c!$&'()+,=~_-.x",
        "/.well-known/**",
    ] {
        assert!(PathPattern::parse(text).is_ok(), "{text:?}");
    }
}
