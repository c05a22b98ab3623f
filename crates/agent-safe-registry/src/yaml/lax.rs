//! `deserialize_with` helpers reproducing pydantic's lax coercion and PyYAML's YAML 1.1
//! booleans, so files written for the Python version keep loading.
//!
//! `serde_yaml` follows YAML 1.2, where `yes`, `no`, `on`, `off` are strings; PyYAML follows
//! YAML 1.1, where they are booleans, and pydantic then coerces `"true"`, `"1"`, `1` … to a
//! bool and `"10"`, `10.0` to an int. Use these on fields that Python declares as `bool`,
//! `int` or `float`:
//!
//! ```
//! use agent_safe_registry::yaml::{self, lax};
//!
//! #[derive(serde::Deserialize)]
//! struct Flags {
//!     #[serde(deserialize_with = "lax::bool")]
//!     enabled: bool,
//!     #[serde(default, deserialize_with = "lax::opt_i64")]
//!     limit: Option<i64>,
//! }
//!
//! let path = std::path::Path::new("flags.yaml");
//! let flags: Flags = yaml::from_str(path, "enabled: yes\nlimit: '10'\n").unwrap();
//! assert!(flags.enabled);
//! assert_eq!(flags.limit, Some(10));
//! ```
//!
//! Booleans are never numbers here: `true` for an integer field is an error.

use std::fmt;
use std::marker::PhantomData;

#[cfg(feature = "schema")]
pub mod schema;

use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

/// A bool: `true`/`false`, and (case-insensitive strings) `yes`/`no`, `on`/`off`, `y`/`n`,
/// `t`/`f`, `1`/`0`, plus the numbers `0` and `1`.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(BoolVisitor)
}

/// An optional [`bool`]: null or absent is `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_option(OptVisitor(BoolVisitor))
}

/// An `i64`: an integer, a float with zero fraction (`10.0`), or a string of an integer
/// (`"10"`, `" 10 "`, `"1_000"`). Booleans are an error.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor::<i64>::new("an integer"))
}

/// An optional [`i64`]: null or absent is `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(OptVisitor(IntVisitor::<i64>::new("an integer")))
}

/// A `u64`, coerced like [`i64`]; negative values are an error.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(IntVisitor::<u64>::new("a non-negative integer"))
}

/// An optional [`u64`]: null or absent is `None`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(OptVisitor(IntVisitor::<u64>::new("a non-negative integer")))
}

/// An `f64`: a float, an integer, or a string of a number (`"1.5"`, `"1e3"`, `"inf"`).
/// Booleans are an error.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(FloatVisitor)
}

/// An optional [`f64`]: null or absent is `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_option(OptVisitor(FloatVisitor))
}

/// An optional list of strings with **no** coercion: YAML numbers, booleans and nulls in the
/// list are errors, as for pydantic's `list[str]` (write `'1'`, not `1`).
pub fn opt_strict_strings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_option(OptVisitor(StrictListVisitor))
}

// ---------------------------------------------------------------------------------------------

struct OptVisitor<V>(V);

impl<'de, V: Visitor<'de> + Copy> Visitor<'de> for OptVisitor<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

#[derive(Clone, Copy)]
struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean (true/false, yes/no, on/off, 1/0)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        if v == 0.0 {
            Ok(false)
        } else if v == 1.0 {
            Ok(true)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" | "t" | "1" => Ok(true),
            "false" | "no" | "off" | "n" | "f" | "0" => Ok(false),
            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

struct IntVisitor<T> {
    expecting: &'static str,
    target: PhantomData<T>,
}

impl<T> IntVisitor<T> {
    const fn new(expecting: &'static str) -> Self {
        Self { expecting, target: PhantomData }
    }
}

impl<T> Clone for IntVisitor<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for IntVisitor<T> {}

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn convert<E: de::Error>(self, v: i128, unexpected: Unexpected<'_>) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(unexpected, &self))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.convert(i128::from(v), Unexpected::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.convert(i128::from(v), Unexpected::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Whole floats inside ±2^64 convert exactly; anything else is not an integer here.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 18_446_744_073_709_551_616.0 {
            // Exact: `v` is integral and well inside the i128 range.
            self.convert(v as i128, Unexpected::Float(v))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let trimmed = v.trim();
        let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
        // Underscores only between digits, as in Python's int("1_000").
        let well_formed = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__");
        let parsed = well_formed.then(|| trimmed.replace('_', "").parse::<i128>().ok()).flatten();
        match parsed {
            Some(n) => self.convert(n, Unexpected::Str(v)),
            None => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

#[derive(Clone, Copy)]
struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.trim().parse().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

#[derive(Clone, Copy)]
struct StrictListVisitor;

impl<'de> Visitor<'de> for StrictListVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictString(s)) = seq.next_element()? {
            out.push(s);
        }
        Ok(out)
    }
}

/// A string that must be written as a string (not a YAML number, boolean or null).
struct StrictString(String);

impl<'de> de::Deserialize<'de> for StrictString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictStringVisitor).map(StrictString)
    }
}

struct StrictStringVisitor;

