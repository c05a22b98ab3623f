//! Tests for registry loading: SPEC §1.4 semantics, schema and semantic errors, hints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// A valid action file; `extra` is appended at the top level.
fn action(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\nversion: 1.0.0\ndescription: Test action\nrisk_class: medium\n\
         target_types: [k8s-deployment]\n{extra}"
    )
}

fn load(files: &[(&str, &str)]) -> Result<Registry, LoadError> {
    Registry::from_sources(files.iter().map(|(p, t)| (PathBuf::from(p), t.as_bytes())))
}

/// Loads `text` as `actions/a.yaml` and checks the full error message.
#[track_caller]
fn check_err(text: &str, expected: &str) {
    match load(&[("actions/a.yaml", text)]) {
        Ok(_) => panic!("expected error {expected:?}, but it loaded:\n{text}"),
        Err(e) => assert_eq!(e.to_string(), expected, "\n{text}"),
    }
}

#[test]
fn loads_a_minimal_action_with_defaults() {
    let registry = load(&[("a.yaml", &action("restart", ""))]).unwrap();
    let a = registry.get("restart").unwrap();
    let def = a.definition();
    assert_eq!(a.name(), "restart");
    assert_eq!(a.risk_class(), RiskClass::Medium);
    assert_eq!(a.versioned_name(), "restart@1.0.0");
    assert_eq!(a.source(), Path::new("a.yaml"));
    assert!(def.parameters.is_empty() && def.prechecks.is_empty() && def.tags.is_empty());
    assert!(!def.reversible);
    assert_eq!(def.rollback_action, None);
    assert_eq!(def.credentials, None);
    assert!(def.rollback_params.is_empty());
}

