//! The approval request model (SPEC §10) and the additions this implementation stores with it.

use std::fmt;

use agent_safe_core::timefmt::serde_utc;
use agent_safe_core::{
    ActionName, AgentId, AuditId, ExecutionTicket, Params, RecordedCaller, RiskClass, TargetId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// How long a request stays pending when no TTL is configured (SPEC §10: one hour).
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::hours(1);

/// Prefix of request ids: `apr-` followed by 12 lowercase hex digits.
pub const REQUEST_ID_PREFIX: &str = "apr-";

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for approvers.
    Pending,
    /// Approved; the ticket (if a signing key is configured) is stored in the request.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Not resolved before `expires_at`.
    Expired,
}

impl ApprovalStatus {
    /// The name used in the store and in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many approvals a request needs and who may give them (a policy rule's
/// `approvals: {required: 2, approver_roles: [sre]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequirement {
    /// Distinct approvers needed (at least 1).
    pub required: u32,
    /// When non-empty, an approver must hold at least one of these roles.
    pub approver_roles: Vec<String>,
}

impl Default for ApprovalRequirement {
    /// One approver, any role (the Python behaviour).
    fn default() -> Self {
        Self { required: 1, approver_roles: Vec::new() }
    }
}

/// One approver's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's verified agent id.
    pub by: AgentId,
    /// When it was given (server time).
    #[serde(with = "serde_utc")]
    pub at: OffsetDateTime,
    /// The approver's comment.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The outcome of delivering one notification, as recorded in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The notifier (`webhook`, `slack`, …).
    pub notifier: String,
    /// Whether it was delivered.
    pub delivered: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, when not delivered.
    #[serde(default)]
    pub error: Option<String>,
    /// When the outcome was known.
    #[serde(with = "serde_utc")]
    pub at: OffsetDateTime,
}

/// An approval request: the fields of the Python `ApprovalRequest` (SPEC §10), plus the
/// requester's identity, the params digest, the approval requirement, the approvals given, the
/// ticket minted on approval and notification outcomes. Stored as one JSON object per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// `apr-` + 12 hex digits.
    pub request_id: String,
    /// The audit id of the decision that required approval.
    pub audit_id: AuditId,
    /// The action.
    pub action: ActionName,
    /// The target id.
    pub target: TargetId,
    /// The requester's agent id (`anonymous` when none).
    pub caller: AgentId,
    /// The exact params; a ticket minted on approval carries exactly these.
    #[serde(default)]
    pub params: Params,
    /// The action's risk class.
    pub risk_class: RiskClass,
    /// The effective risk.
    pub effective_risk: RiskClass,
    /// The rule that required approval.
    #[serde(default)]
    pub policy_matched: Option<String>,
    /// The decision's reason.
    pub reason: String,
    /// Where the request stands.
    #[serde(default = "pending")]
    pub status: ApprovalStatus,
    /// Creation time.
    #[serde(with = "serde_utc")]
    pub created_at: OffsetDateTime,
    /// Expiry: a request still pending strictly after this is expired.
    #[serde(with = "serde_utc")]
    pub expires_at: OffsetDateTime,
    /// When it was resolved (approved, denied, or its expiry recorded).
    #[serde(default, with = "serde_utc::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Who resolved it: the last approver, the denier, or `system` for an expiry.
    #[serde(default)]
    pub resolved_by: Option<String>,
    /// The resolver's comment.
    #[serde(default)]
    pub resolution_reason: Option<String>,
    /// Hex SHA-256 of the canonical JSON of `params` (the ticket's `params_digest`). Absent only
    /// in requests written by the Python version, which cannot be approved here.
    #[serde(default)]
    pub params_digest: Option<String>,
    /// The requester as the decision saw it (roles, groups, delegation chain, verified or not);
    /// `None` for an anonymous request or one written by the Python version.
    #[serde(default)]
    pub requester: Option<RecordedCaller>,
    /// The external change ticket of the request (policies may require one).
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// Distinct approvers needed.
    #[serde(default = "one")]
    pub required_approvals: u32,
    /// When non-empty, an approver must hold one of these roles.
    #[serde(default)]
    pub approver_roles: Vec<String>,
    /// Approvals given so far, in order.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// The one ticket minted when the request was approved.
    #[serde(default)]
    pub ticket: Option<ExecutionTicket>,
    /// Notification outcomes.
    #[serde(default)]
    pub notifications: Vec<NotificationRecord>,
    /// Id of the audit event that records the creation of this request (and its
    /// [`binding_digest`](Self::binding_digest)); `None` without an audit log.
    #[serde(default)]
    pub request_event_id: Option<AuditId>,
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    agent_safe_core::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn pending() -> ApprovalStatus {
    ApprovalStatus::Pending
}

fn one() -> u32 {
    1
}

