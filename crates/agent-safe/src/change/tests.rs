//! Change control end to end through the SDK: recording state (sensitive fields never in
//! clear), reading captures back (SDK- and runner-written), planning rollbacks only for
//! executed ALLOWs, and checking them as the original caller with the audit events linked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_safe_core::{
    ActionCall, BoxFuture, DecisionResult, ExecutionOutcome, Executor, ExecutorError, ManualClock,
    PreCheckResult, PrecheckSpec, StateMap,
};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::{AgentSafe, CheckRequest, DurabilityMode, Error, ExecuteOptions};

const KEY: &str = "change-test-key-0123456789abcdef0123456789abcdef";
const NOW: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

const POLICY: &str = "\
rules:
  - name: sre-scales-dev
    priority: 100
    match: {actions: [scale-deployment], targets: {environments: [dev]}, callers: {roles: [sre]}}
    decision: allow
    reason: SREs scale dev deployments
  - name: dev-secrets-and-config
    priority: 90
    match: {actions: [get-secret, lambda-update-function-config, update-configmap], targets: {environments: [dev]}}
    decision: allow
    reason: dev secrets and config
  - name: restart-needs-approval
    priority: 80
    match: {actions: [restart-deployment]}
    decision: require_approval
    reason: restarts need a human
";

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

fn key() -> SigningKey {
    SigningKey::hs256_from_str(KEY).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    ids: IdentityManager,
    safe: AgentSafe,
}

impl Setup {
    fn log(&self) -> PathBuf {
        self.dir.path().join("audit.jsonl")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap()
    }

    fn events(&self) -> Vec<agent_safe_audit::StoredEvent> {
        agent_safe_audit::read_events(&self.log()).unwrap()
    }

    fn token(&self, agent: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.ids.create_token(agent, "", &roles, &[], Duration::hours(8)).unwrap()
    }

    fn scale(&self, caller: &str, replicas: u64) -> crate::Decision {
        self.safe
            .check(
                &CheckRequest::new("scale-deployment")
                    .target("dev/test-app")
                    .caller(caller)
                    .param("namespace", "dev")
                    .param("deployment", "test-app")
                    .param("replicas", replicas)
                    .ticket_id("CHG-7"),
            )
            .unwrap()
    }
}

fn setup_with(signing_key: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.yaml"), POLICY).unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let mut builder = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(dir.path().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.path().join("audit.jsonl"))
        .durability(DurabilityMode::Buffered)
        .clock(clock.clone());
    if signing_key {
        builder = builder.signing_key(key());
    }
    let safe = builder.build().unwrap();
    let ids = IdentityManager::new(key(), "agent-safe", clock.clone());
    Setup { dir, clock, ids, safe }
}

fn setup() -> Setup {
    setup_with(true)
}

