use super::*;
use Decision::{Allow as Yes, Forbidden, NeedLogin};

/// A caller: signed out, or signed in with a name and groups.
#[derive(Debug, Clone, Copy)]
enum Who {
    Out,
    In(&'static str, &'static [&'static str]),
}

const OUT: Who = Who::Out;
const ALICE: Who = Who::In("alice", &["admin", "dev"]);
const BOB: Who = Who::In("bob", &["dev"]);
const CAROL: Who = Who::In("carol", &[]);

fn rule(path: &str, allow: Allow) -> Rule {
    Rule {
        pattern: PathPattern::parse(path).expect("test patterns parse"),
        methods: None,
        allow,
        groups: Vec::new(),
        users: Vec::new(),
    }
}

fn methods(mut rule: Rule, methods: &[Method]) -> Rule {
    rule.methods = Some(methods.to_vec());
    rule
}

fn restricted(path: &str, groups: &[&str], users: &[&str]) -> Rule {
    let mut rule = rule(path, Allow::Authenticated);
    rule.groups = groups.iter().map(|g| g.to_string()).collect();
    rule.users = users.iter().map(|u| u.to_string()).collect();
    rule
}

/// Run `f` with `who`'s identity.
fn as_who<T>(who: Who, f: impl FnOnce(Option<&Identity<'_>>) -> T) -> T {
    match who {
        Who::Out => f(None),
        Who::In(user, groups) => {
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            f(Some(&Identity::with_groups(user, &groups)))
        }
    }
}

#[track_caller]
fn check(policy: &Policy, method: Method, path: &str, who: Who, expected: (Decision, Option<usize>)) {
    let got = as_who(who, |id| policy.decide_with_rule(&method, path, id));
    assert_eq!(got, expected, "{method} {path:?} as {who:?}");
}

#[test]
fn methods_filter_rules_and_get_covers_head() {
    let policy = Policy::new(
        vec![
            methods(rule("/api/**", Allow::Anyone), &[Method::GET]),
            methods(restricted("/api/**", &["admin"], &[]), &[Method::POST, Method::DELETE]),
            methods(rule("/hd", Allow::Anyone), &[Method::HEAD]),
            methods(rule("/none", Allow::Anyone), &[]),
        ],
        Allow::Nobody,
        false,
    );
    check(&policy, Method::GET, "/api/x", OUT, (Yes, Some(0)));
    check(&policy, Method::HEAD, "/api/x", OUT, (Yes, Some(0)));
    check(&policy, Method::POST, "/api/x", OUT, (NeedLogin, Some(1)));
    check(&policy, Method::POST, "/api/x", BOB, (Forbidden, Some(1)));
    check(&policy, Method::DELETE, "/api/x", ALICE, (Yes, Some(1)));
    check(&policy, Method::PUT, "/api/x", ALICE, (Forbidden, None));
    check(&policy, Method::OPTIONS, "/api/x", OUT, (Forbidden, None));
    check(&policy, Method::HEAD, "/hd", OUT, (Yes, Some(2)));
    check(&policy, Method::GET, "/hd", OUT, (Forbidden, None));
    check(&policy, Method::GET, "/none", OUT, (Forbidden, None));
}

/// `decide_any_method` with `who`: the caller, as in `check`.
#[track_caller]
fn check_any(policy: &Policy, path: &str, who: Who, expected: Decision) {
    let got = as_who(who, |id| policy.decide_any_method(path, id));
    assert_eq!(got, expected, "any method {path:?} as {who:?}");
}

#[test]
fn an_unknown_method_gets_the_strictest_decision_of_any_method() {
    let policy = Policy::new(
        vec![
            methods(rule("/api/**", Allow::Anyone), &[Method::GET]),
            methods(restricted("/api/**", &["admin"], &[]), &[Method::POST]),
            methods(rule("/hd", Allow::Nobody), &[Method::HEAD]),
            methods(rule("/put", Allow::Anyone), &[Method::PUT]),
            rule("/open/**", Allow::Anyone),
        ],
        Allow::Authenticated,
        false,
    );
    // GET alone would let anyone through; POST needs an admin.
    check_any(&policy, "/api/x", OUT, NeedLogin);
    check_any(&policy, "/api/x", BOB, Forbidden);
    check_any(&policy, "/api/x", ALICE, Yes);
    // HEAD is listed: its rule counts even though GET would pass.
    check_any(&policy, "/hd", ALICE, Forbidden);
    // A rule for one method only: every other method falls to the default.
    check_any(&policy, "/put", OUT, NeedLogin);
    check_any(&policy, "/put", CAROL, Yes);
    // Rules without methods decide alike for every method.
    check_any(&policy, "/open/x", OUT, Yes);

    // Without method-specific rules, every method gets GET's decision.
    let plain = Policy::new(
        vec![rule("/admin/**", Allow::Nobody), restricted("/dev/**", &["dev"], &[])],
        Allow::Anyone,
        false,
    );
    for (path, who) in [
        ("/admin/a", OUT),
        ("/dev/x", OUT),
        ("/dev/x", BOB),
        ("/dev/x", CAROL),
        ("/x", OUT),
    ] {
        let get = as_who(who, |id| plain.decide(&Method::GET, path, id));
        check_any(&plain, path, who, get);
    }
}

#[test]
fn first_matching_rule_wins() {
    let narrow_first = Policy::new(
        vec![rule("/a/b", Allow::Nobody), rule("/a/**", Allow::Anyone)],
        Allow::Authenticated,
        false,
    );
    check(&narrow_first, Method::GET, "/a/b", ALICE, (Forbidden, Some(0)));
    check(&narrow_first, Method::GET, "/a/c", OUT, (Yes, Some(1)));
    check(&narrow_first, Method::GET, "/b", OUT, (NeedLogin, None));
    let broad_first = Policy::new(
        vec![rule("/a/**", Allow::Anyone), rule("/a/b", Allow::Nobody)],
        Allow::Authenticated,
        false,
    );
    check(&broad_first, Method::GET, "/a/b", ALICE, (Yes, Some(0)));
}

#[test]
fn groups_and_users_restrict_authenticated_rules() {
    let policy = Policy::new(
        vec![
            restricted("/ops/**", &["admin"], &["carol"]),
            restricted("/team/**", &["dev", "qa"], &[]),
            restricted("/me/**", &[], &["bob"]),
            rule("/any/**", Allow::Authenticated),
        ],
        Allow::Nobody,
        false,
    );
    check(&policy, Method::GET, "/ops/x", ALICE, (Yes, Some(0)));
    check(&policy, Method::GET, "/ops/x", CAROL, (Yes, Some(0)));
    check(&policy, Method::GET, "/ops/x", BOB, (Forbidden, Some(0)));
    check(&policy, Method::GET, "/ops/x", OUT, (NeedLogin, Some(0)));
    check(&policy, Method::GET, "/team/x", BOB, (Yes, Some(1)));
    check(&policy, Method::GET, "/team/x", CAROL, (Forbidden, Some(1)));
    check(&policy, Method::GET, "/me", BOB, (Yes, Some(2)));
    check(&policy, Method::GET, "/me", ALICE, (Forbidden, Some(2)));
    check(&policy, Method::GET, "/any", CAROL, (Yes, Some(3)));
    check(&policy, Method::GET, "/any", OUT, (NeedLogin, Some(3)));
}

#[test]
fn groups_and_users_are_compared_exactly() {
    let policy = Policy::new(vec![restricted("/**", &["admin"], &["bob"])], Allow::Nobody, false);
    check(
        &policy,
        Method::GET,
        "/",
        Who::In("Bob", &["Admin"]),
        (Forbidden, Some(0)),
    );
    check(
        &policy,
        Method::GET,
        "/",
        Who::In("bob ", &["admin "]),
        (Forbidden, Some(0)),
    );
}

#[track_caller]
fn check_in_group(groups: Option<Value>, group: &str, expected: bool) {
    let id = Identity::new("u", groups.as_ref());
    assert_eq!(id.in_group(group), expected, "{groups:?} has {group:?}");
    assert_eq!(id.user(), "u");
}

#[test]
fn session_groups_are_read_from_json() {
    use serde_json::json;
    check_in_group(Some(json!(["admin", "dev"])), "dev", true);
    check_in_group(Some(json!(["admin", 7, null, ["ops"]])), "admin", true);
    check_in_group(Some(json!(["admin", 7, null, ["ops"]])), "ops", false);
    check_in_group(Some(json!(["admin", 7])), "7", false);
    check_in_group(Some(json!("admin")), "admin", true);
    check_in_group(Some(json!("admin,dev")), "dev", false);
    check_in_group(Some(json!({"admin": true})), "admin", false);
    check_in_group(Some(json!(true)), "true", false);
    check_in_group(Some(json!([])), "", false);
    check_in_group(None, "admin", false);
}

#[test]
fn a_session_identity_is_decided_like_a_listed_one() {
    let policy = Policy::new(
        vec![restricted("/ops/**", &["admin"], &["carol"])],
        Allow::Nobody,
        false,
    );
    let groups = serde_json::json!(["dev", "admin"]);
    let alice = Identity::new("alice", Some(&groups));
    assert_eq!(policy.decide(&Method::GET, "/ops", Some(&alice)), Yes);
    let carol = Identity::new("carol", None);
    assert_eq!(policy.decide(&Method::GET, "/ops", Some(&carol)), Yes);
    let dev = serde_json::json!("dev");
    let bob = Identity::new("bob", Some(&dev));
    assert_eq!(policy.decide(&Method::GET, "/ops", Some(&bob)), Forbidden);
}

#[test]
fn anyone_and_nobody_ignore_groups_and_sign_in() {
    let mut open = rule("/open", Allow::Anyone);
    open.groups = vec!["admin".into()];
    let mut shut = rule("/shut", Allow::Nobody);
    shut.users = vec!["alice".into()];
    let policy = Policy::new(vec![open, shut], Allow::Authenticated, false);
    check(&policy, Method::GET, "/open", OUT, (Yes, Some(0)));
    check(&policy, Method::GET, "/shut", ALICE, (Forbidden, Some(1)));
    // Signed out and nobody: Forbidden, not a login redirect that cannot help.
    check(&policy, Method::GET, "/shut", OUT, (Forbidden, Some(1)));
}

#[test]
fn default_applies_when_no_rule_does() {
    for (default, out, signed_in) in [
        (Allow::Anyone, Yes, Yes),
        (Allow::Authenticated, NeedLogin, Yes),
        (Allow::Nobody, Forbidden, Forbidden),
    ] {
        let policy = Policy::new(vec![rule("/x", Allow::Anyone)], default, false);
        check(&policy, Method::GET, "/y", OUT, (out, None));
        check(&policy, Method::GET, "/y", CAROL, (signed_in, None));
    }
}

#[test]
fn empty_policy_uses_the_default() {
    let policy = Policy::new(Vec::new(), Allow::Authenticated, false);
    check(&policy, Method::GET, "/", OUT, (NeedLogin, None));
    assert!(policy.rules().is_empty());
}

#[test]
fn a_path_that_is_not_normalised_is_forbidden() {
    let policy = Policy::new(vec![rule("/**", Allow::Anyone)], Allow::Anyone, false);
    check(&policy, Method::GET, "", OUT, (Forbidden, None));
    check(&policy, Method::GET, "admin", ALICE, (Forbidden, None));
    check(&policy, Method::GET, "*", ALICE, (Forbidden, None));
}

#[test]
fn parameters_are_ignored_for_literals() {
    let policy = Policy::new(vec![restricted("/admin/**", &["admin"], &[])], Allow::Anyone, false);
    check(&policy, Method::GET, "/admin;jsessionid=1/x", BOB, (Forbidden, Some(0)));
    check(&policy, Method::GET, "/admin;jsessionid=1/x", ALICE, (Yes, Some(0)));
    check(&policy, Method::GET, "/admin%3B/x", BOB, (Yes, None));
}

#[test]
fn the_stricter_reading_of_parameters_wins() {
    // A servlet container drops `;x`, others route `public;x` as a tenant.
    let policy = Policy::new(
        vec![
            rule("/public/**", Allow::Anyone),
            restricted("/*/settings", &["admin"], &[]),
        ],
        Allow::Authenticated,
        false,
    );
    check(&policy, Method::GET, "/public/settings", BOB, (Yes, Some(0)));
    check(&policy, Method::GET, "/public;x/settings", BOB, (Forbidden, Some(1)));
    check(&policy, Method::GET, "/public;x/settings", ALICE, (Yes, Some(0)));
    check(&policy, Method::GET, "/public;x", OUT, (NeedLogin, None));
    let policy = Policy::new(vec![rule("/a/*/c", Allow::Nobody)], Allow::Anyone, false);
    check(&policy, Method::GET, "/a/;x/c", OUT, (Forbidden, Some(0)));
}

/// Attack review of 9e8e3e0: `/ADMIN/x` passed a `/admin/**` rule, and
/// Express routes it to its admin router. Paths are judged as written and
/// case-folded, stricter wins, whatever `case_insensitive` says.
#[test]
fn case_is_folded_in_both_modes() {
    let rules = vec![restricted("/admin/**", &["admin"], &[])];
    for case_insensitive in [false, true] {
        let policy = Policy::new(rules.clone(), Allow::Anyone, case_insensitive);
        check(&policy, Method::GET, "/Admin/x", BOB, (Forbidden, Some(0)));
        check(&policy, Method::GET, "/ADMIN;x", BOB, (Forbidden, Some(0)));
        // On a tie the as-written reading names the rule (here: none).
        check(&policy, Method::GET, "/ADMIN", ALICE, (Yes, None));
    }
    // A rule spelt with capitals covers the lower-case spelling too.
    let policy = Policy::new(vec![rule("/Admin/**", Allow::Nobody)], Allow::Anyone, false);
    check(&policy, Method::GET, "/admin/x", BOB, (Forbidden, Some(0)));
    check(&policy, Method::GET, "/other", BOB, (Yes, None));
    // The folded reading never loosens: `/PUBLIC/x` is not public when the
    // as-written reading falls to a stricter default.
    let policy = Policy::new(vec![rule("/public/**", Allow::Anyone)], Allow::Authenticated, true);
    check(&policy, Method::GET, "/PUBLIC/x", OUT, (NeedLogin, None));
}

#[test]
fn described_requests_take_the_strictest_spelling() {
    let rules = vec![
        rule("/public/**", Allow::Anyone),
        restricted("/admin/**", &["admin"], &[]),
    ];
    let policy = Policy::new(rules, Allow::Authenticated, false);
    let get = Some(&Method::GET);
    let raw = "/admin/x/../../public/y";
    let out = policy.decide_described(get, &["/public/y", raw], None);
    assert_eq!(out, NeedLogin, "the raw spelling names /admin");
    let bob = as_who(BOB, |id| policy.decide_described(get, &["/public/y", raw], id));
    assert_eq!(bob, Forbidden);
    let anyone = policy.decide_described(None, &["/public/y"], None);
    assert_eq!(anyone, Yes);
}

const A: [Decision; 3] = [NeedLogin, Forbidden, Yes];
const D: [Decision; 3] = [NeedLogin, Yes, Yes];
const P: [Decision; 3] = [Yes, Yes, Yes];

/// Already-normalised paths a hostile client can make usher match, as
/// `(path, decisions)` for signed-out,
/// `bob` (dev) and `alice` (admin), under
/// `[{/public/**: anyone}, {/admin/**: groups=[admin]}]`, default
/// authenticated. Forms the normaliser never produces are noted beside the
/// form it produces instead.
const BYPASS: &[(&str, [Decision; 3])] = &[
    ("/admin", A),
    ("/admin/", A),
    ("/admin/secret", A),
    // `/public/../admin`, `/x/../admin`, `/%2e%2e/admin`, `//admin`, `/%61dmin`:
    // all arrive as `/admin`.
    ("/admin;x=1", A),
    ("/admin;x=1/secret", A),
    ("/admin;/secret", A),
    ("/admin;a=1;b=2/secret", A),
    ("/;x/admin", A),
    ("/;/admin/secret", A),
    ("/admin/;x/secret", A),
    ("/admin/secret;.css", A),
    ("/ADMIN", A),
    ("/Admin;x/secret", A),
    ("/aDmIn/", A),
    // An escaped `;` is an ordinary character: a different resource.
    ("/admin%3B/x", D),
    ("/admin%3Bx=1/secret", D),
    // Distinct names to usher and to every backend it models.
    ("/admin%20", D),
    ("/admin.", D),
    ("/admin..;/", D),
    ("/administrator", D),
    ("/admin-x/secret", D),
    ("/x/admin", D),
    ("/", D),
    ("/public", P),
    ("/public/", P),
    ("/public/a/b.css", P),
    ("/public/admin", P),
    ("/PUBLIC/x", D),
    ("/publicity", D),
    // Public to a servlet container, another resource to other backends:
    // the stricter default decides.
    ("/public;x", D),
    ("/public;x/admin", D),
    ("/;/public/x", D),
    // `/public/..;/admin` and `/public/%2e%2e;/admin` are refused (400);
    // `/public;/../admin` arrives as `/admin`.
];

#[track_caller]
fn check_bypass(policy: &Policy, path: &str, expected: [Decision; 3]) {
    for (who, want) in [OUT, BOB, ALICE].into_iter().zip(expected) {
        for method in [Method::GET, Method::HEAD, Method::POST] {
            let got = as_who(who, |id| policy.decide(&method, path, id));
            assert_eq!(got, want, "{method} {path:?} as {who:?}");
        }
    }
}

#[test]
fn hostile_paths_cannot_bypass_rules() {
    let rules = vec![
        rule("/public/**", Allow::Anyone),
        restricted("/admin/**", &["admin"], &[]),
    ];
    let exact = Policy::new(rules.clone(), Allow::Authenticated, false);
    let folded = Policy::new(rules, Allow::Authenticated, true);
    assert!(BYPASS.len() >= 20);
    for &(path, expected) in BYPASS {
        check_bypass(&exact, path, expected);
        check_bypass(&folded, path, expected);
    }
}
