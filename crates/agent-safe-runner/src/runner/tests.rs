//! The lifecycle as data: a recording executor and vault write every step into one journal,
//! and each case states the steps, the status, the audit events and the credential handling
//! it expects. Time is tokio's paused clock (timeouts fire without waiting) and a manual
//! clock for tickets.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use agent_safe_audit::AuditError;
use agent_safe_core::{
    ActionCall, AuditEvent, BoxFuture, Credential, CredentialScope, EventType, ExecutionOutcome,
    ExecutionStatus, ExecutionTicket, Executor, ExecutorError, ManualClock, Params, PreCheckResult,
    PrecheckSpec, Secret, StateMap,
};
use agent_safe_credentials::{CredentialVault, VaultError};
use agent_safe_registry::Registry;
use agent_safe_tickets::{
    MemoryNonceStore, NonceStore, NonceStoreError, SigningKey, TicketIssuer, TicketValidator,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::{AuditSink, MemoryAuditSink};

const T0: OffsetDateTime = datetime!(2026-02-24 12:00 UTC);
const KEY: &str = "runner-test-key-0123456789abcdef0123456789";
const SECRET: &str = "s3cr3t-TOKEN-value-42";

type Journal = Arc<Mutex<Vec<String>>>;

fn note(journal: &Journal, step: impl Into<String>) {
    journal.lock().unwrap().push(step.into());
}

/// Where the test executor misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    PanicIn(&'static str),
    HangIn(&'static str),
    StateError,
}

#[derive(Debug)]
struct Recorder {
    journal: Journal,
    fault: Fault,
    outcome: ExecutionOutcome,
    /// Prechecks that fail; prechecks not reported at all.
    failing: Vec<&'static str>,
    unreported: Vec<&'static str>,
    states: Mutex<Vec<StateMap>>,
}

impl Recorder {
    fn new(journal: &Journal) -> Self {
        Self {
            journal: journal.clone(),
            fault: Fault::None,
            outcome: ExecutionOutcome::success("scaled"),
            failing: Vec::new(),
            unreported: Vec::new(),
            states: Mutex::new(vec![state(json!({"after": 1})), state(json!({"before": 1}))]),
        }
    }

    /// Panics or hangs when `fault` says so for `step`.
    async fn hazard(&self, step: &'static str) {
        match self.fault {
            Fault::PanicIn(s) if s == step => panic!("boom in {step}"),
            Fault::HangIn(s) if s == step => std::future::pending::<()>().await,
            _ => {}
        }
    }
}

fn state(v: Value) -> StateMap {
    v.as_object().cloned().unwrap()
}

fn params(v: Value) -> Params {
    v.as_object().cloned().unwrap()
}

impl Executor for Recorder {
    fn kind(&self) -> &'static str {
        "recorder"
    }

    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        Box::pin(async move {
            let cred = call.credential.map(|c| c.credential_id.as_str()).unwrap_or("none");
            note(
                &self.journal,
                format!(
                    "execute {} {} cred={cred}",
                    call.action,
                    Value::Object(call.params.clone())
                ),
            );
            self.hazard("execute").await;
            self.outcome.clone()
        })
    }

    fn get_state<'a>(
        &'a self,
        _call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        Box::pin(async move {
            note(&self.journal, "get_state");
            self.hazard("get_state").await;
            if self.fault == Fault::StateError {
                return Err(ExecutorError::new("state unavailable"));
            }
            Ok(self.states.lock().unwrap().pop().unwrap_or_default())
        })
    }

    fn run_prechecks<'a>(
        &'a self,
        _call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        Box::pin(async move {
            let names: Vec<&str> = prechecks.iter().map(|p| p.name.as_str()).collect();
            note(&self.journal, format!("prechecks {}", names.join(",")));
            self.hazard("prechecks").await;
            prechecks
                .iter()
                .filter(|p| !self.unreported.contains(&p.name.as_str()))
                .map(|p| PreCheckResult {
                    name: p.name.clone(),
                    passed: !self.failing.contains(&p.name.as_str()),
                    message: format!("checked {}", p.name),
                    // The executor's claim is ignored: the action decides what blocks.
                    advisory: true,
                })
                .collect()
        })
    }
}

