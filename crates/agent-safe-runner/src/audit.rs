//! Where the runner records executions (the [`AuditSink`] trait, implemented by the hash-chained
//! [`AuditLog`]) and how `execution` and `state_capture` events are filled (SPEC §6.3).

use std::sync::{Mutex, PoisonError};

use agent_safe_audit::{AuditError, AuditLog};
use agent_safe_core::{
    AuditEvent, AuditId, DecisionResult, EventType, ExecutionStatus, Params, RiskClass,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Longest `reason` written for an execution event, in characters (the output is cut there).
pub const REASON_LIMIT: usize = 1000;

/// Longest executor output kept in an execution event's context, in bytes (logs can be
/// large; the full output is still returned to the caller).
pub const OUTPUT_AUDIT_LIMIT: usize = 64 * 1024;

/// An append-only record of events. The runner appends every event before it returns, and an
/// append error is reported to the caller (the execution happened but was not recorded).
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Appends `event`; returns once it is recorded.
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError>;
}

/// Any audit store: the file log, or a database's (`agent-safe-postgres`).
impl AuditSink for std::sync::Arc<dyn agent_safe_audit::AuditStore> {
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        agent_safe_audit::AuditStore::append(self.as_ref(), event).map(|_| ())
    }
}

impl AuditSink for AuditLog {
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        AuditLog::append(self, event).map(|_| ())
    }
}

/// Events kept in memory, in order (for tests and embedding).
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// The events appended so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(event.clone());
        Ok(())
    }
}

/// The identifying fields shared by the events of one run.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub(crate) action: String,
    pub(crate) target: String,
    pub(crate) caller: String,
    /// The decision the ticket came from; `None` when the ticket could not be trusted.
    pub(crate) original_audit_id: Option<String>,
    /// Params as recorded (sensitive ones redacted).
    pub(crate) params: Params,
}

impl Subject {
    pub(crate) fn unknown() -> Self {
        Self {
            action: "unknown".to_owned(),
            target: "unknown".to_owned(),
            caller: "unknown".to_owned(),
            original_audit_id: None,
            params: Params::new(),
        }
    }
}

/// An `execution` event: SPEC §6.3 (`decision` allow for success and skipped, deny otherwise;
/// risk low/low; `correlation_id` the decision's audit id), with `context` built by the runner.
pub(crate) fn execution_event(
    id: AuditId,
    now: OffsetDateTime,
    subject: &Subject,
    status: ExecutionStatus,
    summary: &str,
    context: Map<String, Value>,
) -> AuditEvent {
    let decision = match status {
        ExecutionStatus::Success | ExecutionStatus::Skipped => DecisionResult::Allow,
        _ => DecisionResult::Deny,
    };
    let reason = format!("Execution {}: {}", status.as_str(), cut_chars(summary, REASON_LIMIT));
    AuditEvent {
        event_id: id,
        timestamp: now,
        event_type: EventType::Execution,
        action: subject.action.clone(),
        target: subject.target.clone(),
        caller: subject.caller.clone(),
        params: subject.params.clone(),
        decision,
        reason: reason.trim_end().to_owned(),
        policy_matched: None,
        risk_class: RiskClass::Low,
        effective_risk: RiskClass::Low,
        correlation_id: subject.original_audit_id.clone(),
        ticket_id: None,
        context: Some(Value::Object(context)),
    }
}

/// A `state_capture` event (SPEC §6.3): always allow, low/low, linked to the decision.
pub(crate) fn state_capture_event(
    id: AuditId,
    now: OffsetDateTime,
    subject: &Subject,
    original_audit_id: &str,
    context: Map<String, Value>,
) -> AuditEvent {
    AuditEvent {
        event_id: id,
        timestamp: now,
        event_type: EventType::StateCapture,
        action: subject.action.clone(),
        target: subject.target.clone(),
        caller: subject.caller.clone(),
        params: Params::new(),
        decision: DecisionResult::Allow,
        reason: format!("State capture for {original_audit_id}"),
        policy_matched: None,
        risk_class: RiskClass::Low,
        effective_risk: RiskClass::Low,
        correlation_id: Some(original_audit_id.to_owned()),
        ticket_id: None,
        context: Some(Value::Object(context)),
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

/// At most `max` bytes of `s` (on a character boundary), and whether it was cut.
pub(crate) fn cut_bytes(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    (&s[..at], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_cut(s: &str, max: usize, chars: &str, bytes: (&str, bool)) {
        assert_eq!(cut_chars(s, max), chars);
        assert_eq!(cut_bytes(s, max), bytes);
    }

    #[test]
    fn cuts_on_character_boundaries() {
        check_cut("", 3, "", ("", false));
        check_cut("abc", 3, "abc", ("abc", false));
        check_cut("abcd", 3, "abc…", ("abc", true));
        check_cut("ééé", 2, "éé…", ("é", true));
    }

    #[test]
    fn execution_decision_follows_status() {
        let subject = Subject::unknown();
        let at = time::macros::datetime!(2026-02-24 12:00 UTC);
        for (status, decision) in [
            (ExecutionStatus::Success, DecisionResult::Allow),
            (ExecutionStatus::Skipped, DecisionResult::Allow),
            (ExecutionStatus::Failure, DecisionResult::Deny),
            (ExecutionStatus::Timeout, DecisionResult::Deny),
            (ExecutionStatus::Error, DecisionResult::Deny),
        ] {
            let e = execution_event(AuditId::new("evt-1"), at, &subject, status, "x  ", Map::new());
            assert_eq!(e.decision, decision, "{status:?}");
            assert_eq!(e.reason, format!("Execution {}: x", status.as_str()));
        }
        let long = "y".repeat(REASON_LIMIT + 5);
        let e = execution_event(
            AuditId::new("evt-1"),
            at,
            &subject,
            ExecutionStatus::Success,
            &long,
            Map::new(),
        );
        assert_eq!(e.reason.chars().count(), "Execution success: ".len() + REASON_LIMIT + 1);
    }
}
