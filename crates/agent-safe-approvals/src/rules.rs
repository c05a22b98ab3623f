//! Who may resolve a request, and recording an approval or a denial.
//!
//! Beyond the Python version (which let anyone, even the requesting agent, approve under any
//! name): the approver is a verified identity; it must not be the requester, nor share a
//! principal with it through delegation (an ancestor, a delegated child, or a sibling delegated by
//! the same agent); it must hold one of the required roles; and a two-person rule needs that many
//! distinct approvers.

use std::collections::BTreeSet;

use agent_safe_core::{AgentId, CallerIdentity};
use agent_safe_tickets::VerifiedIdentity;
use time::OffsetDateTime;

use crate::model::{Approval, ApprovalRequest, ApprovalRequirement, ApprovalStatus};

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Approve (counts towards the required approvals).
    Approve,
    /// Deny (one eligible denial resolves the request).
    Deny,
}

impl Verdict {
    /// `approve` or `deny`, as written in audit contexts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

/// What a resolution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The approval was recorded; more are needed.
    Recorded {
        /// Approvals given so far.
        approvals: u32,
        /// Approvals needed.
        required: u32,
    },
    /// The last needed approval: the request is approved.
    Approved,
    /// The request is denied.
    Denied,
}

/// Why an approver may not resolve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The request is no longer pending (SPEC §10 message).
    #[error("Request {id} is already {status}")]
    NotPending {
        /// The request.
        id: String,
        /// Its status.
        status: ApprovalStatus,
    },
    /// The approver is the requester.
    #[error("approver `{approver}` cannot resolve `{id}`: it is the requester (self-approval)")]
    SelfApproval {
        /// The approver.
        approver: AgentId,
        /// The request.
        id: String,
    },
    /// The approver and the requester are related by delegation.
    #[error("approver `{approver}` cannot resolve `{id}`: {relation}")]
    Related {
        /// The approver.
        approver: AgentId,
        /// The request.
        id: String,
        /// How they are related.
        relation: String,
    },
    /// The approver holds none of the required roles.
    #[error("approver `{approver}` cannot resolve `{id}`: it needs one of the roles {roles}")]
    MissingRole {
        /// The approver.
        approver: AgentId,
        /// The request.
        id: String,
        /// The roles, each in backticks.
        roles: String,
    },
    /// The approver already approved (a two-person rule needs distinct approvers).
    #[error(
        "approver `{approver}` has already approved `{id}`; {remaining} more distinct \
         approver(s) needed"
    )]
    AlreadyApproved {
        /// The approver.
        approver: AgentId,
        /// The request.
        id: String,
        /// Approvals still needed.
        remaining: u32,
    },
    /// A request written by the Python version has no params digest to bind a ticket to.
    #[error(
        "request `{id}` has no `params_digest` (written by the Python version) and cannot be \
         approved; deny it and request approval again"
    )]
    NoParamsDigest {
        /// The request.
        id: String,
    },
}

/// Checks that `approver` may resolve `request` (a pending request) with `verdict`, under the
/// request's stored requirement and, when given, the requirement of the current policy too.
///
/// The approver is a [`VerifiedIdentity`]: a plain, self-asserted name cannot even be passed.
///
/// ```compile_fail,E0308
/// # fn no(request: &agent_safe_approvals::ApprovalRequest) {
/// let claimed = agent_safe_core::CallerIdentity::unverified("alice");
/// let _ = agent_safe_approvals::check_approver(
///     request, &claimed, agent_safe_approvals::Verdict::Approve, None);
/// # }
/// ```
pub fn check_approver(
    request: &ApprovalRequest,
    approver: &VerifiedIdentity,
    verdict: Verdict,
    current: Option<&ApprovalRequirement>,
) -> Result<(), ResolveError> {
    let id = || request.request_id.clone();
    if request.status != ApprovalStatus::Pending {
        return Err(ResolveError::NotPending { id: id(), status: request.status });
    }
    let requester_id = request.requester.as_ref().map_or(&request.caller, |r| &r.agent_id);
    if approver.agent_id == *requester_id || approver.agent_id == request.caller {
        return Err(ResolveError::SelfApproval { approver: approver.agent_id.clone(), id: id() });
    }
    if let Some(relation) = relation(request, approver) {
        return Err(ResolveError::Related {
            approver: approver.agent_id.clone(),
            id: id(),
            relation,
        });
    }
    let stored = request.requirement();
    for requirement in std::iter::once(&stored).chain(current) {
        let roles = &requirement.approver_roles;
        if !roles.is_empty() && !roles.iter().any(|r| approver.roles.contains(r)) {
            let roles = roles.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ");
            return Err(ResolveError::MissingRole {
                approver: approver.agent_id.clone(),
                id: id(),
                roles,
            });
        }
    }
    if verdict == Verdict::Approve {
        if request.params_digest.is_none() {
            return Err(ResolveError::NoParamsDigest { id: id() });
        }
        if request.approvals.iter().any(|a| a.by == approver.agent_id) {
            let required = required(request, current);
            return Err(ResolveError::AlreadyApproved {
                approver: approver.agent_id.clone(),
                id: id(),
                remaining: required.saturating_sub(count(request)),
            });
        }
    }
    Ok(())
}

