//! Byte compatibility with the Python version: its log verifies and re-hashes here, and a log
//! written here (committed, verified by Python's `agent-safe audit verify`) is reproduced
//! byte for byte by the writer.

use std::path::{Path, PathBuf};

use agent_safe_audit::{
    AuditLog, AuditOptions, Durability, IssueKind, canonical, diff, find_decision, read_events,
    verify,
};
use agent_safe_core::{
    AuditEvent, AuditId, Clock, DecisionResult, EventType, ManualClock, Params, RiskClass,
};
use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/audit").join(name)
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn obj(v: Value) -> Params {
    match v {
        Value::Object(m) => m,
        _ => Params::new(),
    }
}

#[test]
fn python_fixture_verifies_and_every_line_rehashes_to_its_entry_hash() {
    let path = data("python-fixture.jsonl");
    let report = verify(&path).unwrap();
    assert_eq!((report.entries, report.errors.len(), report.warnings.len()), (6, 0, 0));

    let text = std::fs::read_to_string(&path).unwrap();
    for (i, line) in text.lines().enumerate() {
        let Value::Object(mut entry) = serde_json::from_str::<Value>(line).unwrap() else {
            panic!("line {} is not an object", i + 1)
        };
        // The whole line is canonical JSON...
        assert_eq!(canonical::to_string(&Value::Object(entry.clone())), line);
        // ... and its hash is that of the canonical JSON without `entry_hash`.
        let Some(Value::String(stored)) = entry.remove("entry_hash") else { panic!() };
        let rehashed = sha256_hex(canonical::to_string(&Value::Object(entry)).as_bytes());
        assert_eq!(rehashed, stored, "line {}", i + 1);
    }

    // The typed view reads every entry.
    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(events[3].event.action, "no-such-action");
    assert_eq!(events[4].event.event_type, EventType::StateCapture);
    assert!(events.iter().all(|e| e.seq.is_none()));
    let found = find_decision(&path, "evt-d51aea0e703a").unwrap().unwrap();
    assert_eq!((found.line, found.event.ticket_id.as_deref()), (2, Some("CHG-42")));
    // Not a decision: the state capture's id is not found.
    assert!(find_decision(&path, "evt-ae45bac83bb1").unwrap().is_none());
}

