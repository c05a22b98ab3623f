//! The action catalog as JSON Schema: one schema per action's `params` (types, bounds, lengths,
//! patterns, allowed values) and the input schemas of the MCP tools built from them.

use agent_safe_registry::Registry;
use agent_safe_registry::{ActionDefinition, ParamType, Parameter};
use serde_json::{Map, Number, Value, json};

/// The JSON Schema of an action's `params` object. Accepts what the registry's parameter
/// validation accepts, except where JSON Schema cannot say it (see `docs/mcp.md`): a `pattern`
/// that is not also an ECMA-262 pattern is given as `x-agent-safe-pattern` and in the
/// description instead.
pub fn params_schema(def: &ActionDefinition) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for param in &def.parameters {
        properties.insert(param.name.clone(), param_schema(param));
        if param.required {
            required.push(Value::String(param.name.clone()));
        }
    }
    json!({
        "title": def.name.as_str(),
        "description": def.description.trim(),
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn param_schema(param: &Parameter) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!(param.kind.as_str()));
    let mut description = param.description.trim().to_owned();
    if let Some(default) = &param.default {
        schema.insert("default".into(), default.clone());
    }
    if param.sensitive {
        schema.insert("x-agent-safe-sensitive".into(), json!(true));
    }
    if let Some(c) = &param.constraints {
        let numeric = matches!(param.kind, ParamType::Integer | ParamType::Number);
        if numeric {
            if let Some(min) = c.min_value.and_then(number) {
                schema.insert("minimum".into(), min);
            }
            if let Some(max) = c.max_value.and_then(number) {
                schema.insert("maximum".into(), max);
            }
        }
        if param.kind == ParamType::String {
            if let Some(min) = c.min_length {
                schema.insert("minLength".into(), json!(min));
            }
            if let Some(max) = c.max_length {
                schema.insert("maxLength".into(), json!(max));
            }
            if let Some(pattern) = &c.pattern {
                if portable(pattern) {
                    schema.insert("pattern".into(), json!(format!("^(?:{pattern})$")));
                } else {
                    schema.insert("x-agent-safe-pattern".into(), json!(pattern));
                    if !description.is_empty() {
                        description.push_str("; ");
                    }
                    description.push_str(&format!(
                        "the whole value must match the regular expression `{pattern}`"
                    ));
                }
            }
        }
        if let Some(allowed) = &c.allowed
            && let Some(values) = allowed_values(param.kind, allowed)
        {
            schema.insert("enum".into(), Value::Array(values));
        }
    }
    if !description.is_empty() {
        schema.insert("description".into(), json!(description));
    }
    Value::Object(schema)
}

/// A bound as a JSON number: an integer when it is whole (`1`, not `1.0`).
fn number(value: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() <= EXACT {
        #[expect(clippy::cast_possible_truncation, reason = "whole and within ±2^53")]
        return Some(json!(value as i64));
    }
    Number::from_f64(value).map(Value::Number)
}

/// The registry compares allowed values with the value's Python `str()`: the JSON values
/// whose `str()` is in the list. `None` (no `enum`) for arrays, whose `str()` no JSON Schema
/// can express.
fn allowed_values(kind: ParamType, allowed: &[String]) -> Option<Vec<Value>> {
    let values = match kind {
        ParamType::String => allowed.iter().map(|a| json!(a)).collect(),
        ParamType::Integer => {
            allowed.iter().filter_map(|a| a.parse::<i64>().ok()).map(|n| json!(n)).collect()
        }
        ParamType::Number => allowed
            .iter()
            .filter_map(|a| {
                if let Ok(n) = a.parse::<i64>() {
                    Some(json!(n))
                } else {
                    a.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
                }
            })
            .collect(),
        ParamType::Boolean => allowed
            .iter()
            .filter_map(|a| match a.as_str() {
                "True" => Some(json!(true)),
                "False" => Some(json!(false)),
                _ => None,
            })
            .collect(),
        ParamType::Array => return None,
    };
    Some(values)
}

