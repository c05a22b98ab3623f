//! Canonical JSON: byte for byte what CPython's `json.dumps(v, sort_keys=True)` prints.
//!
//! The rules (all of them are needed for hashes that match the Python version):
//! - separators `", "` and `": "`, no other whitespace;
//! - object keys sorted by Unicode code point at every level;
//! - `ensure_ascii`: every character outside `' '..='~'` is escaped; `"` and `\` as `\"` and
//!   `\\`; `\n`, `\r`, `\t`, `\b`, `\f` by name; other control characters, DEL and every
//!   non-ASCII character as `\uXXXX` with lowercase hex, characters beyond the BMP as a
//!   surrogate pair; `/` is not escaped;
//! - integers exactly; floats as Python's `repr` ([`crate::pyrepr::float`]);
//!   `true`, `false`, `null`.
//!
//! ```
//! use serde_json::json;
//! let v = json!({"b": [1, 2.0, 1e-5], "a": "é😀\n", "c": null});
//! assert_eq!(
//!     agent_safe_core::canonical::to_string(&v),
//!     r#"{"a": "\u00e9\ud83d\ude00\n", "b": [1, 2.0, 1e-05], "c": null}"#
//! );
//! ```

use serde_json::{Number, Value};

/// The canonical JSON text of `v` (see the module documentation).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Appends the canonical JSON text of `v` to `out`.
pub fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_map(map, out),
    }
}

/// Appends the canonical JSON text of a JSON object to `out` (without wrapping it in a
/// [`Value`] first).
pub fn write_map(map: &serde_json::Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    // `str` orders by UTF-8 bytes, which is Unicode code point order, as in Python.
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(key, out);
        out.push_str(": ");
        write(item, out);
    }
    out.push('}');
}

/// Appends `s` as a canonical (ASCII-only) JSON string literal, quotes included.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[run_start..i]);
        if b < 0x80 {
            push_ascii_escape(b, out);
            i += 1;
        } else {
            // `i` is at a char boundary: runs only ever stop at ASCII bytes or char starts.
            let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            push_u_escapes(u32::from(c), out);
            i += c.len_utf8();
        }
        run_start = i;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

/// The escape of an ASCII byte that canonical JSON does not write raw.
pub fn push_ascii_escape(b: u8, out: &mut String) {
    match b {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => push_u4(u32::from(b), out),
    }
}

/// `\uXXXX` for a BMP code point (surrogates included), a surrogate pair beyond the BMP.
pub fn push_u_escapes(cp: u32, out: &mut String) {
    if cp >= 0x1_0000 {
        let v = cp - 0x1_0000;
        push_u4(0xd800 | (v >> 10), out);
        push_u4(0xdc00 | (v & 0x3ff), out);
    } else {
        push_u4(cp, out);
    }
}

fn push_u4(cp: u32, out: &mut String) {
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(crate::hex::DIGITS[((cp >> shift) & 0xf) as usize]));
    }
}

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        write_float(f, out);
    } else {
        // Only reachable with serde_json's `arbitrary_precision`: the text is the number.
        out.push_str(&n.to_string());
    }
}

/// Python's `json.dumps` of a float: `repr`, except the non-finite values, which it writes
/// as `NaN`, `Infinity` and `-Infinity`.
pub fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        out.push_str(&crate::pyrepr::float(f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(v: Value, expected: &str) {
        assert_eq!(to_string(&v), expected);
    }

    // Every expected string below was printed by CPython 3.11 `json.dumps(v, sort_keys=True)`.
    #[test]
    fn matches_python_json_dumps() {
        check(json!(null), "null");
        check(json!(true), "true");
        check(json!([]), "[]");
        check(json!({}), "{}");
        check(json!({"b": 1, "a": {"d": [], "c": {}}}), r#"{"a": {"c": {}, "d": []}, "b": 1}"#);
        check(
            json!("\"\\/\u{7f}\u{0}\u{1f}\u{8}\u{c}\n\r\t ~"),
            r#""\"\\/\u007f\u0000\u001f\b\f\n\r\t ~""#,
        );
        check(json!("é€😀\u{ffff}\u{10ffff}"), r#""\u00e9\u20ac\ud83d\ude00\uffff\udbff\udfff""#);
        check(json!("\u{85}\u{2028}\u{feff}"), r#""\u0085\u2028\ufeff""#);
        check(
            json!([
                1.5,
                1e-5,
                1e16,
                0.1,
                1.0,
                -0.0,
                100.0,
                1e15,
                123456789.125,
                5e-324,
                1.7976931348623157e308
            ]),
            "[1.5, 1e-05, 1e+16, 0.1, 1.0, -0.0, 100.0, 1000000000000000.0, 123456789.125, 5e-324, 1.7976931348623157e+308]",
        );
        check(
            json!([0, -1, i64::MIN, u64::MAX, 0.0001, 0.00001234]),
            "[0, -1, -9223372036854775808, 18446744073709551615, 0.0001, 1.234e-05]",
        );
        // Keys sort by code point: "Z" < "a" < "é" < "😀" (and not by UTF-16 units).
        check(
            json!({"😀": 1, "é": 2, "a": 3, "Z": 4, "\u{ff01}": 5}),
            r#"{"Z": 4, "a": 3, "\u00e9": 2, "\uff01": 5, "\ud83d\ude00": 1}"#,
        );
        check(
            json!({"a b": "x", "a": "y", "a\u{0}": "z"}),
            r#"{"a": "y", "a\u0000": "z", "a b": "x"}"#,
        );
    }
}