#[test]
fn sha256_is_over_the_raw_bytes() {
    let text = action("restart", "# a comment changes the hash\n");
    let registry = load(&[("a.yaml", &text)]).unwrap();
    // `printf '%s' "$text" | sha256sum` gives the same digest; check the shape and that
    // it equals ring's digest of the exact bytes.
    let sha = registry.get("restart").unwrap().sha256();
    assert_eq!(sha, agent_safe_core::hex::encode(&crate::yaml::sha256(text.as_bytes())));
    assert_eq!(sha.len(), 64);
    assert!(sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let other = load(&[("a.yaml", &action("restart", ""))]).unwrap();
    assert_ne!(other.get("restart").unwrap().sha256(), sha);
}

#[test]
fn sha256_matches_known_vector() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        agent_safe_core::hex::encode(&crate::yaml::sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn full_schema_round_trips() {
    let text = "name: scale\nversion: 2.10.3\ndescription: Scale it\n\
        parameters:\n  - name: ns\n    type: string\n    required: yes\n    description: The namespace\n    default: dev\n    sensitive: on\n    constraints:\n      min_length: '1'\n      max_length: 63\n      pattern: '[a-z]+'\n      enum: [dev, prod]\n  - name: n\n    type: number\n    required: off\n    constraints: {min_value: '0', max_value: 1e3}\n\
        risk_class: high\ntarget_types: [a, b]\n\
        prechecks:\n  - {name: exists, description: It exists}\n  - {name: gate, description: Stops, blocking: 'yes'}\n\
        reversible: y\nrollback_action: scale\nrequired_privileges: [x]\ntags: [k8s, scaling]\n\
        credentials:\n  type: kubernetes\n  fields: {verbs: [get], namespaces: ['{{ params.ns }}']}\n  ttl: '120'\n\
        state_fields:\n  - {name: replicas, type: integer, required: true, sensitive: false}\n  - {name: other}\n\
        rollback_params:\n  n: {source: before_state.n}\n  ns: {source: params.ns}\n";
    let registry = load(&[("a.yaml", text)]).unwrap();
    let def = registry.get("scale").unwrap().definition();
    assert_eq!(def.version, "2.10.3");
    let ns = &def.parameters[0];
    assert!(ns.required && ns.sensitive);
    assert_eq!(ns.default, Some(serde_json::json!("dev")));
    let c = ns.constraints.as_ref().unwrap();
    assert_eq!((c.min_length, c.max_length), (Some(1), Some(63)));
    assert_eq!(c.allowed.as_deref(), Some(&["dev".to_owned(), "prod".to_owned()][..]));
    let n = &def.parameters[1];
    assert!(!n.required);
    let c = n.constraints.as_ref().unwrap();
    assert_eq!((c.min_value, c.max_value), (Some(0.0), Some(1000.0)));
    assert!(def.reversible);
    assert_eq!(def.prechecks[0].name, "exists");
    assert!(!def.prechecks[0].blocking, "prechecks are advisory by default");
    assert!(def.prechecks[1].blocking);
    let creds = def.credentials.as_ref().unwrap();
    assert_eq!((creds.kind.as_str(), creds.ttl), ("kubernetes", 120));
    assert_eq!(creds.fields["namespaces"], serde_json::json!(["{{ params.ns }}"]));
    assert_eq!(def.state_fields[0].kind, "integer");
    assert_eq!(def.state_fields[1].kind, "any");
    assert_eq!(def.rollback_params["n"].source, "before_state.n");
}

#[test]
fn listing_is_sorted_and_filters_by_tag_and_risk() {
    let registry = load(&[
        ("1.yaml", &action("zeta", "tags: [k8s]\n")),
        ("2.yaml", &action("alpha", "tags: [aws, k8s]\n").replace("medium", "high")),
        ("3.yaml", &action("mid", "")),
    ])
    .unwrap();
    assert_eq!(registry.len(), 3);
    assert!(!registry.is_empty());
    assert_eq!(registry.names().collect::<Vec<_>>(), ["alpha", "mid", "zeta"]);
    let names =
        |v: Vec<&RegisteredAction>| v.iter().map(|a| a.name().to_string()).collect::<Vec<_>>();
    assert_eq!(names(registry.iter().collect()), ["alpha", "mid", "zeta"]);
    assert_eq!(names(registry.list_by_tag("k8s")), ["alpha", "zeta"]);
    assert_eq!(names(registry.list_by_tag("nope")), Vec::<String>::new());
    assert_eq!(names(registry.list_by_risk(RiskClass::Medium)), ["mid", "zeta"]);
    assert_eq!(names(registry.list_by_risk(RiskClass::High)), ["alpha"]);
    assert!(registry.contains("mid") && !registry.contains("mi"));
    assert!(registry.get("ALPHA").is_none());
}

#[test]
fn empty_sources_give_an_empty_registry() {
    let registry = load(&[]).unwrap();
    assert!(registry.is_empty());
    assert_eq!(registry.names().count(), 0);
}

#[test]
fn duplicate_names_name_both_files_in_path_order() {
    // Sources are sorted by path, so b.yaml is "first" even though it is given last.
    let err =
        load(&[("actions/c.yaml", &action("dup", "")), ("actions/b.yaml", &action("dup", ""))])
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "actions/c.yaml:1: duplicate action name `dup`; already defined in `actions/b.yaml`"
    );
    assert_eq!(err.path(), Some(Path::new("actions/c.yaml")));
    assert_eq!(err.line(), Some(1));
}

#[test]
fn loading_is_all_or_nothing_and_the_first_error_wins() {
    let err = load(&[
        ("a.yaml", &action("good", "")),
        ("c.yaml", "name: [\n"),
        ("b.yaml", &action("bad", "tags: 3\n")),
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("b.yaml:"), "{err}");
}

#[test]
fn rollback_action_must_be_registered() {
    let ok = load(&[
        ("a.yaml", &action("cordon", "rollback_action: uncordon\n")),
        ("b.yaml", &action("uncordon", "rollback_action: cordon\n")),
        ("c.yaml", &action("self-rb", "reversible: true\nrollback_action: self-rb\n")),
        // Legal, as in the catalog's drain-node at v0.9.0.
        ("d.yaml", &action("drain", "reversible: false\nrollback_action: uncordon\n")),
    ]);
    assert!(ok.is_ok(), "{ok:?}");
    let err = load(&[
        ("a.yaml", &action("cordon", "")),
        ("b.yaml", &action("iam-attach", "rollback_action: iam-detach\n")),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.yaml:6: `rollback_action` `iam-detach` of action `iam-attach` is not a registered action"
    );
    let err = load(&[
        ("a.yaml", &action("uncordon-node", "")),
        ("b.yaml", &action("cordon-node", "rollback_action: uncordon-nod\n")),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.yaml:6: `rollback_action` `uncordon-nod` of action `cordon-node` is not a registered \
         action; did you mean `uncordon-node`?"
    );
}

#[test]
fn schema_errors_name_file_line_and_field() {
    let p = |body: &str| {
        action("scale", &format!("parameters:\n  - name: replicas\n    type: integer\n{body}"))
    };
    check_err(
        &p("    min_value: 3\n"),
        "actions/a.yaml:9: unknown field `min_value` on parameter `replicas`; did you mean `constraints.min_value`?",
    );
    check_err(
        &p("    default_value: 3\n"),
        "actions/a.yaml:9: unknown field `default_value` on parameter `replicas`; did you mean `default`?",
    );
    check_err(
        &p("    constraints:\n      min: 3\n"),
        "actions/a.yaml:10: unknown field `min` in the constraints of parameter `replicas`; did you mean `min_value`?",
    );
    check_err(
        &p("    constraints:\n      max_valeu: 3\n"),
        "actions/a.yaml:10: unknown field `max_valeu` in the constraints of parameter `replicas`; did you mean `max_value`?",
    );
    check_err(
        &p("    required: maybe\n"),
        "actions/a.yaml:9: `required` on parameter `replicas`: invalid value: string \"maybe\", expected a boolean (true/false, yes/no, on/off, 1/0)",
    );
    check_err(
        &p("    constraints:\n      enum: [1, 2]\n"),
        "actions/a.yaml:10: `enum[0]` in the constraints of parameter `replicas`: invalid type: integer `1`, expected a string (quote numbers and booleans, e.g. '1' or 'true')",
    );
    check_err(
        &action("scale", "credentials:\n  type: kubernetes\n  scope:\n    verbs: [get]\n"),
        "actions/a.yaml:8: unknown field `scope` in `credentials`; did you mean `fields`?",
    );
    check_err(
        &action("scale", "credentials:\n  type: kubernetes\n  verbs: [get]\n"),
        "actions/a.yaml:8: unknown field `verbs` in `credentials`; did you mean `fields.verbs`?",
    );
    check_err(
        &action("scale", "credentials:\n  type: aws\n  ttl: -1\n"),
        "actions/a.yaml:8: `ttl` in `credentials`: invalid value: integer `-1`, expected a non-negative integer",
    );
    check_err(
        &action("scale", "target_type: [x]\n"),
        "actions/a.yaml:6: unknown field `target_type` in action `scale`; did you mean `target_types`?",
    );
    check_err(
        &action("scale", "risk: high\n"),
        "actions/a.yaml:6: unknown field `risk` in action `scale`; did you mean `risk_class`?",
    );
    check_err(
        &action("scale", "prechecks:\n  - name: exists\n"),
        "actions/a.yaml:7: missing field `description` in precheck `exists`",
    );
    check_err(
        &action("scale", "parameters:\n  - name: replicas\n"),
        "actions/a.yaml:7: missing field `type` on parameter `replicas`",
    );
    check_err(
        &action("scale", "parameters:\n  - type: string\n"),
        "actions/a.yaml:7: missing field `name` in `parameters[0]`",
    );
    check_err(
        &action("scale", "parameters:\n  - name: replicas\n    type: int\n"),
        "actions/a.yaml:8: `type` on parameter `replicas`: unknown variant `int`, expected one of `string`, `integer`, `number`, `boolean`, `array`",
    );
    check_err(
        &action("scale", "parameters:\n  - name: replicas\n    type: strng\n"),
        "actions/a.yaml:8: `type` on parameter `replicas`: unknown variant `strng`; did you mean `string`?",
    );
    check_err(
        &action("scale", "").replace("medium", "hihg"),
        "actions/a.yaml:4: `risk_class` in action `scale`: unknown variant `hihg`; did you mean `high`?",
    );
    check_err(
        "name: scale\nversion: 1.0.0\nrisk_class: low\ntarget_types: [x]\n",
        "actions/a.yaml:1: missing field `description` in action `scale`",
    );
    check_err(
        "version: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [x]\n",
        "actions/a.yaml:1: missing field `name`",
    );
    check_err(
        &action("scale", "rollback_params:\n  replicas: {from: before_state.replicas}\n"),
        "actions/a.yaml:7: unknown field `from` in rollback param `replicas`; expected one of `source`",
    );
    check_err(
        &action("scale", "state_fields:\n  - {name: x, required: sometimes}\n"),
        "actions/a.yaml:7: `required` in state field `x`: invalid value: string \"sometimes\", expected a boolean (true/false, yes/no, on/off, 1/0)",
    );
    check_err(
        &action("scale", "tags: 3\n"),
        "actions/a.yaml:6: `tags` in action `scale`: invalid type: integer `3`, expected a sequence",
    );
    check_err(
        &action("scale", "parameters: ~\n"),
        "actions/a.yaml:6: `parameters` in action `scale`: invalid type: unit value, expected a sequence",
    );
}

#[test]
fn semantic_errors_name_file_line_and_field() {
    check_err(
        &action("Scale_Deployment", ""),
        "actions/a.yaml:1: invalid action name `Scale_Deployment`; use lowercase letters, digits and `-`, starting with a letter (`^[a-z][a-z0-9-]*$`)",
    );
    check_err(
        &action("9lives", ""),
        "actions/a.yaml:1: invalid action name `9lives`; use lowercase letters, digits and `-`, starting with a letter (`^[a-z][a-z0-9-]*$`)",
    );
    check_err(
        &action("", "").replace("name: \n", "name: ''\n"),
        "actions/a.yaml:1: invalid action name ``; use lowercase letters, digits and `-`, starting with a letter (`^[a-z][a-z0-9-]*$`)",
    );
    check_err(
        &action("scale", "").replace("1.0.0", "1.0"),
        "actions/a.yaml:2: invalid `version` `1.0` in action `scale`; expected `MAJOR.MINOR.PATCH`, e.g. `1.0.0` (quote it if YAML reads it as a number)",
    );
    check_err(
        &action("scale", "").replace("1.0.0", "1.0.x"),
        "actions/a.yaml:2: invalid `version` `1.0.x` in action `scale`; expected `MAJOR.MINOR.PATCH`, e.g. `1.0.0` (quote it if YAML reads it as a number)",
    );
    check_err(
        &action("scale", "").replace("[k8s-deployment]", "[]"),
        "actions/a.yaml:5: `target_types` of action `scale` is empty; list at least one target type",
    );
    check_err(
        &action("scale", "credentials: {type: kubernetes, ttl: 0}\n"),
        "actions/a.yaml:6: `credentials.ttl` of action `scale` must be at least 1 second, got 0",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - {name: a, type: string}\n  - {name: a, type: integer}\n",
        ),
        "actions/a.yaml:8: duplicate parameter `a` in action `scale`",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: a\n    type: string\n    constraints:\n      pattern: '(?=x)'\n",
        ),
        "actions/a.yaml:10: invalid `pattern` `(?=x)` on parameter `a` in action `scale`: look-around, including look-ahead and look-behind, is not supported (patterns use Rust `regex` syntax, which has no look-around or backreferences)",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: a\n    type: string\n    constraints: {pattern: 'a)|(b'}\n",
        ),
        "actions/a.yaml:9: invalid `pattern` `a)|(b` on parameter `a` in action `scale`: unopened group (patterns use Rust `regex` syntax, which has no look-around or backreferences)",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: a\n    type: string\n    constraints: {pattern: '(a)\\1'}\n",
        ),
        "actions/a.yaml:9: invalid `pattern` `(a)\\1` on parameter `a` in action `scale`: backreferences are not supported (patterns use Rust `regex` syntax, which has no look-around or backreferences)",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: a\n    type: string\n    constraints: {pattern: 'a{1000}{1000}'}\n",
        ),
        "actions/a.yaml:9: invalid `pattern` `a{1000}{1000}` on parameter `a` in action `scale`: the compiled pattern is larger than the limit of 10485760 bytes (a Unicode class such as `\\w` repeated many times is large; an ASCII class such as `[A-Za-z0-9_]` is not) (patterns use Rust `regex` syntax, which has no look-around or backreferences)",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: n\n    type: number\n    constraints: {min_value: 10, max_value: 5}\n",
        ),
        "actions/a.yaml:9: `min_value` (10) is greater than `max_value` (5) on parameter `n` in action `scale`",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: n\n    type: number\n    constraints: {max_value: .nan}\n",
        ),
        "actions/a.yaml:9: `max_value` of parameter `n` in action `scale` is NaN",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - name: s\n    type: string\n    constraints: {min_length: 5, max_length: 2}\n",
        ),
        "actions/a.yaml:9: `min_length` (5) is greater than `max_length` (2) on parameter `s` in action `scale`",
    );
    check_err(
        &action("scale", "rollback_params:\n  replicas: {source: state.replicas}\n"),
        "actions/a.yaml:7: invalid source `state.replicas` for rollback param `replicas` in action `scale`; expected `params.<parameter>` or `before_state.<field>`",
    );
    check_err(
        &action("scale", "rollback_params:\n  replicas: {source: before_state.}\n"),
        "actions/a.yaml:7: invalid source `before_state.` for rollback param `replicas` in action `scale`; expected `params.<parameter>` or `before_state.<field>`",
    );
    check_err(
        &action(
            "scale",
            "parameters:\n  - {name: replicas, type: integer}\nrollback_params:\n  replicas: {source: params.replica}\n",
        ),
        "actions/a.yaml:9: source `params.replica` of rollback param `replicas` names no parameter of action `scale`; did you mean `params.replicas`?",
    );
}

