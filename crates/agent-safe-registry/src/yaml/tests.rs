//! Tests for the YAML layer: limits, error positions and wording, locating nodes.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Policy {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn parse(text: &str) -> Result<Policy, YamlError> {
    from_str(Path::new("policies/prod.yaml"), text)
}

#[track_caller]
fn check_err(text: &str, expected: &str) {
    match parse(text) {
        Ok(v) => panic!("expected error {expected:?}, got {v:?}"),
        Err(e) => assert_eq!(e.to_string(), expected, "\n{text}"),
    }
}

#[test]
fn generic_messages_name_the_path_and_suggest_fields() {
    check_err(
        "rules:\n  - name: deny-prod\n    action: [x]\n",
        "policies/prod.yaml:3: unknown field `action` in `rules[0]`; did you mean `actions`?",
    );
    check_err(
        "rules:\n  - name: deny-prod\n    zzz: 1\n",
        "policies/prod.yaml:3: unknown field `zzz` in `rules[0]`; expected one of `name`, `actions`, `priority`, `labels`",
    );
    check_err(
        "rulez: []\n",
        "policies/prod.yaml:1: unknown field `rulez` at the top level; did you mean `rules`?",
    );
    check_err(
        "rules:\n  - name: r\n    priority: high\n",
        "policies/prod.yaml:3: `rules[0].priority`: invalid type: string \"high\", expected i64",
    );
    check_err(
        "rules:\n  - actions: []\n",
        "policies/prod.yaml:2: missing field `name` in `rules[0]`",
    );
    check_err("{}\n", "policies/prod.yaml:1: missing field `rules`");
    check_err(
        "rules:\n  - name: r\n    name: s\n",
        "policies/prod.yaml:3: duplicate key `name` in `rules[0]`",
    );
    check_err(
        "rules:\n  - name: r\n    labels: {a: b, a: c}\n",
        "policies/prod.yaml:3: duplicate key `a` in `rules[0].labels`",
    );
}

#[test]
fn document_level_errors() {
    check_err("", "policies/prod.yaml: the file is empty; expected a YAML mapping");
    check_err("~\n", "policies/prod.yaml: the file is empty; expected a YAML mapping");
    check_err(
        "3\n",
        "policies/prod.yaml:1: expected a YAML mapping at the top level, found a number",
    );
    check_err(
        "true\n",
        "policies/prod.yaml:1: expected a YAML mapping at the top level, found a boolean",
    );
    check_err(
        "a: 1\n---\nb: 2\n",
        "policies/prod.yaml: the file contains more than one YAML document; expected exactly one",
    );
    check_err(
        "rules: [\n",
        "policies/prod.yaml:2: did not find expected node content, while parsing a flow node",
    );
    check_err(
        "rules:\n\t- name: x\n",
        "policies/prod.yaml:2: found character that cannot start any token, while scanning for the next token",
    );
    // libyaml reports control characters by offset; we turn that into a line.
    check_err(
        "rules: []\n\nx: \"a\u{1}\"\n",
        "policies/prod.yaml:3: control characters are not allowed",
    );
}

#[test]
fn empty_documents_fit_types_that_accept_them() {
    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        registry: Option<String>,
    }
    let path = Path::new("agent-safe.yaml");
    for empty in ["", "# nothing here\n", "~\n", "\n\n"] {
        assert_eq!(from_str::<Option<Config>>(path, empty).unwrap(), None, "{empty:?}");
        assert_eq!(from_str::<Config>(path, empty).unwrap(), Config::default(), "{empty:?}");
        assert!(Document::parse(path, empty).unwrap().is_empty());
    }
    assert_eq!(
        from_str::<Option<Config>>(path, "registry: actions\n").unwrap(),
        Some(Config { registry: Some("actions".to_owned()) })
    );
    assert!(!Document::parse(path, "a: 1\n").unwrap().is_empty());
    // A type that needs content reports the empty file as such.
    let err = from_str::<Policy>(path, "# nothing\n").unwrap_err();
    assert_eq!(err.to_string(), "agent-safe.yaml: the file is empty; expected a YAML mapping");
}

#[test]
fn nesting_is_limited() {
    // Flow nesting is refused before parsing, at the line where it gets too deep.
    let deep = format!("rules: []\nx:\n  {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    check_err(
        &deep,
        "policies/prod.yaml:3: the document is nested too deeply (more than 128 unclosed `[` or `{`)",
    );
    let ok = format!("rules: []\nx: {}{}\n", "[{a: ".repeat(60), "}]".repeat(60));
    assert!(parse(&ok).is_err_and(|e| e.message().starts_with("unknown field `x`")));
    // Brackets in strings count, but balanced ones (as in regexes) do not add up.
    let patterns = format!("rules: []\nx: '{}'\n", "[a-z]".repeat(1000));
    assert!(parse(&patterns).is_err_and(|e| e.message().starts_with("unknown field `x`")));
    // Block nesting beyond serde_yaml's limit.
    let mut block = String::from("rules: []\nx:\n");
    for i in 1..200 {
        block.push_str(&format!("{}k:\n", "  ".repeat(i)));
    }
    check_err(
        &block,
        "policies/prod.yaml:130: the document is nested too deeply (the limit is 128 levels)",
    );
}

