use super::*;

fn canonical(input: &str) -> String {
    String::from_utf8(to_bytes(&parse(input.as_bytes()).unwrap())).unwrap()
}

fn reason(input: &str) -> ParseErrorReason {
    parse(input.as_bytes()).unwrap_err().reason
}

/// Every example from the spec appendix § Canonical JSON › Examples, except
/// that the last one (`{"a": -0, "b": 1e10}`) loses its `1e10`: we refuse it,
/// as the servers we federate with do (see
/// `strict_mode_refuses_numbers_with_fraction_or_exponent`).
#[test]
fn matches_every_spec_example() {
    let examples = [
        ("{}", "{}"),
        ("{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", r#"{"one":1,"two":"Two"}"#),
        ("{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", r#"{"a":"1","b":"2"}"#),
        (r#"{"b":"2","a":"1"}"#, r#"{"a":"1","b":"2"}"#),
        (
            r#"{
                "auth": {
                    "success": true,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            {"medium": "email", "address": "john.doe@example.org"},
                            {"medium": "msisdn", "address": "123456789"}
                        ]
                    }
                }
            }"#,
            r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#,
        ),
        ("{\"a\": \"日本語\"}", "{\"a\":\"日本語\"}"),
        ("{\"本\": 2, \"日\": 1}", "{\"日\":1,\"本\":2}"),
        (r#"{"a": "\u65E5"}"#, "{\"a\":\"日\"}"),
        (r#"{"a": null}"#, r#"{"a":null}"#),
        (r#"{"a": -0}"#, r#"{"a":0}"#),
    ];
    for (input, expected) in examples {
        assert_eq!(canonical(input), expected, "input: {input}");
    }
}

#[test]
fn escapes_only_what_the_grammar_requires() {
    assert_eq!(
        canonical(r#"["\u0000\u0001\b\t\n\u000b\f\r\u001f\u007f \"\\\/é\ud83d\ude00"]"#),
        "[\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\u{7f} \\\"\\\\/é😀\"]"
    );
}

#[test]
fn sorts_keys_by_code_point_not_utf16() {
    // U+FF61 sorts before U+1F600 by code point, but after it in UTF-16.
    assert_eq!(canonical("{\"😀\":1,\"｡\":2,\"Z\":3,\"a\":4}"), "{\"Z\":3,\"a\":4,\"｡\":2,\"😀\":1}");
}

#[test]
fn keeps_integer_range_boundaries() {
    assert_eq!(canonical("[9007199254740991,-9007199254740991]"), "[9007199254740991,-9007199254740991]");
    assert_eq!(reason("9007199254740992"), ParseErrorReason::IntegerOutOfRange);
    assert_eq!(reason("-9007199254740992"), ParseErrorReason::IntegerOutOfRange);
    assert_eq!(reason("123456789012345678901234567890"), ParseErrorReason::IntegerOutOfRange);
}

/// The appendix's example `{"a": -0, "b": 1e10}` canonicalises to
/// `{"a":0,"b":10000000000}`, but Synapse and ruma parse `1e10` as a float
/// and refuse events carrying it in rooms with strict canonical JSON (v6+).
/// We follow the servers we federate with, so that we do not accept events
/// the rest of the room drops; `-0` is an integer to them and stays.
#[test]
fn strict_mode_refuses_numbers_with_fraction_or_exponent() {
    for input in
        ["1e10", "1.0", "2.50e1", "100e-2", "0e999999999999", "-0.0", "1E+3", "1e16", "0.0", "9007199254740991.0"]
    {
        assert_eq!(reason(input), ParseErrorReason::NotAnInteger, "{input}");
        assert_eq!(reason(&format!(r#"{{"a": {input}}}"#)), ParseErrorReason::NotAnInteger, "{input}");
    }
    assert_eq!(canonical("[-0, 0, 10000000000]"), "[0,0,10000000000]");
}

#[test]
fn rejects_non_integer_numbers() {
    for input in ["1.5", "1e-1", "0.1", "-2.25e1"] {
        assert_eq!(reason(input), ParseErrorReason::NotAnInteger, "{input}");
    }
}

#[test]
fn rejects_malformed_numbers() {
    assert_eq!(reason("01"), ParseErrorReason::LeadingZero);
    assert_eq!(reason("-01"), ParseErrorReason::LeadingZero);
    for input in ["-", "1.", "1e", "1e+", ".5"] {
        assert!(
            matches!(reason(input), ParseErrorReason::InvalidNumber | ParseErrorReason::UnexpectedChar(_)),
            "{input}"
        );
    }
}

#[test]
fn rejects_duplicate_keys() {
    assert_eq!(reason(r#"{"a":1,"b":2,"a":3}"#), ParseErrorReason::DuplicateKey("a".into()));
    // The same key spelled with an escape is still the same key.
    assert_eq!(reason(r#"{"a":1,"\u0061":1}"#), ParseErrorReason::DuplicateKey("a".into()));
}

#[test]
fn rejects_nesting_beyond_the_limit() {
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(parse(ok.as_bytes()).is_ok());
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert_eq!(reason(&deep), ParseErrorReason::TooDeep);
    let deep_objects = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
    assert_eq!(reason(&deep_objects), ParseErrorReason::TooDeep);
}

#[test]
fn rejects_lone_surrogates() {
    assert_eq!(reason(r#""\ud800""#), ParseErrorReason::LoneSurrogate);
    assert_eq!(reason(r#""\udc00""#), ParseErrorReason::LoneSurrogate);
    assert_eq!(reason(r#""\ud800\u0041""#), ParseErrorReason::LoneSurrogate);
}

#[test]
fn rejects_invalid_utf8() {
    assert_eq!(parse(b"\"\xff\"").unwrap_err().reason, ParseErrorReason::InvalidUtf8);
}

#[test]
fn rejects_raw_control_characters_in_strings() {
    assert_eq!(reason("\"a\nb\""), ParseErrorReason::ControlCharacter);
}

#[test]
fn rejects_trailing_garbage_and_truncation() {
    assert_eq!(reason("{} {}"), ParseErrorReason::TrailingCharacters);
    assert_eq!(reason(r#"{"a":"#), ParseErrorReason::UnexpectedEnd);
    assert_eq!(reason(r#""abc"#), ParseErrorReason::UnexpectedEnd);
    assert_eq!(reason("[1,]"), ParseErrorReason::UnexpectedChar(']'));
    assert_eq!(reason("tru"), ParseErrorReason::UnexpectedChar('t'));
    assert_eq!(reason(r#""\x""#), ParseErrorReason::InvalidEscape);
}

#[test]
fn parse_object_rejects_non_objects() {
    assert_eq!(parse_object(b"[]").unwrap_err().reason, ParseErrorReason::NotAnObject);
}

#[test]
fn converts_from_serde_json_and_rejects_floats() {
    let value = Value::try_from(serde_json::json!({"b": [1, "x"], "a": {"c": null}})).unwrap();
    assert_eq!(to_bytes(&value), br#"{"a":{"c":null},"b":[1,"x"]}"#);
    assert!(matches!(Value::try_from(serde_json::json!({"a": 1.5})), Err(ConvertError::NotAnInteger(_))));
    assert!(matches!(Value::try_from(serde_json::json!(u64::MAX)), Err(ConvertError::IntegerOutOfRange(_))));
    assert_eq!(serde_json::Value::from(value), serde_json::json!({"b": [1, "x"], "a": {"c": null}}));
}

#[test]
fn converts_serde_json_objects_and_rejects_other_values() {
    let object = Object::try_from(serde_json::json!({"b": 1, "a": true})).unwrap();
    assert_eq!(to_bytes(&object.into()), br#"{"a":true,"b":1}"#);
    assert_eq!(Object::try_from(serde_json::json!([1])), Err(ConvertError::NotAnObject));
}

#[test]
fn object_insert_and_remove_keep_canonical_order() {
    let mut object = Object::new();
    object.insert("b", "2");
    object.insert("a", "1");
    object.insert("c", "3");
    assert_eq!(object.remove("c"), Some(Value::from("3")));
    assert_eq!(to_bytes(&object.into()), br#"{"a":"1","b":"2"}"#);
}

#[test]
fn write_object_except_skips_only_top_level_members() {
    let object = parse_object(br#"{"unsigned":{"unsigned":1},"x":{"unsigned":2}}"#).unwrap();
    let mut out = Vec::new();
    write_object_except(&object, &["unsigned"], &mut out);
    assert_eq!(out, br#"{"x":{"unsigned":2}}"#);
}

/// Guards the `MAX_DEPTH` doc comment, which once claimed to match
/// `serde_json`'s default: serde_json refuses the 128 levels we accept.
#[test]
fn max_depth_is_not_serde_jsons_default() {
    let ours = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(parse(ours.as_bytes()).is_ok());
    assert!(serde_json::from_str::<serde_json::Value>(&ours).is_err());
    let theirs = "[".repeat(MAX_DEPTH - 1) + &"]".repeat(MAX_DEPTH - 1);
    assert!(serde_json::from_str::<serde_json::Value>(&theirs).is_ok());
}

/// Room versions 1–5 must not strictly enforce canonical JSON: floats and
/// large integers there are valid, and are hashed and signed as Synapse's
/// Python `canonicaljson` writes them (expected outputs from CPython's
/// `json.dumps`).
#[test]
fn lax_mode_keeps_floats_and_large_integers_as_python_encodes_them() {
    let input = r#"{"a": 50.57, "b": 1e10, "c": 12345678901234567890, "d": -0.0, "e": 2.50e1, "f": 1, "g": -0,
        "h": 1E-7, "i": -99999999999999999999}"#;
    let value = parse_with(input.as_bytes(), Numbers::Lax).unwrap();
    assert_eq!(
        String::from_utf8(to_bytes(&value)).unwrap(),
        r#"{"a":50.57,"b":10000000000.0,"c":12345678901234567890,"d":-0.0,"e":25.0,"f":1,"g":0,"h":1e-07,"i":-99999999999999999999}"#
    );
    let Value::Object(object) = &value else { panic!() };
    assert_eq!(object.get("f"), Some(&Value::Integer(1)));
    assert!(matches!(object.get("a"), Some(Value::RawNumber(n)) if n.as_f64() == 50.57));
    // The same input is refused in strict mode, and infinity in both.
    assert_eq!(parse(input.as_bytes()).unwrap_err().reason, ParseErrorReason::NotAnInteger);
    assert_eq!(parse_with(b"1e400", Numbers::Lax).unwrap_err().reason, ParseErrorReason::NotFinite);
    assert_eq!(parse_with(b"01", Numbers::Lax).unwrap_err().reason, ParseErrorReason::LeadingZero);
    assert_eq!(parse_with(b"[1.]", Numbers::Lax).unwrap_err().reason, ParseErrorReason::InvalidNumber);
}

/// Checked against CPython's `repr` on 200,000 random floats while written.
#[test]
fn lax_floats_are_written_like_python_repr() {
    let cases: [(&str, &str); 21] = [
        // Exact ties between two shortest candidates: Python takes the even
        // digit, where Rust's own formatting rounds up.
        ("-693939394336734.25", "-693939394336734.2"),
        ("1234567890123456.5e3", "1.2345678901234565e+18"),
        ("5.5e-320", "5.5e-320"),
        ("50.57", "50.57"),
        ("1.0", "1.0"),
        ("1e10", "10000000000.0"),
        ("1e16", "1e+16"),
        ("1.5e16", "1.5e+16"),
        ("1e15", "1000000000000000.0"),
        ("0.0001", "0.0001"),
        ("1e-5", "1e-05"),
        ("-0.0", "-0.0"),
        ("0.1", "0.1"),
        ("1e100", "1e+100"),
        ("2.5e-7", "2.5e-07"),
        ("123456789.123", "123456789.123"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("5e-324", "5e-324"),
        ("-1234.5e-10", "-1.2345e-07"),
        ("9007199254740993.0", "9007199254740992.0"),
        ("0.30000000000000004", "0.30000000000000004"),
    ];
    for (float, python) in cases {
        assert_eq!(super::parse::python_float_repr(float.parse().unwrap()), python, "{float}");
    }
}
