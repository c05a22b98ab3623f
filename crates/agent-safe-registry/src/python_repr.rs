//! Python's textual forms needed by the parameter-validation messages (SPEC §1.3).
//!
//! The general helpers (`repr(float)`, `str(value)`, type names) live in
//! [`agent_safe_core::pyrepr`]; this module adds what only the registry needs: the repr of
//! the `enum` list, the printing of constraint bounds, and Python's exact int/float ordering.

use std::cmp::Ordering;

use agent_safe_core::pyrepr;
use serde_json::Value;

/// Python's `str(value)` of a decoded JSON value (`True`, `3`, `1.5`, `abc`, `['a']`).
pub(crate) fn str(value: &Value) -> String {
    pyrepr::str(value)
}

/// Python's type name of a decoded JSON value (`str`, `int`, `float`, `bool`, …).
pub(crate) fn type_name(value: &Value) -> &'static str {
    pyrepr::type_name(value)
}

/// A float bound as Python prints it (`100.0`, `1e-05`, `inf`).
pub(crate) fn float(bound: f64) -> String {
    pyrepr::float(bound)
}

/// Python's repr of a list of strings: `['a', 'b']`.
pub(crate) fn str_list(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&pyrepr::str_repr(item));
    }
    out.push(']');
    out
}

/// Python's `value < bound` / `value > bound` ordering for a value that Python treats as a
/// number (`int`, `float` or `bool`), exact even for integers beyond 2^53. `None` for
/// non-numbers and NaN.
pub(crate) fn cmp_number(value: &Value, bound: f64) -> Option<Ordering> {
    match value {
        Value::Bool(b) => cmp_int(i128::from(u8::from(*b)), bound),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                cmp_int(i128::from(i), bound)
            } else if let Some(u) = n.as_u64() {
                cmp_int(i128::from(u), bound)
            } else {
                n.as_f64()?.partial_cmp(&bound)
            }
        }
        _ => None,
    }
}

/// Exact comparison of an integer with a float, as Python does it.
fn cmp_int(i: i128, bound: f64) -> Option<Ordering> {
    // 2^120: every i128 built from an i64/u64 is far below it in magnitude.
    const HUGE: f64 = 1.329_227_995_784_916e36;
    if bound.is_nan() {
        return None;
    }
    if bound >= HUGE {
        return Some(Ordering::Less);
    }
    if bound <= -HUGE {
        return Some(Ordering::Greater);
    }
    let floor = bound.floor();
    // `floor` is integral and well inside i128, so the cast is exact.
    let whole = floor as i128;
    Some(match i.cmp(&whole) {
        Ordering::Equal if bound > floor => Ordering::Less,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(value: Value, bound: f64, expected: Option<Ordering>) {
        assert_eq!(cmp_number(&value, bound), expected, "{value} vs {bound}");
    }

    #[test]
    fn compares_like_python() {
        use Ordering::{Equal, Greater, Less};
        check(json!(3), 3.5, Some(Less));
        check(json!(4), 3.5, Some(Greater));
        check(json!(-4), -3.5, Some(Less));
        check(json!(-3), -3.5, Some(Greater));
        check(json!(100), 100.0, Some(Equal));
        check(json!(101), 100.0, Some(Greater));
        check(json!(2.5), 2.5, Some(Equal));
        check(json!(true), 1.0, Some(Equal));
        check(json!(false), 0.5, Some(Less));
        // 2^53 + 1 is not representable as f64; Python still orders it exactly.
        check(json!(9_007_199_254_740_993_i64), 9_007_199_254_740_992.0, Some(Greater));
        check(json!(u64::MAX), f64::INFINITY, Some(Less));
        check(json!(i64::MIN), f64::NEG_INFINITY, Some(Greater));
        check(json!(1), f64::NAN, None);
        check(json!("1"), 1.0, None);
        check(json!(null), 1.0, None);
    }

    #[test]
    fn prints_like_python() {
        assert_eq!(str_list(&["a".into(), "it's".into()]), "['a', \"it's\"]");
        assert_eq!(str_list(&[]), "[]");
        assert_eq!(float(100.0), "100.0");
        assert_eq!(str(&json!(true)), "True");
        assert_eq!(type_name(&json!(null)), "NoneType");
    }
}
