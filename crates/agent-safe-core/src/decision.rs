//! The result of a policy check, and the execution ticket attached to an ALLOW.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timefmt::serde_utc;
use crate::{ActionName, AgentId, AuditId, DecisionResult, Params, RiskClass, TargetId};

/// A signed, single-use permission to run one action on one target with exact params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionTicket {
    /// The compact JWT.
    pub token: String,
    /// The action it permits.
    pub action: ActionName,
    /// The target it permits.
    pub target: TargetId,
    /// The caller it was issued to.
    pub caller: AgentId,
    /// The exact params it permits.
    pub params: Params,
    /// The audit id of the decision that issued it.
    pub audit_id: AuditId,
    /// The single-use nonce.
    pub nonce: String,
    /// Issue time.
    #[serde(with = "serde_utc")]
    pub issued_at: OffsetDateTime,
    /// Expiry time.
    #[serde(with = "serde_utc")]
    pub expires_at: OffsetDateTime,
}

/// A policy decision. A denial is a value with a reason, never an error.
///
/// Serialises to JSON with the field names and order of the Python version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// allow, deny or require_approval.
    pub result: DecisionResult,
    /// Why: the matched rule's reason or a system reason.
    pub reason: String,
    /// The requested action (even when unknown).
    pub action: ActionName,
    /// The requested target id (kept even when it is not in the inventory).
    pub target: TargetId,
    /// The caller's id, or `anonymous`.
    pub caller: AgentId,
    /// The action's own risk class (`critical` for an unknown action).
    pub risk_class: RiskClass,
    /// Risk after the risk matrix.
    pub effective_risk: RiskClass,
    /// Name of the rule that decided, if a rule did.
    pub policy_matched: Option<String>,
    /// Id of the audit event recording this decision.
    pub audit_id: AuditId,
    /// Execution ticket, for an ALLOW when a signing key is configured.
    pub ticket: Option<ExecutionTicket>,
    /// Approval request id, when an approval store is configured.
    pub request_id: Option<String>,
    /// External change ticket (JIRA, ServiceNow…), passed through.
    pub ticket_id: Option<String>,
    /// Cumulative risk score, when cumulative risk is configured.
    pub cumulative_risk_score: Option<u64>,
    /// Cumulative risk class, when cumulative risk is configured.
    pub cumulative_risk_class: Option<RiskClass>,
    /// The result before cumulative-risk escalation, when it escalated.
    pub escalated_from: Option<DecisionResult>,
}