/// A vault that records what it is asked.
#[derive(Debug)]
struct Vault {
    journal: Journal,
    fail_issue: bool,
    fail_revoke: bool,
}

impl CredentialVault for Vault {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn get_credential<'a>(
        &'a self,
        scope: &'a CredentialScope,
        ticket: &'a ExecutionTicket,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(async move {
            note(
                &self.journal,
                format!("vault.issue {} {}", scope.kind, Value::Object(scope.fields.clone())),
            );
            if self.fail_issue {
                return Err(VaultError::Backend("vault sealed".to_owned()));
            }
            let mut payload = Params::new();
            payload.insert("token".into(), json!(SECRET));
            Ok(Credential {
                credential_id: "cred-000000000001".to_owned(),
                kind: scope.kind.clone(),
                payload: Secret::new(payload),
                expires_at: T0 + time::Duration::seconds(i64::try_from(ttl).unwrap()),
                scope: scope.clone(),
                ticket_nonce: ticket.nonce.clone(),
            })
        })
    }

    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        Box::pin(async move {
            note(&self.journal, format!("vault.revoke {credential_id}"));
            if self.fail_revoke {
                Err(VaultError::Backend("revocation endpoint down".to_owned()))
            } else {
                Ok(())
            }
        })
    }
}

/// Counts check-and-set and contains calls of an in-memory store.
#[derive(Debug)]
struct CountingNonces {
    inner: MemoryNonceStore,
    consumed: AtomicUsize,
    looked_up: AtomicUsize,
}

impl NonceStore for CountingNonces {
    fn check_and_set(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, NonceStoreError> {
        self.consumed.fetch_add(1, Ordering::SeqCst);
        self.inner.check_and_set(nonce, expires_at)
    }

    fn contains(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        self.looked_up.fetch_add(1, Ordering::SeqCst);
        self.inner.contains(nonce)
    }
}

/// An audit sink that refuses every append.
#[derive(Debug)]
struct BrokenAudit;

impl AuditSink for BrokenAudit {
    fn append(&self, _event: &AuditEvent) -> Result<(), AuditError> {
        Err(AuditError::Io {
            path: PathBuf::from("audit.jsonl"),
            source: std::io::Error::other("disk full"),
        })
    }
}

const ACTIONS: &str = "\
name: scale
version: 1.0.0
description: Scale
risk_class: medium
target_types: [k8s-deployment]
parameters:
  - {name: namespace, type: string}
  - {name: deployment, type: string}
  - {name: replicas, type: integer}
prechecks:
  - {name: exists, description: It exists}
  - {name: gate, description: Must pass, blocking: true}
credentials:
  type: kubernetes
  fields: {namespaces: ['{{ params.namespace }}']}
  ttl: 60
state_fields:
  - {name: before}
  - {name: after}
---
name: plain
version: 1.0.0
description: No credentials, no prechecks
risk_class: low
target_types: [any]
parameters:
  - {name: password, type: string, sensitive: true}
  - {name: user, type: string}
state_fields:
  - {name: secret, sensitive: true}
  - {name: user}
";

fn registry() -> Arc<Registry> {
    let sources: Vec<(PathBuf, Vec<u8>)> = ACTIONS
        .split("---\n")
        .enumerate()
        .map(|(i, text)| (PathBuf::from(format!("actions/{i}.yaml")), text.as_bytes().to_vec()))
        .collect();
    Arc::new(
        Registry::from_sources(sources.iter().map(|(p, t)| (p.clone(), t.as_slice()))).unwrap(),
    )
}

/// Everything one test needs.
struct Harness {
    journal: Journal,
    clock: Arc<ManualClock>,
    nonces: Arc<CountingNonces>,
    audit: Arc<MemoryAuditSink>,
    issuer: TicketIssuer,
    key: SigningKey,
}

impl Harness {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let key = SigningKey::hs256_from_str(KEY).unwrap();
        Self {
            journal: Journal::default(),
            nonces: Arc::new(CountingNonces {
                inner: MemoryNonceStore::new(clock.clone()),
                consumed: AtomicUsize::new(0),
                looked_up: AtomicUsize::new(0),
            }),
            audit: Arc::new(MemoryAuditSink::default()),
            issuer: TicketIssuer::new(key.clone(), "agent-safe", clock.clone()),
            key,
            clock,
        }
    }

