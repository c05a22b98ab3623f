//! The report types serialize exactly as the fronts printed their hand-built objects before
//! (same keys, same order, same values): each case compares the pretty JSON text with the
//! object the fronts used to assemble with `json!`.

use std::sync::Arc;

use agent_safe_core::timefmt::format_utc;
use agent_safe_core::{
    ActionName, AgentId, AuditId, CallerIdentity, Clock, Decision, DecisionResult, Environment,
    ExecutionResult, ExecutionStatus, ManualClock, PreCheckResult, RiskClass, TargetId,
};
use agent_safe_delegation::{DelegationManager, DelegationRequest};
use agent_safe_runner::{CredentialSource, RunOutcome};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

use super::{DelegationReport, DelegationVerifyReport, ExecuteActionReport, RunReport};

const KEY: &str = "report-test-key-0123456789abcdef0123456789abcdef";

#[track_caller]
fn check(report: &impl serde::Serialize, expected: &Value) {
    assert_eq!(
        serde_json::to_string_pretty(report).unwrap(),
        serde_json::to_string_pretty(expected).unwrap()
    );
}

fn outcome(execution_audit_id: Option<&str>, dry_run: bool) -> RunOutcome {
    let mut before = serde_json::Map::new();
    before.insert("replicas".into(), json!(2));
    let mut after = serde_json::Map::new();
    after.insert("replicas".into(), json!(3));
    RunOutcome {
        result: ExecutionResult {
            status: ExecutionStatus::Success,
            action: "scale-deployment".into(),
            target: "dev/test-app".into(),
            caller: "deploy-bot".into(),
            audit_id: "evt-000000000001".into(),
            ticket_nonce: "0b306bddf7a277ad50bc1a53d2ca74ee".into(),
            output: "deployment.apps/test-app scaled".into(),
            error: None,
            duration_ms: Some(12.5),
            precheck_results: vec![PreCheckResult {
                name: "deployment-exists".into(),
                passed: true,
                message: String::new(),
                advisory: false,
            }],
            before_state: before,
            after_state: after,
            executed_at: Some(datetime!(2026-02-24 12:00:01.5 UTC)),
            executor_type: "kubectl".into(),
            execution_audit_id: execution_audit_id.map(AuditId::new),
        },
        state_capture_id: Some(AuditId::new("evt-000000000003")),
        credential_source: Some(CredentialSource::Vault),
        credential_id: Some("cred-1".into()),
        revoke_warning: Some("revoke failed".into()),
        dry_run,
    }
}

/// The object `runner execute --json-output`, `POST /v1/execute` and MCP built by hand.
fn hand_built(outcome: &RunOutcome) -> Value {
    let mut value = serde_json::to_value(&outcome.result).unwrap();
    let map = value.as_object_mut().unwrap();
    map.insert("state_capture_id".into(), json!(outcome.state_capture_id));
    map.insert("credential_source".into(), json!(outcome.credential_source));
    map.insert("credential_id".into(), json!(outcome.credential_id));
    map.insert("revoke_warning".into(), json!(outcome.revoke_warning));
    map.insert("dry_run".into(), json!(outcome.dry_run));
    value
}

#[test]
fn a_run_report_is_the_result_then_the_run_fields() {
    for o in [outcome(Some("evt-000000000002"), false), outcome(None, true)] {
        check(&RunReport::new(&o), &hand_built(&o));
    }
    let mut refused = outcome(None, false);
    refused.result.status = ExecutionStatus::Error;
    refused.result.error = Some("Ticket validation failed".into());
    refused.state_capture_id = None;
    refused.credential_source = None;
    refused.credential_id = None;
    refused.revoke_warning = None;
    check(&RunReport::new(&refused), &hand_built(&refused));
}

fn decision() -> Decision {
    Decision {
        result: DecisionResult::Allow,
        reason: "dev is open".into(),
        action: ActionName::new("scale-deployment"),
        target: TargetId::new("dev/test-app"),
        caller: AgentId::new("deploy-bot"),
        risk_class: RiskClass::Medium,
        effective_risk: RiskClass::Low,
        policy_matched: Some("allow-dev".into()),
        audit_id: AuditId::new("evt-000000000001"),
        ticket: None,
        request_id: None,
        ticket_id: None,
        cumulative_risk_score: None,
        cumulative_risk_class: None,
        escalated_from: None,
    }
}

