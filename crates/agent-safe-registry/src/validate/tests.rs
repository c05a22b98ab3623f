//! Tests for SPEC §1.3: expected strings are what the Python `validate_params` returns.

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{RegisteredAction, Registry};

fn registry() -> Registry {
    let text = "name: test\nversion: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [x]\n\
        parameters:\n\
        \x20 - {name: replicas, type: integer, constraints: {min_value: 0, max_value: 100}}\n\
        \x20 - {name: ns, type: string, required: false, constraints: {min_length: 2, max_length: 5, pattern: '[a-z]+'}}\n\
        \x20 - {name: ratio, type: number, required: false, constraints: {min_value: 0.5, max_value: 1e16}}\n\
        \x20 - {name: flag, type: boolean, required: false, constraints: {enum: ['True']}}\n\
        \x20 - {name: items, type: array, required: false, constraints: {min_length: 5, enum: ['[1]']}}\n\
        \x20 - {name: mode, type: string, required: false, constraints: {enum: [fast, \"it's\"]}}\n\
        \x20 - {name: level, type: integer, required: false, constraints: {enum: ['1', '3']}}\n\
        \x20 - {name: tiny, type: number, required: false, constraints: {min_value: 0.00001}}\n\
        \x20 - {name: anything, type: string, required: false}\n\
        \x20 - {name: toggle, type: boolean, required: false, constraints: {min_value: 5}}\n\
        \x20 - {name: free, type: string, required: false, constraints: {pattern: 'a|b'}}\n";
    Registry::from_sources([(PathBuf::from("test.yaml"), text.as_bytes())]).unwrap()
}

#[track_caller]
fn check(action: &RegisteredAction, params: Value, expected: &[&str]) {
    let got = action.validate_params(params.as_object().unwrap());
    assert_eq!(got, expected, "params: {params}");
}

#[test]
fn required_and_unknown_params_in_python_order() {
    let r = registry();
    let a = r.get("test").unwrap();
    check(a, json!({}), &["Missing required parameter: replicas"]);
    check(a, json!({"replicas": 1}), &[]);
    check(
        a,
        json!({"zz": 1, "replicas": "x", "aa": 2}),
        &[
            "Unknown parameter: zz",
            "Unknown parameter: aa",
            "Parameter 'replicas': expected integer, got str",
        ],
    );
    check(
        a,
        json!({"ns": "x", "force": true}),
        &[
            "Missing required parameter: replicas",
            "Unknown parameter: force",
            "Parameter 'ns': length 1 is below minimum 2",
        ],
    );
}

#[test]
fn type_checks_use_python_type_names_and_skip_constraints() {
    let r = registry();
    let a = r.get("test").unwrap();
    let with = |k: &str, v: Value| {
        let mut m = json!({"replicas": 1});
        m.as_object_mut().unwrap().insert(k.to_owned(), v);
        m
    };
    check(a, json!({"replicas": 3.0}), &["Parameter 'replicas': expected integer, got float"]);
    check(a, json!({"replicas": true}), &["Parameter 'replicas': expected integer, got bool"]);
    check(a, json!({"replicas": null}), &["Parameter 'replicas': expected integer, got NoneType"]);
    check(a, json!({"replicas": [1]}), &["Parameter 'replicas': expected integer, got list"]);
    check(a, json!({"replicas": {"a": 1}}), &["Parameter 'replicas': expected integer, got dict"]);
    // Wrong type: the (violated) range is not reported.
    check(a, json!({"replicas": "1000"}), &["Parameter 'replicas': expected integer, got str"]);
    check(a, with("ratio", json!(true)), &["Parameter 'ratio': expected number, got bool"]);
    check(a, with("ratio", json!(1)), &[]);
    check(a, with("ratio", json!(0.75)), &[]);
    check(a, with("ns", json!(5)), &["Parameter 'ns': expected string, got int"]);
    check(a, with("flag", json!(1)), &["Parameter 'flag': expected boolean, got int"]);
    check(a, with("items", json!("abc")), &["Parameter 'items': expected array, got str"]);
    check(a, with("items", json!([1])), &[]);
}

