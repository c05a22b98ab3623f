//! A decision's whole life across crates: check → audited ALLOW with a ticket → the ticket
//! validates once for exactly those params → a replay (also after a "restart") is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::{AgentSafe, CheckRequest, DecisionResult, DurabilityMode};
use agent_safe_core::{ManualClock, Params};
use agent_safe_tickets::{FileNonceStore, SigningKey, TicketValidator};
use serde_json::json;
use time::macros::datetime;

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

const KEY: &str = "end-to-end-key-0123456789abcdef0123456789abcdef";

#[test]
fn ticket_is_single_use_across_validators_and_bound_to_params() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC)));
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.path().join("audit.jsonl"))
        .durability(DurabilityMode::Fsync)
        .signing_key(SigningKey::hs256_from_str(KEY).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let request = CheckRequest::new("scale-deployment")
        .target("dev/test-app")
        .caller("deploy-bot")
        .param("namespace", "dev")
        .param("deployment", "test-app")
        .param("replicas", 4);
    let decision = safe.check(&request).unwrap();
    assert_eq!(decision.result, DecisionResult::Allow, "{}", decision.reason);
    let token = decision.ticket.as_ref().unwrap().token.clone();

    let nonces = dir.path().join("nonces");
    let validator = |clock: Arc<ManualClock>| {
        let store = Arc::new(FileNonceStore::open(&nonces, clock.clone()).unwrap());
        let key = SigningKey::hs256_from_str(KEY).unwrap();
        TicketValidator::new(&key, "agent-safe", clock, store)
    };

    // Different params than the ticket permits: refused, and the nonce is not burnt.
    let mut other: Params = request.params.clone();
    other.insert("replicas".into(), json!(40));
    let v = validator(clock.clone()).validate(
        &token,
        Some("scale-deployment"),
        Some("dev/test-app"),
        Some(&other),
    );
    assert!(!v.valid);
    assert!(v.reason.starts_with("Params mismatch"), "{}", v.reason);

    let v = validator(clock.clone()).validate(
        &token,
        Some("scale-deployment"),
        Some("dev/test-app"),
        Some(&request.params),
    );
    assert!(v.valid, "{}", v.reason);
    // A fresh validator on the same store (a restart, or another process) refuses the replay.
    let v = validator(clock.clone()).validate(&token, None, None, Some(&request.params));
    assert_eq!(v.reason, "Ticket has already been used (replay detected)");

    // After the ticket's lifetime it is expired, whatever the store says.
    clock.advance(time::Duration::minutes(6));
    let v = validator(clock).validate(&token, None, None, None);
    assert_eq!(v.reason, "Ticket has expired");

    // The decision was recorded before it was returned, and the chain verifies.
    let report = safe.verify_audit().unwrap().unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.event_id, decision.audit_id);
    assert_eq!(events[0].event.params, request.params);
}