#[test]
fn the_mcp_execute_report_wraps_the_decision_and_the_run() {
    let d = decision();
    check(
        &ExecuteActionReport::refused(&d),
        &json!({ "executed": false, "decision": serde_json::to_value(&d).unwrap() }),
    );
    for o in [outcome(Some("evt-000000000002"), false), outcome(None, true)] {
        check(
            &ExecuteActionReport::ran(&d, &o),
            &json!({
                "executed": !o.dry_run,
                "decision": serde_json::to_value(&d).unwrap(),
                "execution": hand_built(&o),
            }),
        );
    }
}

fn manager() -> (DelegationManager, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC)));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let key = SigningKey::hs256_from_str(KEY).unwrap();
    (DelegationManager::new(IdentityManager::new(key, "agent-safe", dyn_clock)), clock)
}

/// A direct identity token for the orchestrator, with roles and a group to delegate.
fn parent(clock: Arc<ManualClock>) -> String {
    let key = SigningKey::hs256_from_str(KEY).unwrap();
    let clock: Arc<dyn Clock> = clock;
    IdentityManager::new(key, "agent-safe", clock)
        .create_token(
            "orchestrator",
            "Orchestrator",
            &["deployer".into(), "reader".into()],
            &["ops".into()],
            Duration::hours(1),
        )
        .unwrap()
}

/// The object `delegation create --json-output` and `POST /v1/delegations` built by hand.
fn created_by_hand(token: &str, child: &CallerIdentity) -> Value {
    let mut out = json!({
        "token": token,
        "child_agent_id": child.agent_id,
        "delegation_depth": child.delegation_depth,
        "delegated_roles": child.delegated_roles,
        "delegation_chain": child
            .delegation_chain
            .iter()
            .map(|l| json!({"agent_id": l.agent_id, "agent_name": l.agent_name}))
            .collect::<Vec<_>>(),
        "max_delegation_depth": child.max_delegation_depth,
        "expires_at": child.expires_at.map(format_utc),
    });
    if let (Some(scope), Value::Object(map)) = (&child.delegation_scope, &mut out) {
        map.insert("delegation_scope".into(), json!(scope));
    }
    out
}

/// The object `delegation verify --json-output` built by hand for a valid token.
fn verified_by_hand(identity: &CallerIdentity) -> Value {
    let mut out = json!({
        "valid": true,
        "agent_id": identity.agent_id,
        "agent_name": identity.agent_name,
        "roles": identity.roles,
        "groups": identity.groups,
        "delegation_depth": identity.delegation_depth,
        "delegated_roles": identity.delegated_roles,
        "delegation_chain": identity
            .delegation_chain
            .iter()
            .map(|l| json!({
                "agent_id": l.agent_id,
                "agent_name": l.agent_name,
                "roles": l.roles,
                "delegated_at": l.delegated_at.map(format_utc),
            }))
            .collect::<Vec<_>>(),
        "issued_at": identity.issued_at.map(format_utc),
        "expires_at": identity.expires_at.map(format_utc),
        "max_delegation_depth": identity.max_delegation_depth,
    });
    if let (Some(scope), Value::Object(map)) = (&identity.delegation_scope, &mut out) {
        map.insert("delegation_scope".into(), json!(scope));
    }
    out
}

#[test]
fn delegation_reports_keep_the_fronts_objects() {
    let (manager, clock) = manager();
    let parent = parent(clock);
    let plain = DelegationRequest::new("worker").name("Worker");
    let mut scoped = DelegationRequest::new("worker-2");
    scoped.roles = vec!["deployer".into()];
    scoped.max_depth = Some(1);
    scoped.actions = Some(vec!["get-*".into(), "restart-deployment".into()]);
    scoped.environments = Some(vec![Environment::Dev]);
    for request in [plain, scoped] {
        let made = manager.delegate(&parent, &request).unwrap();
        check(&DelegationReport::new(&made), &created_by_hand(&made.token, &made.child));
        let verified = manager.verify(&made.token).unwrap();
        check(&DelegationVerifyReport::valid(&verified), &verified_by_hand(&verified));
    }
    let direct = manager.verify(&parent).unwrap();
    check(&DelegationVerifyReport::valid(&direct), &verified_by_hand(&direct));
    check(
        &DelegationVerifyReport::invalid("Invalid token: Not enough segments"),
        &json!({"valid": false, "reason": "Invalid token: Not enough segments"}),
    );
}
