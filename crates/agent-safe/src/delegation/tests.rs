//! Delegation end to end through the SDK: tokens minted by `delegate`, then used as callers of
//! `check` against policies with delegation selectors, scope enforcement, audit context, and a
//! Python-minted delegation token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::{DecisionResult, Environment, ManualClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::DelegationRequest;
use crate::{AgentSafe, CheckRequest, DurabilityMode, Error};

/// The Python fixture key, so the Python delegation token verifies too.
const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";
/// Just after the Python fixtures were minted.
const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
const PYTHON: &str = include_str!("../../../../tests/data/tickets/python-fixtures.json");

const POLICY: &str = "\
rules:
  - name: orchestrated-workers-in-dev-and-staging
    priority: 100
    match:
      actions: [restart-deployment, get-*]
      targets: {environments: [dev, staging]}
      callers: {delegated_from: [orchestrator], max_delegation_depth: 2, roles: [deployer]}
    decision: allow
    reason: workers of the orchestrator may restart and read in dev and staging
  - name: direct-deployers-scale
    priority: 90
    match:
      actions: [scale-deployment]
      callers: {require_delegation: false, roles: [deployer]}
    decision: allow
    reason: only a deployer acting directly may scale
  - name: everyone-else-asks
    priority: 1
    match: {callers: {}}
    decision: require_approval
    reason: ask a human
";

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

struct Setup {
    _dir: tempfile::TempDir,
    audit: PathBuf,
    safe: AgentSafe,
    ids: IdentityManager,
    clock: Arc<ManualClock>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("delegation.yaml"), POLICY).unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let key = SigningKey::hs256_from_str(KEY).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(&policies)
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(&audit)
        .signing_key(key.clone())
        .durability(DurabilityMode::Buffered)
        .clock(clock.clone())
        .build()
        .unwrap();
    let ids = IdentityManager::new(key, "agent-safe", clock.clone());
    Setup { _dir: dir, audit, safe, ids, clock }
}

impl Setup {
    fn orchestrator(&self) -> String {
        self.ids
            .create_token(
                "orchestrator",
                "",
                &["deployer".into(), "reader".into()],
                &[],
                Duration::hours(1),
            )
            .unwrap()
    }

    fn delegate(&self, parent: &str, request: DelegationRequest) -> String {
        let result = self.safe.delegate(parent, &request).unwrap();
        assert!(result.success, "{:?}", result.error);
        result.token.unwrap()
    }

    /// (result, reason, policy) of a check by `caller` on `target`.
    fn check(
        &self,
        caller: &str,
        action: &str,
        target: &str,
    ) -> (DecisionResult, String, Option<String>) {
        let (namespace, name) = target.split_once('/').unwrap();
        let mut request = CheckRequest::new(action).target(target).caller(caller);
        request = match action {
            "get-pod-logs" => request.param("namespace", namespace).param("pod", name),
            "scale-deployment" => {
                request.param("namespace", namespace).param("deployment", name).param("replicas", 3)
            }
            _ => request.param("namespace", namespace).param("deployment", name),
        };
        let d = self.safe.check(&request).unwrap();
        (d.result, d.reason, d.policy_matched)
    }
}

use DecisionResult::{Allow, Deny, RequireApproval};

#[track_caller]
fn expect(
    got: (DecisionResult, String, Option<String>),
    result: DecisionResult,
    policy_or_reason: &str,
) {
    let shown = if result == Deny { Some(got.1.as_str()) } else { got.2.as_deref() };
    assert_eq!((got.0, shown), (result, Some(policy_or_reason)), "reason: {}", got.1);
}

#[test]
fn policy_selectors_see_delegated_callers() {
    let s = setup();
    let root = s.orchestrator();
    let worker = s.delegate(&root, DelegationRequest::new("worker-1").roles(["deployer"]));
    let sub = s.delegate(&worker, DelegationRequest::new("sub-1").roles(["deployer"]));
    let subsub = s.delegate(&sub, DelegationRequest::new("sub-2").roles(["deployer"]));
    let reader = s.delegate(&root, DelegationRequest::new("reader-1").roles(["reader"]));

    let dev = "dev/test-app";
    let rule = "orchestrated-workers-in-dev-and-staging";
    expect(s.check(&worker, "restart-deployment", dev), Allow, rule);
    expect(s.check(&sub, "restart-deployment", dev), Allow, rule);
    // Depth 3 is beyond the rule's `max_delegation_depth: 2`.
    expect(s.check(&subsub, "restart-deployment", dev), RequireApproval, "everyone-else-asks");
    // Delegated without the deployer role.
    expect(s.check(&reader, "restart-deployment", dev), RequireApproval, "everyone-else-asks");
    // The orchestrator itself is not delegated *from* itself.
    expect(s.check(&root, "restart-deployment", dev), RequireApproval, "everyone-else-asks");
    // `require_delegation: false`: only the direct deployer may scale.
    expect(s.check(&root, "scale-deployment", dev), Allow, "direct-deployers-scale");
    expect(s.check(&worker, "scale-deployment", dev), RequireApproval, "everyone-else-asks");
    // Prod is outside the rule's targets.
    expect(
        s.check(&worker, "restart-deployment", "prod/api-server"),
        RequireApproval,
        "everyone-else-asks",
    );

    // Every decision names the delegated caller and carries the chain in the audit context.
    let events = agent_safe_audit::read_events(&s.audit).unwrap();
    let last_worker = events.iter().rev().find(|e| e.event.caller == "worker-1").unwrap();
    assert_eq!(
        last_worker.event.context,
        Some(json!({
            "delegation_depth": 1,
            "delegation_chain": [{"agent_id": "orchestrator", "agent_name": ""}],
            "delegated_roles": ["deployer"],
            "original_caller": "orchestrator",
        }))
    );
    let subsub_event = events.iter().find(|e| e.event.caller == "sub-2").unwrap();
    let context = subsub_event.event.context.as_ref().unwrap();
    assert_eq!(context["delegation_depth"], json!(3));
    assert_eq!(context["original_caller"], json!("orchestrator"));
    assert_eq!(
        context["delegation_chain"],
        json!([
            {"agent_id": "orchestrator", "agent_name": ""},
            {"agent_id": "worker-1", "agent_name": ""},
            {"agent_id": "sub-1", "agent_name": ""},
        ])
    );
}