fn state(v: Value) -> StateMap {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn change_error(r: Result<impl std::fmt::Debug, Error>) -> ChangeError {
    match r {
        Err(Error::Change(e)) => e,
        other => panic!("expected a change error, got {other:?}"),
    }
}

#[test]
fn record_state_writes_a_capture_that_reads_back() {
    let s = setup();
    let d = s.scale(&s.token("sre-bot", &["sre"]), 5);
    assert_eq!(d.result, DecisionResult::Allow, "{}", d.reason);
    let id = d.audit_id.as_str();
    s.safe.record_before_state(id, state(json!({"replicas": 2, "ready_replicas": 2}))).unwrap();
    s.clock.advance(Duration::milliseconds(1500));
    let c =
        s.safe.record_after_state(id, state(json!({"replicas": 5, "ready_replicas": 3}))).unwrap();
    // Action, target and caller come from the decision; time from the SDK's clock.
    assert_eq!(
        (c.action.as_str(), c.target.as_str(), c.caller.as_str()),
        ("scale-deployment", "dev/test-app", "sre-bot")
    );
    assert_eq!(c.capture_duration_ms, 1500.0);
    assert_eq!(c.captured_at, NOW + Duration::milliseconds(1500));
    assert_eq!(c.state_fields_declared, ["replicas", "available_replicas", "ready_replicas"]);
    assert_eq!(c.state_fields_captured, ["ready_replicas", "replicas"]);
    assert_eq!(c.diff["changed"]["replicas"], json!({"old": 2, "new": 5}));
    assert_eq!(s.safe.get_state_capture(id).unwrap(), Some(c.clone()));
    // The event is SPEC §6.3's, chained into the log.
    let events = s.events();
    let e = &events.last().unwrap().event;
    assert_eq!(e.event_id, c.event_id);
    assert_eq!(e.reason, format!("State capture for {id}"));
    assert_eq!(e.correlation_id.as_deref(), Some(id));
    assert!(s.safe.verify_audit().unwrap().unwrap().is_valid());
    // A later capture is the latest.
    let again = s
        .safe
        .record_state(id, state(json!({"replicas": 5})), state(json!({"replicas": 6})))
        .unwrap();
    assert_eq!(s.safe.get_state_capture(id).unwrap(), Some(again));
    assert_eq!(s.safe.get_state_capture("evt-000000000000").unwrap(), None);
}

#[test]
fn the_sdk_and_the_runner_derive_the_same_state_key() {
    // Digests written by `record_state` and by runner executions must compare equal.
    assert_eq!(agent_safe_runner::STATE_KEY_CONTEXT, agent_safe_audit::state::STATE_KEY_CONTEXT);
}

#[test]
fn recording_needs_a_decision_a_before_state_and_a_log() {
    let s = setup();
    let d = s.scale(&s.token("sre-bot", &["sre"]), 5);
    let id = d.audit_id.as_str();
    assert!(matches!(
        change_error(s.safe.record_after_state(id, StateMap::new())),
        ChangeError::NoBeforeState { .. }
    ));
    let e = change_error(s.safe.record_before_state("evt-ffffffffffff", StateMap::new()));
    assert_eq!(e.to_string(), "no decision event found for audit id `evt-ffffffffffff`");
    // The before-state is used once.
    s.safe.record_before_state(id, StateMap::new()).unwrap();
    s.safe.record_after_state(id, StateMap::new()).unwrap();
    assert!(matches!(
        change_error(s.safe.record_after_state(id, StateMap::new())),
        ChangeError::NoBeforeState { .. }
    ));
    let no_log = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(s.dir.path().join("policies"))
        .build()
        .unwrap();
    assert!(matches!(
        change_error(no_log.record_state(id, StateMap::new(), StateMap::new())),
        ChangeError::NoAuditLog
    ));
    assert!(matches!(change_error(no_log.generate_rollback(id)), ChangeError::NoAuditLog));
}

#[test]
fn sensitive_state_and_params_never_reach_the_log_in_clear() {
    for signing_key in [true, false] {
        let s = setup_with(signing_key);
        // get-secret: its `data` state field is sensitive.
        let d = s
            .safe
            .check(
                &CheckRequest::new("get-secret")
                    .target("dev/ci-secrets")
                    .caller("ci-bot")
                    .param("namespace", "dev")
                    .param("secret", "ci-secrets"),
            )
            .unwrap();
        assert_eq!(d.result, DecisionResult::Allow, "{}", d.reason);
        let id = d.audit_id.as_str();
        let secret =
            json!({"type": "Opaque", "keys": ["password"], "data": {"password": "hunter2"}});
        let same = s.safe.record_state(id, state(secret.clone()), state(secret.clone())).unwrap();
        let rotated =
            json!({"type": "Opaque", "keys": ["password"], "data": {"password": "hunter3"}});
        let changed = s.safe.record_state(id, state(secret), state(rotated)).unwrap();
        let hidden = changed.before_state["data"].as_str().unwrap().to_owned();
        if signing_key {
            // Digests: equality is still visible in the diff.
            assert!(hidden.starts_with("hmac-sha256:"), "{hidden}");
            assert_eq!(same.diff["unchanged"], json!(["data", "keys", "type"]));
            assert_eq!(changed.diff["unchanged"], json!(["keys", "type"]));
            assert!(changed.diff["changed"].get("data").is_some());
        } else {
            assert_eq!(hidden, "[redacted]");
        }
        // lambda-update-function-config: a sensitive param and a sensitive state field.
        let d = s
            .safe
            .check(
                &CheckRequest::new("lambda-update-function-config")
                    .target("dev/thumbnailer")
                    .caller("media-bot")
                    .param("function_name", "thumbnailer-dev")
                    .param("region", "eu-west-1")
                    .param("memory_size", 1024)
                    .param("environment_variables", "{\"API_TOKEN\": \"tok-new-secret\"}"),
            )
            .unwrap();
        assert_eq!(d.result, DecisionResult::Allow, "{}", d.reason);
        let before = json!({"memory_size": 512, "timeout": 30, "runtime": "python3.12",
                            "environment_variables": "{\"API_TOKEN\": \"tok-old-secret\"}"});
        s.safe.record_state(d.audit_id.as_str(), state(before), StateMap::new()).unwrap();
        let plan = s.safe.generate_rollback(d.audit_id.as_str()).unwrap();
        assert_eq!(
            Value::Object(plan.rollback_params),
            json!({"function_name": "thumbnailer-dev", "memory_size": 512, "region": "eu-west-1", "timeout": 30})
        );
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("before_state.environment_variables"));
        // Grep the whole log.
        let text = s.log_text();
        for leaked in ["hunter2", "hunter3", "tok-new-secret", "tok-old-secret"] {
            assert!(!text.contains(leaked), "`{leaked}` in the log (signing key: {signing_key})");
        }
        assert!(text.contains("thumbnailer-dev"), "the log is the one written");
    }
}

