//! Python's textual forms of JSON values: `repr(float)`, `str(value)`, `repr(value)` and type
//! names. Needed for byte-compatible audit hashes and for the Python version's messages.

use serde_json::Value;

/// Python's `repr()` of a finite float: shortest round-trip digits, fixed notation for
/// decimal exponents −4 ≤ e < 16, scientific (`1e-05`, `1.5e+16`) otherwise.
/// Non-finite values print as Python does (`inf`, `-inf`, `nan`).
///
/// ```
/// use agent_safe_core::pyrepr::float;
/// assert_eq!(float(1.0), "1.0");
/// assert_eq!(float(1e-5), "1e-05");
/// assert_eq!(float(1e16), "1e+16");
/// assert_eq!(float(123.456), "123.456");
/// ```
pub fn float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".to_owned() } else { "-inf".to_owned() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if x.is_sign_negative() {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', usize::try_from(-exp - 1).unwrap_or(0)));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    }
    out
}

/// Python's type name of the value `json.loads` would produce (`str`, `int`, `float`,
/// `bool`, `NoneType`, `list`, `dict`).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of the decoded value (strings print bare, everything else as `repr`).
pub fn str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr()` of the decoded value: `'text'`, `3`, `1.5`, `True`, `None`, `[1, 'a']`,
/// `{'k': 1}`.
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(k, out);
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr()` of a string: single quotes unless the text contains `'` and no `"`.
pub fn str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str_repr(s, &mut out);
    out
}

fn write_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check_float(x: f64, expected: &str) {
        assert_eq!(float(x), expected, "repr({x:?})");
    }

    #[test]
    fn floats_match_cpython_repr() {
        // Expected values are CPython 3.11 `repr()` output.
        check_float(0.0, "0.0");
        check_float(-0.0, "-0.0");
        check_float(1.0, "1.0");
        check_float(1.5, "1.5");
        check_float(100.0, "100.0");
        check_float(0.1, "0.1");
        check_float(0.0001, "0.0001");
        check_float(0.00001, "1e-05");
        check_float(1.5e-7, "1.5e-07");
        check_float(1e15, "1000000000000000.0");
        check_float(1e16, "1e+16");
        check_float(1.2345e16, "1.2345e+16");
        check_float(1e100, "1e+100");
        check_float(-2.5e-300, "-2.5e-300");
        check_float(123456789.125, "123456789.125");
        check_float(1.0 / 3.0, "0.3333333333333333");
        check_float(f64::MAX, "1.7976931348623157e+308");
        check_float(5e-324, "5e-324");
        check_float(f64::INFINITY, "inf");
        check_float(f64::NAN, "nan");
    }

    #[test]
    fn values_match_python_str_and_repr() {
        assert_eq!(str(&json!("x")), "x");
        assert_eq!(str(&json!(true)), "True");
        assert_eq!(str(&json!(3)), "3");
        assert_eq!(str(&json!(3.0)), "3.0");
        assert_eq!(str(&json!(null)), "None");
        assert_eq!(repr(&json!(["a", 1, false])), "['a', 1, False]");
        assert_eq!(repr(&json!({"k": "it's"})), "{'k': \"it's\"}");
        assert_eq!(str_repr("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(type_name(&json!(1)), "int");
        assert_eq!(type_name(&json!(1.0)), "float");
        assert_eq!(type_name(&json!(null)), "NoneType");
        assert_eq!(type_name(&json!({})), "dict");
    }
}
