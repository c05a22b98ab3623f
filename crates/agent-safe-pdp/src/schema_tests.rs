//! The policy and policy-test schemas accept whatever the loader accepts (see the registry's
//! `schema_tests` for the method): documents generated from valid ones by replacing values with
//! values of every shape, dropping keys and adding unknown ones.

use std::path::PathBuf;

use agent_safe_core::json_paths::{edits, mutate};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{policy, policy_schema, policy_test_schema, testing};

fn policy_doc() -> Value {
    json!({"rules": [
        {"name": "prod-approval", "description": "Prod needs a human", "priority": 500,
         "match": {"actions": ["restart-*"], "targets": {"environments": ["prod"],
                   "sensitivities": ["critical"], "types": ["k8s-deployment"],
                   "labels": {"tier": "web"}},
                   "callers": {"agent_ids": ["bot"], "roles": ["sre"], "groups": ["ops"],
                               "delegated_from": ["orchestrator"], "max_delegation_depth": 2,
                               "require_delegation": false},
                   "risk_classes": ["high"],
                   "time_windows": [{"days": [0, 1], "start_hour": 8, "end_hour": 18,
                                     "timezone": "Europe/Paris"}],
                   "require_ticket": true, "ticket_pattern": "^CHG-[0-9]+$"},
         "decision": "require_approval", "reason": "Needs approval",
         "approvals": {"required": 2, "approver_roles": ["sre"]}},
        {"name": "dev", "match": {}, "decision": "allow", "reason": "Dev is open"},
    ]})
}

fn test_doc() -> Value {
    json!({"tests": [
        {"name": "dev allowed", "action": "restart-deployment", "target": "dev/app",
         "caller": "bot", "caller_roles": ["sre"], "caller_groups": ["ops"],
         "params": {"namespace": "dev"}, "ticket_id": "CHG-1", "at": "2026-03-02T10:00:00Z",
         "expect": "allow", "expect_policy": "dev", "expect_reason": "Dev is open"},
    ]})
}

/// Values of every shape, the ones lax coercion turns into booleans and numbers included.
fn values() -> impl Strategy<Value = Value> + Clone {
    prop::sample::select(vec![
        json!(null),
        json!(true),
        json!("yes"),
        json!("0"),
        json!(" 7 "),
        json!(1),
        json!(-1),
        json!(3.0),
        json!(2.5),
        json!("text"),
        json!(""),
        json!([]),
        json!(["x"]),
        json!([1]),
        json!({}),
        json!("allow"),
        json!("prod"),
        json!("*"),
    ])
}

#[track_caller]
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn assert_valid(schema: schemars::Schema, doc: &Value) {
    let validator = jsonschema::validator_for(&schema.to_value()).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "read by the loader, refused by the schema: {errors:?}\n{doc:#}");
}

#[test]
fn the_starting_documents_are_read_and_valid_and_the_schemas_are_not_vacuous() {
    let text = policy_doc().to_string();
    assert!(policy::load_sources([(PathBuf::from("p.yaml"), text.as_str())]).is_ok());
    assert_valid(policy_schema(), &policy_doc());
    let parsed: Result<testing::TestFile, _> =
        agent_safe_registry::yaml::from_str(&PathBuf::from("t.yaml"), &test_doc().to_string());
    assert!(parsed.is_ok(), "{parsed:?}");
    assert_valid(policy_test_schema(), &test_doc());
    let validator = jsonschema::validator_for(&policy_schema().to_value()).unwrap();
    let mut wrong = policy_doc();
    wrong["rules"][1]["decision"] = json!("maybe");
    assert!(!validator.is_valid(&wrong));
    wrong = policy_doc();
    wrong["rules"][1]["match"]["action"] = json!(["x"]);
    assert!(!validator.is_valid(&wrong));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_policy_the_loader_reads_is_valid_against_the_schema(edits in edits(values())) {
        let doc = mutate(policy_doc(), &edits);
        let text = doc.to_string();
        if policy::load_sources([(PathBuf::from("p.yaml"), text.as_str())]).is_ok() {
            assert_valid(policy_schema(), &doc);
        }
    }

    #[test]
    fn a_policy_test_the_loader_reads_is_valid_against_the_schema(edits in edits(values())) {
        let doc = mutate(test_doc(), &edits);
        let parsed: Result<testing::TestFile, _> =
            agent_safe_registry::yaml::from_str(&PathBuf::from("t.yaml"), &doc.to_string());
        if parsed.is_ok() {
            assert_valid(policy_test_schema(), &doc);
        }
    }
}
