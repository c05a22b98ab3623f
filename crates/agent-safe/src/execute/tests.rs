//! `AgentSafe::execute` and `dry_run` end to end in one process: check → ticket → execute,
//! with the default nonce store next to the audit log.

use std::sync::Arc;

use agent_safe_core::{EventType, ExecutionStatus};
use agent_safe_runner::DryRunExecutor;
use agent_safe_tickets::SigningKey;

use crate::{AgentSafe, CheckRequest, Error, ExecuteError, ExecuteOptions};

const KEY: &str = "sdk-execute-key-0123456789abcdef0123456789";

fn catalog() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

fn sdk(dir: &std::path::Path, key: bool) -> AgentSafe {
    let mut b = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.join("audit.jsonl"));
    if key {
        b = b.signing_key(SigningKey::hs256_from_str(KEY).unwrap());
    }
    b.build().unwrap()
}

fn ticket(safe: &AgentSafe) -> String {
    let decision = safe
        .check(
            &CheckRequest::new("get-pod-logs")
                .target("dev/debug-pod")
                .caller("deploy-bot")
                .param("namespace", "dev")
                .param("pod", "debug-pod"),
        )
        .unwrap();
    decision.ticket.unwrap().token
}

#[tokio::test]
async fn execute_runs_a_ticket_once_across_sdk_instances() {
    let dir = tempfile::tempdir().unwrap();
    let safe = sdk(dir.path(), true);
    let token = ticket(&safe);
    // The action declares a Kubernetes credential and no vault is configured.
    let ambient = ExecuteOptions { ambient_credentials: true, ..ExecuteOptions::default() };

    let refused = safe.dry_run(&token, ExecuteOptions::default()).await.unwrap();
    assert_eq!(refused.result.status, ExecutionStatus::Error);
    let dry = safe.dry_run(&token, ambient).await.unwrap();
    assert_eq!(dry.result.status, ExecutionStatus::Skipped);
    assert!(dry.dry_run);

    let outcome = safe.execute(&token, Arc::new(DryRunExecutor), ambient).await.unwrap();
    assert_eq!(outcome.result.status, ExecutionStatus::Skipped);
    assert_eq!(outcome.credential_source, Some(agent_safe_runner::CredentialSource::NotNeeded));
    assert_eq!(outcome.result.output, "[dry-run] Would execute get-pod-logs on dev/debug-pod");
    assert!(dir.path().join("audit.jsonl.nonces").exists(), "default nonce store");

    // Another SDK instance (another process would be the same) shares the nonce store.
    let other = sdk(dir.path(), true);
    let replay = other.execute(&token, Arc::new(DryRunExecutor), ambient).await.unwrap();
    assert_eq!(
        replay.result.error.as_deref(),
        Some("Ticket validation failed: Ticket has already been used (replay detected)")
    );
    let report = safe.verify_audit().unwrap().unwrap();
    assert!(report.is_valid());
    let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
    let kinds: Vec<EventType> = events.iter().map(|e| e.event.event_type).collect();
    assert_eq!(
        kinds,
        [EventType::Decision, EventType::Execution, EventType::StateCapture, EventType::Execution]
    );
    let decision_id = events[0].event.event_id.as_str().to_owned();
    assert!(events[1..].iter().all(|e| e.event.correlation_id.as_deref() == Some(&decision_id)));
}

#[tokio::test]
async fn execute_needs_a_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let safe = sdk(dir.path(), false);
    let err = safe.execute("x", Arc::new(DryRunExecutor), ExecuteOptions::default()).await;
    assert!(matches!(err, Err(Error::Execute(ExecuteError::NoSigningKey))));
    assert_eq!(
        err.unwrap_err().to_string(),
        "no signing key configured: execution tickets cannot be validated"
    );
}

#[test]
fn the_execute_future_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let safe = sdk(dir.path(), true);
    is_send(&safe.execute("x", Arc::new(DryRunExecutor), ExecuteOptions::default()));
    is_send(&safe.dry_run("x", ExecuteOptions::default()));
}
