use serde_json::json;

use super::*;

fn any() -> Writable {
    Writable::Any
}

#[track_caller]
fn merged(target: Value, patch: Value) -> Value {
    let mut t = target;
    merge(&mut t, patch);
    t
}

/// The examples of RFC 7386 Appendix A.
#[test]
fn rfc_7386_appendix_a() {
    let cases = [
        (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
        (json!({"a":"b"}), json!({"a":null}), json!({})),
        (json!({"a":"b","b":"c"}), json!({"a":null}), json!({"b":"c"})),
        (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
        (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
        (
            json!({"a":{"b":"c"}}),
            json!({"a":{"b":"d","c":null}}),
            json!({"a":{"b":"d"}}),
        ),
        (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a":"b"}), json!(["c"]), json!(["c"])),
        (json!({"a":"foo"}), json!(null), json!(null)),
        (json!({"a":"foo"}), json!("bar"), json!("bar")),
        (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
        (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        (json!({}), json!({"a":{"bb":{"ccc":null}}}), json!({"a":{"bb":{}}})),
    ];
    for (target, patch, expected) in cases {
        assert_eq!(merged(target.clone(), patch.clone()), expected, "{target} + {patch}");
    }
}

#[test]
fn top_level_null_clears() {
    let s = json!({"user":"a"});
    assert_eq!(apply(s.as_object(), b"null", &any()), Outcome::Clear);
    assert_eq!(
        apply(s.as_object(), b"{\"user\":null}", &any()),
        Outcome::Clear,
        "nothing left"
    );
}

#[test]
fn cart_accumulates() {
    let s = json!({"user":"a","cart":{"apple":1}});
    let Outcome::Update { session, ignored } = apply(s.as_object(), br#"{"cart":{"pear":2}}"#, &any()) else {
        panic!("expected an update")
    };
    assert!(ignored.is_empty());
    assert_eq!(Value::Object(session), json!({"user":"a","cart":{"apple":1,"pear":2}}));
}

#[test]
fn only_writable_fields_apply_and_auth_time_never() {
    let w = Writable::Fields(vec!["cart".into()]);
    let s = json!({"user":"a","auth_time":1});
    let patch = br#"{"cart":[1],"user":"root","auth_time":99,"groups":["admin"]}"#;
    let Outcome::Update { session, mut ignored } = apply(s.as_object(), patch, &w) else {
        panic!("update")
    };
    ignored.sort();
    assert_eq!(ignored, ["auth_time", "groups", "user"]);
    assert_eq!(Value::Object(session), json!({"user":"a","auth_time":1,"cart":[1]}));
    let Outcome::Update { ignored, .. } = apply(s.as_object(), br#"{"auth_time":0}"#, &any()) else {
        panic!("update")
    };
    assert_eq!(ignored, ["auth_time"], "\"*\" does not cover auth_time");
}

#[test]
fn creates_a_session_from_nothing() {
    let Outcome::Update { session, .. } = apply(None, br#"{"user":"demo"}"#, &any()) else {
        panic!("update")
    };
    assert_eq!(Value::Object(session), json!({"user":"demo"}));
}

#[test]
fn invalid_patches_write_nothing() {
    for bad in [&b"not json"[..], b"[1,2]", b"\"x\"", b"42", b"", b"{\"a\":"] {
        assert!(matches!(apply(None, bad, &any()), Outcome::Invalid(_)), "{bad:?}");
    }
}
