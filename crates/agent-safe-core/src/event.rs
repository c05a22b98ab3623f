//! Audit events: what the audit log records (before chaining fields are added).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timefmt::serde_utc;
use crate::{AuditId, DecisionResult, Params, RiskClass};

/// The kind of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A policy decision (also approval resolutions).
    Decision,
    /// Before/after state of an executed action.
    StateCapture,
    /// The outcome of running an action.
    Execution,
}

impl EventType {
    /// The name used in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Decision => "decision",
            EventType::StateCapture => "state_capture",
            EventType::Execution => "execution",
        }
    }
}

/// One audit event, with the fields of the Python version's log lines except the chain
/// fields (`prev_hash`, `entry_hash`, `seq`) that the log adds when it appends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id; for a decision, the decision's `audit_id`.
    pub event_id: AuditId,
    /// When the event happened (from the injected clock).
    #[serde(with = "serde_utc")]
    pub timestamp: OffsetDateTime,
    /// The kind of event.
    #[serde(default = "default_event_type")]
    pub event_type: EventType,
    /// Action name.
    pub action: String,
    /// Target id.
    pub target: String,
    /// Caller id.
    pub caller: String,
    /// Request params.
    #[serde(default)]
    pub params: Params,
    /// Decision result (for executions: allow on success, deny otherwise).
    pub decision: DecisionResult,
    /// Reason.
    pub reason: String,
    /// Name of the matched rule.
    pub policy_matched: Option<String>,
    /// The action's risk class.
    pub risk_class: RiskClass,
    /// Effective risk.
    pub effective_risk: RiskClass,
    /// Links this event to another (e.g. an execution to its decision).
    pub correlation_id: Option<String>,
    /// External change ticket id.
    pub ticket_id: Option<String>,
    /// Extra structured context (delegation, cumulative risk, state, execution details).
    pub context: Option<serde_json::Value>,
}

fn default_event_type() -> EventType {
    EventType::Decision
}
