//! Canonical JSON (CPython `json.dumps(v, sort_keys=True)`) and the params digest bound into tickets.

use agent_safe_core::Params;
use serde_json::Value;

/// The JSON text CPython's `json.dumps(value, sort_keys=True)` produces: keys sorted by code point
/// at every level, `", "` and `": "` separators, non-ASCII escaped as `\uXXXX` (surrogate pairs
/// beyond the BMP), Python float repr (`1.0`, `1e-05`, `1e+16`). The same form the audit log hashes.
///
/// ```
/// # use agent_safe_tickets::canonical_json;
/// let v = serde_json::json!({"b": [1, 2.0], "a": "é"});
/// assert_eq!(canonical_json(&v), r#"{"a": "\u00e9", "b": [1, 2.0]}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// The params digest of a ticket: lowercase hex SHA-256 of [`canonical_json`] of the params.
/// Python computes the same value with
/// `hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()`.
///
/// ```
/// # use agent_safe_tickets::params_digest;
/// assert_eq!(
///     params_digest(&serde_json::Map::new()),
///     "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" // sha256("{}")
/// );
/// ```
pub fn params_digest(params: &Params) -> String {
    let mut text = String::new();
    write_object(params, &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::keys::hex(digest.as_ref())
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else if let Some(f) = n.as_f64() {
                out.push_str(&agent_safe_core::pyrepr::float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut String) {
    // `String`'s order is byte order of UTF-8, which is code-point order, as Python sorts.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(key, out);
        out.push_str(": ");
        write_value(item, out);
    }
    out.push('}');
}

fn write_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let push_u = |unit: u16, out: &mut String| {
        out.push_str("\\u");
        for shift in [12u16, 8, 4, 0] {
            out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
        }
    };
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            // CPython escapes everything outside ' '..='~', DEL included (SPEC §6.2 says otherwise).
            c if !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    push_u(unit, out);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(value: Value, expected: &str) {
        assert_eq!(canonical_json(&value), expected);
    }

    #[test]
    fn matches_cpython_json_dumps_sort_keys() {
        // Expected values are CPython 3.11 `json.dumps(v, sort_keys=True)` output.
        check(json!({}), "{}");
        check(
            json!({"b": 1, "a": {"d": null, "c": true}}),
            r#"{"a": {"c": true, "d": null}, "b": 1}"#,
        );
        check(
            json!([1, 1.0, 1e-5, 1e16, -0.5, 12345678901234567890u64]),
            "[1, 1.0, 1e-05, 1e+16, -0.5, 12345678901234567890]",
        );
        check(json!("app-ü"), r#""app-\u00fc""#);
        check(json!("😀"), r#""\ud83d\ude00""#);
        check(json!("q\"b\\s/ \u{7f}~"), r#""q\"b\\s/ \u007f~""#);
        check(json!("\n\r\t\u{8}\u{c}\u{1}\u{1f}"), r#""\n\r\t\b\f\u0001\u001f""#);
        // Keys sort by code point: uppercase before lowercase, ASCII before non-ASCII.
        check(json!({"é": 1, "z": 2, "Z": 3, "a": 4}), r#"{"Z": 3, "a": 4, "z": 2, "\u00e9": 1}"#);
    }

    #[test]
    fn digest_ignores_key_order_but_not_values() {
        let a: Params = serde_json::from_str(r#"{"namespace": "dev", "replicas": 3}"#).unwrap();
        let b: Params = serde_json::from_str(r#"{"replicas": 3, "namespace": "dev"}"#).unwrap();
        let c: Params = serde_json::from_str(r#"{"replicas": 3.0, "namespace": "dev"}"#).unwrap();
        assert_eq!(params_digest(&a), params_digest(&b));
        assert_ne!(params_digest(&a), params_digest(&c));
        // sha256(b'{"namespace": "dev", "replicas": 3}') computed with Python hashlib.
        assert_eq!(
            params_digest(&a),
            "21f9002058bafe56531788f5f56967ed2f0e15067945f4a328058d088f4edbd9"
        );
    }
}
