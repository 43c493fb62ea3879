use serde_json::json;

use super::*;

fn plan() -> HeaderPlan {
    let forward: Vec<config::Forward> = [
        ("x-forwarded-user", "user"),
        ("x-forwarded-groups", "groups"),
        ("x-cart", "cart"),
    ]
    .iter()
    .map(|(h, f)| config::Forward {
        header: HeaderName::from_static(h),
        field: f.to_string(),
    })
    .collect();
    HeaderPlan::new(&forward)
}

#[track_caller]
fn check_value(value: Value, expected: Option<&str>) {
    let got = header_value(&value);
    assert_eq!(got.as_ref().map(|v| v.to_str().expect("ascii")), expected, "{value}");
}

#[test]
fn values_are_rendered_by_type() {
    check_value(json!("alice"), Some("alice"));
    check_value(json!(["admin", "dev"]), Some("admin,dev"));
    check_value(json!([]), Some(""));
    // Nulls are left out; an empty element keeps its place; non-strings are
    // rendered as JSON, escaped like any element.
    check_value(
        json!([null, "a", null, "", 3, [1, "x,y"]]),
        Some("a,,3,[1%2C\"x%2Cy\"]"),
    );
    check_value(json!(42), Some("42"));
    check_value(json!(1.5), Some("1.5"));
    check_value(json!(true), Some("true"));
    check_value(json!({"apple": 2}), Some("{\"apple\":2}"));
    check_value(json!(null), None);
}

#[test]
fn unsafe_characters_are_percent_encoded() {
    check_value(json!("a\r\nX-Injected: 1"), Some("a%0D%0AX-Injected: 1"));
    check_value(json!("caf\u{e9}"), Some("caf%C3%A9"));
    check_value(json!("100%"), Some("100%25"));
    check_value(json!("nul\u{0}"), Some("nul%00"));
    check_value(json!(["a,b", "c"]), Some("a%2Cb,c"));
    check_value(json!({"k": "\u{e9}"}), Some("{\"k\":\"%C3%A9\"}"));
}

#[test]
fn strip_removes_every_spelling() {
    let mut h = HeaderMap::new();
    for name in [
        "x-forwarded-user",
        "x_forwarded_user",
        "x.forwarded.user",
        "x-forwarded_user",
        "x-cart",
        "x_cart",
    ] {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_static("spoof"),
        );
    }
    h.append("x-forwarded-user", HeaderValue::from_static("spoof2"));
    h.append("x-forwarded-users", HeaderValue::from_static("kept"));
    h.append("accept", HeaderValue::from_static("kept"));
    plan().strip(&mut h);
    let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
    names.sort();
    assert_eq!(names, ["accept", "x-forwarded-users"]);
}

#[test]
fn inject_sets_present_fields_only() {
    let session = json!({"user": "alice", "groups": ["a", "b"], "other": 1});
    let h = inject_into_map(&plan(), Some(&fields(&session)));
    assert_eq!(h["x-forwarded-user"], "alice");
    assert_eq!(h["x-forwarded-groups"], "a,b");
    assert!(!h.contains_key("x-cart"));
    assert!(inject_into_map(&plan(), None).is_empty());
}

fn fields(v: &Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().expect("object").clone())
}

/// What `plan` adds for `session`, in a map.
fn inject_into_map(plan: &HeaderPlan, session: Option<&Arc<Map<String, Value>>>) -> HeaderMap {
    let mut added = Added::default();
    plan.inject(&mut added, session);
    let mut h = HeaderMap::new();
    added.insert_into(&mut h);
    h
}

fn injected(plan: &HeaderPlan, session: &Arc<Map<String, Value>>) -> Option<String> {
    let h = inject_into_map(plan, Some(session));
    h.get("x-forwarded-user").map(|v| v.to_str().expect("text").to_string())
}

#[test]
fn shared_fields_have_their_values_remembered_and_only_their_own() {
    let plan = plan();
    let alice = fields(&json!({"user": "alice"}));
    let bob = fields(&json!({"user": "bob"}));
    let (_kept_a, _kept_b) = (Arc::clone(&alice), Arc::clone(&bob));
    for _ in 0..3 {
        assert_eq!(injected(&plan, &alice).as_deref(), Some("alice"));
        assert_eq!(injected(&plan, &bob).as_deref(), Some("bob"));
    }
    assert_eq!(plan.remembered(), 2, "one entry per shared set of fields");
    // Fields this request alone holds are not remembered.
    let carol = fields(&json!({"user": "carol"}));
    assert_eq!(injected(&plan, &carol).as_deref(), Some("carol"));
    assert_eq!(plan.remembered(), 2);
    assert!(!format!("{plan:?}").contains("alice"), "Debug shows no session data");
}

#[test]
fn fields_made_after_remembered_ones_are_gone_never_get_their_values() {
    // The memory keys by address; new fields must never be taken for
    // old ones, however the allocator reuses memory.
    let plan = plan();
    for i in 0..200 {
        let fields = fields(&json!({"user": format!("user{i}")}));
        let _kept = Arc::clone(&fields);
        assert_eq!(injected(&plan, &fields), Some(format!("user{i}")));
    }
}

#[test]
fn the_memory_of_values_is_bounded() {
    let plan = plan();
    let mut kept = Vec::new();
    for i in 0..(MEMO_ENTRIES + 10) {
        let fields = fields(&json!({"user": format!("user{i}")}));
        kept.push(Arc::clone(&fields));
        injected(&plan, &fields);
        assert!(plan.remembered() <= MEMO_ENTRIES);
    }
    assert!(plan.remembered() >= 1);
}

#[test]
fn addresses_spread_over_the_buckets() {
    use std::hash::{BuildHasher, BuildHasherDefault};
    // Allocation addresses are multiples of 16; hashbrown picks a bucket by
    // the hash's low bits. 1,024 neighbouring addresses should fill most of
    // 1,024 buckets, as random hashes would (about 63 %).
    let build = BuildHasherDefault::<super::AddressHasher>::default();
    let buckets: std::collections::HashSet<u64> = (0..1024usize)
        .map(|i| build.hash_one(0x7f00_1234_0000usize + 16 * i) & 1023)
        .collect();
    assert!(buckets.len() > 550, "{} of 1024 buckets", buckets.len());
}

#[test]
fn a_session_field_forwarded_as_x_request_id_replaces_usher_s_id_only_when_present() {
    let plan = HeaderPlan::new(&[
        config::Forward {
            header: HeaderName::from_static("x-forwarded-user"),
            field: "user".into(),
        },
        config::Forward {
            header: X_REQUEST_ID,
            field: "trace".into(),
        },
    ]);
    let run = |session: Value| {
        let mut added = Added::default();
        added.push(X_REQUEST_ID, HeaderValue::from_static("usher-id"));
        plan.inject(&mut added, Some(&fields(&session)));
        let mut h = HeaderMap::new();
        added.insert_into(&mut h);
        let ids: Vec<String> = h
            .get_all(X_REQUEST_ID)
            .iter()
            .map(|v| v.to_str().expect("text").to_string())
            .collect();
        ids
    };
    assert_eq!(run(json!({"user": "alice", "trace": "t-1"})), ["t-1"]);
    assert_eq!(run(json!({"user": "alice"})), ["usher-id"]);
}
