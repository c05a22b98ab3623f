//! Shared test helpers: generators for property tests.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// YAML-looking text: keys from the schema, scalars, flow collections, anchors, aliases, tags.
pub(crate) fn yaml_ish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("version"),
        Just("description"),
        Just("parameters"),
        Just("risk_class"),
        Just("target_types"),
        Just("constraints"),
        Just("type"),
        Just("required"),
        Just("enum"),
        Just("pattern"),
        Just("credentials"),
        Just("ttl"),
        Just("rollback_params"),
        Just("source"),
        Just("targets"),
        Just("id"),
        Just("environment"),
        Just("sensitivity"),
        Just("params"),
        Just("<<"),
        Just("? x"),
        Just("x"),
    ];
    let scalar = prop_oneof![
        Just("a".to_owned()),
        Just("1.0.0".to_owned()),
        Just("medium".to_owned()),
        Just("~".to_owned()),
        Just("yes".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just(".nan".to_owned()),
        Just("'(?=x)'".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("&a x".to_owned()),
        Just("*a".to_owned()),
        Just("!tag x".to_owned()),
        Just("!!binary aGk=".to_owned()),
        Just("[a, *a, {b: c}]".to_owned()),
        Just("{".to_owned()),
        Just("|\n  text".to_owned()),
        "[a-z0-9 ]{0,6}",
    ];
    let line = (
        0usize..4,
        key,
        prop_oneof![Just(": "), Just(":"), Just("- "), Just(": &a "), Just(":\n")],
        scalar,
    )
        .prop_map(|(indent, k, sep, v)| format!("{}{k}{sep}{v}\n", "  ".repeat(indent)));
    proptest::collection::vec(line, 0..24).prop_map(|lines| lines.concat())
}

/// Any JSON value, a few levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..200).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("scale".to_owned()),
            Just("1.0.0".to_owned()),
            Just("medium".to_owned()),
            Just("string".to_owned()),
            Just("integer".to_owned()),
            Just("params.a".to_owned()),
            Just("before_state.x".to_owned()),
            Just("(?=x)".to_owned()),
            Just("[a-z]+".to_owned()),
            ".{0,6}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An action-shaped JSON document: the schema's keys (each present or not) with values that
/// are usually of the right shape and sometimes anything at all.
pub(crate) fn action_shaped() -> impl Strategy<Value = Value> {
    let param = (
        prop_oneof![4 => Just(json!("a")), 4 => Just(json!("b")), 1 => json_value()],
        prop_oneof![
            4 => Just(json!("string")),
            4 => Just(json!("integer")),
            4 => Just(json!("number")),
            4 => Just(json!("boolean")),
            4 => Just(json!("array")),
            1 => json_value(),
        ],
        prop_oneof![
            4 => Just(json!(true)),
            4 => Just(json!(false)),
            4 => Just(json!("yes")),
            1 => json_value(),
        ],
        prop_oneof![
            4 => Just(json!({"min_value": 0, "max_value": 10})),
            4 => Just(json!({"pattern": "[a-z]+", "enum": ["a", "b"]})),
            4 => Just(json!({"min_length": 1, "max_length": "5"})),
            1 => json_value(),
        ],
    )
        .prop_map(|(name, kind, required, constraints)| {
            json!({"name": name, "type": kind, "required": required, "constraints": constraints})
        });
    let fields = (
        prop_oneof![4 => Just(json!("scale")), 1 => json_value()],
        prop_oneof![4 => Just(json!("1.0.0")), 1 => json_value()],
        prop_oneof![4 => Just(json!("low")), 4 => Just(json!("critical")), 1 => json_value()],
        prop_oneof![4 => Just(json!(["k8s"])), 1 => json_value()],
        proptest::collection::vec(param, 0..3),
        prop_oneof![
            4 => Just(json!({"type": "k8s", "ttl": 5})),
            4 => Just(json!({"type": "k8s", "scope": {}})),
            1 => json_value(),
        ],
        prop_oneof![
            4 => Just(json!({"x": {"source": "params.a"}})),
            4 => Just(json!({"x": {"source": "nope"}})),
            1 => json_value(),
        ],
        prop_oneof![4 => Just(json!("scale")), 4 => Just(json!(null)), 1 => json_value()],
        proptest::collection::vec(any::<bool>(), 9),
    );
    fields.prop_map(
        |(name, version, risk, types, params, creds, rollback_params, rollback, keep)| {
            let entries = [
                ("name", name),
                ("version", version),
                ("description", json!("d")),
                ("risk_class", risk),
                ("target_types", types),
                ("parameters", Value::Array(params)),
                ("credentials", creds),
                ("rollback_params", rollback_params),
                ("rollback_action", rollback),
            ];
            let mut map = Map::new();
            for ((key, value), keep) in entries.into_iter().zip(keep) {
                // Required keys are usually kept, so that deeper checks are reached.
                if keep
                    || matches!(
                        key,
                        "name" | "version" | "description" | "risk_class" | "target_types"
                    )
                {
                    map.insert(key.to_owned(), value);
                }
            }
            Value::Object(map)
        },
    )
}
