//! Encoding [`Value`]s as canonical JSON bytes.
//!
//! Spec, appendices § Canonical JSON: "the shortest UTF-8 JSON encoding with
//! dictionary keys lexicographically sorted by Unicode codepoint". Objects
//! are already sorted ([`Object`] keeps them so), so encoding is one pass.

use super::scan::next_special;
use super::value::{Object, Value};

/// Encodes `value` as canonical JSON.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

/// Appends the canonical JSON encoding of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Integer(i) => write_integer(*i, out),
        Value::RawNumber(n) => out.extend_from_slice(n.as_str().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(object) => write_object_except(object, &[], out),
    }
}

/// Appends `object` without the top-level members named in `skip`, as the
/// signing and hashing algorithms need (e.g. without `signatures` and
/// `unsigned`), without copying the object first.
pub fn write_object_except(object: &Object, skip: &[&str], out: &mut Vec<u8>) {
    write_members(object.iter().filter(|(key, _)| !skip.contains(key)), out, write_value);
}

/// Appends an object made of `members`, which must be in canonical order,
/// encoding each value with `write`.
pub(crate) fn write_members<'a, T>(
    members: impl Iterator<Item = (&'a str, T)>,
    out: &mut Vec<u8>,
    mut write: impl FnMut(T, &mut Vec<u8>),
) {
    out.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write(value, out);
    }
    out.push(b'}');
}

fn write_integer(i: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Appends `s` as a JSON string with the grammar's escapes: only `"`, `\`
/// and ASCII control characters are escaped, the five with short forms as
/// `\b \t \n \f \r`, the rest as lowercase `\u00XX`; everything else,
/// including non-ASCII, is copied as UTF-8.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    loop {
        let special = next_special(bytes, run_start);
        out.extend_from_slice(&bytes[run_start..special]);
        let Some(&byte) = bytes.get(special) else { break };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
        run_start = special + 1;
    }
    out.push(b'"');
}