    fn ticket(&self, action: &str, p: Value) -> String {
        self.issuer
            .issue(action, "dev/api", "deploy-bot", &params(p), "evt-00000000d001")
            .unwrap()
            .token
    }

    fn scale_ticket(&self) -> String {
        self.ticket("scale", json!({"namespace": "dev", "deployment": "api", "replicas": 3}))
    }

    fn runner(&self, executor: Recorder, vault: Option<Vault>, config: RunnerConfig) -> Runner {
        let validator =
            TicketValidator::new(&self.key, "agent-safe", self.clock.clone(), self.nonces.clone());
        let mut runner = Runner::new(Arc::new(executor), registry(), validator, self.clock.clone())
            .with_audit(self.audit.clone())
            .with_config(config);
        if let Some(vault) = vault {
            runner = runner.with_vault(Arc::new(vault));
        }
        runner
    }

    fn vault(&self) -> Vault {
        Vault { journal: self.journal.clone(), fail_issue: false, fail_revoke: false }
    }

    fn steps(&self) -> Vec<String> {
        self.journal.lock().unwrap().clone()
    }
}

const EXECUTE: &str =
    r#"execute scale {"namespace":"dev","deployment":"api","replicas":3} cred=cred-000000000001"#;
const ISSUE: &str = r#"vault.issue kubernetes {"namespaces":["dev"]}"#;
const REVOKE: &str = "vault.revoke cred-000000000001";
const PRECHECKS: &str = "prechecks exists,gate";

/// One lifecycle case.
struct Case {
    name: &'static str,
    executor: fn(&Journal) -> Recorder,
    vault: fn(&Harness) -> Option<Vault>,
    config: RunnerConfig,
    steps: &'static [&'static str],
    status: ExecutionStatus,
    /// Substring of `error` (or of `output` when there is no error).
    says: &'static str,
    events: &'static [EventType],
    source: Option<CredentialSource>,
}

fn recorder(j: &Journal) -> Recorder {
    Recorder::new(j)
}

fn with_vault(h: &Harness) -> Option<Vault> {
    Some(h.vault())
}

fn no_vault(_: &Harness) -> Option<Vault> {
    None
}

const EXEC_AND_CAPTURE: &[EventType] = &[EventType::Execution, EventType::StateCapture];
const EXEC_ONLY: &[EventType] = &[EventType::Execution];
const FULL: &[&str] = &[ISSUE, PRECHECKS, "get_state", EXECUTE, "get_state", REVOKE];

