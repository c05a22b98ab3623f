//! The `agent-safe.yaml` schema accepts whatever the loader accepts (see the registry's
//! `schema_tests` for the method): the documented example, and documents generated from a
//! valid one by replacing values with values of every shape, dropping keys and adding unknown
//! ones. The vault is read when the configuration is used, so "the loader accepts" includes
//! `build_vault` accepting the vault's shape.

use std::sync::Arc;

use agent_safe_core::SystemClock;
use agent_safe_core::json_paths::{edits, mutate};
use agent_safe_credentials::{VaultConfigError, build_vault};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::config::{ConfigFile, config_schema};

fn config_doc() -> Value {
    json!({
        "registry": "actions", "policies": "policies", "inventory": "inventory.yaml",
        "audit_log": "audit.jsonl", "nonce_store": "audit.jsonl.nonces",
        "signing_key": "0123456789abcdef", "signing_key_file": "keys/a.key", "issuer": "agent-safe",
        "identity": "required", "audit_durability": "buffered",
        "rate_limit": {"max_requests": 10, "window_seconds": 60, "circuit_breaker_threshold": 3,
                       "circuit_breaker_window_seconds": 60, "circuit_breaker_cooldown_seconds": 300},
        "cumulative_risk": {"window_seconds": 3600, "risk_scores": {"low": 1, "critical": 50},
                            "escalation_threshold": 30, "deny_threshold": 75},
        "approvals": {"store": "approvals.jsonl", "ttl_seconds": 3600,
                      "approver_token_file": "keys/approver.jwt",
                      "notifiers": {"webhook_url": "https://hooks.example.com/a",
                                    "webhook_headers": {"Authorization": "Bearer x"},
                                    "webhook_timeout": 10, "slack_webhook_url": "https://hooks.slack.com/x",
                                    "slack_channel": "#approvals"}},
        "audit_shipping": {"filesystem_path": "copy.jsonl", "webhook_url": "https://siem.example.com/a",
                           "webhook_headers": {"X": "y"}, "webhook_timeout": 10,
                           "s3_bucket": "b", "s3_prefix": "p/", "s3_endpoint_url": "http://127.0.0.1:5000",
                           "s3_region": "eu-west-1", "retry_initial_backoff": 1, "retry_max_backoff": 60,
                           "poll_interval": 1, "start_at": "end", "exit_flush_timeout": 5},
        "credentials": {"vault": {"type": "env", "env_prefix": "X_",
                                  "credentials": {"kubernetes": {"token": "t"}, "aws": "token"}},
                        "require_scoped": false},
        "tickets": {"audience": "agent-safe-runner"},
        "state": {"backend": "postgres", "url": "postgres://agent_safe@db.internal/agent_safe",
                  "pool_size": 4, "statement_timeout_ms": 1000},
    })
}

fn values() -> impl Strategy<Value = Value> + Clone {
    prop::sample::select(vec![
        json!(null),
        json!(true),
        json!("yes"),
        json!("10"),
        json!(0),
        json!(1),
        json!(-1),
        json!(900),
        json!(2.5),
        json!("text"),
        json!(""),
        json!("none"),
        json!("file"),
        json!("sts"),
        json!("kubernetes"),
        json!("postgres"),
        json!("arn:aws:iam::123456789012:role/x"),
        json!("http://127.0.0.1:1"),
        json!([]),
        json!(["x"]),
        json!({}),
        json!({"k": "v"}),
        json!("high"),
    ])
}

/// Whether the loader reads `doc` (written as YAML-compatible JSON to a file).
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn loads(doc: &Value) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-safe.yaml");
    std::fs::write(&path, doc.to_string()).unwrap();
    let Ok(config) = ConfigFile::load(&path) else { return false };
    match config.credentials.and_then(|c| c.vault) {
        None => true,
        Some(vault) => !matches!(
            build_vault(&vault, Arc::new(SystemClock)),
            Err(VaultConfigError::UnknownType(_)
                | VaultConfigError::UnknownKey { .. }
                | VaultConfigError::WrongType { .. }
                | VaultConfigError::MissingKey { .. })
        ),
    }
}

#[expect(clippy::unwrap_used, reason = "a test helper")]
fn errors(doc: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&config_schema().to_value()).unwrap();
    validator.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[test]
fn the_starting_document_and_the_documented_example_are_read_and_valid() {
    assert!(loads(&config_doc()));
    assert_eq!(errors(&config_doc()), Vec::<String>::new());
    // docs/configuration.md's first YAML block: the file with every key.
    let docs = include_str!("../../../docs/configuration.md");
    let block = docs.split("```yaml\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    let example: Value = serde_yaml::from_str(block).unwrap();
    assert!(example.get("credentials").is_some() && example.get("tickets").is_some());
    assert!(loads(&example), "{block}");
    assert_eq!(errors(&example), Vec::<String>::new());
    // Not vacuous: a misspelt key, a wrong type, a vault key of another vault type.
    for (path, value) in [
        ("/enviroment", json!("x")),
        ("/rate_limit/max_requests", json!("many")),
        ("/identity", json!("sometimes")),
        ("/credentials/vault/role_arn", json!("arn:aws:iam::123456789012:role/x")),
        ("/tickets/audience", json!(" ")),
    ] {
        let mut doc = config_doc();
        let (parent, key) = path.rsplit_once('/').unwrap();
        doc.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.into(), value);
        assert!(!loads(&doc), "{path}");
        assert!(!errors(&doc).is_empty(), "{path}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_config_the_loader_reads_is_valid_against_the_schema(edits in edits(values())) {
        let doc = mutate(config_doc(), &edits);
        if loads(&doc) {
            let errors = errors(&doc);
            prop_assert!(errors.is_empty(), "read by the loader, refused by the schema: {errors:?}\n{doc:#}");
        }
    }
}
