//! The params digest bound into tickets, over canonical JSON (CPython
//! `json.dumps(v, sort_keys=True)`, implemented in `agent_safe_core::canonical`).

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
    agent_safe_core::canonical::to_string(value)
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
    agent_safe_core::canonical::write_map(params, &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    agent_safe_core::hex::encode(digest.as_ref())
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