#[test]
fn malformed_files_are_errors_not_panics() {
    check_err("", "actions/a.yaml: the file is empty; expected a YAML mapping");
    check_err("# just a comment\n", "actions/a.yaml: the file is empty; expected a YAML mapping");
    check_err(
        "- a\n- b\n",
        "actions/a.yaml:1: expected a YAML mapping at the top level, found a sequence",
    );
    check_err(
        "just text\n",
        "actions/a.yaml:1: expected a YAML mapping at the top level, found a string",
    );
    check_err(
        "name: [\n",
        "actions/a.yaml:2: did not find expected node content, while parsing a flow node",
    );
    check_err(
        "name: a\n  b: c\n",
        "actions/a.yaml:2: mapping values are not allowed in this context",
    );
    check_err("name: a\nname: b\n", "actions/a.yaml:2: duplicate key `name` at the top level");
    check_err(
        "name: a\n---\nname: b\n",
        "actions/a.yaml: the file contains more than one YAML document; expected exactly one",
    );
    check_err("name: *x\n", "actions/a.yaml:1: an alias (`*name`) refers to an unknown anchor");
    let err = Registry::from_sources([(PathBuf::from("bin.yaml"), &b"name: \xff\xfe\n"[..])])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bin.yaml:1: the file is not valid UTF-8 (invalid byte 0xff at offset 6)"
    );
}