/// Records `approver`'s verdict on `request` at `now` after [`check_approver`]. On the last
/// needed approval (or a denial) the request is resolved: status, `resolved_at`, `resolved_by`
/// (the deciding approver) and `resolution_reason` are set. The ticket is the caller's business.
///
/// The approvals needed are the stored count or, if higher, the `current` policy's; the stored
/// requirement itself never changes (it is bound to the audit event of the request's creation).
pub fn record(
    request: &mut ApprovalRequest,
    approver: &VerifiedIdentity,
    verdict: Verdict,
    reason: Option<&str>,
    now: OffsetDateTime,
    current: Option<&ApprovalRequirement>,
) -> Result<Progress, ResolveError> {
    check_approver(request, approver, verdict, current)?;
    let reason = reason.filter(|r| !r.is_empty()).map(str::to_owned);
    let resolve = |request: &mut ApprovalRequest, status| {
        request.status = status;
        request.resolved_at = Some(now);
        request.resolved_by = Some(approver.agent_id.to_string());
        request.resolution_reason.clone_from(&reason);
    };
    match verdict {
        Verdict::Deny => {
            resolve(request, ApprovalStatus::Denied);
            Ok(Progress::Denied)
        }
        Verdict::Approve => {
            let required = required(request, current);
            request.approvals.push(Approval {
                by: approver.agent_id.clone(),
                at: now,
                reason: reason.clone(),
            });
            let approvals = count(request);
            if approvals >= required {
                resolve(request, ApprovalStatus::Approved);
                Ok(Progress::Approved)
            } else {
                Ok(Progress::Recorded { approvals, required })
            }
        }
    }
}

fn required(request: &ApprovalRequest, current: Option<&ApprovalRequirement>) -> u32 {
    request.required_approvals.max(current.map_or(1, |c| c.required)).max(1)
}

fn count(request: &ApprovalRequest) -> u32 {
    let distinct: BTreeSet<&AgentId> = request.approvals.iter().map(|a| &a.by).collect();
    u32::try_from(distinct.len()).unwrap_or(u32::MAX)
}

/// How the approver and the requester are related by delegation, if they are.
fn relation(request: &ApprovalRequest, approver: &CallerIdentity) -> Option<String> {
    let requester_id = request.requester.as_ref().map_or(&request.caller, |r| &r.agent_id);
    let requester_chain: Vec<&AgentId> = request
        .requester
        .as_ref()
        .map(|r| r.delegation_chain.iter().map(|l| &l.agent_id).collect())
        .unwrap_or_default();
    let approver_chain: Vec<&AgentId> =
        approver.delegation_chain.iter().map(|l| &l.agent_id).collect();
    if requester_chain.contains(&&approver.agent_id) {
        return Some(format!(
            "it is in the requester's delegation chain (it delegated, directly or not, to \
             `{requester_id}`)"
        ));
    }
    if approver_chain.contains(&requester_id) {
        return Some(format!(
            "it was delegated, directly or not, by the requester `{requester_id}`"
        ));
    }
    if let Some(common) = approver_chain.iter().find(|a| requester_chain.contains(a)) {
        return Some(format!(
            "it and the requester `{requester_id}` were both delegated by `{common}`"
        ));
    }
    None
}

#[cfg(test)]
mod tests;
