use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test value must be an object, got {other}"),
    }
}

#[test]
fn floats_are_written_as_python_repr() {
    #[track_caller]
    fn check(f: f64, expected: &str) {
        assert_eq!(float_repr(f), expected, "{f:?}");
    }
    check(0.0, "0.0");
    check(-0.0, "-0.0");
    check(1.0, "1.0");
    check(-7.5, "-7.5");
    check(3.5, "3.5");
    check(0.0025, "0.0025");
    check(3.14158, "3.14158");
    check(0.1, "0.1");
    check(0.0001, "0.0001");
    check(0.00012, "0.00012");
    check(0.00001, "1e-05");
    check(2.5e-5, "2.5e-05");
    check(1e-7, "1e-07");
    check(123456.789, "123456.789");
    check(1e15, "1000000000000000.0");
    check(1234567890123456.7, "1234567890123456.8");
    check(1e16, "1e+16");
    check(1.5e16, "1.5e+16");
    check(123456789012345678.0, "1.2345678901234568e+17");
    check(1e300, "1e+300");
    check(-1e-300, "-1e-300");
    check(f64::MAX, "1.7976931348623157e+308");
    check(f64::MIN_POSITIVE, "2.2250738585072014e-308");
    check(5e-324, "5e-324");
}

#[test]
fn strings_are_escaped_as_ensure_ascii() {
    #[track_caller]
    fn check(text: &str, expected: &str) {
        let mut out = String::new();
        write_str(&mut out, text);
        assert_eq!(out, expected, "{text:?}");
    }
    check("", r#""""#);
    check("plain ASCII ~!", r#""plain ASCII ~!""#);
    check("say \"hi\"", r#""say \"hi\"""#);
    check("C:\\x", r#""C:\\x""#);
    check("a/b", r#""a/b""#);
    check("\n\r\t\u{8}\u{c}", r#""\n\r\t\b\f""#);
    check("\u{0}\u{1}\u{1f}\u{7f}", r#""\u0000\u0001\u001f\u007f""#);
    check("é", r#""\u00e9""#);
    check("日本", r#""\u65e5\u672c""#);
    check("🎉", r#""\ud83c\udf89""#);
    check("\u{ffff}", r#""\uffff""#);
}

#[test]
fn styles_match_json_dumps() {
    let value = object(json!({"b": [1, -2, 3.5, null, true, false, {}, []], "a": {"y": "z"}}));
    #[track_caller]
    fn check(value: &Map<String, Value>, style: Style, expected: &str) {
        assert_eq!(to_string(value, style), expected);
    }
    check(
        &value,
        Style::FLASK,
        r#"{"a":{"y":"z"},"b":[1,-2,3.5,null,true,false,{},[]]}"#,
    );
    // Starlette writes map order: sorted here unless serde_json keeps
    // insertion order, where `b` comes first.
    let starlette = to_string(&value, Style::STARLETTE);
    let sorted = r#"{"a": {"y": "z"}, "b": [1, -2, 3.5, null, true, false, {}, []]}"#;
    let inserted = r#"{"b": [1, -2, 3.5, null, true, false, {}, []], "a": {"y": "z"}}"#;
    assert!(starlette == sorted || starlette == inserted, "{starlette}");
}

#[test]
fn flask_sorts_keys_by_code_point() {
    let value = object(json!({"é": 1, "z": 2, "Z": 3, "": 4, " ": 5, "_a": 6}));
    assert_eq!(
        to_string(&value, Style::FLASK),
        r#"{"":4," ":5,"Z":3,"_a":6,"z":2,"\u00e9":1}"#
    );
}

#[test]
fn integers_keep_their_digits() {
    let value = object(json!({"max": u64::MAX, "min": i64::MIN, "zero": 0}));
    assert_eq!(
        to_string(&value, Style::FLASK),
        r#"{"max":18446744073709551615,"min":-9223372036854775808,"zero":0}"#
    );
}

#[test]
fn parse_object_outcomes() {
    #[track_caller]
    fn check(json: &str, expected: Result<Value, CompatRejected>) {
        let got = parse_object(json.as_bytes()).map(Value::Object);
        assert_eq!(got, expected, "{json:?}");
    }
    check(r#"{"a": 1}"#, Ok(json!({"a": 1})));
    check(r#" {"a":[1,2]} "#, Ok(json!({"a": [1, 2]})));
    check(r#"{"a": 1, "a": 2}"#, Ok(json!({"a": 2})));
    check(r#"{"s": "-5 1e99999 \" 3"}"#, Ok(json!({"s": "-5 1e99999 \" 3"})));
    check(
        r#"{"f": 1.5e300, "n": -9223372036854775808}"#,
        Ok(json!({"f": 1.5e300, "n": i64::MIN})),
    );
    check(r#"{"u": 18446744073709551615}"#, Ok(json!({"u": u64::MAX})));
    check("[1, 2]", Err(CompatRejected::Malformed));
    check("null", Err(CompatRejected::Malformed));
    check("\"text\"", Err(CompatRejected::Malformed));
    check("", Err(CompatRejected::Malformed));
    check("{\"x\": NaN}", Err(CompatRejected::Malformed));
    check("{\"x\": Infinity}", Err(CompatRejected::Malformed));
    check(r#"{"x": "\ud800"}"#, Err(CompatRejected::Malformed));
    check("\u{feff}{}", Err(CompatRejected::Malformed));
    check("{\"a\": 1} trailing", Err(CompatRejected::Malformed));
}

#[test]
fn integers_a_float_would_hold_are_refused_unless_kept_exactly() {
    let exact = super::super::vectors::big_integers_exact();
    for json in [
        r#"{"u": 18446744073709551616}"#,
        r#"{"n": -9223372036854775809}"#,
        r#"{"deep": [1, {"x": 123456789012345678901234567890}]}"#,
        // Python reads the integer 0; plain serde_json the float -0.0.
        r#"{"z": -0}"#,
    ] {
        let got = parse_object(json.as_bytes());
        if exact {
            assert!(got.is_ok(), "{json}: {got:?}");
        } else {
            assert_eq!(got, Err(CompatRejected::Unsupported), "{json}");
        }
    }
}

#[test]
fn floats_beyond_f64_are_refused() {
    let expected = if super::super::vectors::big_integers_exact() {
        CompatRejected::Unsupported
    } else {
        CompatRejected::Malformed
    };
    for json in [r#"{"a": 1e400}"#, r#"{"a": [-1.5E+999]}"#] {
        assert_eq!(parse_object(json.as_bytes()), Err(expected), "{json}");
    }
}