#[test]
fn deep_nesting_is_an_error() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    check_err(
        &action(
            "scale",
            &format!("parameters:\n  - name: a\n    type: array\n    default: {deep}\n"),
        ),
        "actions/a.yaml:9: the document is nested too deeply (more than 128 unclosed `[` or `{`)",
    );
}

#[test]
fn alias_bombs_are_errors() {
    // Exponential: 9^9 strings from a few hundred bytes.
    let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        let _ = writeln!(bomb, "{next}: &{next} [{refs}]");
    }
    let err = load(&[("bomb.yaml", &bomb)]).unwrap_err().to_string();
    assert!(err.starts_with("bomb.yaml"), "{err}");
    assert!(err.contains("alias"), "{err}");
    // Wide: one big anchored list aliased many times (within serde_yaml's own repetition
    // limit, so only our node budget stops it).
    let items = vec!["x"; 2000].join(",");
    let aliases = vec!["*big"; 2000].join(",");
    let wide = format!("big: &big [{items}]\nmany: [{aliases}]\n");
    let err = load(&[("wide.yaml", &wide)]).unwrap_err().to_string();
    assert_eq!(
        err,
        "wide.yaml:1: the document expands to too many nodes (an alias bomb?); refusing to expand it"
    );
}

#[test]
fn huge_files_are_refused() {
    let big = vec![b'#'; usize::try_from(crate::yaml::MAX_FILE_BYTES).unwrap() + 1];
    let err = Registry::from_sources([(PathBuf::from("big.yaml"), &big[..])]).unwrap_err();
    assert_eq!(err.to_string(), "big.yaml: the file is larger than the limit of 8388608 bytes");
}