/// Whether `pattern` (the `regex` crate's syntax) means the same as an ECMA-262 pattern, as far
/// as a simple scan can tell: no inline flags or named groups `(?…)` other than `(?:`, no
/// `\A \z \Z \p \P \h`, no POSIX classes `[[:alpha:]]`.
fn portable(pattern: &str) -> bool {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if matches!(chars.next(), Some('A' | 'z' | 'Z' | 'p' | 'P' | 'h' | 'Q' | 'E')) {
                    return false;
                }
            }
            '(' if chars.peek() == Some(&'?') => {
                chars.next();
                if chars.peek() != Some(&':') {
                    return false;
                }
            }
            '[' if chars.peek() == Some(&'[') => {
                chars.next();
                if chars.peek() == Some(&':') {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Which extra arguments a tool's schema offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extras {
    /// The `caller` argument (only when no identity token was given at start-up).
    pub(crate) caller: bool,
    /// The `dry_run` argument (`execute_action`).
    pub(crate) dry_run: bool,
}

/// The input schema of `check_action` / `execute_action`: `action` is one of the catalog's
/// names, `params` one of the actions' parameter schemas (`anyOf`), and the `allOf` of
/// `if action = X then params: X's schema` ties each action to its own parameters.
pub(crate) fn action_input_schema(registry: &Registry, extras: Extras) -> Map<String, Value> {
    let mut defs = Map::new();
    let mut any_of = Vec::new();
    let mut all_of = Vec::new();
    let mut names = Vec::new();
    for action in registry.iter() {
        let def = action.definition();
        let name = def.name.as_str();
        names.push(json!(name));
        defs.insert(name.to_owned(), params_schema(def));
        let reference = json!({ "$ref": format!("#/$defs/{}", pointer_escape(name)) });
        any_of.push(reference.clone());
        let mut then = json!({ "properties": { "params": reference } });
        if def.parameters.iter().any(|p| p.required) {
            then["required"] = json!(["params"]);
        }
        all_of.push(json!({
            "if": { "properties": { "action": { "const": name } }, "required": ["action"] },
            "then": then,
        }));
    }
    let mut properties = Map::new();
    properties.insert(
        "action".into(),
        json!({
            "type": "string",
            "enum": names,
            "description": "The action to take (list_actions describes each)",
        }),
    );
    properties.insert(
        "target".into(),
        json!({
            "type": "string",
            "description": "The target's id in the inventory, e.g. `prod/api-server`",
        }),
    );
    properties.insert(
        "params".into(),
        json!({
            "type": "object",
            "description": "The action's parameters, exactly as its schema declares them",
            "anyOf": any_of,
        }),
    );
    if extras.caller {
        properties.insert(
            "caller".into(),
            json!({
                "type": "string",
                "description": "Who is asking: an agent id or an identity token (the server \
                                was started without an identity token)",
            }),
        );
    }
    properties.insert(
        "ticket_id".into(),
        json!({ "type": "string", "description": "External change ticket (JIRA, ServiceNow…)" }),
    );
    properties.insert(
        "correlation_id".into(),
        json!({ "type": "string", "description": "Correlates related decisions in the audit log" }),
    );
    if extras.dry_run {
        properties.insert(
            "dry_run".into(),
            json!({
                "type": "boolean",
                "default": false,
                "description": "Report what would be executed without executing (the decision \
                                is still recorded; the ticket is not used)",
            }),
        );
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), json!(["action"]));
    schema.insert("additionalProperties".into(), json!(false));
    schema.insert("allOf".into(), Value::Array(all_of));
    schema.insert("$defs".into(), Value::Object(defs));
    schema
}

/// `name` as a JSON Pointer reference token.
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_portable(pattern: &str, expected: bool) {
        assert_eq!(portable(pattern), expected, "{pattern}");
    }

    #[test]
    fn only_ecma_compatible_patterns_are_portable() {
        check_portable("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", true);
        check_portable("(?:ab)+", true);
        check_portable(r"\(?\d+\)?", true);
        check_portable(r"(?s)^\s*\{.*\}\s*$", false);
        check_portable(r"(?i)abc", false);
        check_portable(r"(?P<x>a)", false);
        check_portable(r"\Aabc\z", false);
        check_portable(r"\p{L}+", false);
        check_portable("[[:alpha:]]+", false);
        check_portable("[[a]]", true);
    }

    #[track_caller]
    fn check_param(param: Value, expected: Value) {
        let param: Parameter = serde_json::from_value(param).unwrap();
        assert_eq!(param_schema(&param), expected, "{}", param.name);
    }

    #[test]
    fn parameter_constraints_become_json_schema_keywords() {
        check_param(
            json!({"name": "n", "type": "integer", "description": "Replicas", "constraints": {"min_value": 0, "max_value": 50}}),
            json!({"type": "integer", "minimum": 0, "maximum": 50, "description": "Replicas"}),
        );
        check_param(
            json!({"name": "n", "type": "number", "constraints": {"min_value": 0.5}}),
            json!({"type": "number", "minimum": 0.5}),
        );
        check_param(
            json!({"name": "n", "type": "string", "constraints": {"min_length": 1, "max_length": 63, "pattern": "[a-z]+"}}),
            json!({"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^(?:[a-z]+)$"}),
        );
        check_param(
            json!({"name": "n", "type": "string", "description": "JSON", "constraints": {"pattern": "(?s)\\{.*\\}"}}),
            json!({
                "type": "string",
                "x-agent-safe-pattern": "(?s)\\{.*\\}",
                "description": "JSON; the whole value must match the regular expression `(?s)\\{.*\\}`",
            }),
        );
        check_param(
            json!({"name": "n", "type": "string", "constraints": {"enum": ["a", "b"]}}),
            json!({"type": "string", "enum": ["a", "b"]}),
        );
        check_param(
            json!({"name": "n", "type": "integer", "constraints": {"enum": ["1", "2", "x"]}}),
            json!({"type": "integer", "enum": [1, 2]}),
        );
        check_param(
            json!({"name": "n", "type": "boolean", "constraints": {"enum": ["True"]}}),
            json!({"type": "boolean", "enum": [true]}),
        );
        // Bounds the registry ignores for the type are not given.
        check_param(
            json!({"name": "n", "type": "string", "constraints": {"min_value": 1}}),
            json!({"type": "string"}),
        );
        check_param(
            json!({"name": "n", "type": "array", "default": [], "sensitive": true}),
            json!({"type": "array", "default": [], "x-agent-safe-sensitive": true}),
        );
    }
}
