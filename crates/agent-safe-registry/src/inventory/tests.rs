//! Tests for the inventory (SPEC §4) and target ↔ parameter binding.

use std::fmt::Write as _;
use std::path::Path;

use agent_safe_core::{Environment, Sensitivity};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn parse(text: &str) -> Result<Inventory, InventoryError> {
    Inventory::from_source(Path::new("inventory.yaml"), text.as_bytes())
}

#[track_caller]
fn check_err(text: &str, expected: &str) {
    match parse(text) {
        Ok(_) => panic!("expected error {expected:?}, but it loaded:\n{text}"),
        Err(e) => assert_eq!(e.to_string(), expected, "\n{text}"),
    }
}

const TWO: &str = "\
targets:
  - id: prod/api-server
    type: k8s-deployment
    environment: prod
    sensitivity: critical
    owner: platform
    labels: {app: api, tier: web}
    params: {namespace: prod, replicas: 3, dry: false}
  - id: dev/test-app
    type: k8s-deployment
    environment: dev
    sensitivity: public
";

#[test]
fn loads_targets_in_file_order() {
    let inv = parse(TWO).unwrap();
    assert_eq!(inv.len(), 2);
    assert!(!inv.is_empty());
    assert_eq!(
        inv.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["prod/api-server", "dev/test-app"]
    );
    let api = inv.get("prod/api-server").unwrap();
    assert_eq!(api.kind, "k8s-deployment");
    assert_eq!((api.environment, api.sensitivity), (Environment::Prod, Sensitivity::Critical));
    assert_eq!(api.owner, "platform");
    assert_eq!(api.labels["tier"], "web");
    assert_eq!(api.params["replicas"], json!(3));
    let dev = inv.get("dev/test-app").unwrap();
    assert_eq!(dev.owner, "");
    assert!(dev.labels.is_empty() && dev.params.is_empty());
    assert!(inv.get("dev/test").is_none());
    assert!(inv.get("DEV/TEST-APP").is_none());
}

#[test]
fn empty_and_missing_inventories() {
    assert!(parse("targets: []\n").unwrap().is_empty());
    assert!(Inventory::empty().is_empty());
    assert_eq!(Inventory::empty().iter().count(), 0);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("inventory.yaml");
    let err = Inventory::load(&missing).unwrap_err();
    assert!(matches!(err, InventoryError::NotFound { .. }));
    assert_eq!(err.to_string(), format!("inventory file not found: `{}`", missing.display()));
    std::fs::write(&missing, TWO).unwrap();
    assert_eq!(Inventory::load(&missing).unwrap().len(), 2);
    // A directory exists but cannot be read as a file: not "not found".
    let err = Inventory::load(dir.path()).unwrap_err();
    assert!(matches!(err, InventoryError::File(_)), "{err}");
}

#[test]
fn errors_name_file_line_and_target() {
    check_err("", "inventory.yaml: the file is empty; expected a YAML mapping");
    check_err(
        "- id: x\n",
        "inventory.yaml:1: expected a YAML mapping at the top level, found a sequence",
    );
    check_err(
        "other: 1\n",
        "inventory.yaml:1: unknown field `other` at the top level; expected one of `targets`",
    );
    check_err(
        "target: []\n",
        "inventory.yaml:1: unknown field `target` at the top level; did you mean `targets`?",
    );
    check_err("{}\n", "inventory.yaml:1: missing field `targets`");
    check_err(
        "targets: {a: 1}\n",
        "inventory.yaml:1: `targets`: invalid type: map, expected a sequence",
    );
    check_err(
        "targets: ~\n",
        "inventory.yaml:1: `targets`: invalid type: unit value, expected a sequence",
    );
    check_err(
        "targets:\n  - just-a-string\n",
        "inventory.yaml:2: `targets[0]`: invalid type: string \"just-a-string\", expected struct Target",
    );
    check_err(
        &TWO.replace("environment: prod", "environment: production"),
        "inventory.yaml:4: `environment` in target `prod/api-server` (index 0): unknown variant `production`, expected one of `dev`, `staging`, `prod`",
    );
    check_err(
        &TWO.replace("sensitivity: public", "sensitivity: publik"),
        "inventory.yaml:12: `sensitivity` in target `dev/test-app` (index 1): unknown variant `publik`; did you mean `public`?",
    );
    check_err(
        &TWO.replace("    environment: dev\n", ""),
        "inventory.yaml:9: missing field `environment` in target `dev/test-app` (index 1)",
    );
    check_err(
        &TWO.replace("    owner: platform\n", "    namespace: prod\n"),
        "inventory.yaml:6: unknown field `namespace` in target `prod/api-server` (index 0); did you mean `params.namespace`?",
    );
    check_err(
        &TWO.replace("    owner: platform\n", "    lables: {}\n"),
        "inventory.yaml:6: unknown field `lables` in target `prod/api-server` (index 0); did you mean `labels`?",
    );
    check_err(
        &TWO.replace("labels: {app: api", "labels: {app: [api]"),
        "inventory.yaml:7: `app` in the labels of target `prod/api-server` (index 0): invalid type: sequence, expected a string",
    );
    check_err(
        &TWO.replace("dev/test-app", "prod/api-server"),
        "inventory.yaml:9: duplicate target id `prod/api-server` at index 1; already used at index 0",
    );
    check_err(
        &TWO.replace("dry: false", "dry: [1]"),
        "inventory.yaml:8: bound parameter `dry` of target `prod/api-server` must be a string, number or boolean, got a list",
    );
    check_err(
        &TWO.replace("dry: false", "dry: ~"),
        "inventory.yaml:8: bound parameter `dry` of target `prod/api-server` must be a string, number or boolean, got null",
    );
    check_err(
        &TWO.replace("labels: {app: api,", "labels: {app: api, app: web,"),
        "inventory.yaml:7: duplicate key `app` in `targets[0].labels`",
    );
    let err = Inventory::from_source(Path::new("inv.yaml"), b"targets:\n  - id: \"\xc3\x28\"\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "inv.yaml:2: the file is not valid UTF-8 (invalid byte 0xc3 at offset 18)"
    );
}