/// The events of `rust-written.jsonl`: non-ASCII, control characters, emoji, floats, nested
/// maps, nulls, every event type. Ids and times are fixed.
fn fixture_events() -> Vec<AuditEvent> {
    let clock = ManualClock::new(datetime!(2026-11-26 09:27:07.420959 UTC));
    let mut n = 0;
    let mut next = |event_type, action: &str, params: Value, context: Option<Value>| {
        n += 1;
        clock.advance(Duration::microseconds(1234));
        AuditEvent {
            event_id: AuditId::new(format!("evt-{n:012x}")),
            timestamp: clock.now(),
            event_type,
            action: action.into(),
            target: "dev/test-app".into(),
            caller: "deploy-bot".into(),
            params: obj(params),
            decision: DecisionResult::Allow,
            reason: "Development environment is unrestricted".into(),
            policy_matched: Some("allow-dev-all".into()),
            risk_class: RiskClass::Medium,
            effective_risk: RiskClass::Low,
            correlation_id: None,
            ticket_id: None,
            context,
        }
    };
    let mut events = vec![
        next(
            EventType::Decision,
            "restart-deployment",
            json!({"deployment": "app-ü", "namespace": "dev", "note": "Ωmega 中文 café\u{a0}"}),
            None,
        ),
        next(
            EventType::Decision,
            "no-such-action",
            json!({"cmd": "a\nb\tc\rd\u{8}\u{c}\u{1}\u{1f}\u{7f} \"q\" \\ / \u{2028}\u{feff}"}),
            None,
        ),
        next(
            EventType::Decision,
            "scale-deployment",
            json!({"msg": "deploy 😀🚀", "astral": "\u{10ffff}", "replicas": 3}),
            Some(json!({
                "delegated_roles": ["deployer"],
                "delegation_chain": [{"agent_id": "orchestrator", "agent_name": ""}],
                "delegation_depth": 1,
                "original_caller": "orchestrator",
            })),
        ),
        next(
            EventType::Decision,
            "update-image",
            json!({
                "x": 1.5, "y": [1, 2.0, 1e-05, 1e16, 0.1], "z": {"b": null, "a": true},
                "big": u64::MAX, "neg": i64::MIN, "tiny": 5e-324,
                "huge": 1.797_693_134_862_315_7e308, "negzero": -0.0, "third": 1.0 / 3.0,
                "keys": {"é": 1, "a": 2, "Z": 3, "😀": 4, "\u{ff01}": 5},
            }),
            Some(json!({"cumulative_risk_score": 12.5, "cumulative_risk_class": "high",
                        "cumulative_entry_count": 3, "cumulative_window_seconds": 3600,
                        "escalated_from": "medium"})),
        ),
    ];
    let before = obj(json!({"replicas": 2, "nested": {"k": "v"}, "same": 1}));
    let after = obj(json!({"replicas": 3, "added": "é", "same": 1.0}));
    let capture = json!({
        "type": "state_capture",
        "original_audit_id": "evt-000000000001",
        "before_state": before.clone(),
        "after_state": after.clone(),
        "diff": diff::compute(&before, &after),
        "capture_duration_ms": 0.003,
        "state_fields_declared": ["generation", "observed_generation", "available_replicas"],
        "state_fields_captured": ["added", "nested", "replicas", "same"],
    });
    let mut sc = next(EventType::StateCapture, "restart-deployment", json!({}), Some(capture));
    sc.correlation_id = Some("evt-000000000001".into());
    sc.reason = "State capture for evt-000000000001".into();
    sc.policy_matched = None;
    sc.risk_class = RiskClass::Low;
    events.push(sc);
    let mut ex = next(
        EventType::Execution,
        "restart-deployment",
        json!({}),
        Some(json!({
            "type": "execution", "original_audit_id": "evt-000000000001", "status": "failure",
            "output": null, "error": "boom\n", "duration_ms": 0.011826999980257824,
            "executor_type": "dry-run", "ticket_nonce": "df873752c2054bb4b5d2f7e0b3e2ffc1",
            "before_state": {}, "after_state": {},
            "precheck_results": [{"name": "deployment-exists", "passed": false, "message": "", "advisory": true}],
        })),
    );
    ex.decision = DecisionResult::Deny;
    ex.correlation_id = Some("evt-000000000001".into());
    ex.reason = "Execution failure: boom".into();
    ex.policy_matched = None;
    events.push(ex);
    let mut last = next(EventType::Decision, "delete-namespace", json!({}), None);
    last.timestamp = datetime!(2026-11-26 10:00:00 UTC);
    last.decision = DecisionResult::RequireApproval;
    last.effective_risk = RiskClass::Critical;
    last.ticket_id = Some("CHG-\u{e9}".into());
    events.push(last);
    events
}

/// `tests/data/audit/rust-written.jsonl` was written by this test with `AGENT_SAFE_BLESS=1`
/// and verified with Python (see `tests/data/audit/README.md`). The writer must keep
/// producing it byte for byte.
#[test]
fn rust_written_fixture_is_reproduced_byte_for_byte_and_verifies() {
    let committed_path = data("rust-written.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered }).unwrap();
    let events = fixture_events();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(log.append(e).unwrap().seq, i as u64 + 1);
    }
    let written = std::fs::read(&path).unwrap();
    if std::env::var_os("AGENT_SAFE_BLESS").is_some() {
        std::fs::write(&committed_path, &written).unwrap();
    }
    let committed = std::fs::read(&committed_path).unwrap();
    assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&committed));
    assert!(committed.is_ascii());

    let report = verify(&committed_path).unwrap();
    assert_eq!((report.entries, report.errors.len(), report.warnings.len()), (events.len(), 0, 0));
    let stored = read_events(&committed_path).unwrap();
    let seqs: Vec<Option<u64>> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).map(Some).collect::<Vec<_>>());
    // The typed view gives back the events (floats and big integers included).
    for (s, e) in stored.iter().zip(&events) {
        assert_eq!(&s.event, e);
    }
}

#[test]
fn a_tampered_copy_of_the_rust_fixture_fails() {
    let text = std::fs::read_to_string(data("rust-written.jsonl")).unwrap();
    let tampered = text.replacen("\"decision\": \"deny\"", "\"decision\": \"allow\"", 1);
    assert_ne!(tampered, text);
    let report = agent_safe_audit::verify_reader(tampered.as_bytes()).unwrap();
    let kinds: Vec<(usize, IssueKind)> = report.errors.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(kinds, [(6, IssueKind::HashMismatch)]);
}
