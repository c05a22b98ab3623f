//! Tests for scope templates and the plain-token rule, including injection attempts.

use serde_json::{Value, json};

use super::*;
use crate::test_support::{action_yaml, params, registry};

const PARAMETERS: &str = "  - {name: ns, type: string, required: false}
  - {name: key, type: string, required: false, constraints: {pattern: '^[^\\x00-\\x1F\\x7F*?]+$'}}
  - {name: any, type: string, required: false, constraints: {pattern: '(?s).*'}}
  - {name: n, type: integer, required: false}
  - {name: x, type: number, required: false}
  - {name: flag, type: boolean, required: false}
  - {name: list, type: array, required: false}
";

/// Renders the scope field `f` = `template` with `params`; `Ok(value)` or `Err(message)`.
#[track_caller]
fn check(template: Value, p: Value, expected: Result<Value, &str>) {
    let credentials =
        format!("credentials:\n  type: k8s\n  fields: {}\n", json!({ "f": template }));
    let registry = registry(&[action_yaml("a", PARAMETERS, &credentials)]);
    let action = registry.get("a").unwrap();
    let spec = action.definition().credentials.as_ref().unwrap();
    let got = render_scope(spec, action, &params(p.clone()));
    match (got, expected) {
        (Ok(scope), Ok(value)) => {
            assert_eq!(scope.fields["f"], value, "{template} with {p}");
            assert_eq!((scope.kind.as_str(), scope.ttl), ("k8s", 300));
        }
        (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "{template} with {p}"),
        (got, expected) => panic!("{template} with {p}: got {got:?}, expected {expected:?}"),
    }
}

/// `{{ params.<param> }}` with `value` must be refused with `reason`.
#[track_caller]
fn refused(param: &str, value: Value, reason: &str) {
    let template = format!("arn:aws:s3:::{{{{ params.{param} }}}}/x");
    check(
        json!(template),
        json!({ param: value }),
        Err(&format!("scope field `f`: the value of `params.{param}` {reason}")),
    );
}

const NO_PATTERN: &str = "which a plain token may not contain, and parameter `ns` declares no \
                          pattern that allows it";

#[test]
fn plain_values_are_substituted() {
    check(json!("{{ params.ns }}"), json!({"ns": "prod-eu.api_1"}), Ok(json!("prod-eu.api_1")));
    check(
        json!("arn:aws:ec2:{{params.ns}}:*:instance/{{   params.key\t}}"),
        json!({"ns": "eu-west-1", "key": "i-0abc"}),
        Ok(json!("arn:aws:ec2:eu-west-1:*:instance/i-0abc")),
    );
    // Python `str(value)` for non-strings.
    check(json!("r{{ params.n }}"), json!({"n": 3}), Ok(json!("r3")));
    check(json!("{{ params.n }}"), json!({"n": -3}), Ok(json!("-3")));
    check(json!("{{ params.x }}"), json!({"x": 1.5}), Ok(json!("1.5")));
    check(json!("{{ params.flag }}"), json!({"flag": true}), Ok(json!("True")));
    // Text without templates, keys and non-string scalars are untouched.
    check(json!("arn:aws:s3:::*/}} {x}"), json!({}), Ok(json!("arn:aws:s3:::*/}} {x}")));
    check(
        json!({"{{ params.ns }}": ["{{ params.ns }}", 5, true, null, {"deep": ["{{ params.ns }}"]}]}),
        json!({"ns": "dev"}),
        Ok(json!({"{{ params.ns }}": ["dev", 5, true, null, {"deep": ["dev"]}]})),
    );
    check(json!(7), json!({}), Ok(json!(7)));
}

