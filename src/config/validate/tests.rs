use super::*;

#[track_caller]
fn problems(text: &str) -> Vec<Problem> {
    match from_toml_str(text) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[track_caller]
fn syntax(text: &str) -> String {
    match from_toml_str(text) {
        Err(e @ ConfigError::Syntax { .. }) => e.to_string(),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = from_toml_str("").expect("defaults");
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8080");
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_header_bytes, 16384);
    assert_eq!(c.upstream.authority.as_str(), "127.0.0.1:8000");
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.upstream.timeout, Duration::from_secs(60));
    assert!(c.upstream.preserve_host);
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems(
        r#"
        [server]
        listen = "localhost"
        trusted_proxies = ["10.0.0.0/8", "nonsense", "300.1.1.1"]
        header_read_timeout = "10 seconds"
        max_header_bytes = 10
        [upstream]
        url = "ftp://example.com"
        timeout = "0s"
        "#,
    );
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.listen",
            "server.trusted_proxies",
            "server.header_read_timeout",
            "server.max_header_bytes",
            "upstream.url",
            "upstream.timeout"
        ]
    );
    assert!(p[0].message.contains("\"localhost\""), "{}", p[0].message);
    assert!(p[1].message.contains("\"nonsense\", \"300.1.1.1\""), "{}", p[1].message);
    let listed = p[1].message.rsplit("got").next().unwrap_or("");
    assert!(
        !listed.contains("10.0.0.0/8"),
        "only bad entries are listed: {}",
        p[1].message
    );
    assert!(p[5].message.contains("greater than zero"), "{}", p[5].message);
}

#[test]
fn upstream_url_forms() {
    for bad in [
        "127.0.0.1:8000",
        "/relative",
        "http://",
        "http://user:pw@host:1",
        "http://host/prefix",
        "http://host/?q=1",
        "https://host",
    ] {
        let p = problems(&format!("[upstream]\nurl = {bad:?}\n"));
        assert_eq!(p.len(), 1, "{bad}");
        assert_eq!(p[0].key, "upstream.url");
    }
    for good in ["http://127.0.0.1:9", "http://backend", "http://[::1]:80/"] {
        from_toml_str(&format!("[upstream]\nurl = {good:?}\n")).expect(good);
    }
}

#[test]
fn credentials_in_upstream_url_are_not_echoed() {
    let p = problems("[upstream]\nurl = \"http://user:hunter2@host:1\"\n");
    assert!(!p[0].message.contains("hunter2"), "{}", p[0].message);
}

#[test]
fn trusted_proxies_accept_cidrs_and_addresses() {
    let c = from_toml_str("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", \"192.0.2.7\"]\n").expect("valid");
    let t = &c.server.trusted_proxies;
    assert!(t.contains("10.9.8.7".parse().expect("ip")));
    assert!(t.contains("::1".parse().expect("ip")));
    assert!(
        t.contains("::ffff:192.0.2.7".parse().expect("ip")),
        "mapped v4 is the v4 address"
    );
    assert!(!t.contains("192.0.2.8".parse().expect("ip")));
}

#[test]
fn unknown_keys_are_errors_naming_line_and_key() {
    let msg = syntax("[server]\nlisten = \"0.0.0.0:1\"\nlistn = \"x\"\n");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("server.listn"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
    let msg = syntax("[servre]\nlisten = \"0.0.0.0:1\"\n");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn syntax_errors_never_quote_values() {
    let msg = syntax("[upstream]\ntimeout = \"s3cr3t-value\"\nurl = 5\n");
    assert!(msg.contains("upstream.url"), "{msg}");
    let msg = syntax("[server]\nmax_header_bytes = \"s3cr3t-value\"\n");
    assert!(!msg.contains("s3cr3t"), "{msg}");
    assert!(msg.contains("server.max_header_bytes"), "{msg}");
    let msg = syntax("[server]\nlisten = \"s3cr3t-value\n");
    assert!(!msg.contains("s3cr3t"), "{msg}");
}

#[test]
fn tls_keys_are_refused_until_supported() {
    let p = problems("[server]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n");
    assert_eq!(p[0].key, "server.tls_cert");
}

#[test]
fn example_file_parses_and_documents_the_defaults() {
    let example = include_str!("../../../config.example.toml");
    let parsed = from_toml_str(example).unwrap_or_else(|e| panic!("config.example.toml: {e}"));
    let defaults = from_toml_str("").expect("defaults");
    assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
}
