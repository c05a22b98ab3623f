//! The JSON every front prints for a run and for a delegation: one `Serialize` type per output,
//! shared by the CLI (`--json-output`), the HTTP API and the MCP server, so the keys, their
//! order and their values cannot drift between them.
//!
//! The types borrow what they report and have no public fields: they are contracts for the
//! serialized form, built with their constructors.

use agent_safe_core::timefmt::serde_utc;
use agent_safe_core::{
    AgentId, AuditId, CallerIdentity, Decision, DelegationLink, DelegationScope, ExecutionResult,
};
use agent_safe_delegation::Delegation;
use agent_safe_runner::{CredentialSource, RunOutcome};
use serde::Serialize;
use time::OffsetDateTime;

/// The outcome of running a ticket (`runner execute|dry-run --json-output`, `POST /v1/execute`,
/// the `execution` of MCP `execute_action`): the execution record's fields, then
/// `state_capture_id`, `credential_source`, `credential_id`, `revoke_warning` and `dry_run`.
///
/// ```
/// # use agent_safe::report::RunReport;
/// # fn show(outcome: &agent_safe::runner::RunOutcome) -> serde_json::Result<String> {
/// serde_json::to_string_pretty(&RunReport::new(outcome))
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct RunReport<'a> {
    #[serde(flatten)]
    result: &'a ExecutionResult,
    state_capture_id: Option<&'a AuditId>,
    credential_source: Option<CredentialSource>,
    credential_id: Option<&'a str>,
    revoke_warning: Option<&'a str>,
    dry_run: bool,
}

impl<'a> RunReport<'a> {
    /// The report of `outcome`.
    pub fn new(outcome: &'a RunOutcome) -> Self {
        RunReport {
            result: &outcome.result,
            state_capture_id: outcome.state_capture_id.as_ref(),
            credential_source: outcome.credential_source,
            credential_id: outcome.credential_id.as_deref(),
            revoke_warning: outcome.revoke_warning.as_deref(),
            dry_run: outcome.dry_run,
        }
    }
}

/// What MCP `execute_action` returns as structured content: whether the action was executed,
/// the decision, and the run's [`RunReport`] when the ticket was run (absent when the request
/// was refused before the runner).
#[derive(Debug, Clone, Serialize)]
pub struct ExecuteActionReport<'a> {
    executed: bool,
    decision: &'a Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution: Option<RunReport<'a>>,
}

impl<'a> ExecuteActionReport<'a> {
    /// Not executed: the request was refused (invalid, not allowed, no ticket) by `decision`.
    pub fn refused(decision: &'a Decision) -> Self {
        ExecuteActionReport { executed: false, decision, execution: None }
    }

    /// The ticket `decision` issued was run (`executed` is false for a dry run).
    pub fn ran(decision: &'a Decision, outcome: &'a RunOutcome) -> Self {
        ExecuteActionReport {
            executed: !outcome.dry_run,
            decision,
            execution: Some(RunReport::new(outcome)),
        }
    }
}

/// A created delegation token (`delegation create --json-output`, `POST /v1/delegations`): the
/// token and the child's identity (depth, delegated roles, chain, depth limit, expiry, and its
/// scope when narrowed).
#[derive(Debug, Clone, Serialize)]
pub struct DelegationReport<'a> {
    token: &'a str,
    child_agent_id: &'a AgentId,
    delegation_depth: u32,
    delegated_roles: &'a [String],
    delegation_chain: Vec<CreatedLink<'a>>,
    max_delegation_depth: Option<u32>,
    #[serde(with = "serde_utc::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_scope: Option<&'a DelegationScope>,
}

/// A chain link as a created token's report shows it.
#[derive(Debug, Clone, Serialize)]
struct CreatedLink<'a> {
    agent_id: &'a AgentId,
    agent_name: &'a str,
}

impl<'a> DelegationReport<'a> {
    /// The report of `made`.
    pub fn new(made: &'a Delegation) -> Self {
        let child = &made.child;
        DelegationReport {
            token: &made.token,
            child_agent_id: &child.agent_id,
            delegation_depth: child.delegation_depth,
            delegated_roles: &child.delegated_roles,
            delegation_chain: child
                .delegation_chain
                .iter()
                .map(|l| CreatedLink { agent_id: &l.agent_id, agent_name: &l.agent_name })
                .collect(),
            max_delegation_depth: child.max_delegation_depth,
            expires_at: child.expires_at,
            delegation_scope: child.delegation_scope.as_ref(),
        }
    }
}

/// A verified identity token (`delegation verify --json-output`): `valid` and, for a valid
/// token, the identity with its chain, depth limit and scope; for an invalid one, the reason.
#[derive(Debug, Clone, Serialize)]
pub struct DelegationVerifyReport<'a> {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(flatten)]
    identity: Option<VerifiedIdentity<'a>>,
}

/// The identity a valid token carries, as its report shows it.
#[derive(Debug, Clone, Serialize)]
struct VerifiedIdentity<'a> {
    agent_id: &'a AgentId,
    agent_name: &'a str,
    roles: &'a [String],
    groups: &'a [String],
    delegation_depth: u32,
    delegated_roles: &'a [String],
    delegation_chain: Vec<VerifiedLink<'a>>,
    #[serde(with = "serde_utc::option")]
    issued_at: Option<OffsetDateTime>,
    #[serde(with = "serde_utc::option")]
    expires_at: Option<OffsetDateTime>,
    max_delegation_depth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_scope: Option<&'a DelegationScope>,
}

/// A chain link as a verified token's report shows it.
#[derive(Debug, Clone, Serialize)]
struct VerifiedLink<'a> {
    agent_id: &'a AgentId,
    agent_name: &'a str,
    roles: &'a [String],
    #[serde(with = "serde_utc::option")]
    delegated_at: Option<OffsetDateTime>,
}

impl<'a> VerifiedLink<'a> {
    fn new(link: &'a DelegationLink) -> Self {
        VerifiedLink {
            agent_id: &link.agent_id,
            agent_name: &link.agent_name,
            roles: &link.roles,
            delegated_at: link.delegated_at,
        }
    }
}

impl<'a> DelegationVerifyReport<'a> {
    /// A valid token carrying `identity`.
    pub fn valid(identity: &'a CallerIdentity) -> Self {
        let shown = VerifiedIdentity {
            agent_id: &identity.agent_id,
            agent_name: &identity.agent_name,
            roles: &identity.roles,
            groups: &identity.groups,
            delegation_depth: identity.delegation_depth,
            delegated_roles: &identity.delegated_roles,
            delegation_chain: identity.delegation_chain.iter().map(VerifiedLink::new).collect(),
            issued_at: identity.issued_at,
            expires_at: identity.expires_at,
            max_delegation_depth: identity.max_delegation_depth,
            delegation_scope: identity.delegation_scope.as_ref(),
        };
        DelegationVerifyReport { valid: true, reason: None, identity: Some(shown) }
    }

    /// An invalid or expired token, and why.
    pub fn invalid(reason: impl Into<String>) -> Self {
        DelegationVerifyReport { valid: false, reason: Some(reason.into()), identity: None }
    }
}

#[cfg(test)]
mod tests;