#[test]
fn numeric_bounds_print_like_python() {
    let r = registry();
    let a = r.get("test").unwrap();
    check(a, json!({"replicas": 101}), &["Parameter 'replicas': value 101 exceeds maximum 100.0"]);
    check(a, json!({"replicas": -1}), &["Parameter 'replicas': value -1 is below minimum 0.0"]);
    check(a, json!({"replicas": 0}), &[]);
    check(a, json!({"replicas": 100}), &[]);
    check(
        a,
        json!({"replicas": 1, "ratio": 0.25}),
        &["Parameter 'ratio': value 0.25 is below minimum 0.5"],
    );
    check(
        a,
        json!({"replicas": 1, "ratio": 2e16}),
        &["Parameter 'ratio': value 2e+16 exceeds maximum 1e+16"],
    );
    check(a, json!({"replicas": 1, "ratio": 3}), &[]);
    check(
        a,
        json!({"replicas": 1, "tiny": 0.000001}),
        &["Parameter 'tiny': value 1e-06 is below minimum 1e-05"],
    );
    check(
        a,
        json!({"replicas": 1, "tiny": 0}),
        &["Parameter 'tiny': value 0 is below minimum 1e-05"],
    );
    // Python's bool is an int, so the range applies to a boolean parameter too.
    check(
        a,
        json!({"replicas": 1, "toggle": true}),
        &["Parameter 'toggle': value True is below minimum 5.0"],
    );
    check(
        a,
        json!({"replicas": u64::MAX}),
        &["Parameter 'replicas': value 18446744073709551615 exceeds maximum 100.0"],
    );
}

#[test]
fn length_and_pattern_apply_to_strings_only() {
    let r = registry();
    let a = r.get("test").unwrap();
    check(
        a,
        json!({"replicas": 1, "ns": "abcdef"}),
        &["Parameter 'ns': length 6 exceeds maximum 5"],
    );
    check(
        a,
        json!({"replicas": 1, "ns": "A1"}),
        &["Parameter 'ns': value does not match pattern '[a-z]+'"],
    );
    check(
        a,
        json!({"replicas": 1, "ns": "ABCDEFG"}),
        &[
            "Parameter 'ns': length 7 exceeds maximum 5",
            "Parameter 'ns': value does not match pattern '[a-z]+'",
        ],
    );
    // Length counts code points, as Python's len().
    check(
        a,
        json!({"replicas": 1, "ns": "ééé"}),
        &["Parameter 'ns': value does not match pattern '[a-z]+'"],
    );
    check(
        a,
        json!({"replicas": 1, "ns": "é"}),
        &[
            "Parameter 'ns': length 1 is below minimum 2",
            "Parameter 'ns': value does not match pattern '[a-z]+'",
        ],
    );
    // Whole-string match: a trailing newline does not match, and alternation is grouped.
    check(
        a,
        json!({"replicas": 1, "ns": "abc\n"}),
        &["Parameter 'ns': value does not match pattern '[a-z]+'"],
    );
    check(a, json!({"replicas": 1, "free": "a"}), &[]);
    check(
        a,
        json!({"replicas": 1, "free": "ab"}),
        &["Parameter 'free': value does not match pattern 'a|b'"],
    );
    // Arrays: min_length is not applied (Python only measures strings).
    check(a, json!({"replicas": 1, "items": [1]}), &[]);
}

#[test]
fn enum_compares_python_str_of_the_value() {
    let r = registry();
    let a = r.get("test").unwrap();
    check(a, json!({"replicas": 1, "flag": true}), &[]);
    check(
        a,
        json!({"replicas": 1, "flag": false}),
        &["Parameter 'flag': value 'False' not in allowed values ['True']"],
    );
    check(a, json!({"replicas": 1, "level": 3}), &[]);
    check(
        a,
        json!({"replicas": 1, "level": 2}),
        &["Parameter 'level': value '2' not in allowed values ['1', '3']"],
    );
    check(a, json!({"replicas": 1, "mode": "it's"}), &[]);
    check(
        a,
        json!({"replicas": 1, "mode": "slow"}),
        &["Parameter 'mode': value 'slow' not in allowed values ['fast', \"it's\"]"],
    );
    check(
        a,
        json!({"replicas": 1, "items": ["a", 2]}),
        &["Parameter 'items': value '['a', 2]' not in allowed values ['[1]']"],
    );
}

#[test]
fn every_error_is_collected() {
    let r = registry();
    let a = r.get("test").unwrap();
    check(
        a,
        json!({"ns": "ABCDEFGH", "x": 1, "replicas": 500, "mode": "m", "level": 1.0}),
        &[
            "Unknown parameter: x",
            "Parameter 'replicas': value 500 exceeds maximum 100.0",
            "Parameter 'ns': length 8 exceeds maximum 5",
            "Parameter 'ns': value does not match pattern '[a-z]+'",
            "Parameter 'mode': value 'm' not in allowed values ['fast', \"it's\"]",
            "Parameter 'level': expected integer, got float",
        ],
    );
}

