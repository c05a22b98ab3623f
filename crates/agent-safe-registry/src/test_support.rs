//! Shared test helpers: generators for property tests.

use proptest::prelude::*;

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
