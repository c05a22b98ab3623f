//! Change control in the SDK: before/after state capture (SPEC §11) and rollback through the
//! policy decision point.
//!
//! - [`AgentSafe::record_before_state`], [`AgentSafe::record_after_state`] and
//!   [`AgentSafe::record_state`] record a `state_capture` event for a decision in the audit
//!   log. The audit id must name a decision in the log; the action, target and caller come from
//!   it. Sensitive state fields (`sensitive: true` in the action's `state_fields`) are
//!   digested with the state key (derived from the signing key; the runner derives the same
//!   one) before they reach the log, or `[redacted]` without a signing key.
//! - [`AgentSafe::get_state_capture`] finds the latest capture of a decision: one the SDK
//!   recorded, one the runner wrote after executing the decision's ticket, or a Python
//!   runner's execution event.
//! - [`AgentSafe::generate_rollback`] plans the rollback of a decision that was allowed
//!   (directly or by an approval) and actually executed (it has a capture that is not a dry
//!   run).
//! - [`AgentSafe::check_rollback`] checks the planned rollback like any other action, as the
//!   original caller, with `correlation_id` set to the original decision's audit id.
//!
//! Lookups by audit id go through the audit store: the file log's sidecar index (`<log>.idx`),
//! so they do not read the whole log (see `agent_safe_audit::AuditIndex`), or the database's
//! indexes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use agent_safe_audit::state::StateCapture;
use agent_safe_audit::state::{CaptureSubject, StateKey, captures_of, redact_state};
use agent_safe_audit::{AuditError, StoredEvent};
use agent_safe_core::{AuditId, Decision, DecisionResult, EventType, StateMap};
pub use agent_safe_rollback::{RollbackError, RollbackPlan};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{AgentSafe, CheckRequest, Error, RequestCaller};

/// Why a state capture or a rollback could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// State capture and rollback read and write the audit log.
    #[error(
        "state capture and rollback need an audit log: pass one to the builder or set `audit_log` in agent-safe.yaml"
    )]
    NoAuditLog,
    /// `record_after_state` without a `record_before_state` first.
    #[error("no before-state recorded for `{audit_id}`; call record_before_state first")]
    NoBeforeState {
        /// The audit id.
        audit_id: String,
    },
    /// The audit id names no decision in the log.
    #[error("no decision event found for audit id `{audit_id}`")]
    NoDecision {
        /// The audit id.
        audit_id: String,
    },
    /// Nothing recorded the state of the decision's execution.
    #[error(
        "no state capture found for `{audit_id}`; run its ticket through the runner, or record \
         state with record_state, before generating a rollback"
    )]
    NoStateCapture {
        /// The audit id.
        audit_id: String,
    },
    /// Only dry runs of the decision were recorded: nothing changed.
    #[error("`{audit_id}` was only dry-run; nothing to roll back")]
    OnlyDryRun {
        /// The audit id.
        audit_id: String,
    },
    /// The decision did not allow the action (and no approval did later).
    #[error(
        "`{audit_id}` was not allowed (decision: {result}); only an allowed action that ran can be rolled back"
    )]
    NotAllowed {
        /// The audit id.
        audit_id: String,
        /// Its decision.
        result: DecisionResult,
    },
    /// The rollback was requested by someone other than the original caller.
    #[error(
        "the rollback of `{audit_id}` is checked as its original caller `{original}`, \
         but the identity presented is `{presented}`"
    )]
    CallerMismatch {
        /// The audit id.
        audit_id: String,
        /// The original caller.
        original: String,
        /// The caller presented for the rollback.
        presented: String,
    },
    /// The action cannot be rolled back (see [`RollbackError`]).
    #[error(transparent)]
    Plan(#[from] RollbackError),
    /// The audit log could not be read or written.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A rollback plan and the decision on it (`agent-safe rollback check --json-output`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackCheck {
    /// The plan.
    pub plan: RollbackPlan,
    /// The decision on the rollback action (its audit event links to the original decision
    /// through `correlation_id`).
    pub decision: Decision,
}