/// What a new request is made from: the decision that required approval and who asked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    /// The decision's audit id.
    pub audit_id: AuditId,
    /// Action.
    pub action: ActionName,
    /// Target id.
    pub target: TargetId,
    /// Caller id.
    pub caller: AgentId,
    /// The exact params.
    pub params: Params,
    /// The action's risk class.
    pub risk_class: RiskClass,
    /// Effective risk.
    pub effective_risk: RiskClass,
    /// The rule that required approval.
    pub policy_matched: Option<String>,
    /// The decision's reason.
    pub reason: String,
    /// The external change ticket.
    pub ticket_id: Option<String>,
    /// The requester's identity, when there was one.
    pub requester: Option<RecordedCaller>,
    /// Approvals needed.
    pub requirement: ApprovalRequirement,
    /// How long the request stays pending.
    pub ttl: Duration,
    /// Id of the audit event that will record the request.
    pub request_event_id: Option<AuditId>,
}

impl ApprovalRequest {
    /// A new pending request created at `now`, with a fresh id.
    pub fn new(new: NewRequest, now: OffsetDateTime) -> Self {
        let digest = agent_safe_tickets::params_digest(&new.params);
        Self {
            request_id: format!("{REQUEST_ID_PREFIX}{}", agent_safe_core::random::hex(6)),
            audit_id: new.audit_id,
            action: new.action,
            target: new.target,
            caller: new.caller,
            params: new.params,
            risk_class: new.risk_class,
            effective_risk: new.effective_risk,
            policy_matched: new.policy_matched,
            reason: new.reason,
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now.saturating_add(new.ttl),
            resolved_at: None,
            resolved_by: None,
            resolution_reason: None,
            params_digest: Some(digest),
            requester: new.requester,
            ticket_id: new.ticket_id,
            required_approvals: new.requirement.required.max(1),
            approver_roles: new.requirement.approver_roles,
            approvals: Vec::new(),
            ticket: None,
            notifications: Vec::new(),
            request_event_id: new.request_event_id,
        }
    }

    /// The approval requirement stored with the request.
    pub fn requirement(&self) -> ApprovalRequirement {
        ApprovalRequirement {
            required: self.required_approvals.max(1),
            approver_roles: self.approver_roles.clone(),
        }
    }

