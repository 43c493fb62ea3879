//! The binary's contract: exit codes and config error reporting.

use std::process::{Command, Output};

fn usher(args: &[&str], config_text: Option<&str>) -> Output {
    usher_with_keys(args, config_text, Some(crate::support::TEST_KEY))
}

/// `usher ARGS -c FILE`, with `$USHER_SECRET_KEYS` set to `keys` or unset.
fn usher_with_keys(args: &[&str], config_text: Option<&str>, keys: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_usher"));
    cmd.args(args)
        .env_remove("USHER_CONFIG")
        .env_remove("USHER_SECRET_KEYS");
    if let Some(keys) = keys {
        cmd.env("USHER_SECRET_KEYS", keys);
    }
    let dir = crate::support::TempDir::new("cli");
    if let Some(text) = config_text {
        let path = dir.join("usher.toml");
        std::fs::write(&path, text).expect("write config");
        cmd.arg("-c").arg(path);
    }
    cmd.output().expect("run usher")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_accepts_a_good_config_with_a_summary() {
    let out = usher(&["check"], Some("[upstream]\nurl = \"http://127.0.0.1:9000\"\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("127.0.0.1:9000"));
}

/// What a reviewer wants to see: users, each rule in order, what the
/// backend may write, and a warning when it may write identity.
#[test]
fn check_summarises_users_rules_and_backend_writes() {
    let hash = usher::users::hash_password("pw").expect("hash");
    let config = format!(
        "[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\
         [access]\ndefault = \"authenticated\"\n\
         [[access.rules]]\npath = \"/public/**\"\nallow = \"anyone\"\n\
         [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\nmethods = [\"POST\"]\n\
         [session.upstream]\nwritable = [\"groups\", \"cart\"]\n"
    );
    let out = usher(&["check"], Some(&config));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    for line in [
        "users            1: alice",
        "otherwise signed in",
        "1. /public/** -> anyone",
        "2. /admin/** [POST] -> groups admin",
        "backend writes   usher-session (groups, cart)",
        "lets the backend write groups",
    ] {
        assert!(t.contains(line), "{line:?} missing from:\n{t}");
    }
}

#[test]
fn check_reports_every_problem_and_exits_64() {
    let config = "[server]\nlisten = \"nowhere\"\nheader_read_timeout = \"soon\"\n\
                  [upstream]\nurl = \"http://user:hunter2-secret@host:1\"\ntimeout = \"-1s\"\n";
    let out = usher(&["check"], Some(config));
    assert_eq!(out.status.code(), Some(64));
    let t = text(&out);
    for key in [
        "server.listen",
        "server.header_read_timeout",
        "upstream.url",
        "upstream.timeout",
    ] {
        assert!(t.contains(key), "{key} missing from:\n{t}");
    }
    assert!(!t.contains("hunter2"), "secret echoed:\n{t}");
}

/// Attack review of 9e8e3e0: `check` stopped at the first unknown key and
/// hid every other problem.
#[test]
fn check_reports_unknown_keys_together_with_every_other_problem() {
    let config = "[server]\nlistn = \"x\"\nmax_connections = 0\n[upstream]\ntimout = \"5s\"\nurl = \"ftp://x\"\n";
    let out = usher(&["check"], Some(config));
    assert_eq!(out.status.code(), Some(64));
    let t = text(&out);
    for key in [
        "server.listn",
        "upstream.timout",
        "server.max_connections",
        "upstream.url",
    ] {
        assert!(t.contains(key), "{key} missing from:\n{t}");
    }
    assert!(
        t.contains("line 2") && t.contains("line 5"),
        "unknown keys name their lines:\n{t}"
    );
}

#[test]
fn run_with_a_bad_config_binds_nothing_and_exits_64() {
    let out = usher(&["run"], Some("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n"));
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("server.bogus"), "{}", text(&out));
}

#[test]
fn syntax_error_does_not_echo_the_file() {
    let out = usher(
        &["check"],
        Some("[upstream]\nurl = \"http://x:1\"\ntimeout = \"my-secret-value\n"),
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(!text(&out).contains("my-secret-value"), "{}", text(&out));
}

#[test]
fn missing_config_file_is_64() {
    let out = usher(&["check", "-c", "/nonexistent/usher.toml"], None);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out).contains("/nonexistent/usher.toml"));
}

#[test]
fn bad_usage_is_64_and_help_is_0() {
    assert_eq!(usher(&["frobnicate"], None).status.code(), Some(64));
    assert_eq!(usher(&["run", "--bogus"], None).status.code(), Some(64));
    assert_eq!(usher(&["--help"], None).status.code(), Some(0));
    assert_eq!(usher(&["--version"], None).status.code(), Some(0));
}

#[test]
fn config_path_comes_from_the_environment() {
    let dir = crate::support::TempDir::new("env");
    let path = dir.join("from-env.toml");
    std::fs::write(&path, "[upstream]\nurl = \"http://127.0.0.1:9123\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_usher"))
        .arg("check")
        .env("USHER_CONFIG", &path)
        .env("USHER_SECRET_KEYS", crate::support::TEST_KEY)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("9123"));
}