#[test]
fn a_bom_is_accepted() {
    let policy: Policy = from_slice(Path::new("p.yaml"), b"\xef\xbb\xbfrules: []\n").unwrap();
    assert!(policy.rules.is_empty());
}

#[test]
fn tagged_values_and_non_string_keys_do_not_break_the_tree() {
    let text = "a: !custom [1, {b: 2}]\n1: x\ntrue: y\n~: z\n[k]: w\n";
    let doc = Document::parse(Path::new("t.yaml"), text).unwrap();
    assert_eq!(doc.get(&["a".into(), 1.into(), "b".into()]), Some(&serde_json::json!(2)));
    assert_eq!(doc.get_str(&["1".into()]), Some("x"));
    assert_eq!(doc.get_str(&["true".into()]), Some("y"));
    assert_eq!(doc.get_str(&["null".into()]), Some("z"));
    assert_eq!(doc.get_str(&["[\"k\"]".into()]), Some("w"));
    assert_eq!(doc.locate(&["a".into(), 1.into(), "b".into()]), Some((1, 20)));
}

#[test]
fn locate_finds_nodes() {
    let text = "name: x\nparameters:\n  - name: a\n    constraints:\n      pattern: '(?=x)'\n  - name: b\nalias: &anchor {k: v}\nuse: *anchor\n";
    let doc = Document::parse(Path::new("a.yaml"), text).unwrap();
    let locate = |path: &[PathSegment]| doc.locate(path);
    assert_eq!(locate(&[]), Some((1, 1)));
    assert_eq!(locate(&["name".into()]), Some((1, 7)));
    assert_eq!(
        locate(&["parameters".into(), 0.into(), "constraints".into(), "pattern".into()]),
        Some((5, 16))
    );
    assert_eq!(locate(&["parameters".into(), 1.into()]), Some((6, 5)));
    assert_eq!(doc.line_of(&["parameters".into(), 1.into(), "name".into()]), Some(6));
    // An alias is located at its anchor.
    assert_eq!(locate(&["use".into(), "k".into()]), Some((7, 20)));
    assert_eq!(locate(&["nope".into()]), None);
    assert_eq!(locate(&["parameters".into(), 5.into()]), None);
    assert_eq!(locate(&["parameters".into(), "x".into()]), None);
    assert_eq!(locate(&["name".into(), "deeper".into()]), None);
    assert_eq!(doc.get_str(&["parameters".into(), 1.into(), "name".into()]), Some("b"));
    assert_eq!(doc.get(&["parameters".into(), 9.into()]), None);
    assert_eq!(doc.path(), Path::new("a.yaml"));
    assert_eq!(doc.text(), text);
    assert!(doc.tree().is_object());
}

#[test]
fn errors_expose_their_parts() {
    let err = parse("rules:\n  - name: r\n    priorty: 1\n").unwrap_err();
    assert_eq!(err.path(), Path::new("policies/prod.yaml"));
    assert_eq!(err.line(), Some(3));
    assert_eq!(err.column(), Some(5));
    assert_eq!(err.message(), "unknown field `priorty` in `rules[0]`; did you mean `priority`?");
    assert!(!err.is_not_found());
    let err = YamlError::new("x.yaml", None, "boom");
    assert_eq!(err.to_string(), "x.yaml: boom");
    assert_eq!(YamlError::new("x.yaml", Some(4), "boom").to_string(), "x.yaml:4: boom");
    let doc = Document::parse(Path::new("d.yaml"), "a:\n  b: 1\n").unwrap();
    let err = YamlError::at(&doc, &["a".into(), "b".into()], "bad b");
    assert_eq!(err.to_string(), "d.yaml:2: bad b");
    assert_eq!(YamlError::at(&doc, &["zz".into()], "no line").to_string(), "d.yaml: no line");
}

#[test]
fn read_returns_the_value_and_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, "rules: []\n").unwrap();
    let (policy, sha): (Policy, _) = read(&path).unwrap();
    assert!(policy.rules.is_empty());
    assert_eq!(sha, sha256(b"rules: []\n"));
    let err = read::<Policy>(&dir.path().join("missing.yaml")).unwrap_err();
    assert!(err.is_not_found());
    assert!(
        err.to_string().starts_with(&format!(
            "{}: cannot read file: ",
            dir.path().join("missing.yaml").display()
        )),
        "{err}"
    );
    let err = read::<Policy>(dir.path()).unwrap_err();
    assert!(!err.is_not_found(), "{err}");
}

#[test]
fn files_over_the_limit_are_refused_without_reading_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: 1 GiB on paper, nothing on disk; we must stop after MAX_FILE_BYTES + 1.
    file.set_len(1 << 30).unwrap();
    let err = read_bytes(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: the file is larger than the limit of 8388608 bytes", path.display())
    );
    let exactly = vec![b' '; usize::try_from(MAX_FILE_BYTES).unwrap()];
    assert!(decode(Path::new("x"), &exactly).is_ok());
}

