//! JSON Schemas of the lax coercions (feature `schema`): what each `deserialize_with` helper
//! accepts, for `#[schemars(with = "…")]` on the fields that use it. A schema here may accept
//! more than the loader (a numeric string out of range), never less: an editor must not flag
//! a file the loader reads.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// Marks a string schema that must not be widened by [`yaml_document`] (removed from the
/// output).
const STRICT: &str = "x-agent-safe-strict";

/// The schema of a YAML document as agent-safe reads it: an unquoted scalar (`version: 1.0`,
/// `name: 0`, `owner: true`) is read as its text where a string is expected, so every string
/// schema also accepts numbers and booleans (what an editor's YAML parser turns them into),
/// except the strict ones ([`StrictStrings`]).
pub fn yaml_document(mut schema: Schema) -> Schema {
    if let Some(map) = schema.as_object_mut() {
        widen(map);
    }
    schema
}

fn widen(map: &mut serde_json::Map<String, Value>) {
    let strict = map.remove(STRICT).is_some();
    if !strict {
        let widened = match map.get("type") {
            Some(Value::String(t)) if t == "string" => Some(vec!["string"]),
            Some(Value::Array(types)) if types.iter().any(|t| t == "string") => {
                Some(types.iter().filter_map(Value::as_str).collect())
            }
            _ => None,
        };
        if let Some(mut types) = widened {
            for extra in ["number", "boolean"] {
                if !types.contains(&extra) {
                    types.push(extra);
                }
            }
            map.insert("type".to_owned(), serde_json::json!(types));
        }
    }
    for value in map.values_mut() {
        widen_value(value);
    }
}

fn widen_value(value: &mut Value) {
    match value {
        Value::Object(map) => widen(map),
        Value::Array(list) => list.iter_mut().for_each(widen_value),
        _ => {}
    }
}

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
            "items": {"type": "string", STRICT: true}
        })
    }
}