#[test]
fn bound_params_deny_contradictions_only() {
    let inv = parse(TWO).unwrap();
    let api = inv.get("prod/api-server").unwrap();
    let check = |params: serde_json::Value, expected: Option<&str>| {
        assert_eq!(
            check_bound_params(api, params.as_object().unwrap()).as_deref(),
            expected,
            "{params}"
        );
    };
    check(json!({}), None);
    check(json!({"namespace": "prod", "replicas": 3, "dry": false, "other": 1}), None);
    check(json!({"deployment": "api"}), None);
    check(
        json!({"namespace": "dev"}),
        Some(
            "parameter `namespace` is bound to `prod` by target `prod/api-server`, but the request has `dev`",
        ),
    );
    // Exact JSON comparison: 3.0 is not 3, "3" is not 3, 0 is not false.
    check(
        json!({"replicas": 3.0}),
        Some(
            "parameter `replicas` is bound to `3` by target `prod/api-server`, but the request has `3.0`",
        ),
    );
    check(
        json!({"replicas": "3"}),
        Some(
            "parameter `replicas` is bound to `3` by target `prod/api-server`, but the request has `3`",
        ),
    );
    check(
        json!({"dry": 0}),
        Some(
            "parameter `dry` is bound to `false` by target `prod/api-server`, but the request has `0`",
        ),
    );
    check(
        json!({"namespace": ["prod"]}),
        Some(
            "parameter `namespace` is bound to `prod` by target `prod/api-server`, but the request has `[\"prod\"]`",
        ),
    );
    // The first contradiction in key order is reported.
    check(
        json!({"replicas": 4, "dry": true}),
        Some(
            "parameter `dry` is bound to `false` by target `prod/api-server`, but the request has `true`",
        ),
    );
    // A target without bound params never contradicts.
    let dev = inv.get("dev/test-app").unwrap();
    assert_eq!(check_bound_params(dev, json!({"namespace": "prod"}).as_object().unwrap()), None);
}

#[test]
fn error_messages_snapshot() {
    let cases = [
        ("targets not a list", "targets: prod/api\n".to_owned()),
        ("unknown environment", TWO.replace("environment: dev", "environment: qa")),
        ("misplaced binding", TWO.replace("    owner: platform\n", "    region: eu-west-1\n")),
        ("duplicate id", TWO.replace("dev/test-app", "prod/api-server")),
        ("non-scalar binding", TWO.replace("replicas: 3", "replicas: {min: 1}")),
    ];
    let mut out = String::new();
    for (case, text) in cases {
        let message = match parse(&text) {
            Ok(_) => "(loaded)".to_owned(),
            Err(e) => e.to_string(),
        };
        let _ = writeln!(out, "{case}:\n  {message}");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn loads_the_shipped_inventory() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/inventory.yaml");
    if !path.is_file() {
        return; // the catalog is optional for this crate's tests
    }
    let inv = Inventory::load(&path).unwrap();
    assert!(!inv.is_empty());
    assert!(inv.iter().any(|t| !t.params.is_empty()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Inventory::from_source(Path::new("x.yaml"), &bytes);
    }

    #[test]
    fn yaml_ish_documents_never_panic(doc in crate::test_support::yaml_ish()) {
        let _ = Inventory::from_source(Path::new("x.yaml"), doc.as_bytes());
        let with_targets = format!("targets:\n  - {}", doc.replace('\n', "\n    "));
        let _ = Inventory::from_source(Path::new("x.yaml"), with_targets.as_bytes());
    }
}
