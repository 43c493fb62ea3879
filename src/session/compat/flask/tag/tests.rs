use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test value must be an object, got {other}"),
    }
}

#[test]
fn untag_maps_each_tag_to_plain_json() {
    #[track_caller]
    fn check(tagged: Value, expected: Value) {
        let got = untag_session(object(tagged.clone())).map(Value::Object);
        assert_eq!(got, Ok(expected), "{tagged}");
    }
    check(
        json!({"a": 1, "l": [1, {"x": null}]}),
        json!({"a": 1, "l": [1, {"x": null}]}),
    );
    check(json!({"p": {" t": [1, "two"]}}), json!({"p": [1, "two"]}));
    check(json!({"p": {" t": []}}), json!({"p": []}));
    check(json!({"h": {" m": "<b>x</b>"}}), json!({"h": "<b>x</b>"}));
    check(
        json!({"d": {" d": "Sat, 01 Jan 2000 00:00:00 GMT"}}),
        json!({"d": "Sat, 01 Jan 2000 00:00:00 GMT"}),
    );
    check(
        json!({"u": {" u": "0123456789abcdef0123456789ABCDEF"}}),
        json!({"u": "0123456789abcdef0123456789ABCDEF"}),
    );
    check(json!({"w": {" di": {" t__": [1]}}}), json!({"w": {" t": [1]}}));
    // The session itself escaped: still a dict.
    check(json!({" di": {" b__": 1}}), json!({" b": 1}));
    // Children first: the tuple's items are untagged before the tuple.
    check(
        json!({"f": [{" t": ["message", {" m": "hi"}]}]}),
        json!({"f": [["message", "hi"]]}),
    );
    // Not a tag: two keys, or a key Flask does not register.
    check(json!({"x": {" t": [1], "y": 2}}), json!({"x": {" t": [1], "y": 2}}));
    check(json!({"x": {" od": [[1, 2]]}}), json!({"x": {" od": [[1, 2]]}}));
    check(json!({"x": {"t": [1]}}), json!({"x": {"t": [1]}}));
}

#[test]
fn untag_refuses_bytes_and_malformed_tags() {
    #[track_caller]
    fn check(tagged: Value, expected: CompatRejected) {
        assert_eq!(untag_session(object(tagged.clone())), Err(expected), "{tagged}");
    }
    check(json!({"b": {" b": "eA=="}}), CompatRejected::Unsupported);
    check(json!({"b": [{" t": [{" b": ""}]}]}), CompatRejected::Unsupported);
    check(json!({"b": {" b": "not base64!"}}), CompatRejected::Malformed);
    check(json!({"b": {" b": 5}}), CompatRejected::Malformed);
    check(json!({"t": {" t": "abc"}}), CompatRejected::Malformed);
    check(json!({"m": {" m": 1}}), CompatRejected::Malformed);
    check(json!({"d": {" d": null}}), CompatRejected::Malformed);
    check(
        json!({"u": {" u": "12345678-1234-5678-1234-567812345678"}}),
        CompatRejected::Malformed,
    );
    check(
        json!({"u": {" u": "g2345678123456781234567812345678"}}),
        CompatRejected::Malformed,
    );
    check(json!({"w": {" di": {" t": [1]}}}), CompatRejected::Malformed);
    check(json!({"w": {" di": {"a__": 1, "b__": 2}}}), CompatRejected::Malformed);
    check(json!({"w": {" di": {}}}), CompatRejected::Malformed);
    check(json!({"w": {" di": {"no_suffix": 1}}}), CompatRejected::Malformed);
    check(json!({"w": {" di": "abc"}}), CompatRejected::Malformed);
    // A session that is itself one tagged value is not a dict.
    check(json!({" t": [1, 2]}), CompatRejected::Malformed);
    check(json!({" m": "x"}), CompatRejected::Malformed);
}

#[test]
fn check_accepts_what_flask_reads_and_only_that() {
    #[track_caller]
    fn check(tagged: Value, expected: Result<(), CompatRejected>) {
        assert_eq!(check_session(&object(tagged.clone())), expected, "{tagged}");
    }
    check(json!({"b": {" b": "eA=="}, "t": {" t": [1, {" b": ""}]}}), Ok(()));
    check(json!({" di": {" t__": 1}}), Ok(()));
    check(
        json!({"b": {" b": "eA=="}, "t": {" t": 5}}),
        Err(CompatRejected::Malformed),
    );
    check(json!({" b": "eA=="}), Err(CompatRejected::Malformed));
    check(json!({"w": {" di": {" b": "eA=="}}}), Err(CompatRejected::Malformed));
}

#[test]
fn tag_escapes_only_one_key_objects_named_like_tags() {
    #[track_caller]
    fn check(plain: Value, tagged: Value) {
        assert_eq!(Value::Object(tag_session(&object(plain.clone()))), tagged, "{plain}");
    }
    check(json!({"a": [1, {"b": 2}]}), json!({"a": [1, {"b": 2}]}));
    check(json!({" t": 1}), json!({" di": {" t__": 1}}));
    check(
        json!({"x": [{" u": {" m": 1}}]}),
        json!({"x": [{" di": {" u__": {" di": {" m__": 1}}}}]}),
    );
    check(json!({"x": {" t": 1, "y": 2}}), json!({"x": {" t": 1, "y": 2}}));
    check(json!({"x": {" od": 1}}), json!({"x": {" od": 1}}));
}

#[test]
fn every_tag_name_round_trips_as_a_plain_key() {
    for tag in TAGS {
        let plain = object(json!({"k": {tag: [tag]}, tag: {tag: null}}));
        assert_eq!(untag_session(tag_session(&plain)), Ok(plain), "{tag:?}");
    }
}