#[test]
fn load_dir_follows_spec_1_4() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Registry::load_dir(&missing).unwrap_err();
    assert_eq!(err.to_string(), format!("actions directory not found: `{}`", missing.display()));
    assert!(matches!(err, LoadError::DirNotFound { .. }));

    // Empty dir → empty registry.
    assert!(Registry::load_dir(dir.path()).unwrap().is_empty());

    std::fs::write(dir.path().join("b.yml"), action("bee", "")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), action("ay", "")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(dir.path().join("c.YAML"), "not loaded: [").unwrap();
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(dir.path().join("nested/x.yaml"), "not loaded: [").unwrap();
    let registry = Registry::load_dir(dir.path()).unwrap();
    assert_eq!(registry.names().collect::<Vec<_>>(), ["ay", "bee"]);
    assert_eq!(registry.get("bee").unwrap().source(), dir.path().join("b.yml"));

    // A file path is not a directory.
    let err = Registry::load_dir(&dir.path().join("a.yaml")).unwrap_err();
    assert!(matches!(err, LoadError::DirNotFound { .. }), "{err}");

    std::fs::write(dir.path().join("a2.yaml"), action("bee", "")).unwrap();
    let err = Registry::load_dir(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: duplicate action name `bee`; already defined in `{}`",
            dir.path().join("b.yml").display(),
            dir.path().join("a2.yaml").display()
        )
    );
}