#[test]
fn injection_attempts_are_refused() {
    refused("ns", json!("*"), &format!("contains `*`, {NO_PATTERN}"));
    refused("ns", json!("prod?"), &format!("contains `?`, {NO_PATTERN}"));
    refused("ns", json!("../secrets"), &format!("contains `/`, {NO_PATTERN}"));
    refused("ns", json!("dev/*"), &format!("contains `/`, {NO_PATTERN}"));
    refused(
        "ns",
        json!(".."),
        "is only dots (a path step), and parameter `ns` declares no pattern that allows it",
    );
    refused(
        "ns",
        json!("."),
        "is only dots (a path step), and parameter `ns` declares no pattern that allows it",
    );
    refused("ns", json!("a:b"), &format!("contains `:`, {NO_PATTERN}"));
    refused("ns", json!("dev prod"), &format!("contains a space, {NO_PATTERN}"));
    refused("ns", json!("dev,prod"), &format!("contains `,`, {NO_PATTERN}"));
    refused("ns", json!("app=web"), &format!("contains `=`, {NO_PATTERN}"));
    refused("ns", json!("${aws:username}"), &format!("contains `$`, {NO_PATTERN}"));
    refused("ns", json!("%2F"), &format!("contains `%`, {NO_PATTERN}"));
    refused("ns", json!("{{ params.ns }}"), &format!("contains `{{`, {NO_PATTERN}"));
    // Unicode look-alikes: fullwidth asterisk, asterisk operator, fullwidth solidus and colon,
    // division slash, a Cyrillic `о` in `prod`, fullwidth letters.
    for (text, c) in [
        ("＊", "`＊` (U+FF0A)"),
        ("∗", "`∗` (U+2217)"),
        ("a／b", "`／` (U+FF0F)"),
        ("a：b", "`：` (U+FF1A)"),
        ("a∕b", "`∕` (U+2215)"),
        ("prоd", "`о` (U+043E)"),
        ("ｐｒｏｄ", "`ｐ` (U+FF50)"),
        ("a\u{3000}b", "U+3000"),
        ("a\u{00A0}b", "U+00A0"),
    ] {
        refused("ns", json!(text), &format!("contains {c}, {NO_PATTERN}"));
    }
    // Never allowed, whatever the pattern: control and invisible characters, empty values.
    for param in ["ns", "key", "any"] {
        for (text, code) in [
            ("dev\nprod", "U+000A"),
            ("dev\r", "U+000D"),
            ("a\tb", "U+0009"),
            ("a\0", "U+0000"),
            ("a\u{85}b", "U+0085"),
            ("a\u{200B}b", "U+200B"),
            ("a\u{202E}b", "U+202E"),
            ("\u{FEFF}a", "U+FEFF"),
            ("a\u{2028}b", "U+2028"),
            ("a\u{E0041}", "U+E0041"),
        ] {
            refused(
                param,
                json!(text),
                &format!("contains {code}, which is never allowed in a credential scope"),
            );
        }
        refused(param, json!(""), "is empty");
    }
    // Non-string values whose Python `str()` is not a plain token.
    refused(
        "list",
        json!(["a", "b"]),
        "contains `[`, which a plain token may not contain, and parameter `list` declares no pattern that allows it",
    );
    refused(
        "x",
        json!(1e16),
        "contains `+`, which a plain token may not contain, and parameter `x` declares no pattern that allows it",
    );
}

#[test]
fn a_declared_pattern_that_matches_allows_other_characters() {
    // The S3 key pattern permits `/`, `:`, spaces and `..` but not `*` or `?`.
    for ok in ["logs/2026/02/app.log", "a:b c", "..", "../x", "ｋｅｙ"] {
        check(json!("{{ params.key }}"), json!({ "key": ok }), Ok(json!(ok)));
    }
    for (bad, c) in [("logs/*", "`/`"), ("what?", "`?`")] {
        refused(
            "key",
            json!(bad),
            &format!(
                "is not a plain token (it contains {c}) and does not match the pattern of \
                 parameter `key`"
            ),
        );
    }
    // Even a pattern matching everything cannot let control characters or emptiness through.
    check(json!("{{ params.any }}"), json!({"any": "* / : ?"}), Ok(json!("* / : ?")));
}

