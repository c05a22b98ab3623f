//! Audit events: what the audit log records (before chaining fields are added).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timefmt::serde_utc;
use crate::{AuditId, Decision, DecisionResult, Params, RiskClass};

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

impl AuditEvent {
    /// The `decision` event that records `decision`, taken at `timestamp`, with `params` as
    /// they go into the log (sensitive values already redacted): its id is the decision's
    /// `audit_id`, and the action, target, caller, result, reason, matched rule, risks and
    /// change ticket are the decision's. The event-specific parts are left empty
    /// (`correlation_id`, `context`); set them with struct update syntax, and `event_id` too
    /// for an event that follows up on a decision (an approval request or resolution).
    pub fn decision(decision: &Decision, timestamp: OffsetDateTime, params: Params) -> Self {
        AuditEvent {
            event_id: decision.audit_id.clone(),
            timestamp,
            event_type: EventType::Decision,
            action: decision.action.to_string(),
            target: decision.target.to_string(),
            caller: decision.caller.to_string(),
            params,
            decision: decision.result,
            reason: decision.reason.clone(),
            policy_matched: decision.policy_matched.clone(),
            risk_class: decision.risk_class,
            effective_risk: decision.effective_risk,
            correlation_id: None,
            ticket_id: decision.ticket_id.clone(),
            context: None,
        }
    }
}

fn default_event_type() -> EventType {
    EventType::Decision
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::{ActionName, AgentId, TargetId};

    #[test]
    fn a_decision_event_carries_the_decision() {
        let decision = Decision {
            result: DecisionResult::Deny,
            reason: "no".to_owned(),
            action: ActionName::new("restart-deployment"),
            target: TargetId::new("prod/api"),
            caller: AgentId::new("bot"),
            risk_class: RiskClass::Medium,
            effective_risk: RiskClass::High,
            policy_matched: Some("deny-prod".to_owned()),
            audit_id: AuditId::new("a-1"),
            ticket: None,
            request_id: None,
            ticket_id: Some("CHG-1".to_owned()),
            cumulative_risk_score: None,
            cumulative_risk_class: None,
            escalated_from: None,
        };
        let at = datetime!(2026-01-02 03:04:05 UTC);
        let event = AuditEvent::decision(&decision, at, Params::new());
        assert_eq!(
            event,
            AuditEvent {
                event_id: AuditId::new("a-1"),
                timestamp: at,
                event_type: EventType::Decision,
                action: "restart-deployment".to_owned(),
                target: "prod/api".to_owned(),
                caller: "bot".to_owned(),
                params: Params::new(),
                decision: DecisionResult::Deny,
                reason: "no".to_owned(),
                policy_matched: Some("deny-prod".to_owned()),
                risk_class: RiskClass::Medium,
                effective_risk: RiskClass::High,
                correlation_id: None,
                ticket_id: Some("CHG-1".to_owned()),
                context: None,
            }
        );
    }
}