fn cases() -> Vec<Case> {
    let base = RunnerConfig::default();
    vec![
        Case {
            name: "success",
            executor: recorder,
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Success,
            says: "scaled",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "executor failure",
            executor: |j| Recorder {
                outcome: ExecutionOutcome::failure("409 conflict"),
                ..recorder(j)
            },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Failure,
            says: "409 conflict",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "executor error",
            executor: |j| Recorder {
                outcome: ExecutionOutcome::error("bad config"),
                ..recorder(j)
            },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Error,
            says: "bad config",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "executor panics",
            executor: |j| Recorder { fault: Fault::PanicIn("execute"), ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Error,
            says: "Executor error: the executor panicked: boom in execute",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "executor hangs: the runner's timeout",
            executor: |j| Recorder { fault: Fault::HangIn("execute"), ..recorder(j) },
            vault: with_vault,
            config: RunnerConfig { timeout: Duration::from_secs(7), ..base },
            steps: FULL,
            status: ExecutionStatus::Timeout,
            says: "execution timed out after 7s (enforced by the runner; the executor call was cancelled)",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "blocking precheck fails",
            executor: |j| Recorder { failing: vec!["gate"], ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: &[ISSUE, PRECHECKS, REVOKE],
            status: ExecutionStatus::Skipped,
            says: "not executed: blocking precheck failed: `gate` (checked gate)",
            events: EXEC_ONLY,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "blocking precheck not reported",
            executor: |j| Recorder { unreported: vec!["gate"], ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: &[ISSUE, PRECHECKS, REVOKE],
            status: ExecutionStatus::Skipped,
            says: "`gate` (the executor did not report this precheck)",
            events: EXEC_ONLY,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "advisory precheck fails",
            executor: |j| Recorder { failing: vec!["exists"], ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Success,
            says: "scaled",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "prechecks panic",
            executor: |j| Recorder { fault: Fault::PanicIn("prechecks"), ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: &[ISSUE, PRECHECKS, REVOKE],
            status: ExecutionStatus::Skipped,
            says: "`gate` (the executor panicked: boom in prechecks)",
            events: EXEC_ONLY,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "prechecks hang",
            executor: |j| Recorder { fault: Fault::HangIn("prechecks"), ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: &[ISSUE, PRECHECKS, REVOKE],
            status: ExecutionStatus::Skipped,
            says: "`gate` (prechecks did not finish within 30s)",
            events: EXEC_ONLY,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "state unreadable: execution goes on",
            executor: |j| Recorder { fault: Fault::StateError, ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Success,
            says: "scaled",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "state read panics",
            executor: |j| Recorder { fault: Fault::PanicIn("get_state"), ..recorder(j) },
            vault: with_vault,
            config: base,
            steps: FULL,
            status: ExecutionStatus::Success,
            says: "scaled",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Vault),
        },
        Case {
            name: "vault refuses",
            executor: recorder,
            vault: |h| Some(Vault { fail_issue: true, ..h.vault() }),
            config: base,
            steps: &[ISSUE],
            status: ExecutionStatus::Error,
            says: "Credential resolution failed: Vault error: vault sealed",
            events: EXEC_ONLY,
            source: None,
        },
        Case {
            name: "credentials declared, no vault",
            executor: recorder,
            vault: no_vault,
            config: base,
            steps: &[],
            status: ExecutionStatus::Error,
            says: "action `scale` declares a `kubernetes` credential but no credential vault is configured",
            events: EXEC_ONLY,
            source: None,
        },
        Case {
            name: "credentials declared, no vault, ambient allowed",
            executor: recorder,
            vault: no_vault,
            config: RunnerConfig { ambient_credentials: true, ..base },
            steps: &[
                PRECHECKS,
                "get_state",
                r#"execute scale {"namespace":"dev","deployment":"api","replicas":3} cred=none"#,
                "get_state",
            ],
            status: ExecutionStatus::Success,
            says: "scaled",
            events: EXEC_AND_CAPTURE,
            source: Some(CredentialSource::Ambient),
        },
    ]
}

#[tokio::test(start_paused = true)]
async fn lifecycle_cases() {
    for case in cases() {
        let h = Harness::new();
        let runner = h.runner((case.executor)(&h.journal), (case.vault)(&h), case.config);
        let token = h.scale_ticket();
        let started = tokio::time::Instant::now();
        let outcome = runner.run(&token).await.unwrap();
        let r = &outcome.result;
        let name = case.name;
        assert_eq!(h.steps(), case.steps, "{name}: steps");
        assert_eq!(r.status, case.status, "{name}: status ({r:?})");
        let text = r.error.as_deref().unwrap_or(&r.output);
        assert!(text.contains(case.says), "{name}: `{text}` should contain `{}`", case.says);
        assert_eq!(outcome.credential_source, case.source, "{name}: credential source");
        // The ticket was consumed exactly once, whatever happened next.
        assert_eq!(h.nonces.consumed.load(Ordering::SeqCst), 1, "{name}: nonce");
        // Revoked whenever issued.
        let issued = h.steps().iter().any(|s| s == ISSUE) && case.source.is_some();
        assert_eq!(h.steps().iter().any(|s| s == REVOKE), issued, "{name}: revoke");
        assert_eq!(outcome.credential_id.is_some(), issued, "{name}: credential id");

        let events = h.audit.events();
        let kinds: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, case.events, "{name}: events");
        let exec = &events[0];
        assert_eq!(Some(exec.event_id.clone()), r.execution_audit_id, "{name}");
        assert_eq!(exec.correlation_id.as_deref(), Some("evt-00000000d001"), "{name}");
        assert_eq!((exec.action.as_str(), exec.caller.as_str()), ("scale", "deploy-bot"), "{name}");
        let cx = exec.context.as_ref().unwrap();
        assert_eq!(cx["status"], r.status.as_str(), "{name}");
        assert_eq!(cx["executor_type"], "recorder", "{name}");
        assert_eq!(cx["credential_source"], json!(case.source), "{name}");
        assert_eq!(cx["original_audit_id"], "evt-00000000d001", "{name}");
        let rendered = serde_json::to_string(&events).unwrap();
        assert!(!rendered.contains(SECRET), "{name}: a credential reached the audit log");
        if case.status == ExecutionStatus::Timeout {
            assert!(started.elapsed() >= Duration::from_secs(7), "{name}: waited for the timeout");
            assert!(r.duration_ms.unwrap() >= 7000.0, "{name}: {r:?}");
        }
        if let Some(state_id) = &outcome.state_capture_id {
            let capture = &events[1];
            assert_eq!(&capture.event_id, state_id);
            assert_eq!(cx["state_capture_event_id"], json!(state_id), "{name}");
            let ccx = capture.context.as_ref().unwrap();
            assert_eq!(ccx["execution_event_id"], json!(exec.event_id), "{name}");
            assert_eq!(capture.correlation_id.as_deref(), Some("evt-00000000d001"));
            assert_eq!(capture.reason, "State capture for evt-00000000d001");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn audit_events_have_the_python_shape() {
    let h = Harness::new();
    let runner = h.runner(Recorder::new(&h.journal), Some(h.vault()), RunnerConfig::default());
    let outcome = runner.run(&h.scale_ticket()).await.unwrap();
    let events = h.audit.events();
    let exec = serde_json::to_value(&events[0]).unwrap();
    let mut cx = exec["context"].clone();
    // Times vary with the machine: check their type, then pin the rest.
    assert!(cx["duration_ms"].is_f64());
    cx["duration_ms"] = json!(0);
    assert_eq!(
        cx,
        json!({
            "type": "execution",
            "original_audit_id": "evt-00000000d001",
            "status": "success",
            "output": "scaled",
            "error": null,
            "duration_ms": 0,
            "executor_type": "recorder",
            "ticket_nonce": outcome.result.ticket_nonce,
            "before_state": {"before": 1},
            "after_state": {"after": 1},
            "precheck_results": [
                {"name": "exists", "passed": true, "message": "checked exists", "advisory": true},
                {"name": "gate", "passed": true, "message": "checked gate", "advisory": false},
            ],
            "credential_source": "vault",
            "credential_id": "cred-000000000001",
            "credential_type": "kubernetes",
            "credential_revoked": true,
            "params_digest": agent_safe_tickets::params_digest(&params(json!({"namespace": "dev", "deployment": "api", "replicas": 3}))),
            "timeout_seconds": 300.0,
            "state_capture_event_id": outcome.state_capture_id,
        })
    );
    assert_eq!(exec["decision"], "allow");
    assert_eq!(exec["reason"], "Execution success: scaled");
    assert_eq!(
        (exec["risk_class"].as_str(), exec["effective_risk"].as_str()),
        (Some("low"), Some("low"))
    );
    assert_eq!(exec["params"], json!({"namespace": "dev", "deployment": "api", "replicas": 3}));

    let capture = serde_json::to_value(&events[1]).unwrap();
    let mut cx = capture["context"].clone();
    assert!(cx["capture_duration_ms"].is_f64());
    cx["capture_duration_ms"] = json!(0);
    assert_eq!(
        cx,
        json!({
            "type": "state_capture",
            "original_audit_id": "evt-00000000d001",
            "before_state": {"before": 1},
            "after_state": {"after": 1},
            "diff": {"added": {"after": 1}, "removed": {"before": 1}, "changed": {}, "unchanged": []},
            "capture_duration_ms": 0,
            "state_fields_declared": ["before", "after"],
            "state_fields_captured": ["after", "before"],
            "execution_event_id": events[0].event_id,
            "executor_type": "recorder",
        })
    );
    assert_eq!(capture["decision"], "allow");
    assert_eq!(capture["params"], json!({}));
}

#[tokio::test(start_paused = true)]
async fn rejected_tickets_are_audited() {
    let h = Harness::new();
    let runner = h.runner(Recorder::new(&h.journal), Some(h.vault()), RunnerConfig::default());

    // Garbage: nothing can be trusted, nothing runs.
    let outcome = runner.run("not-a-token").await.unwrap();
    assert_eq!(outcome.result.status, ExecutionStatus::Error);
    assert!(
        outcome
            .result
            .error
            .as_deref()
            .unwrap()
            .starts_with("Ticket validation failed: Invalid ticket")
    );
    let e = &h.audit.events()[0];
    assert_eq!(
        (e.action.as_str(), e.target.as_str(), e.caller.as_str()),
        ("unknown", "unknown", "unknown")
    );
    assert_eq!(e.correlation_id, None);
    assert_eq!(e.decision, agent_safe_core::DecisionResult::Deny);
    let cx = e.context.as_ref().unwrap();
    assert_eq!(cx["ticket_claims_verified"], false);
    assert_eq!(cx["ticket_sha256"], claims::token_digest("not-a-token"));

    // Signed with another key: its claims are recorded as unverified only.
    let forger = TicketIssuer::new(
        SigningKey::hs256_from_str("another-key-0123456789abcdef0123456789").unwrap(),
        "agent-safe",
        h.clock.clone(),
    );
    let forged = forger
        .issue(
            "scale",
            "prod/api",
            "mallory",
            &params(json!({"namespace": "prod"})),
            "evt-00000000f00d",
        )
        .unwrap();
    runner.run(&forged.token).await.unwrap();
    let e = &h.audit.events()[1];
    assert_eq!(e.action, "unknown");
    let cx = e.context.as_ref().unwrap();
    assert_eq!(cx["ticket_claims"]["caller"], "mallory");
    assert_eq!(cx["ticket_claims_verified"], false);
    assert!(cx.get("ticket_claims").unwrap().get("params").is_none());

    // Expired.
    let token = h.scale_ticket();
    h.clock.advance(time::Duration::minutes(6));
    let outcome = runner.run(&token).await.unwrap();
    assert_eq!(
        outcome.result.error.as_deref(),
        Some("Ticket validation failed: Ticket has expired")
    );
    assert!(h.steps().is_empty(), "nothing ran: {:?}", h.steps());
    assert_eq!(h.audit.events().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_ticket_runs_once_and_a_replay_is_audited_with_its_decision() {
    let h = Harness::new();
    let runner = h.runner(Recorder::new(&h.journal), Some(h.vault()), RunnerConfig::default());
    let token = h.scale_ticket();
    let first = runner.run(&token).await.unwrap();
    assert_eq!(first.result.status, ExecutionStatus::Success);
    let replay = runner.run(&token).await.unwrap();
    assert_eq!(
        replay.result.error.as_deref(),
        Some("Ticket validation failed: Ticket has already been used (replay detected)")
    );
    assert_eq!(h.steps().iter().filter(|s| s.starts_with("execute")).count(), 1);
    assert_eq!(h.nonces.consumed.load(Ordering::SeqCst), 2);
    let e = h.audit.events().pop().unwrap();
    assert_eq!((e.action.as_str(), e.caller.as_str()), ("scale", "deploy-bot"));
    assert_eq!(e.correlation_id.as_deref(), Some("evt-00000000d001"));
    assert_eq!(e.context.as_ref().unwrap()["ticket_claims_verified"], true);
    assert_eq!(replay.result.ticket_nonce, first.result.ticket_nonce);
}

#[tokio::test(start_paused = true)]
async fn dry_run_does_not_consume_the_ticket() {
    let h = Harness::new();
    let runner = h.runner(Recorder::new(&h.journal), Some(h.vault()), RunnerConfig::default());
    let token = h.scale_ticket();
    let dry = runner.dry_run(&token).await;
    assert!(dry.dry_run);
    assert_eq!(dry.result.status, ExecutionStatus::Skipped);
    assert_eq!(
        dry.result.output,
        "[dry-run] Would execute scale on dev/api (credentials required)"
    );
    assert_eq!(dry.result.executor_type, "dry-run");
    assert_eq!(
        dry.result
            .precheck_results
            .iter()
            .map(|r| (r.name.as_str(), r.passed, r.advisory))
            .collect::<Vec<_>>(),
        [("exists", true, true), ("gate", true, false)]
    );
    assert_eq!(dry.credential_source, Some(CredentialSource::Vault));
    // Nothing ran, nothing was issued, consumed or audited.
    assert!(h.steps().is_empty());
    assert_eq!(h.nonces.consumed.load(Ordering::SeqCst), 0);
    assert_eq!(h.nonces.looked_up.load(Ordering::SeqCst), 1);
    assert!(h.audit.events().is_empty());
    // The ticket still runs, once; a dry run afterwards reports the replay.
    assert_eq!(runner.run(&token).await.unwrap().result.status, ExecutionStatus::Success);
    let after = runner.dry_run(&token).await;
    assert_eq!(
        after.result.error.as_deref(),
        Some("Ticket validation failed: Ticket has already been used (replay detected)")
    );

    // A dry run predicts the refusal of an action that needs a vault.
    let bare = h.runner(Recorder::new(&h.journal), None, RunnerConfig::default());
    let out = bare.dry_run(&h.scale_ticket()).await;
    assert_eq!(out.result.status, ExecutionStatus::Error);
    assert!(out.result.error.unwrap().contains("no credential vault is configured"));
    let out = bare.dry_run(&h.ticket("nope", json!({}))).await;
    assert_eq!(out.result.error.as_deref(), Some("Action not found in registry: nope"));
}

#[tokio::test(start_paused = true)]
async fn unknown_action_is_audited_and_nothing_runs() {
    let h = Harness::new();
    let runner = h.runner(Recorder::new(&h.journal), Some(h.vault()), RunnerConfig::default());
    let outcome = runner.run(&h.ticket("nope", json!({"a": 1}))).await.unwrap();
    assert_eq!(outcome.result.error.as_deref(), Some("Action not found in registry: nope"));
    assert!(h.steps().is_empty());
    let events = h.audit.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "Execution error: Action not found in registry: nope");
    assert_eq!(outcome.credential_source, None);
}

#[tokio::test(start_paused = true)]
async fn secrets_never_reach_the_audit_log_or_the_result() {
    let h = Harness::new();
    let executor = Recorder {
        states: Mutex::new(vec![
            state(json!({"secret": "after-hunter2", "user": "u"})),
            state(json!({"secret": "before-hunter2", "user": "u", "undeclared": "whole object"})),
        ]),
        ..Recorder::new(&h.journal)
    };
    let runner = h
        .runner(executor, None, RunnerConfig::default())
        .with_state_key(&h.key.derive_secret(crate::STATE_KEY_CONTEXT));
    let token = h.ticket("plain", json!({"password": "p@ss-hunter2", "user": "u"}));
    let outcome = runner.run(&token).await.unwrap();
    assert_eq!(outcome.credential_source, Some(CredentialSource::NotDeclared));
    let events = h.audit.events();
    let rendered = format!("{} {:?}", serde_json::to_string(&events).unwrap(), outcome);
    assert!(!rendered.contains("hunter2"), "{rendered}");
    assert!(!rendered.contains("whole object"), "{rendered}");
    assert_eq!(events[0].params["password"], "[redacted]");
    let before = &outcome.result.before_state;
    assert!(before["secret"].as_str().unwrap().starts_with("hmac-sha256:"));
    assert_eq!(before["user"], "u");
    // The digests differ, so the diff shows the secret changed.
    let diff = &events[1].context.as_ref().unwrap()["diff"];
    assert!(diff["changed"].get("secret").is_some(), "{diff}");
    assert_eq!(diff["unchanged"], json!(["user"]));
}

/// The state-field HMAC has one home: the digest the runner records in its `state_capture`
/// event is the SDK's `StateKey::digest` of the same value under the key derived from the same
/// signing key, so captures written by `record_state` and by runner executions compare equal.
#[tokio::test(start_paused = true)]
async fn the_runners_state_digests_are_the_sdks() {
    use agent_safe_audit::state::{STATE_KEY_CONTEXT, StateKey};
    let h = Harness::new();
    let before = json!({"password": "hunter2", "user": "u"});
    let executor = Recorder {
        states: Mutex::new(vec![
            state(json!({"secret": "rotated", "user": "u"})),
            state(json!({"secret": before, "user": "u"})),
        ]),
        ..Recorder::new(&h.journal)
    };
    let runner = h
        .runner(executor, None, RunnerConfig::default())
        .with_state_key(&h.key.derive_secret(crate::STATE_KEY_CONTEXT));
    let outcome =
        runner.run(&h.ticket("plain", json!({"password": "p", "user": "u"}))).await.unwrap();
    let sdk = StateKey::new(&h.key.derive_secret(STATE_KEY_CONTEXT));
    let expected = (json!(sdk.digest(&before)), json!(sdk.digest(&json!("rotated"))));
    assert!(expected.0.as_str().unwrap().starts_with("hmac-sha256:"), "{expected:?}");
    assert_eq!(
        (&outcome.result.before_state["secret"], &outcome.result.after_state["secret"]),
        (&expected.0, &expected.1)
    );
    let events = h.audit.events();
    let capture = events.iter().find(|e| e.event_type == EventType::StateCapture).unwrap();
    let context = capture.context.as_ref().unwrap();
    assert_eq!(context["before_state"]["secret"], expected.0, "{context}");
    assert_eq!(context["after_state"]["secret"], expected.1, "{context}");
    // Another key, another digest: the key is part of the rule.
    let other = StateKey::new(&agent_safe_core::Secret::new([9; 32]));
    assert_ne!(json!(other.digest(&before)), expected.0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_audit_append_is_an_error_carrying_the_outcome() {
    let h = Harness::new();
    let validator = TicketValidator::new(&h.key, "agent-safe", h.clock.clone(), h.nonces.clone());
    let runner =
        Runner::new(Arc::new(Recorder::new(&h.journal)), registry(), validator, h.clock.clone())
            .with_vault(Arc::new(h.vault()))
            .with_audit(Arc::new(BrokenAudit));
    let err = runner.run(&h.scale_ticket()).await.unwrap_err();
    let RunnerError::Audit { outcome, source } = &err;
    assert_eq!(outcome.result.status, ExecutionStatus::Success);
    assert_eq!(source.to_string(), "audit.jsonl: disk full");
    assert_eq!(
        err.to_string(),
        "the execution outcome (success) could not be written to the audit log: audit.jsonl: disk full"
    );
    // The credential was revoked before the audit write was attempted.
    assert_eq!(h.steps().last().map(String::as_str), Some(REVOKE));
}

#[tokio::test(start_paused = true)]
async fn revocation_failures_are_recorded() {
    let h = Harness::new();
    let vault = Vault { fail_revoke: true, ..h.vault() };
    let runner = h.runner(Recorder::new(&h.journal), Some(vault), RunnerConfig::default());
    let outcome = runner.run(&h.scale_ticket()).await.unwrap();
    let warning = "could not revoke credential `cred-000000000001`: revocation endpoint down";
    assert_eq!(outcome.revoke_warning.as_deref(), Some(warning));
    let cx = h.audit.events()[0].context.clone().unwrap();
    assert_eq!(cx["revoke_warning"], warning);
    assert_eq!(cx["credential_revoked"], false);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_still_revokes() {
    let h = Harness::new();
    let executor = Recorder { fault: Fault::HangIn("execute"), ..Recorder::new(&h.journal) };
    let runner = h.runner(executor, Some(h.vault()), RunnerConfig::default());
    let token = h.scale_ticket();
    // The caller gives up long before the runner's own 300 s timeout.
    let gave_up = tokio::time::timeout(Duration::from_secs(1), runner.run(&token)).await;
    assert!(gave_up.is_err());
    // The revocation was handed to the runtime when the run was dropped.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(h.steps().last().map(String::as_str), Some(REVOKE), "{:?}", h.steps());
}

#[tokio::test(start_paused = true)]
async fn state_errors_are_noted() {
    let h = Harness::new();
    let executor = Recorder { fault: Fault::StateError, ..Recorder::new(&h.journal) };
    let runner = h.runner(executor, Some(h.vault()), RunnerConfig::default());
    let outcome = runner.run(&h.scale_ticket()).await.unwrap();
    assert!(outcome.result.before_state.is_empty());
    let cx = h.audit.events()[0].context.clone().unwrap();
    assert_eq!(
        cx["state_errors"],
        json!({"before": "state unavailable", "after": "state unavailable"})
    );
}

#[test]
fn default_config() {
    let c = RunnerConfig::default();
    assert_eq!(
        (c.timeout, c.step_timeout, c.ambient_credentials),
        (DEFAULT_TIMEOUT, DEFAULT_STEP_TIMEOUT, false)
    );
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(300));
    assert_eq!(CredentialSource::NotDeclared.as_str(), "not_declared");
    assert_eq!(serde_json::to_value(CredentialSource::Ambient).unwrap(), "ambient");
}