#[test]
fn loads_the_shipped_catalog() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
    if !dir.is_dir() {
        return; // the catalog is optional for this crate's tests
    }
    let registry = Registry::load_dir(&dir).unwrap();
    assert!(registry.len() >= 32, "{}", registry.len());
    for name in
        ["scale-deployment", "drain-node", "iam-attach-role-policy", "iam-detach-role-policy"]
    {
        assert!(registry.contains(name), "{name}");
    }
    let scale = registry.get("scale-deployment").unwrap();
    let params = serde_json::json!({"namespace": "prod", "deployment": "api", "replicas": 101});
    assert_eq!(
        scale.validate_params(params.as_object().unwrap()),
        ["Parameter 'replicas': value 101 exceeds maximum 100.0"]
    );
}

#[test]
fn error_messages_snapshot() {
    let p = |body: &str| {
        action("scale", &format!("parameters:\n  - name: replicas\n    type: integer\n{body}"))
    };
    let cases: Vec<(&str, String)> = vec![
        ("constraint on parameter", p("    max_value: 100\n")),
        ("typo in constraints", p("    constraints:\n      patern: '[0-9]+'\n")),
        (
            "scope instead of fields",
            action("scale", "credentials:\n  type: kubernetes\n  scope: {verbs: [get]}\n"),
        ),
        ("unknown top-level key", action("scale", "action: x\n")),
        ("bad risk class", action("scale", "").replace("medium", "extreme")),
        ("enum of ints", p("    constraints:\n      enum: [1, 2, 3]\n")),
        ("unsupported regex", p("    constraints:\n      pattern: '^(?!admin).*$'\n")),
        ("unquoted version", action("scale", "").replace("1.0.0", "1.0")),
        ("bad yaml", "name: scale\nparameters:\n  - name: a\n   type: string\n".to_owned()),
        ("top-level list", "- name: scale\n".to_owned()),
    ];
    let mut out = String::new();
    for (case, text) in cases {
        let message = match load(&[("actions/scale.yaml", &text)]) {
            Ok(_) => "(loaded)".to_owned(),
            Err(e) => e.to_string(),
        };
        let _ = writeln!(out, "{case}:\n  {message}");
    }
    insta::assert_snapshot!(out);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = Registry::from_sources([(PathBuf::from("x.yaml"), &bytes[..])]) {
            prop_assert!(e.to_string().starts_with("x.yaml"), "{}", e);
        }
    }

    #[test]
    fn yaml_ish_documents_never_panic(doc in crate::test_support::yaml_ish()) {
        if let Err(e) = Registry::from_sources([(PathBuf::from("x.yaml"), doc.as_bytes())]) {
            prop_assert!(e.to_string().starts_with("x.yaml"), "{}", e);
        }
    }

    /// JSON is YAML: documents with the schema's keys and values of any type.
    #[test]
    fn schema_shaped_documents_never_panic(doc in crate::test_support::action_shaped()) {
        let text = serde_json::to_string_pretty(&doc).unwrap();
        match Registry::from_sources([(PathBuf::from("x.yaml"), text.as_bytes())]) {
            Err(e) => prop_assert!(e.to_string().starts_with("x.yaml:"), "{}\n{}", e, text),
            Ok(registry) => {
                for action in &registry {
                    let required: Vec<String> = action
                        .definition()
                        .parameters
                        .iter()
                        .filter(|p| p.required)
                        .map(|p| format!("Missing required parameter: {}", p.name))
                        .collect();
                    prop_assert_eq!(action.validate_params(&Default::default()), required);
                }
            }
        }
    }

    #[test]
    fn mutated_valid_actions_never_panic(
        cut in 0usize..400,
        insert in "[ :\\-\\[\\]{}&*!|>'\"#\n\t a-z0-9.]{0,8}",
    ) {
        let base = action(
            "scale",
            "parameters:\n  - name: replicas\n    type: integer\n    constraints: {min_value: 0, max_value: 100, pattern: '[0-9]+', enum: ['1']}\n\
             credentials: {type: k8s, fields: {verbs: [get]}, ttl: 10}\nrollback_params:\n  replicas: {source: params.replicas}\n\
             state_fields: [{name: a}]\nprechecks: [{name: p, description: d}]\nrollback_action: scale\n",
        );
        let cut = cut.min(base.len());
        let cut = (0..=cut).rev().find(|&i| base.is_char_boundary(i)).unwrap_or(0);
        let doc = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        if let Ok(registry) = Registry::from_sources([(PathBuf::from("x.yaml"), doc.as_bytes())]) {
            // Whatever loaded must validate arbitrary params without panicking.
            for action in &registry {
                let params = serde_json::json!({"replicas": "x", "other": [1, {"a": null}], "n": 1e300});
                let _ = action.validate_params(params.as_object().unwrap());
            }
        }
    }
}