#[test]
fn a_scoped_child_is_denied_outside_its_scope() {
    let s = setup();
    let root = s.orchestrator();
    let reader = s.delegate(
        &root,
        DelegationRequest::new("log-reader")
            .roles(["deployer"])
            .actions(["get-*"])
            .environments([Environment::Dev]),
    );
    // Inside the scope the policy decides as usual.
    expect(
        s.check(&reader, "get-pod-logs", "dev/debug-pod"),
        Allow,
        "orchestrated-workers-in-dev-and-staging",
    );
    // Outside it, a policy that would allow is never consulted.
    expect(
        s.check(&reader, "restart-deployment", "dev/test-app"),
        Deny,
        "Delegation scope does not allow action `restart-deployment`",
    );
    expect(
        s.check(&reader, "get-pod-logs", "staging/api-server"),
        Deny,
        "Delegation scope does not allow environment `staging`",
    );
    // The child cannot hand out more than it holds ...
    let wider =
        s.safe.delegate(&reader, &DelegationRequest::new("helper").actions(["restart-*"])).unwrap();
    assert!(!wider.success);
    assert_eq!(
        wider.error.as_deref(),
        Some(
            "cannot delegate actions outside the parent's scope: `restart-*` (parent may request `get-*`)"
        )
    );
    assert_eq!(wider.parent_agent_id, "");
    // ... and what it hands out without narrowing inherits its scope.
    let helper = s.delegate(&reader, DelegationRequest::new("helper").roles(["deployer"]));
    expect(
        s.check(&helper, "restart-deployment", "dev/test-app"),
        Deny,
        "Delegation scope does not allow action `restart-deployment`",
    );
    let events = agent_safe_audit::read_events(&s.audit).unwrap();
    let denied = events.iter().find(|e| e.event.caller == "helper").unwrap();
    assert_eq!(
        denied.event.context.as_ref().unwrap()["delegation_scope"],
        json!({"actions": ["get-*"], "environments": ["dev"]})
    );
}

#[test]
fn delegate_and_verify_in_the_python_shapes() {
    let s = setup();
    let root = s.orchestrator();
    let result = s
        .safe
        .delegate(&root, &DelegationRequest::new("worker-1").name("worker").roles(["reader"]))
        .unwrap();
    assert!(result.success);
    assert_eq!(result.parent_agent_id, "orchestrator");
    assert_eq!(result.child_agent_id, "worker-1");
    assert_eq!(result.delegation_depth, 1);
    let token = result.token.clone().unwrap();
    let verified = s.safe.verify_delegation(&token).unwrap().unwrap();
    assert_eq!(Some(&verified), result.child_identity.as_ref());
    assert_eq!(verified.agent_name, "worker");
    assert_eq!(verified.delegated_roles, ["reader"]);

    let refused = s.safe.delegate("garbage", &DelegationRequest::new("w")).unwrap();
    assert_eq!(
        (refused.success, refused.error.as_deref()),
        (false, Some("Invalid parent token: Invalid token: Not enough segments"))
    );
    assert_eq!(s.safe.verify_delegation("garbage").unwrap(), None);
    // Expiry follows the facade's clock.
    s.clock.advance(Duration::hours(1));
    assert_eq!(s.safe.verify_delegation(&token).unwrap(), None);
    assert_eq!(
        s.safe.delegations().unwrap().verify(&token).unwrap_err().to_string(),
        "Token has expired"
    );
}

#[test]
fn python_delegation_tokens_are_callers() {
    let s = setup();
    let data: serde_json::Value = serde_json::from_str(PYTHON).unwrap();
    let worker = data["delegation_tokens"]["worker-1 from orchestrator"].as_str().unwrap();
    expect(
        s.check(worker, "restart-deployment", "dev/test-app"),
        Allow,
        "orchestrated-workers-in-dev-and-staging",
    );
    let identity = s.safe.verify_delegation(worker).unwrap().unwrap();
    assert_eq!(identity.delegation_chain[0].agent_id, "orchestrator");
    // And can delegate further here.
    let sub = s.delegate(worker, DelegationRequest::new("sub-1").roles(["deployer"]));
    expect(
        s.check(&sub, "restart-deployment", "dev/test-app"),
        Allow,
        "orchestrated-workers-in-dev-and-staging",
    );
}

#[test]
fn delegation_needs_a_signing_key() {
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .build()
        .unwrap();
    assert!(matches!(
        safe.delegate("t", &DelegationRequest::new("w")),
        Err(Error::DelegationWithoutKey)
    ));
    let err = safe.verify_delegation("t").unwrap_err();
    assert_eq!(
        err.to_string(),
        "delegation needs a signing key: pass one to the builder or set `signing_key` in agent-safe.yaml"
    );
}