/// The SDK's change-control state: before-states waiting for their after-state.
#[derive(Debug, Default)]
pub(crate) struct ChangeState {
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    subject: CaptureSubject,
    before: StateMap,
    at: OffsetDateTime,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AgentSafe {
    /// Records the state before the action of decision `audit_id` runs (kept in memory until
    /// [`AgentSafe::record_after_state`]; a second call replaces it). Sensitive state fields
    /// are digested right away.
    pub fn record_before_state(&self, audit_id: &str, state: StateMap) -> Result<(), Error> {
        let decision = self.decision_event(audit_id)?;
        let subject = CaptureSubject {
            audit_id: AuditId::new(audit_id),
            action: decision.event.action,
            target: decision.event.target,
            caller: decision.event.caller,
        };
        let before = self.redact_state(&subject.action, &state);
        let at = self.inner.clock.now();
        lock(&self.inner.change.pending)
            .insert(audit_id.to_owned(), Pending { subject, before, at });
        Ok(())
    }

    /// Records the state after the action of decision `audit_id` ran: appends a
    /// `state_capture` event (before, after, their diff, the time between both calls by the
    /// SDK's clock) and returns the capture.
    pub fn record_after_state(
        &self,
        audit_id: &str,
        state: StateMap,
    ) -> Result<StateCapture, Error> {
        self.require_log()?;
        let pending = lock(&self.inner.change.pending)
            .remove(audit_id)
            .ok_or_else(|| ChangeError::NoBeforeState { audit_id: audit_id.to_owned() })?;
        self.finish_capture(pending, &state)
    }

    /// [`AgentSafe::record_before_state`] and [`AgentSafe::record_after_state`] in one call.
    pub fn record_state(
        &self,
        audit_id: &str,
        before: StateMap,
        after: StateMap,
    ) -> Result<StateCapture, Error> {
        let decision = self.decision_event(audit_id)?;
        let subject = CaptureSubject {
            audit_id: AuditId::new(audit_id),
            action: decision.event.action,
            target: decision.event.target,
            caller: decision.event.caller,
        };
        let before = self.redact_state(&subject.action, &before);
        let pending = Pending { subject, before, at: self.inner.clock.now() };
        self.finish_capture(pending, &after)
    }

    /// The latest state capture of decision `audit_id` (SDK-recorded, runner-written, or a
    /// Python runner's execution event), or `None`.
    pub fn get_state_capture(&self, audit_id: &str) -> Result<Option<StateCapture>, Error> {
        let linked = self.require_log()?.linked(audit_id).map_err(ChangeError::from)?;
        Ok(captures_of(&linked, audit_id).pop())
    }

    /// Plans the rollback of decision `audit_id` (SPEC §11). The decision must have allowed
    /// the action (directly, or through an approval) and the action must have run: its latest
    /// capture that is not a dry run provides the before-state.
    pub fn generate_rollback(&self, audit_id: &str) -> Result<RollbackPlan, Error> {
        let decision = self.decision_event(audit_id)?;
        let linked = self.require_log()?.linked(audit_id).map_err(ChangeError::from)?;
        let approved = linked.iter().any(|e| {
            e.event.event_type == EventType::Decision
                && e.event.decision == DecisionResult::Allow
                && e.event.context.as_ref().and_then(|c| c.get("type")).and_then(|t| t.as_str())
                    == Some("approval_resolution")
        });
        if decision.event.decision != DecisionResult::Allow && !approved {
            return Err(ChangeError::NotAllowed {
                audit_id: audit_id.to_owned(),
                result: decision.event.decision,
            }
            .into());
        }
        let captures = captures_of(&linked, audit_id);
        let Some(capture) = captures.iter().rev().find(|c| !c.is_dry_run()) else {
            let audit_id = audit_id.to_owned();
            return Err(if captures.is_empty() {
                ChangeError::NoStateCapture { audit_id }
            } else {
                ChangeError::OnlyDryRun { audit_id }
            }
            .into());
        };
        let now = self.inner.clock.now();
        agent_safe_rollback::plan(self.registry(), &decision.event, capture, now)
            .map_err(|e| ChangeError::Plan(e).into())
    }

    /// Plans the rollback of decision `audit_id` and checks it like any other request: the
    /// rollback action on the original target with the planned params, the original change
    /// ticket id, and `correlation_id` set to `audit_id` (in the decision's audit event).
    ///
    /// The rollback is checked as the original caller. `caller` is how that caller proves
    /// who it is now: an identity token (verified; its roles, groups and delegation chain
    /// are used) that must belong to the original caller, or `None` for the original
    /// caller's plain id (no roles; denied where identity is required). A token of another
    /// agent is an error: another agent requests the rollback action under its own name with
    /// [`AgentSafe::check`].
    pub fn check_rollback(
        &self,
        audit_id: &str,
        caller: Option<&str>,
    ) -> Result<RollbackCheck, Error> {
        let plan = self.generate_rollback(audit_id)?;
        let caller = caller.filter(|c| !c.is_empty());
        if let Some(presented) = caller
            && let Some(identity) =
                self.resolve_caller(RequestCaller::from_input(presented).as_ref()).identity()
            && identity.agent_id.as_str() != plan.original_caller
        {
            return Err(ChangeError::CallerMismatch {
                audit_id: audit_id.to_owned(),
                original: plan.original_caller.clone(),
                presented: identity.agent_id.to_string(),
            }
            .into());
        }
        let original = self.decision_event(audit_id)?;
        let mut request = CheckRequest::new(plan.rollback_action.as_str())
            .target(plan.rollback_target.clone())
            .caller_input(caller.unwrap_or(&plan.rollback_caller))
            .params(plan.rollback_params.clone())
            .correlation_id(audit_id);
        request.ticket_id = original.event.ticket_id;
        let decision = self.check(&request)?;
        Ok(RollbackCheck { plan, decision })
    }

    fn require_log(&self) -> Result<&dyn agent_safe_audit::AuditStore, ChangeError> {
        self.inner.audit.as_deref().ok_or(ChangeError::NoAuditLog)
    }

    fn decision_event(&self, audit_id: &str) -> Result<StoredEvent, ChangeError> {
        self.require_log()?
            .find_decision(audit_id)?
            .ok_or_else(|| ChangeError::NoDecision { audit_id: audit_id.to_owned() })
    }

    /// State as recorded: the action's sensitive state fields digested (or redacted).
    fn redact_state(&self, action: &str, state: &StateMap) -> StateMap {
        let sensitive: Vec<&str> = self.registry().get(action).map_or_else(Vec::new, |a| {
            a.definition()
                .state_fields
                .iter()
                .filter(|f| f.sensitive)
                .map(|f| f.name.as_str())
                .collect()
        });
        let key = self.inner.state_key.as_ref().map(StateKey::new);
        redact_state(state, &sensitive, key.as_ref())
    }

    fn finish_capture(&self, pending: Pending, after: &StateMap) -> Result<StateCapture, Error> {
        let log = self.require_log()?;
        let after = self.redact_state(&pending.subject.action, after);
        let now = self.inner.clock.now();
        let elapsed = now - pending.at;
        let duration_ms = (elapsed.as_seconds_f64() * 1000.0 * 1000.0).round() / 1000.0;
        let declared = self.registry().get(&pending.subject.action).map_or_else(Vec::new, |a| {
            a.definition().state_fields.iter().map(|f| f.name.clone()).collect()
        });
        let capture = StateCapture::new(
            pending.subject,
            pending.before,
            after,
            now,
            duration_ms.max(0.0),
            declared,
        );
        log.append(&capture.to_event())?;
        Ok(capture)
    }
}

#[cfg(test)]
mod tests;
