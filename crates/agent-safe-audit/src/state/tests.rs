//! Tests of state capture: digests of sensitive fields, the event shape, reading captures
//! back (from SDK, Rust-runner and Python-runner events) and the coverage count.

use std::fs;

use agent_safe_core::{AuditEvent, AuditId, DecisionResult, EventType, Secret, StateMap};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;
use crate::{AuditLog, AuditOptions, Durability};

fn map(v: Value) -> StateMap {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn key() -> StateKey {
    StateKey::new(&Secret::new([7; 32]))
}

#[track_caller]
fn check_redact(state: Value, sensitive: &[&str], key: Option<&StateKey>, expected: Value) {
    let got = redact_state(&map(state), sensitive, key);
    assert_eq!(Value::Object(got.clone()), expected);
    // Key order is kept.
    assert_eq!(Value::Object(got).to_string(), expected.to_string());
}

#[test]
fn sensitive_fields_are_digested_or_redacted() {
    // Expected digests: Python `hmac.new(bytes([7] * 32), json.dumps(v, sort_keys=True)
    // .encode(), sha256).hexdigest()`, the same digest the runner writes.
    check_redact(
        json!({"type": "Opaque", "data": {"user": "u", "password": "hunter2"}, "keys": ["password"]}),
        &["data"],
        Some(&key()),
        json!({"type": "Opaque",
               "data": "hmac-sha256:d487b6caf345e458c3fca74bcab0bf191efaace9a1243117ad04bf9cb38147b8",
               "keys": ["password"]}),
    );
    check_redact(
        json!({"token": "s3crét"}),
        &["token"],
        Some(&key()),
        json!({"token": "hmac-sha256:a4e41686bf9bf5bff077f8b41d41f14f0ba26c224af6c4a01aa2ce3573862d78"}),
    );
    check_redact(
        json!({"data": {"password": "hunter2"}, "other": 1}),
        &["data", "absent"],
        None,
        json!({"data": "[redacted]", "other": 1}),
    );
    check_redact(json!({"data": 1}), &[], Some(&key()), json!({"data": 1}));
    // Another key, another digest; the same value, the same digest.
    let other = StateKey::new(&Secret::new([8; 32]));
    assert_ne!(other.digest(&json!("x")), key().digest(&json!("x")));
    assert_eq!(key().digest(&json!({"a": 1, "b": 2})), key().digest(&json!({"b": 2, "a": 1})));
    assert_eq!(format!("{:?}", key()), "StateKey([redacted])");
    assert!(is_hidden(&json!("[redacted]")) && is_hidden(&json!(key().digest(&json!(1)))));
    assert!(!is_hidden(&json!("hmac")) && !is_hidden(&json!(3)));
}

fn subject(audit_id: &str) -> CaptureSubject {
    CaptureSubject {
        audit_id: AuditId::new(audit_id),
        action: "scale-deployment".into(),
        target: "dev/app".into(),
        caller: "bot".into(),
    }
}

fn capture(audit_id: &str, before: Value, after: Value) -> StateCapture {
    StateCapture::new(
        subject(audit_id),
        map(before),
        map(after),
        datetime!(2026-02-24 12:00:01.5 UTC),
        1500.0,
        vec!["replicas".into(), "ready_replicas".into()],
    )
}

#[test]
fn state_capture_events_have_the_python_shape_and_read_back() {
    let c = capture("evt-000000000001", json!({"replicas": 2, "x": 1}), json!({"replicas": 5}));
    assert_eq!(c.state_fields_captured, ["replicas", "x"]);
    assert_eq!(
        c.diff,
        json!({"added": {}, "removed": {"x": 1}, "changed": {"replicas": {"old": 2, "new": 5}}, "unchanged": []})
    );
    let e = c.to_event();
    assert_eq!(e.event_type, EventType::StateCapture);
    assert_eq!(e.event_id, c.event_id);
    assert_eq!(
        (e.decision, e.risk_class, e.effective_risk),
        (DecisionResult::Allow, RiskClass::Low, RiskClass::Low)
    );
    assert_eq!(e.reason, "State capture for evt-000000000001");
    assert_eq!(e.correlation_id.as_deref(), Some("evt-000000000001"));
    assert_eq!(e.params, Params::new());
    let context = e.context.clone().unwrap();
    let keys: Vec<&str> = context.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "original_audit_id",
            "before_state",
            "after_state",
            "diff",
            "capture_duration_ms",
            "state_fields_declared",
            "state_fields_captured"
        ]
    );
    assert_eq!(StateCapture::from_event(&e), Some(c));
}

fn event(event_type: EventType, context: Value) -> AuditEvent {
    let mut e = crate::bench::sample_event(9);
    e.event_type = event_type;
    e.correlation_id = Some("evt-00000000000d".into());
    e.context = Some(context);
    e
}

