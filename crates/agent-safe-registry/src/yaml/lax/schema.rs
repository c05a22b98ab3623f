//! JSON Schemas of the lax coercions (feature `schema`): what each `deserialize_with` helper
//! accepts, for `#[schemars(with = "…")]` on the fields that use it. A schema here may accept
//! more than the loader (a numeric string out of range), never less: an editor must not flag
//! a file the loader reads.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// The strings [`super::bool`] reads, in any case (`yes`, `On`, `F`, …).
const BOOL_WORDS: &str = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff]|[YyNnTtFf]|[01])$";
/// Strings [`super::i64`] and [`super::u64`] read: an integer, spaces and `_` allowed.
const INT_STRING: &str = r"^\s*[+-]?[0-9][0-9_]*\s*$";

/// [`super::bool`]: a boolean, `0`/`1`, or one of the YAML 1.1 / pydantic words.
pub struct Bool;

impl JsonSchema for Bool {
    fn schema_name() -> Cow<'static, str> {
        "LaxBool".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A boolean; also 0/1 and (any case) true/false, yes/no, on/off, y/n, t/f, as the Python version read them",
            "anyOf": [
                {"type": "boolean"},
                {"enum": [0, 1]},
                {"type": "string", "pattern": BOOL_WORDS}
            ]
        })
    }
}

/// [`super::i64`]: an integer, a float with zero fraction, or a string of an integer.
pub struct Int;

impl JsonSchema for Int {
    fn schema_name() -> Cow<'static, str> {
        "LaxInteger".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An integer; also a whole number written as a float or a string",
            "anyOf": [
                {"type": "integer"},
                {"type": "number", "multipleOf": 1},
                {"type": "string", "pattern": INT_STRING}
            ]
        })
    }
}

/// [`super::u64`]: [`Int`], not negative.
pub struct UInt;

impl JsonSchema for UInt {
    fn schema_name() -> Cow<'static, str> {
        "LaxUnsignedInteger".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A non-negative integer; also written as a float or a string",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "number", "multipleOf": 1, "minimum": 0},
                {"type": "string", "pattern": r"^\s*\+?[0-9][0-9_]*\s*$"}
            ]
        })
    }
}

/// [`super::f64`]: a number, or a string of one.
pub struct Float;

impl JsonSchema for Float {
    fn schema_name() -> Cow<'static, str> {
        "LaxNumber".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number; also written as a string",
            "anyOf": [{"type": "number"}, {"type": "string"}]
        })
    }
}

/// [`super::opt_strict_strings`]: a list of strings written as strings.
pub struct StrictStrings;

impl JsonSchema for StrictStrings {
    fn schema_name() -> Cow<'static, str> {
        "StrictStrings".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A list of strings (quote numbers and booleans, e.g. '1' or 'true')",
            "type": "array",
            "items": {"type": "string"}
        })
    }
}