#[test]
fn rollback_is_checked_as_the_original_caller_and_linked_to_the_decision() {
    let s = setup();
    let sre = s.token("sre-bot", &["sre"]);
    let d = s.scale(&sre, 5);
    let id = d.audit_id.to_string();
    s.safe
        .record_state(
            &id,
            state(json!({"replicas": 2, "available_replicas": 2})),
            state(json!({"replicas": 5})),
        )
        .unwrap();

    let plan = s.safe.generate_rollback(&id).unwrap();
    assert_eq!(plan.rollback_action, "scale-deployment");
    assert_eq!(
        Value::Object(plan.rollback_params.clone()),
        json!({"deployment": "test-app", "namespace": "dev", "replicas": 2})
    );
    assert_eq!(
        (plan.rollback_target.as_str(), plan.rollback_caller.as_str()),
        ("dev/test-app", "sre-bot")
    );
    assert!(plan.warnings.is_empty());
    assert_eq!(plan.generated_at, NOW);

    // The original caller presents a fresh token: its roles count, so the rule matches.
    let checked = s.safe.check_rollback(&id, Some(&sre)).unwrap();
    assert_eq!(checked.plan, plan);
    let r = &checked.decision;
    assert_eq!(
        (r.result, r.policy_matched.as_deref()),
        (DecisionResult::Allow, Some("sre-scales-dev")),
        "{}",
        r.reason
    );
    assert_eq!(r.caller, "sre-bot");
    assert_eq!(r.ticket_id.as_deref(), Some("CHG-7"));
    assert!(r.ticket.is_some());
    // Its audit event is linked to the original decision.
    let events = s.events();
    let e = events.iter().find(|e| e.event.event_id == r.audit_id).unwrap();
    assert_eq!(e.event.correlation_id.as_deref(), Some(id.as_str()));
    assert_eq!(e.event.action, "scale-deployment");
    assert_eq!(e.event.params, plan.rollback_params);
    // And the index finds it among the decision's linked events.
    let linked = s.safe.audit_log().unwrap().linked(&id).unwrap();
    assert!(linked.iter().any(|l| l.event.event_id == r.audit_id));

    // Without a token: the original caller's plain id, without roles: denied, still linked.
    let plain = s.safe.check_rollback(&id, None).unwrap();
    assert_eq!(plain.decision.result, DecisionResult::Deny);
    assert_eq!(plain.decision.caller, "sre-bot");
    // A token that does not verify: denied like any request with it.
    let forged = format!("{}x", &sre[..sre.len() - 1]);
    assert_eq!(
        s.safe.check_rollback(&id, Some(&forged)).unwrap().decision.result,
        DecisionResult::Deny
    );
    let e = s.events().into_iter().find(|e| e.event.event_id == plain.decision.audit_id).unwrap();
    assert_eq!(e.event.correlation_id.as_deref(), Some(id.as_str()));
    // Another agent cannot roll back someone else's change through this path.
    let other = s.token("other-bot", &["sre"]);
    let e = change_error(s.safe.check_rollback(&id, Some(&other)));
    assert_eq!(
        e.to_string(),
        format!(
            "the rollback of `{id}` is checked as its original caller `sre-bot`, but the identity presented is `other-bot`"
        )
    );
    assert!(s.safe.verify_audit().unwrap().unwrap().is_valid());
}

