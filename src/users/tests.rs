use super::*;

fn user(name: &str, password: &str) -> User {
    User {
        name: name.into(),
        hash: Hash::Argon2(hash_password(password).expect("hash")),
        email: Some(format!("{name}@example.com")),
        groups: vec!["staff".into()],
    }
}

#[test]
fn argon2_users_verify() {
    let users = Users::new(vec![user("Alice", "correct horse")]).expect("users");
    assert_eq!(
        users.verify("alice", "correct horse").map(|u| u.name.as_str()),
        Some("Alice")
    );
    assert_eq!(
        users.verify(" ALICE ", "correct horse").map(|u| u.name.as_str()),
        Some("Alice")
    );
    assert!(users.verify("alice", "wrong").is_none());
    assert!(users.verify("mallory", "correct horse").is_none());
    assert!(users.verify("", "").is_none());
}

#[test]
fn duplicate_names_are_refused() {
    assert!(Users::new(vec![user("bob", "a"), user("BOB", "b")]).is_err());
}

#[test]
fn bcrypt_lines_are_accepted_other_schemes_refused_by_line() {
    let bcrypt = bcrypt::hash("pw", 4).expect("hash").replacen("$2b$", "$2y$", 1);
    let text = format!(
        "# comment\n\ncarol:{bcrypt}\ndave:$apr1$abc$def\nerin:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\nfrank:plain\nnocolon\n"
    );
    let errors = parse_htpasswd(&text).expect_err("refused lines");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].contains("line 4") && errors[0].contains("apr1"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("SHA-1"), "{}", errors[1]);
    assert!(errors.iter().all(|e| !e.contains("qUqP5")), "hash echoed: {errors:?}");
    let users = parse_htpasswd(&format!("carol:{bcrypt}\n")).expect("bcrypt accepted");
    assert!(users[0].1.verify("pw"));
    assert!(!users[0].1.verify("nope"));
}

#[test]
fn hashes_are_redacted_in_debug() {
    let u = user("gina", "pw");
    assert!(!format!("{u:?}").contains("argon2id$"), "{u:?}");
}

#[test]
fn malformed_hashes_are_refused_at_parse() {
    assert!(Hash::parse("$argon2id$garbage").is_err());
    assert!(Hash::parse("$2y$05$short").is_err());
    assert!(Hash::parse(&hash_password("x").expect("hash")).is_ok());
}

#[test]
fn an_unknown_user_costs_one_hash_check_like_a_wrong_password() {
    let users = Users::new(vec![user("alice", "pw"), user("bob", "pw")]).expect("users");
    assert_eq!(users.checks(), 0);
    assert!(users.verify("nobody", "pw").is_none());
    assert_eq!(users.checks(), 1, "the decoy was checked");
    assert!(users.verify("alice", "wrong").is_none());
    assert_eq!(users.checks(), 2);
    // Same scheme and parameters, so the same work.
    let params = |h: &Hash| match h {
        Hash::Argon2(phc) => phc.split('$').take(4).collect::<Vec<_>>().join("$"),
        Hash::Bcrypt(b) => b[..7].to_string(),
    };
    let real = &users.by_name["alice"].hash;
    assert_eq!(params(&users.decoy), params(real));
}

#[test]
fn the_decoy_follows_the_majority_scheme() {
    let bcrypt = |name: &str| User {
        name: name.into(),
        hash: Hash::Bcrypt(bcrypt::hash("pw", bcrypt::DEFAULT_COST).expect("hash")),
        email: None,
        groups: vec![],
    };
    let users = Users::new(vec![bcrypt("a"), bcrypt("b"), user("c", "pw")]).expect("users");
    assert!(matches!(users.decoy, Hash::Bcrypt(_)));
}

/// Fault review of 9e8e3e0: every SIGHUP hashed a fresh Argon2 decoy (19 MiB
/// each; RSS went 38 -> 195 MB over 75 reloads). One per scheme per process.
#[test]
fn every_users_table_shares_one_decoy_per_scheme() {
    let text = |h: &Hash| match h {
        Hash::Argon2(s) | Hash::Bcrypt(s) => s.clone(),
    };
    let a = Users::new(vec![user("alice", "pw")]).expect("users");
    let b = Users::new(vec![user("bob", "pw")]).expect("users");
    assert_eq!(text(&a.decoy), text(&b.decoy));
}