#[test]
fn missing_params_and_malformed_templates_are_errors() {
    check(
        json!(["ok", {"b": "{{ params.ns }}"}]),
        json!({}),
        Err("scope field `f[1].b` refers to `params.ns`, which the ticket does not carry"),
    );
    check(
        json!("{{ params.undeclared }}"),
        json!({"ns": "dev"}),
        Err("scope field `f` refers to `params.undeclared`, which the ticket does not carry"),
    );
    for bad in [
        "{{ param.ns }}",
        "{{ params.ns.x }}",
        "{{params.}}",
        "{{ params.ns",
        "{{ ns }}",
        "{{{ params.ns }}}",
        "ok-{{ params.ns }}-{{",
    ] {
        check(
            json!(bad),
            json!({"ns": "dev"}),
            Err(
                "scope field `f` contains `{{` that does not start a `{{ params.<name> }}` template",
            ),
        );
    }
}

#[test]
fn plain_token_definition() {
    for ok in ["a", "A-Z_0.9", "i-0abc123", "eu-west-1", "3", "-1", "...a", "a.."] {
        assert!(is_plain_token(ok), "{ok:?}");
    }
    for bad in ["", ".", "..", "...", "a*", "a b", "a/b", "a:b", "a@b", "a+b", "é", "a\n"] {
        assert!(!is_plain_token(bad), "{bad:?}");
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Any character, weighted towards the ones that matter here.
    fn text() -> impl Strategy<Value = String> {
        let interesting = prop::sample::select(vec![
            '*', '?', '/', ':', ',', '=', '.', ' ', '\n', '\u{200B}', '＊', '／', '：', '∗', 'a',
            '-',
        ]);
        prop::collection::vec(prop_oneof![interesting, any::<char>()], 0..12)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn render(ns: &str, key: &str) -> Result<CredentialScope, TemplateError> {
        let credentials = "credentials:\n  type: k8s\n  fields: {ns: 'x-{{ params.ns }}', key: 'b/{{ params.key }}'}\n";
        let registry = registry(&[action_yaml("a", PARAMETERS, credentials)]);
        let action = registry.get("a").unwrap();
        let spec = action.definition().credentials.as_ref().unwrap();
        render_scope(spec, action, &params(json!({"ns": ns, "key": key})))
    }

    proptest! {
        /// A parameter without a pattern fills its slot exactly when the value is a plain token.
        #[test]
        fn without_a_pattern_only_plain_tokens_are_substituted(ns in text()) {
            match render(&ns, "k") {
                Ok(scope) => {
                    // The documented definition, independent of the implementation.
                    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
                    prop_assert!(ns.chars().all(plain), "{ns:?}");
                    prop_assert!(ns.chars().any(|c| c != '.'), "{ns:?}");
                    prop_assert!(is_plain_token(&ns), "{ns:?}");
                    prop_assert_eq!(&scope.fields["ns"], &json!(format!("x-{ns}")));
                }
                Err(_) => prop_assert!(!is_plain_token(&ns), "{ns:?}"),
            }
        }

        /// The S3 key pattern lets `/`, `:` and spaces through, never wildcards, control or
        /// invisible characters or an empty value; plain tokens always pass.
        #[test]
        fn a_pattern_widens_only_what_it_allows(key in text()) {
            match render("n", &key) {
                Ok(scope) => {
                    prop_assert_eq!(&scope.fields["key"], &json!(format!("b/{key}")));
                    prop_assert!(!key.is_empty() && !key.contains(['*', '?']), "{key:?}");
                    prop_assert!(!key.chars().any(char::is_control), "{key:?}");
                    prop_assert!(!key.contains('\u{200B}'), "{key:?}");
                }
                Err(_) => prop_assert!(!is_plain_token(&key), "{key:?}"),
            }
        }
    }
}