#[test]
fn hash_password_reads_stdin_and_prints_a_verifiable_argon2id_hash() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_usher"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"open sesame\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    let hash = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = usher::users::Hash::parse(&hash).expect("parses");
    assert!(parsed.verify("open sesame"));
    assert!(!parsed.verify("open sesame\n"));
}

#[test]
fn gen_secret_prints_32_random_bytes_as_base64url() {
    let a = usher(&["gen-secret"], None);
    let b = usher(&["gen-secret"], None);
    assert_eq!(a.status.code(), Some(0));
    let key = String::from_utf8_lossy(&a.stdout).trim().to_string();
    assert_eq!(key.len(), 43, "{key}");
    assert!(
        key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "{key}"
    );
    assert_ne!(a.stdout, b.stdout);
}

#[test]
fn session_decode_explains_a_cookie() {
    let key = crate::support::TEST_KEY;
    let keys = usher::session::Keys::from_bytes(vec![key.as_bytes().to_vec()], 32).expect("keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let payload = serde_json::json!({"user": "alice", "cart": {"apple": 2}});
    let value = usher::session::seal(
        "usher_session",
        payload.as_object().expect("map"),
        now - 90,
        keys.signing(),
    );
    let config = "[upstream]\nurl = \"http://127.0.0.1:9\"\n";
    let out = usher(&["session", "decode", &format!("usher_session={value}")], Some(config));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("\"alice\"") && t.contains("ago"), "{t}");
    let mut tampered = value.clone();
    tampered.push('x');
    let out = usher(&["session", "decode", &tampered], Some(config));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("rejected"), "{}", text(&out));
}

/// A new user's first `usher check -c config.example.toml`: the key file it
/// names does not exist yet, and the message says how to make it.
#[test]
fn checking_the_example_says_how_to_make_the_key_file() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml")).expect("example");
    let text_of_file = example.replace("/run/secrets/usher_keys", "/nonexistent/usher_keys");
    let out = usher_with_keys(&["check"], Some(&text_of_file), None);
    assert_eq!(out.status.code(), Some(64));
    let t = text(&out);
    assert!(t.contains("usher gen-secret > /nonexistent/usher_keys"), "{t}");
    assert_eq!(
        t.matches("session.secret_keys_file").count(),
        1,
        "the only problem:\n{t}"
    );
}

/// `usher healthcheck` speaks plainly, and a malformed `--url` is a usage
/// error (64).
#[test]
fn healthcheck_says_what_failed_in_words() {
    let out = usher(&["healthcheck", "--url", "http://127.0.0.1:1/healthz"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("nothing listening on 127.0.0.1:1"),
        "{}",
        text(&out)
    );
    for bad in ["localhost:9090", "not a url", "ftp://127.0.0.1/x", "/healthz"] {
        let out = usher(&["healthcheck", "--url", bad], None);
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", text(&out));
    }
}