#[test]
fn patterns_use_python_compatible_syntax_and_whole_string_matching() {
    let text = "name: p\nversion: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [x]\n\
        parameters:\n\
        \x20 - {name: word, type: string, required: false, constraints: {pattern: '[\\w.-]{1,63}'}}\n\
        \x20 - {name: named, type: string, required: false, constraints: {pattern: '(?P<env>dev|prod)-\\d+'}}\n\
        \x20 - {name: anchored, type: string, required: false, constraints: {pattern: '^(?i)[a-z]+$'}}\n";
    let r = Registry::from_sources([(PathBuf::from("p.yaml"), text.as_bytes())]).unwrap();
    let a = r.get("p").unwrap();
    // `\w` is Unicode-aware, as in Python 3.
    check(a, json!({"word": "héllo.wörld-1"}), &[]);
    check(
        a,
        json!({"word": "a b"}),
        &["Parameter 'word': value does not match pattern '[\\w.-]{1,63}'"],
    );
    check(a, json!({"named": "prod-12"}), &[]);
    check(
        a,
        json!({"named": "prod-12x"}),
        &["Parameter 'named': value does not match pattern '(?P<env>dev|prod)-\\d+'"],
    );
    check(
        a,
        json!({"named": "xprod-1"}),
        &["Parameter 'named': value does not match pattern '(?P<env>dev|prod)-\\d+'"],
    );
    check(a, json!({"anchored": "MiXeD"}), &[]);
    check(
        a,
        json!({"anchored": ""}),
        &["Parameter 'anchored': value does not match pattern '^(?i)[a-z]+$'"],
    );
}

proptest! {
    #[test]
    fn validation_never_panics_and_is_deterministic(
        params in proptest::collection::btree_map(
            prop_oneof![Just("replicas".to_owned()), Just("ns".to_owned()), Just("ratio".to_owned()),
                        Just("flag".to_owned()), Just("items".to_owned()), Just("level".to_owned()),
                        Just("toggle".to_owned()), ".{0,6}"],
            crate::test_support::json_value(),
            0..8,
        )
    ) {
        let r = registry();
        let a = r.get("test").unwrap();
        let params: serde_json::Map<String, Value> = params.into_iter().collect();
        let first = a.validate_params(&params);
        prop_assert_eq!(&first, &a.validate_params(&params));
        // Valid iff no errors; a missing `replicas` is always reported.
        if !params.contains_key("replicas") {
            prop_assert!(first.iter().any(|e| e == "Missing required parameter: replicas"));
        }
    }
}

#[test]
fn patterns_are_compiled_on_first_use_and_large_ones_at_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
    let catalog = Registry::load_dir(&dir).unwrap();
    let mut seen = 0;
    for action in catalog.iter() {
        for pattern in action.patterns.iter().flatten() {
            seen += 1;
            assert!(!pattern.is_compiled(), "`{}`: compiled at load", action.name());
            let estimate = super::estimate(&super::parse(&pattern_source(pattern)).unwrap());
            assert!(estimate < 10_000, "`{}`: estimate {estimate}", action.name());
        }
    }
    assert!(seen > 50, "the catalog declares {seen} patterns");

    let action = registry();
    let action = action.get("test").unwrap();
    let ns = action.patterns[1].as_ref().unwrap();
    assert!(!ns.is_compiled());
    check(action, json!({"replicas": 1, "ns": "abc"}), &[]);
    assert!(ns.is_compiled(), "validation compiles the pattern it uses");
    check(
        action,
        json!({"replicas": 1, "ns": "ab1"}),
        &["Parameter 'ns': value does not match pattern '[a-z]+'"],
    );

    // A Unicode class repeated many times is estimated large, so it is compiled at load and
    // fits (`\w{1,63}`) or is a load error (`\w{1,255}`, see the registry's load tests).
    let wide = super::Pattern::new(r"\w{1,63}").unwrap();
    assert!(wide.is_compiled());
    assert!(super::Pattern::new(r"\w{1,255}").unwrap_err().contains("larger than the limit"));

    // A `(?x)` comment would swallow the closing parenthesis of the anchoring wrapper.
    assert_eq!(super::Pattern::new("(?x)a # note").unwrap_err(), "unclosed group");
    assert!(super::Pattern::new("(?x) a b").unwrap().is_match("ab"));
    assert!(super::Pattern::new("a#b").unwrap().is_match("a#b"));
}

/// The user's pattern back from its anchored form `\A(?:…)\z`.
fn pattern_source(pattern: &super::Pattern) -> String {
    let anchored = pattern.anchored();
    anchored[5..anchored.len() - 3].to_owned()
}
