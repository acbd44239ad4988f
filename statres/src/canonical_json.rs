//! Canonical JSON (appendices, "Canonical JSON") of a parsed value, for the
//! one signature the auth rules verify themselves (third-party invites).

use serde_json::Value;

/// Canonical JSON of an object without its `signatures` and `unsigned`
/// members (appendices, "Signing JSON"); `None` if `value` is not an object
/// or holds a non-integer number.
pub fn encode_without_signatures(value: &Value) -> Option<String> {
    let mut out = String::new();
    let members = value.as_object()?.iter().filter(|(key, _)| *key != "signatures" && *key != "unsigned");
    write_object(&mut out, members)?;
    Some(out)
}

fn write_object<'a>(out: &mut String, members: impl Iterator<Item = (&'a String, &'a Value)>) -> Option<()> {
    let mut members: Vec<(&String, &Value)> = members.collect();
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value)?;
    }
    out.push('}');
    Some(())
}

fn write_value(out: &mut String, value: &Value) -> Option<()> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.as_i64()?.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map.iter())?,
    }
    Some(())
}

/// Strings escape only `"`, `\` and control characters, the latter as
/// `\b \f \n \r \t` or lowercase `\u00XX`.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_signatures_dropped_and_controls_escaped() {
        let value = json!({"b": [1, {"z": null, "a": true}], "a": "x\u{1}\n\"", "signatures": {}, "unsigned": {}});
        assert_eq!(encode_without_signatures(&value).unwrap(), r#"{"a":"x\u0001\n\"","b":[1,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn float_is_not_canonical() {
        assert_eq!(encode_without_signatures(&json!({"a": 1.5})), None);
    }
}
