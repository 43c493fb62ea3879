//! The path-bypass table: hostile spellings of a protected path, sent raw.
//! Each is refused (400), or decided on and forwarded as the same
//! normalised path, so the rule that saw it and the upstream that serves it
//! agree.

use crate::support::{Seen, json_body_of, raw_get, spawn_echo_upstream, spawn_proxy, status_of};

const RULES: &str = "[access]\ndefault = \"anyone\"\n\
                     [[access.rules]]\npath = \"/admin/**\"\ngroups = [\"admin\"]\n";

/// (target, status for an anonymous API client, path the upstream sees on 200)
const TABLE: &[(&str, u16, Option<&str>)] = &[
    ("/admin", 401, None),
    ("/admin/", 401, None),
    ("/admin/x", 401, None),
    ("/public/../admin", 401, None),
    ("/public/%2e%2e/admin", 401, None),
    ("/public/%2E%2E/admin/x", 401, None),
    ("/public/.%2e/admin", 401, None),
    ("/public/./../admin", 401, None),
    ("/./admin", 401, None),
    ("/admin/./x", 401, None),
    ("//admin", 401, None),
    ("///admin/x", 401, None),
    ("/%61dmin", 401, None),
    ("/%61%64%6d%69%6e/x", 401, None),
    ("/admin;x=1", 401, None),
    ("/admin;jsessionid=1/secret", 401, None),
    ("/admin%2fx", 400, None),
    ("/admin%2Fx", 400, None),
    ("/public%2f..%2fadmin", 400, None),
    ("/admin%5cx", 400, None),
    ("/public/..%5cadmin", 400, None),
    ("/public/..;/admin", 400, None),
    ("/admin%00", 400, None),
    ("/admin%00.html", 400, None),
    ("/public/x%", 400, None),
    ("/public#/../admin", 200, Some("/public")),
    // Judged case-folded too (Express routes `/ADMIN` to `/admin`).
    ("/ADMIN", 401, None),
    ("/Admin/x", 401, None),
    ("/admin%3Bx", 400, None),
    ("/public/%252e%252e/admin", 400, None),
    ("/public/%252e%252e%252fadmin", 400, None),
    ("/public/admin", 200, Some("/public/admin")),
    ("/administrator", 200, Some("/administrator")),
];

#[tokio::test]
async fn decision_and_forwarded_path_agree() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(up.addr, RULES).await;
    assert!(TABLE.len() >= 20);
    for (target, status, forwarded) in TABLE {
        let text = raw_get(proxy.addr, target, "").await;
        assert_eq!(status_of(&text), *status, "{target:?} -> {text}");
        if let Some(path) = forwarded {
            assert_eq!(Seen(json_body_of(&text)).uri(), *path, "{target:?}");
        }
    }
    proxy.stop().await;
}

#[tokio::test]
async fn case_insensitive_mode_protects_case_variants() {
    let up = spawn_echo_upstream().await;
    let proxy = spawn_proxy(
        up.addr,
        &RULES.replace(
            "default = \"anyone\"\n",
            "default = \"anyone\"\ncase_insensitive = true\n",
        ),
    )
    .await;
    for target in ["/ADMIN", "/Admin/x", "/aDmIn;x=1/y", "/%41dmin"] {
        let text = raw_get(proxy.addr, target, "").await;
        assert_eq!(status_of(&text), 401, "{target:?} -> {text}");
    }
    assert_eq!(status_of(&raw_get(proxy.addr, "/public/ADMIN", "").await), 200);
    proxy.stop().await;
}
