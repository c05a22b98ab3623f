//! The schemas accept whatever the loader accepts: documents generated from a valid action and
//! inventory, each field replaced by values of every shape (Python's lax booleans and numbers
//! in strings among them), keys dropped and unknown keys added; whenever the loader reads one,
//! the schema must validate it (an editor must never flag a file agent-safe reads).

use std::path::PathBuf;

use agent_safe_core::json_paths::{edits, mutate};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::{Inventory, Registry, action_schema, inventory_schema};

fn action() -> Value {
    json!({
        "name": "scale-thing",
        "version": "1.0.0",
        "description": "Scale a thing",
        "risk_class": "medium",
        "target_types": ["k8s-deployment"],
        "parameters": [
            {"name": "namespace", "type": "string", "required": true,
             "constraints": {"pattern": "^[a-z-]+$", "max_length": 63}},
            {"name": "replicas", "type": "integer", "required": false, "sensitive": false,
             "constraints": {"min_value": 0, "max_value": 50}},
            {"name": "mode", "type": "string", "constraints": {"enum": ["a", "b"]}},
        ],
        "prechecks": [{"name": "exists", "description": "It exists", "blocking": true}],
        "reversible": true,
        "rollback_action": "scale-thing",
        "required_privileges": ["patch"],
        "tags": ["write"],
        "credentials": {"type": "kubernetes", "fields": {"namespaces": ["{{ params.namespace }}"]},
                        "ttl": 300},
        "state_fields": [{"name": "replicas", "type": "integer", "required": true}],
        "rollback_params": {"replicas": {"source": "before_state.replicas"}},
    })
}

fn inventory() -> Value {
    json!({"targets": [
        {"id": "dev/app", "type": "k8s-deployment", "environment": "dev",
         "sensitivity": "public", "owner": "team", "labels": {"tier": "web"},
         "params": {"namespace": "dev"}},
    ]})
}

/// Values of every shape, the ones lax coercion turns into booleans and numbers included.
fn values() -> impl Strategy<Value = Value> + Clone {
    prop::sample::select(vec![
        json!(null),
        json!(true),
        json!(false),
        json!("yes"),
        json!("Off"),
        json!("1"),
        json!("0"),
        json!(" 10 "),
        json!("1_000"),
        json!("1.5"),
        json!("inf"),
        json!(0),
        json!(1),
        json!(2),
        json!(-3),
        json!(10.0),
        json!(2.5),
        json!("text"),
        json!(""),
        json!([]),
        json!(["a"]),
        json!([1]),
        json!({}),
        json!({"k": "v"}),
        json!("dev"),
        json!("critical"),
        json!("string"),
    ])
}

#[expect(clippy::expect_used, reason = "a test helper")]
fn validator(schema: schemars::Schema) -> jsonschema::Validator {
    jsonschema::validator_for(&schema.to_value()).expect("the generated schema compiles")
}

#[test]
fn the_starting_documents_are_read_and_valid() {
    let text = action().to_string();
    assert!(Registry::from_sources([(PathBuf::from("a.yaml"), text.as_bytes())]).is_ok());
    assert!(validator(action_schema()).is_valid(&action()));
    assert!(
        Inventory::from_source(&PathBuf::from("i.yaml"), inventory().to_string().as_bytes())
            .is_ok()
    );
    assert!(validator(inventory_schema()).is_valid(&inventory()));
    // And the schemas are not vacuous: a wrong type and an unknown key are rejected.
    let mut wrong = action();
    wrong["risk_class"] = json!("extreme");
    assert!(!validator(action_schema()).is_valid(&wrong));
    let mut unknown = inventory();
    unknown["targets"][0]["enviroment"] = json!("dev");
    assert!(!validator(inventory_schema()).is_valid(&unknown));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_action_the_loader_reads_is_valid_against_the_schema(edits in edits(values())) {
        let doc = mutate(action(), &edits);
        let text = doc.to_string();
        if Registry::from_sources([(PathBuf::from("a.yaml"), text.as_bytes())]).is_ok() {
            let v = validator(action_schema());
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
            prop_assert!(errors.is_empty(), "read by the loader, refused by the schema: {errors:?}\n{doc:#}");
        }
    }

    #[test]
    fn an_inventory_the_loader_reads_is_valid_against_the_schema(edits in edits(values())) {
        let doc = mutate(inventory(), &edits);
        if Inventory::from_source(&PathBuf::from("i.yaml"), doc.to_string().as_bytes()).is_ok() {
            let v = validator(inventory_schema());
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
            prop_assert!(errors.is_empty(), "read by the loader, refused by the schema: {errors:?}\n{doc:#}");
        }
    }
}