#[test]
fn pattern_matches_uses_the_whole_string_pattern() {
    let params = "parameters:\n  - {name: ns, type: string, constraints: {pattern: '[a-z]+'}}\n  \
                  - {name: free, type: string}\n";
    let registry = load(&[("a.yaml", &action("a", params))]).unwrap();
    let a = registry.get("a").unwrap();
    assert_eq!(a.pattern_matches("ns", "dev"), Some(true));
    assert_eq!(a.pattern_matches("ns", "dev/x"), Some(false), "whole string, not a prefix");
    assert_eq!(a.pattern_matches("free", "anything"), None, "no pattern declared");
    assert_eq!(a.pattern_matches("missing", "x"), None, "no such parameter");
}

#[test]
fn redact_params_hides_only_sensitive_values_and_keeps_the_order() {
    let text = "name: put\nversion: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [t]\n\
        parameters:\n\
        \x20 - {name: key, type: string}\n\
        \x20 - {name: value, type: string, sensitive: true}\n";
    let registry = Registry::from_sources([(PathBuf::from("put.yaml"), text.as_bytes())]).unwrap();
    let action = registry.get("put").unwrap();
    let params = serde_json::json!({"value": "hunter2", "key": "k", "extra": 1});
    let shown = action.redact_params(params.as_object().unwrap());
    assert_eq!(
        serde_json::to_string(&shown).unwrap(),
        r#"{"value":"[redacted]","key":"k","extra":1}"#
    );
    // By name: the same; an action the registry does not hold keeps every value.
    assert_eq!(registry.redact_params("put", params.as_object().unwrap()), shown);
    assert_eq!(
        &registry.redact_params("missing", params.as_object().unwrap()),
        params.as_object().unwrap()
    );
}