#[test]
fn only_an_allowed_decision_that_ran_can_be_rolled_back() {
    let s = setup();
    // DENY (the plain id has no roles): never rolled back, even with a capture.
    let denied = s.scale("sre-bot", 5);
    assert_eq!(denied.result, DecisionResult::Deny);
    s.safe
        .record_state(denied.audit_id.as_str(), state(json!({"replicas": 1})), StateMap::new())
        .unwrap();
    let e = change_error(s.safe.generate_rollback(denied.audit_id.as_str()));
    assert_eq!(
        e.to_string(),
        format!(
            "`{}` was not allowed (decision: deny); only an allowed action that ran can be rolled back",
            denied.audit_id
        )
    );
    // ALLOW without any capture: it may never have run.
    let allowed = s.scale(&s.token("sre-bot", &["sre"]), 5);
    let e = change_error(s.safe.generate_rollback(allowed.audit_id.as_str()));
    assert!(matches!(e, ChangeError::NoStateCapture { .. }), "{e}");
    // No such decision.
    let e = change_error(s.safe.generate_rollback("evt-abcdefabcdef"));
    assert!(matches!(e, ChangeError::NoDecision { .. }), "{e}");
    // Not reversible (restart-deployment), after an approval.
    let restart = s
        .safe
        .check(
            &CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller("deploy-bot")
                .param("namespace", "dev")
                .param("deployment", "test-app"),
        )
        .unwrap();
    assert_eq!(restart.result, DecisionResult::RequireApproval);
    let rid = restart.audit_id.to_string();
    s.safe.record_state(&rid, StateMap::new(), StateMap::new()).unwrap();
    let e = change_error(s.safe.generate_rollback(&rid));
    assert!(
        matches!(e, ChangeError::NotAllowed { result: DecisionResult::RequireApproval, .. }),
        "{e}"
    );
    // An approval (as `resolve_approval` records it) makes it allowed; then the registry
    // says the action cannot be undone.
    let mut approval =
        s.events().into_iter().find(|e| e.event.event_id == restart.audit_id).unwrap().event;
    approval.event_id = agent_safe_core::AuditId::new("evt-a00000000001");
    approval.decision = DecisionResult::Allow;
    approval.correlation_id = Some(rid.clone());
    approval.context = Some(
        json!({"type": "approval_resolution", "original_audit_id": rid, "resolution": "approve"}),
    );
    s.safe.audit_log().unwrap().append(&approval).unwrap();
    let e = change_error(s.safe.generate_rollback(&rid));
    assert_eq!(e.to_string(), "action `restart-deployment` is not reversible");
}

/// An executor that reports `replicas` 2 before and 5 after, and succeeds.
#[derive(Debug, Default)]
struct Scaler {
    reads: Mutex<u32>,
}

impl Executor for Scaler {
    fn kind(&self) -> &'static str {
        "test-scaler"
    }

    fn execute<'a>(&'a self, _call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        Box::pin(async { ExecutionOutcome::success("scaled") })
    }

    fn get_state<'a>(
        &'a self,
        _call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        let mut reads = self.reads.lock().unwrap();
        *reads += 1;
        let replicas = if *reads == 1 { 2 } else { 5 };
        Box::pin(
            async move { Ok(state(json!({"replicas": replicas, "ready_replicas": replicas}))) },
        )
    }

    fn run_prechecks<'a>(
        &'a self,
        _call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        Box::pin(async move {
            prechecks
                .iter()
                .map(|p| PreCheckResult {
                    name: p.name.clone(),
                    passed: true,
                    message: String::new(),
                    advisory: !p.blocking,
                })
                .collect()
        })
    }
}

/// scale-deployment declares a credential; there is no vault in these tests.
fn ambient() -> ExecuteOptions {
    ExecuteOptions { ambient_credentials: true, ..ExecuteOptions::default() }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn runner_captures_count_and_dry_runs_do_not() {
    let s = setup();
    let sre = s.token("sre-bot", &["sre"]);
    // A dry run through the runner: recorded, but nothing changed.
    let d = s.scale(&sre, 5);
    let ticket = d.ticket.clone().unwrap();
    block_on(s.safe.execute(&ticket.token, Arc::new(agent_safe_runner::DryRunExecutor), ambient()))
        .unwrap();
    let id = d.audit_id.as_str();
    assert!(s.safe.get_state_capture(id).unwrap().unwrap().is_dry_run());
    let e = change_error(s.safe.generate_rollback(id));
    assert_eq!(e.to_string(), format!("`{id}` was only dry-run; nothing to roll back"));

    // A real execution: the runner's state_capture event is the capture.
    let d = s.scale(&sre, 5);
    let ticket = d.ticket.clone().unwrap();
    let outcome =
        block_on(s.safe.execute(&ticket.token, Arc::new(Scaler::default()), ambient())).unwrap();
    assert_eq!(outcome.result.status, agent_safe_core::ExecutionStatus::Success);
    let id = d.audit_id.as_str();
    let capture = s.safe.get_state_capture(id).unwrap().unwrap();
    assert_eq!(Some(&capture.event_id), outcome.state_capture_id.as_ref());
    assert_eq!(capture.executor_type.as_deref(), Some("test-scaler"));
    let plan = s.safe.generate_rollback(id).unwrap();
    assert_eq!(plan.rollback_params["replicas"], json!(2));
    let checked = s.safe.check_rollback(id, Some(&sre)).unwrap();
    assert_eq!(checked.decision.result, DecisionResult::Allow);
}