#[test]
fn utf8_errors_give_line_and_offset() {
    let err = decode(Path::new("x.yaml"), b"a: 1\nb: \x80\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.yaml:2: the file is not valid UTF-8 (invalid byte 0x80 at offset 8)"
    );
    assert_eq!(err.column(), Some(4));
    // UTF-16 with a BOM is not UTF-8 either.
    assert!(decode(Path::new("x.yaml"), b"\xff\xfea\x00").is_err());
}

#[test]
fn many_plain_nodes_fit_the_budget() {
    // One node per two bytes, the densest legitimate document: well within the budget.
    let items = vec!["a"; 100_000].join(",");
    let text = format!("rules: []\nx: [{items}]\n");
    let doc = Document::parse(Path::new("d.yaml"), &text).unwrap();
    assert_eq!(doc.get(&["x".into()]).and_then(|v| v.as_array()).map(Vec::len), Some(100_000));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_and_locate_never_panic(doc in crate::test_support::yaml_ish(), path in proptest::collection::vec(
        prop_oneof![
            (0usize..3).prop_map(PathSegment::Index),
            prop_oneof![Just("name"), Just("parameters"), Just("x"), Just("targets")].prop_map(PathSegment::from),
        ],
        0..4,
    )) {
        if let Ok(parsed) = Document::parse(Path::new("x.yaml"), &doc) {
            let found = parsed.locate(&path);
            // Whatever the tree has, the probe finds (and the other way round).
            prop_assert_eq!(found.is_some(), parsed.get(&path).is_some(), "{:?} in\n{}", path, doc);
            let _ = parsed.deserialize::<Policy>(&NoHints);
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Target {
    id: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    kind: Kind,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Plain,
    Named(String),
    Pair {
        left: String,
    },
}

fn target(text: &str) -> Result<Target, YamlError> {
    from_str(Path::new("inventory.yaml"), text)
}

#[test]
fn a_null_is_not_a_string() {
    // As pydantic refuses `None` for a `str`: every spelling of a YAML null, where a string
    // is expected, in a struct, a list, a map and an enum.
    for null in ["~", "null", "Null", "NULL", ""] {
        let sep = if null.is_empty() { "" } else { " " };
        check_err(
            &format!("rules:\n  - name:{sep}{null}\n"),
            "policies/prod.yaml:2: `rules[0].name`: invalid type: null, expected a string",
        );
        let err = target(&format!("id:{sep}{null}\n")).unwrap_err().to_string();
        assert_eq!(err, "inventory.yaml:1: `id`: invalid type: null, expected a string");
    }
    check_err(
        "rules:\n  - name: r\n    actions: [a, ~]\n",
        "policies/prod.yaml:3: `rules[0].actions[1]`: invalid type: null, expected a string",
    );
    check_err(
        "rules:\n  - name: r\n    labels:\n      tier: null\n",
        "policies/prod.yaml:4: `rules[0].labels.tier`: invalid type: null, expected a string",
    );
    let err = target("id: x\nkind: !named ~\n").unwrap_err().to_string();
    assert_eq!(err, "inventory.yaml:2: `kind`: invalid type: null, expected a string");
    let err = target("id: x\nkind: !pair {left: ~}\n").unwrap_err().to_string();
    assert_eq!(err, "inventory.yaml:2: `kind.left`: invalid type: null, expected a string");
}

#[test]
fn null_texts_that_are_strings_stay_strings() {
    // Quoted, or where the tree has no null: the text as written; an optional string's null
    // is `None`; numbers and booleans still read as their text.
    let t = target("id: '~'\nowner: ~\nkind: !named 'null'\n").unwrap();
    assert_eq!(t, Target { id: "~".into(), owner: None, kind: Kind::Named("null".into()) });
    let t = target("id: \"\"\nowner: null\nkind: !pair {left: ''}\n").unwrap();
    assert_eq!(t.id, "");
    assert_eq!(t.kind, Kind::Pair { left: String::new() });
    let t = target("id: 0x1F\nowner: 1.0\nkind: plain\n").unwrap();
    assert_eq!((t.id.as_str(), t.owner.as_deref()), ("0x1F", Some("1.0")));
    let t = target("id: .nan\nowner: yes\n").unwrap();
    assert_eq!((t.id.as_str(), t.owner.as_deref()), (".nan", Some("yes")));
    // Anchors and aliases: the alias is tracked like the anchored node.
    let p = parse("rules:\n  - &r {name: a, actions: [x]}\n  - *r\n").unwrap();
    assert_eq!(p.rules[1].actions, ["x"]);
    check_err(
        "rules:\n  - &r {name: ~}\n  - *r\n",
        "policies/prod.yaml:2: `rules[0].name`: invalid type: null, expected a string",
    );
}