#[test]
fn captures_are_read_from_runner_and_python_events() {
    // The Rust runner: a state_capture event with executor_type (an addition).
    let runner = event(
        EventType::StateCapture,
        json!({"type": "state_capture", "original_audit_id": "evt-00000000000d",
               "before_state": {"replicas": 1}, "after_state": {"replicas": 1},
               "diff": {"added": {}, "removed": {}, "changed": {}, "unchanged": ["replicas"]},
               "capture_duration_ms": 12.5, "state_fields_declared": ["replicas"],
               "state_fields_captured": ["replicas"], "execution_event_id": "evt-x",
               "executor_type": "dry-run"}),
    );
    let c = StateCapture::from_event(&runner).unwrap();
    assert_eq!(
        (c.source, c.capture_duration_ms, c.is_dry_run()),
        (CaptureSource::StateCapture, 12.5, true)
    );
    assert_eq!(c.audit_id, "evt-00000000000d");
    // The Python runner: only an execution event, with the states in its context.
    let python = event(
        EventType::Execution,
        json!({"type": "execution", "original_audit_id": "evt-00000000000d", "status": "success",
               "before_state": {"replicas": 2}, "after_state": {"replicas": 4}, "executor_type": "K8sExecutor"}),
    );
    let c = StateCapture::from_event(&python).unwrap();
    assert_eq!(c.source, CaptureSource::Execution);
    assert_eq!(c.diff["changed"], json!({"replicas": {"old": 2, "new": 4}}));
    assert_eq!(c.state_fields_captured, ["replicas"]);
    assert!(!c.is_dry_run());
    // Not captures: a failed execution, a Rust-runner execution (its capture is separate),
    // a decision, an event without states.
    let not = [
        event(
            EventType::Execution,
            json!({"status": "failure", "before_state": {}, "after_state": {}}),
        ),
        event(
            EventType::Execution,
            json!({"status": "success", "before_state": {}, "after_state": {}, "state_capture_event_id": "evt-y"}),
        ),
        event(EventType::Decision, json!({"before_state": {}, "after_state": {}})),
        event(EventType::StateCapture, json!({"type": "state_capture", "before_state": {}})),
        event(EventType::StateCapture, json!("text")),
    ];
    for e in not {
        assert_eq!(StateCapture::from_event(&e), None, "{:?}", e.context);
    }
    // The original id comes from the context, else from the correlation id.
    let mut no_context_id = runner.clone();
    no_context_id.context.as_mut().unwrap().as_object_mut().unwrap().remove("original_audit_id");
    assert_eq!(StateCapture::from_event(&no_context_id).unwrap().audit_id, "evt-00000000000d");
}

#[test]
fn the_latest_capture_is_found_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered }).unwrap();
    let mut decision = crate::bench::sample_event(1);
    decision.event_id = AuditId::new("evt-000000000001");
    log.append(&decision).unwrap();
    let first = capture("evt-000000000001", json!({"replicas": 1}), json!({"replicas": 2}));
    let second = capture("evt-000000000001", json!({"replicas": 2}), json!({"replicas": 3}));
    let unrelated = capture("evt-000000000002", json!({}), json!({}));
    for c in [&first, &unrelated, &second] {
        log.append(&c.to_event()).unwrap();
    }
    let mut index = AuditIndex::new(&path);
    assert_eq!(latest_capture(&mut index, "evt-000000000001").unwrap(), Some(second.clone()));
    assert_eq!(latest_capture(&mut index, "evt-000000000003").unwrap(), None);
    let all = captures_of(&index.linked("evt-000000000001").unwrap(), "evt-000000000001");
    assert_eq!(all, [first, second]);
}

#[test]
fn coverage_counts_decisions_with_captures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered }).unwrap();
    let decision = |id: &str, result: DecisionResult| {
        let mut e = crate::bench::sample_event(1);
        e.event_id = AuditId::new(id);
        e.decision = result;
        e.context = None;
        e
    };
    let events = [
        decision("evt-a", DecisionResult::Allow),
        decision("evt-b", DecisionResult::Allow),
        decision("evt-c", DecisionResult::Deny),
        decision("evt-d", DecisionResult::RequireApproval),
        decision("evt-e", DecisionResult::RequireApproval),
        {
            // The approval of evt-d (not counted as a decision).
            let mut e = decision("evt-f", DecisionResult::Allow);
            e.correlation_id = Some("evt-d".into());
            e.context = Some(json!({"type": "approval_resolution", "original_audit_id": "evt-d"}));
            e
        },
        capture("evt-a", json!({}), json!({})).to_event(),
        capture("evt-d", json!({}), json!({})).to_event(),
        capture("evt-d", json!({}), json!({})).to_event(),
    ];
    for e in &events {
        log.append(e).unwrap();
    }
    let got = state_coverage(&path).unwrap();
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json!({"total_decisions": 5, "with_state_capture": 2, "without_state_capture": 3,
               "coverage_percent": 40.0, "allowed_decisions": 3, "allowed_with_state_capture": 2})
    );
    // Two thirds: one decimal.
    let dir2 = tempfile::tempdir().unwrap();
    let p2 = dir2.path().join("audit.jsonl");
    let log2 = AuditLog::open(&p2, AuditOptions { durability: Durability::Buffered }).unwrap();
    for e in [
        decision("evt-a", DecisionResult::Allow),
        decision("evt-b", DecisionResult::Allow),
        decision("evt-c", DecisionResult::Allow),
        capture("evt-a", json!({}), json!({})).to_event(),
        capture("evt-b", json!({}), json!({})).to_event(),
    ] {
        log2.append(&e).unwrap();
    }
    assert_eq!(state_coverage(&p2).unwrap().coverage_percent, 66.7);

    // An empty log: nothing to cover.
    let empty = dir.path().join("empty.jsonl");
    fs::write(&empty, "").unwrap();
    let got = state_coverage(&empty).unwrap();
    assert_eq!((got.total_decisions, got.coverage_percent), (0, 0.0));
    // Errors as in read_events.
    assert!(matches!(
        state_coverage(&dir.path().join("missing.jsonl")),
        Err(AuditError::NotFound { .. })
    ));
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("{\"event_id\": \"evt-z\", \"deci");
    fs::write(&path, &text).unwrap();
    assert!(matches!(state_coverage(&path), Err(AuditError::TornTail { line: 10, .. })));
    text.push_str("\nnot json\n");
    fs::write(&path, &text).unwrap();
    assert!(matches!(state_coverage(&path), Err(AuditError::Corrupt { line: 10, .. })));
}