    /// Whether a pending request is past its expiry at `now` (strictly after `expires_at`).
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.status == ApprovalStatus::Pending && now > self.expires_at
    }

    /// Lazy expiry: marks a pending request expired when `now` is strictly after `expires_at`.
    /// Returns whether the status changed.
    pub fn expire_if_due(&mut self, now: OffsetDateTime) -> bool {
        if self.is_overdue(now) {
            self.status = ApprovalStatus::Expired;
            true
        } else {
            false
        }
    }

    /// Hex SHA-256 of the canonical JSON of everything a decision to approve relies on and that
    /// must never change after creation: ids, action, target, caller, params digest, requester,
    /// change ticket, risk, rule, expiry and requirement. Written into the audit event that
    /// records the request, so an edit of these fields in the store is detected at approval.
    pub fn binding_digest(&self) -> String {
        let requester = self.requester.as_ref().map(|r| {
            // The requester's token times are not part of the binding: only who it is.
            let chain: Vec<Value> = r
                .delegation_chain
                .iter()
                .map(|l| json!({"agent_id": l.agent_id, "roles": l.roles, "groups": l.groups}))
                .collect();
            json!({
                "agent_id": r.agent_id,
                "roles": r.roles,
                "groups": r.groups,
                "delegation_chain": chain,
                "delegated_roles": r.delegated_roles,
                "delegation_depth": r.delegation_depth,
                "verified": r.verified,
            })
        });
        let bound = json!({
            "request_id": self.request_id,
            "audit_id": self.audit_id,
            "action": self.action,
            "target": self.target,
            "caller": self.caller,
            "params_digest": self.params_digest,
            "requester": requester,
            "ticket_id": self.ticket_id,
            "risk_class": self.risk_class,
            "effective_risk": self.effective_risk,
            "policy_matched": self.policy_matched,
            "created_at": agent_safe_core::timefmt::format_utc(self.created_at),
            "expires_at": agent_safe_core::timefmt::format_utc(self.expires_at),
            "required_approvals": self.required_approvals,
            "approver_roles": self.approver_roles,
        });
        sha256_hex(agent_safe_tickets::canonical_json(&bound).as_bytes())
    }

    /// The request as one line of the store: canonical JSON (sorted keys, Python separators), no
    /// newline.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let value = serde_json::to_value(self)?;
        Ok(agent_safe_tickets::canonical_json(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_safe_core::CallerIdentity;
    use time::macros::datetime;

    fn new_request() -> NewRequest {
        let mut params = Params::new();
        params.insert("namespace".into(), json!("prod"));
        NewRequest {
            audit_id: AuditId::new("evt-000000000001"),
            action: ActionName::new("restart-deployment"),
            target: TargetId::new("prod/api-server"),
            caller: AgentId::new("deploy-bot"),
            params,
            risk_class: RiskClass::Medium,
            effective_risk: RiskClass::Critical,
            policy_matched: Some("require-approval-prod".into()),
            reason: "Production changes need approval".into(),
            ticket_id: None,
            requester: Some(RecordedCaller {
                identity: CallerIdentity::unverified("deploy-bot"),
                verified: false,
            }),
            requirement: ApprovalRequirement::default(),
            ttl: DEFAULT_APPROVAL_TTL,
            request_event_id: None,
        }
    }

    #[test]
    fn new_requests_have_python_shaped_ids_and_expiry() {
        let t = datetime!(2026-03-01 10:00 UTC);
        let r = ApprovalRequest::new(new_request(), t);
        assert_eq!(r.request_id.len(), 16);
        assert!(r.request_id.starts_with("apr-"));
        assert!(r.request_id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(r.expires_at, datetime!(2026-03-01 11:00 UTC));
        assert_eq!(r.status, ApprovalStatus::Pending);
        assert_eq!(
            r.params_digest.as_deref(),
            Some(agent_safe_tickets::params_digest(&r.params).as_str())
        );
    }

    #[test]
    fn expiry_is_strictly_after_expires_at() {
        let t = datetime!(2026-03-01 10:00 UTC);
        let mut r = ApprovalRequest::new(new_request(), t);
        assert!(!r.expire_if_due(r.expires_at));
        assert_eq!(r.status, ApprovalStatus::Pending);
        assert!(r.expire_if_due(r.expires_at + Duration::microseconds(1)));
        assert_eq!(r.status, ApprovalStatus::Expired);
        // Only pending requests expire.
        assert!(!r.expire_if_due(r.expires_at + Duration::hours(5)));
    }

    #[test]
    fn lines_are_sorted_key_json_with_python_separators() {
        let t = datetime!(2026-03-01 10:00 UTC);
        let r = ApprovalRequest::new(new_request(), t);
        let line = r.to_line().unwrap();
        assert!(
            line.starts_with(r#"{"action": "restart-deployment", "approvals": [], "#),
            "{line}"
        );
        assert!(line.contains(r#""created_at": "2026-03-01T10:00:00Z""#), "{line}");
        let back: ApprovalRequest = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn binding_digest_covers_every_bound_field_but_not_progress() {
        let t = datetime!(2026-03-01 10:00 UTC);
        let r = ApprovalRequest::new(new_request(), t);
        let base = r.binding_digest();
        type Edit = Box<dyn Fn(&mut ApprovalRequest)>;
        let changed: Vec<(&str, Edit)> = vec![
            ("target", Box::new(|r| r.target = TargetId::new("dev/test-app"))),
            ("action", Box::new(|r| r.action = ActionName::new("delete-pod"))),
            ("caller", Box::new(|r| r.caller = AgentId::new("other"))),
            ("params_digest", Box::new(|r| r.params_digest = Some("00".into()))),
            ("expires_at", Box::new(|r| r.expires_at += Duration::days(1))),
            ("required", Box::new(|r| r.required_approvals = 2)),
            ("roles", Box::new(|r| r.approver_roles = vec!["sre".into()])),
            (
                "requester roles",
                Box::new(|r| {
                    if let Some(q) = &mut r.requester {
                        q.identity.roles.push("admin".into());
                    }
                }),
            ),
            (
                "requester verified",
                Box::new(|r| {
                    if let Some(q) = &mut r.requester {
                        q.verified = true;
                    }
                }),
            ),
            ("ticket_id", Box::new(|r| r.ticket_id = Some("CHG-1".into()))),
        ];
        for (name, change) in changed {
            let mut edited = r.clone();
            change(&mut edited);
            assert_ne!(edited.binding_digest(), base, "{name} is not bound");
        }
        let mut progressed = r.clone();
        progressed.status = ApprovalStatus::Approved;
        progressed.approvals.push(Approval { by: AgentId::new("alice"), at: t, reason: None });
        assert_eq!(progressed.binding_digest(), base);
    }

    #[test]
    fn reads_a_python_written_line() {
        let line = r#"{"action": "restart-deployment", "audit_id": "evt-4df280aea421", "caller": "plain-caller", "created_at": "2026-11-26T09:27:07.422074Z", "effective_risk": "critical", "expires_at": "2026-11-26T10:27:07.422074Z", "params": {"namespace": "prod"}, "policy_matched": "require-approval-critical-risk", "reason": "Critical-risk actions always require human approval", "request_id": "apr-0123456789ab", "resolution_reason": null, "resolved_at": null, "resolved_by": null, "risk_class": "medium", "status": "pending", "target": "prod/api-server"}"#;
        let r: ApprovalRequest = serde_json::from_str(line).unwrap();
        assert_eq!(r.request_id, "apr-0123456789ab");
        assert_eq!(r.status, ApprovalStatus::Pending);
        assert_eq!(r.params_digest, None);
        assert_eq!(r.required_approvals, 1);
        assert!(r.approvals.is_empty() && r.requester.is_none());
    }
}