impl Visitor<'_> for StrictStringVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (quote numbers and booleans, e.g. '1' or 'true')")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_i64")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "opt_u64")]
        u: Option<u64>,
        #[serde(default, deserialize_with = "opt_f64")]
        f: Option<f64>,
        #[serde(default, deserialize_with = "opt_strict_strings")]
        s: Option<Vec<String>>,
    }

    fn parse(yaml: &str) -> Result<Doc, String> {
        crate::yaml::from_str(std::path::Path::new("t.yaml"), yaml).map_err(|e| e.to_string())
    }

    #[track_caller]
    fn check_bool(yaml_value: &str, expected: Result<Option<bool>, &str>) {
        let got = parse(&format!("b: {yaml_value}\n")).map(|d| d.b);
        match (&got, &expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{yaml_value}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{yaml_value}: {g}"),
            _ => panic!("{yaml_value}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn bools_follow_yaml_1_1_and_pydantic() {
        for yes in [
            "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "y", "Y", "t", "1", "1.0",
            "'true'", "'1'",
        ] {
            check_bool(yes, Ok(Some(true)));
        }
        for no in ["false", "no", "NO", "off", "Off", "n", "f", "0", "0.0", "'off'"] {
            check_bool(no, Ok(Some(false)));
        }
        check_bool("~", Ok(None));
        check_bool(
            "2",
            Err(
                "t.yaml:1: `b`: invalid value: integer `2`, expected a boolean (true/false, yes/no, on/off, 1/0)",
            ),
        );
        check_bool("maybe", Err("invalid value: string \"maybe\", expected a boolean"));
        check_bool("[true]", Err("invalid type: sequence, expected a boolean"));
        check_bool("0.5", Err("invalid value: floating point `0.5`"));
    }

    #[track_caller]
    fn check_int(yaml_value: &str, expected: Result<Option<i64>, &str>) {
        let got = parse(&format!("i: {yaml_value}\n")).map(|d| d.i);
        match (&got, &expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{yaml_value}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{yaml_value}: {g}"),
            _ => panic!("{yaml_value}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn ints_coerce_like_pydantic() {
        check_int("10", Ok(Some(10)));
        check_int("-10", Ok(Some(-10)));
        check_int("'10'", Ok(Some(10)));
        check_int("' 10 '", Ok(Some(10)));
        check_int("'+7'", Ok(Some(7)));
        check_int("1_000", Ok(Some(1000)));
        check_int("10.0", Ok(Some(10)));
        check_int("-0.0", Ok(Some(0)));
        check_int("0x10", Ok(Some(16)));
        check_int("~", Ok(None));
        check_int("true", Err("invalid type: boolean `true`, expected an integer"));
        check_int("10.5", Err("invalid value: floating point `10.5`, expected an integer"));
        check_int("'10.0'", Err("invalid value: string \"10.0\""));
        check_int("'1__0'", Err("invalid value: string \"1__0\""));
        check_int("'_1'", Err("invalid value"));
        check_int("''", Err("invalid value"));
        check_int("'-'", Err("invalid value"));
        check_int("9223372036854775808", Err("invalid value: integer `9223372036854775808`"));
        check_int(".inf", Err("invalid value: floating point `inf`"));
        check_int("1e30", Err("invalid value: floating point"));
        check_int("abc", Err("invalid value: string \"abc\""));
    }

    #[test]
    fn unsigned_ints_reject_negatives() {
        assert_eq!(parse("u: '300'\n").unwrap().u, Some(300));
        assert_eq!(parse("u: 18446744073709551615\n").unwrap().u, Some(u64::MAX));
        let err = parse("u: -5\n").unwrap_err();
        assert!(
            err.contains("invalid value: integer `-5`, expected a non-negative integer"),
            "{err}"
        );
    }

    #[test]
    fn floats_coerce_like_pydantic() {
        assert_eq!(parse("f: 3\n").unwrap().f, Some(3.0));
        assert_eq!(parse("f: '1.5'\n").unwrap().f, Some(1.5));
        assert_eq!(parse("f: '1e3'\n").unwrap().f, Some(1000.0));
        assert_eq!(parse("f: .inf\n").unwrap().f, Some(f64::INFINITY));
        assert_eq!(parse("f: -7\n").unwrap().f, Some(-7.0));
        let err = parse("f: false\n").unwrap_err();
        assert!(err.contains("invalid type: boolean `false`, expected a number"), "{err}");
        let err = parse("f: 'x1'\n").unwrap_err();
        assert!(err.contains("invalid value: string \"x1\", expected a number"), "{err}");
    }

    #[test]
    fn strict_strings_reject_scalars_of_other_types() {
        assert_eq!(
            parse("s: [a, 'b', \"3\"]\n").unwrap().s,
            Some(vec!["a".into(), "b".into(), "3".into()])
        );
        assert_eq!(parse("s: ~\n").unwrap().s, None);
        let err = parse("s: [a, 1]\n").unwrap_err();
        assert_eq!(
            err,
            "t.yaml:1: `s[1]`: invalid type: integer `1`, expected a string (quote numbers and booleans, e.g. '1' or 'true')"
        );
        let err = parse("s: [true]\n").unwrap_err();
        assert!(err.contains("invalid type: boolean `true`"), "{err}");
        let err = parse("s: [~]\n").unwrap_err();
        assert!(err.contains("invalid type: unit value"), "{err}");
        let err = parse("s: a\n").unwrap_err();
        assert!(err.contains("expected a list of strings"), "{err}");
    }
}
