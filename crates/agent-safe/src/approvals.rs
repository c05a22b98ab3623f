//! Approval workflows in the SDK (SPEC §10, tightened): the approval-store options, the request
//! created by [`AgentSafe::check`] for a REQUIRE_APPROVAL, [`AgentSafe::resolve_approval`] and
//! [`AgentSafe::wait_for_approval`], with the `agent-safe-approvals` crate re-exported.
//!
//! Differences from the Python version, in short (see `docs/approvals.md`):
//! - the approver presents an identity token; it must differ from the requester and not be
//!   related to it by delegation; a rule's `approvals: {required, approver_roles}` can ask for
//!   several approvers with given roles;
//! - approving re-checks the stored request against the current policies (a DENY now refuses
//!   the approval) and against the audit event that recorded it (an edited store is refused);
//! - the final approval mints **one** ticket, stored with the request; waiting returns that
//!   same ticket, never a fresh one;
//! - creation, every approval, denial and expiry are audit events linked to the decision.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use agent_safe_core::{
    AuditEvent, AuditId, CallerIdentity, Clock, Decision, DecisionResult, Params, RecordedCaller,
};
use agent_safe_pdp::policy::ApprovalSettings;
use agent_safe_pdp::{Caller, Request};
use agent_safe_tickets::{Expected, TokenError, VerifiedIdentity};
use serde::Deserialize;
use serde_json::json;
use time::Duration;

pub use agent_safe_approvals::*;

use crate::{AgentSafe, Builder, CheckError, CheckRequest, Error, ResolvedCaller};

/// Why an approval operation of the SDK failed. A refusal by the rules is
/// [`ApprovalError::Refused`]; a request that is denied, expired or timed out while waiting is a
/// DENY decision, not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// Notifiers were configured without a store (SPEC §10 message).
    #[error("approval_notifiers requires approval_store to be set")]
    NotifiersWithoutStore,
    /// No approval store is configured.
    #[error(
        "no approval store configured: set one with `Builder::approval_store` or \
         `approvals.store` in agent-safe.yaml"
    )]
    NotConfigured,
    /// The approval TTL is not positive.
    #[error("the approval TTL must be positive, got {0}")]
    InvalidTtl(Duration),
    /// A notifier setting is invalid.
    #[error("approvals.notifiers: {0}")]
    Notifier(#[from] NotifyError),
    /// Resolving needs a signing key to verify the approver's token.
    #[error(
        "resolving an approval needs a signing key to verify the approver's identity token: pass \
         one to the builder or set `signing_key` in agent-safe.yaml"
    )]
    NoSigningKey,
    /// The approver's identity token did not verify.
    #[error("invalid approver token: {0}")]
    ApproverToken(#[source] TokenError),
    /// The store failed or a line of it is unreadable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The approver may not resolve the request (self-approval, delegation relative, role, …).
    #[error(transparent)]
    Refused(#[from] ResolveError),
    /// `wait_for_approval` on an unknown id (SPEC §10 message).
    #[error("Approval request not found: {0}")]
    NotFound(String),
    /// The current policies deny the request: it cannot be approved.
    #[error("approval of `{id}` refused: the current policies deny it: {reason}")]
    PolicyDenies {
        /// The request.
        id: String,
        /// The DENY reason.
        reason: String,
    },
    /// The stored request does not match what the audit log recorded when it was made.
    #[error("approval of `{id}` refused: {detail}")]
    Unbound {
        /// The request.
        id: String,
        /// What does not match.
        detail: String,
    },
    /// An audit event could not be read or written; nothing was changed.
    #[error(transparent)]
    Audit(#[from] agent_safe_audit::AuditError),
    /// The ticket could not be minted; nothing was changed.
    #[error("cannot issue execution ticket: {0}")]
    Ticket(#[source] TokenError),
}

/// The `approvals:` section of `agent-safe.yaml`, with paths resolved against the file's
/// directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalsConfig {
    /// The approval store (`approvals.jsonl`).
    pub store: Option<PathBuf>,
    /// How long requests stay pending, in seconds (default 3600).
    pub ttl_seconds: Option<u64>,
    /// A file holding the approver's identity token, used by `agent-safe approval approve|deny`
    /// when no `--approver-token` is given.
    pub approver_token_file: Option<PathBuf>,
    /// Notifiers (keys of the Python `build_notifiers`).
    pub notifiers: Option<NotifierSettings>,
}

/// The `approvals:` section as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "ApprovalsConfig"))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApprovalsConfig {
    /// The approval store (`approvals.jsonl`): REQUIRE_APPROVAL decisions create requests here.
    #[serde(default)]
    store: Option<PathBuf>,
    /// How long a request stays pending, in seconds.
    #[serde(default)]
    ttl_seconds: Option<u64>,
    /// The file holding the approver's identity token.
    #[serde(default)]
    approver_token_file: Option<PathBuf>,
    /// Webhook and Slack notifications of new requests.
    #[serde(default)]
    notifiers: Option<NotifierSettings>,
}

impl RawApprovalsConfig {
    /// Resolves relative paths against `base` (the config file's directory).
    pub(crate) fn resolve(self, base: &Path) -> ApprovalsConfig {
        let resolve = |p: Option<PathBuf>| {
            p.filter(|p| !p.as_os_str().is_empty())
                .map(|p| if p.is_absolute() { p } else { base.join(p) })
        };
        ApprovalsConfig {
            store: resolve(self.store),
            ttl_seconds: self.ttl_seconds,
            approver_token_file: resolve(self.approver_token_file),
            notifiers: self.notifiers,
        }
    }
}

/// Approval options collected by the builder.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    ttl: Option<Duration>,
    notifiers: Option<Vec<Arc<dyn Notifier>>>,
    retry: Option<RetryPolicy>,
    sleeper: Option<Arc<dyn Sleeper>>,
}

/// The approval machinery of one facade.
#[derive(Debug)]
pub(crate) struct Approvals {
    store: ApprovalStore,
    ttl: Duration,
    dispatcher: Option<Dispatcher>,
    sleeper: Arc<dyn Sleeper>,
}

impl Builder {
    /// The approval store (`approvals.jsonl`): a REQUIRE_APPROVAL decision then creates a
    /// request and carries its id in `request_id`.
    pub fn approval_store(mut self, path: impl Into<PathBuf>) -> Self {
        self.overrides.approval_store = Some(path.into());
        self
    }

    /// How long requests stay pending (default one hour).
    pub fn approval_ttl(mut self, ttl: Duration) -> Self {
        self.approvals.ttl = Some(ttl);
        self
    }

    /// Who is told about new requests (replaces `approvals.notifiers` of the config file).
    /// Requires an approval store.
    pub fn approval_notifiers(mut self, notifiers: Vec<Arc<dyn Notifier>>) -> Self {
        self.approvals.notifiers = Some(notifiers);
        self
    }

    /// Retries of notifications (default: 5 attempts, backoff from 1 s).
    pub fn approval_retry(mut self, retry: RetryPolicy) -> Self {
        self.approvals.retry = Some(retry);
        self
    }

    /// What waits between notification retries and between polls of
    /// [`AgentSafe::wait_for_approval`] (default: tokio's timer). Tests inject one that moves a
    /// manual clock instead of sleeping.
    pub fn approval_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.approvals.sleeper = Some(sleeper);
        self
    }
}

impl Settings {
    /// Builds the approval machinery, or `None` when no store is configured.
    pub(crate) fn build(
        self,
        store: Option<ApprovalStore>,
        config: Option<&ApprovalsConfig>,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<Approvals>, ApprovalError> {
        let notifiers = match (self.notifiers, config.and_then(|c| c.notifiers.as_ref())) {
            (Some(notifiers), _) => notifiers,
            (None, Some(settings)) => build_notifiers(settings)?,
            (None, None) => Vec::new(),
        };
        let Some(store) = store else {
            if notifiers.is_empty() {
                return Ok(None);
            }
            return Err(ApprovalError::NotifiersWithoutStore);
        };
        let configured_ttl = config
            .and_then(|c| c.ttl_seconds)
            .map(|s| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX)));
        let ttl = self.ttl.or(configured_ttl).unwrap_or(DEFAULT_APPROVAL_TTL);
        if !ttl.is_positive() {
            return Err(ApprovalError::InvalidTtl(ttl));
        }
        let sleeper: Arc<dyn Sleeper> = self.sleeper.unwrap_or_else(|| Arc::new(TokioSleeper));
        let dispatcher = (!notifiers.is_empty()).then(|| {
            let recorder = store.clone();
            Dispatcher::new(notifiers, clock.clone())
                .with_retry(self.retry.unwrap_or(RetryPolicy::NOTIFICATIONS))
                .with_sleeper(sleeper.clone())
                .with_outcome_hook(Arc::new(move |d: &Delivery| record_delivery(&recorder, d)))
        });
        Ok(Some(Approvals { store, ttl, dispatcher, sleeper }))
    }
}

/// Writes a notification outcome into its request. Best effort: a failure here must not reach
/// anyone, and an expiry noticed on the way is left for the SDK to record (and audit).
fn record_delivery(store: &ApprovalStore, d: &Delivery) {
    let _ = store.update(&d.request_id, |slot| {
        if slot.expired_now {
            slot.request.status = ApprovalStatus::Pending;
        }
        slot.request.notifications.push(NotificationRecord {
            notifier: d.notifier.clone(),
            delivered: d.delivered(),
            attempts: d.attempts,
            error: d.error.clone(),
            at: slot.now,
        });
        Ok::<_, StoreError>(())
    });
}

/// What an update of the store decided.
enum Outcome {
    /// Resolved (or an approval recorded): the decision to return.
    Resolved(Box<Decision>),
    /// The request had expired; the expiry was recorded.
    Expired,
}

impl AgentSafe {
    /// The approval store, when configured.
    pub fn approval_store(&self) -> Option<&ApprovalStore> {
        self.inner.approvals.as_ref().map(|a| &a.store)
    }

    /// The request `request_id` (lazy expiry applied, nothing written).
    pub fn approval_status(&self, request_id: &str) -> Result<ApprovalRequest, Error> {
        Ok(self.approvals()?.store.get(request_id).map_err(ApprovalError::from)?)
    }

    /// Pending requests and unreadable store lines; empty without a store.
    pub fn list_pending_approvals(&self) -> Result<Listing, Error> {
        match &self.inner.approvals {
            None => Ok(Listing::default()),
            Some(a) => Ok(a.store.list_pending().map_err(ApprovalError::from)?),
        }
    }

    /// Approves or denies request `request_id` as the holder of `approver_token`.
    ///
    /// The token must verify (with the facade's key). The approver must not be the requester or
    /// related to it by delegation, must hold a role the request (and the current policy) asks
    /// for, and must not have approved already. Approving also requires the request to match
    /// the audit event that recorded it (when an audit log is configured) and the current
    /// policies not to deny it. The final approval mints exactly one execution ticket, bound to
    /// the stored params, and stores it with the request. Every approval, the denial and an
    /// expiry found on the way are audit events linked to the original decision. Concurrent
    /// resolutions (threads or processes) are serialised by the store's lock: exactly one sees
    /// the request pending.
    ///
    /// Returns ALLOW with the ticket on the final approval, REQUIRE_APPROVAL when more approvals
    /// are needed, DENY on a denial. Refusals are errors.
    pub fn resolve_approval(
        &self,
        request_id: &str,
        verdict: Verdict,
        approver_token: &str,
        reason: Option<&str>,
    ) -> Result<Decision, Error> {
        let approvals = self.approvals()?;
        let ids = self.inner.identity.as_ref().ok_or(ApprovalError::NoSigningKey)?;
        let approver = ids.validate(approver_token).map_err(ApprovalError::ApproverToken)?;
        let outcome = approvals
            .store
            .update(request_id, |slot| self.resolve_slot(slot, &approver, verdict, reason))?;
        match outcome {
            Outcome::Resolved(decision) => Ok(*decision),
            Outcome::Expired => Err(ApprovalError::Refused(ResolveError::NotPending {
                id: request_id.to_owned(),
                status: ApprovalStatus::Expired,
            })
            .into()),
        }
    }

    /// Waits for request `request_id` to be resolved, polling every `poll_interval` until
    /// `timeout` has passed on the facade's clock.
    ///
    /// Approved → ALLOW with the ticket minted at approval (the same one on every call; a
    /// ticket that no longer validates — expired, used — gives DENY). Denied → DENY `Denied by
    /// …`. Expired → DENY `Request <id> expired` (the expiry is recorded and audited once).
    /// Timeout → DENY `Approval request <id> timed out`; the request stays pending.
    pub async fn wait_for_approval(
        &self,
        request_id: &str,
        timeout: StdDuration,
        poll_interval: StdDuration,
    ) -> Result<Decision, Error> {
        let approvals = self.approvals()?;
        let clock = &self.inner.clock;
        let deadline =
            clock.now().saturating_add(Duration::try_from(timeout).unwrap_or(Duration::MAX));
        let poll = poll_interval.max(StdDuration::from_millis(10));
        loop {
            let request = match approvals.store.get(request_id) {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => {
                    return Err(ApprovalError::NotFound(request_id.to_owned()).into());
                }
                Err(e) => return Err(ApprovalError::from(e).into()),
            };
            match request.status {
                ApprovalStatus::Approved => return Ok(self.approved_decision(&request)),
                ApprovalStatus::Denied => {
                    let by = request.resolved_by.as_deref().unwrap_or("system");
                    return Ok(decision_for(
                        &request,
                        DecisionResult::Deny,
                        format!("Denied by {by}"),
                    ));
                }
                ApprovalStatus::Expired => {
                    self.record_expiry(request_id)?;
                    let reason = format!("Request {request_id} expired");
                    return Ok(decision_for(&request, DecisionResult::Deny, reason));
                }
                ApprovalStatus::Pending => {}
            }
            let now = clock.now();
            if now >= deadline {
                let reason = format!("Approval request {request_id} timed out");
                return Ok(decision_for(&request, DecisionResult::Deny, reason));
            }
            let left = StdDuration::try_from(deadline - now).unwrap_or(StdDuration::ZERO);
            approvals.sleeper.sleep(poll.min(left)).await;
        }
    }

    /// Waits up to `timeout` for queued notifications to be delivered or given up; whether none
    /// is left. Call before a short-lived process exits.
    pub fn flush_notifications(&self, timeout: StdDuration) -> bool {
        self.inner
            .approvals
            .as_ref()
            .and_then(|a| a.dispatcher.as_ref())
            .is_none_or(|d| d.flush(timeout))
    }

    /// Approval notifications dropped so far because the dispatcher's queue was full (the
    /// oldest waiting one is dropped to make room; see `docs/approvals.md`). 0 without
    /// notifiers.
    pub fn notifications_dropped(&self) -> u64 {
        self.inner
            .approvals
            .as_ref()
            .and_then(|a| a.dispatcher.as_ref())
            .map_or(0, Dispatcher::dropped)
    }

    /// Outcomes of the most recent notifications sent by this facade (at most
    /// [`RECENT_DELIVERIES`](agent_safe_approvals::RECENT_DELIVERIES)).
    pub fn notification_deliveries(&self) -> Vec<Delivery> {
        self.inner
            .approvals
            .as_ref()
            .and_then(|a| a.dispatcher.as_ref())
            .map(Dispatcher::deliveries)
            .unwrap_or_default()
    }

    fn approvals(&self) -> Result<&Approvals, ApprovalError> {
        self.inner.approvals.as_ref().ok_or(ApprovalError::NotConfigured)
    }

    /// After `check` decided REQUIRE_APPROVAL: creates the request, records it in the audit log
    /// (linked to the decision), sets `decision.request_id` and queues the notifications.
    pub(crate) fn open_approval(
        &self,
        req: &CheckRequest,
        caller: &ResolvedCaller,
        requirement: Option<ApprovalSettings>,
        decision: &mut Decision,
    ) -> Result<(), CheckError> {
        let Some(approvals) = &self.inner.approvals else { return Ok(()) };
        if decision.result != DecisionResult::RequireApproval {
            return Ok(());
        }
        let requester = match caller {
            ResolvedCaller::Verified(c) => Some(c.to_record()),
            ResolvedCaller::Unverified(c) => {
                Some(RecordedCaller { identity: (**c).clone(), verified: false })
            }
            ResolvedCaller::Anonymous | ResolvedCaller::Rejected(_) => None,
        };
        let requirement = requirement.map_or_else(ApprovalRequirement::default, |r| {
            ApprovalRequirement { required: r.required, approver_roles: r.approver_roles }
        });
        let event_id = self.inner.audit.as_ref().map(|_| AuditId::generate());
        let request = approvals
            .store
            .create(NewRequest {
                audit_id: decision.audit_id.clone(),
                action: decision.action.clone(),
                target: decision.target.clone(),
                caller: decision.caller.clone(),
                params: req.params.clone(),
                risk_class: decision.risk_class,
                effective_risk: decision.effective_risk,
                policy_matched: decision.policy_matched.clone(),
                reason: decision.reason.clone(),
                ticket_id: decision.ticket_id.clone(),
                requester,
                requirement,
                ttl: approvals.ttl,
                request_event_id: event_id.clone(),
            })
            .map_err(ApprovalError::from)?;
        if let (Some(log), Some(event_id)) = (&self.inner.audit, event_id) {
            let context = json!({
                "type": "approval_request",
                "request_id": request.request_id,
                "original_audit_id": request.audit_id,
                "params_digest": request.params_digest,
                "binding_digest": request.binding_digest(),
                "expires_at": agent_safe_core::timefmt::format_utc(request.expires_at),
                "required_approvals": request.required_approvals,
                "approver_roles": request.approver_roles,
            });
            let reason = format!("Approval requested: {}", request.request_id);
            log.append(&event(
                &request,
                event_id,
                request.created_at,
                DecisionResult::RequireApproval,
                reason,
                context,
            ))?;
        }
        decision.request_id = Some(request.request_id.clone());
        if let Some(dispatcher) = &approvals.dispatcher {
            // Notifications get the audit log's view of the params: sensitive values redacted.
            let mut shown = request;
            shown.params = self.redacted(&req.action, &req.params);
            dispatcher.dispatch(&shown);
        }
        Ok(())
    }

    /// The body of [`resolve_approval`](Self::resolve_approval), under the store's lock.
    fn resolve_slot(
        &self,
        slot: &mut Slot,
        approver: &VerifiedIdentity,
        verdict: Verdict,
        reason: Option<&str>,
    ) -> Result<Outcome, ApprovalError> {
        let now = slot.now;
        if slot.expired_now {
            self.expire(slot)?;
            return Ok(Outcome::Expired);
        }
        // Who may act is checked before anything more expensive.
        check_approver(&slot.request, approver, verdict, None)?;
        let mut current = None;
        if verdict == Verdict::Approve {
            self.check_binding(&slot.request)?;
            let evaluation = self.reevaluate(&slot.request, now);
            match evaluation.decision.result {
                DecisionResult::Deny => {
                    return Err(ApprovalError::PolicyDenies {
                        id: slot.request.request_id.clone(),
                        reason: evaluation.decision.reason,
                    });
                }
                DecisionResult::RequireApproval => {
                    current = evaluation.approval_requirement.map(|r| ApprovalRequirement {
                        required: r.required,
                        approver_roles: r.approver_roles,
                    });
                }
                DecisionResult::Allow => {}
            }
        }
        let progress = record(&mut slot.request, approver, verdict, reason, now, current.as_ref())?;
        let request = &mut slot.request;
        if progress == Progress::Approved
            && let Some(issuer) = &self.inner.tickets
        {
            let ticket = issuer
                .issue(
                    request.action.as_str(),
                    request.target.as_str(),
                    request.caller.as_str(),
                    &request.params,
                    request.audit_id.as_str(),
                )
                .map_err(ApprovalError::Ticket)?;
            request.ticket = Some(ticket);
        }
        let suffix = reason.filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default();
        let by = &approver.agent_id;
        let (result, audit_reason, decision_reason) = match progress {
            Progress::Approved => {
                let all: Vec<&str> = request.approvals.iter().map(|a| a.by.as_str()).collect();
                (
                    DecisionResult::Allow,
                    format!("Approval approved by {by}{suffix}"),
                    format!("Approved by {}", all.join(", ")),
                )
            }
            Progress::Recorded { approvals, required } => (
                DecisionResult::RequireApproval,
                format!("Approval {approvals} of {required} recorded by {by}{suffix}"),
                format!(
                    "Approval {approvals} of {required} recorded (by {by}); waiting for {} more",
                    required - approvals
                ),
            ),
            Progress::Denied => (
                DecisionResult::Deny,
                format!("Approval denied by {by}{suffix}"),
                format!("Denied by {by}"),
            ),
        };
        if let Some(log) = &self.inner.audit {
            let context = json!({
                "type": "approval_resolution",
                "request_id": request.request_id,
                "original_audit_id": request.audit_id,
                "resolved_by": by,
                "resolution": verdict.as_str(),
                "approvals": request.approvals.len(),
                "required_approvals": request
                    .required_approvals
                    .max(current.as_ref().map_or(1, |c| c.required)),
                "final": !matches!(progress, Progress::Recorded { .. }),
                "ticket_nonce": request.ticket.as_ref().map(|t| t.nonce.clone()),
            });
            log.append(&event(request, AuditId::generate(), now, result, audit_reason, context))?;
        }
        let mut decision = decision_for(request, result, decision_reason);
        decision.ticket.clone_from(&request.ticket);
        Ok(Outcome::Resolved(Box::new(decision)))
    }

    /// Records (and audits) the expiry of the request in `slot`.
    fn expire(&self, slot: &mut Slot) -> Result<(), ApprovalError> {
        let request = &mut slot.request;
        request.resolved_at = Some(slot.now);
        request.resolved_by = Some("system".to_owned());
        request.resolution_reason = Some(format!(
            "not resolved before {}",
            agent_safe_core::timefmt::format_utc(request.expires_at)
        ));
        if let Some(log) = &self.inner.audit {
            let context = json!({
                "type": "approval_resolution",
                "request_id": request.request_id,
                "original_audit_id": request.audit_id,
                "resolved_by": "system",
                "resolution": "expire",
            });
            let reason = format!("Approval request {} expired", request.request_id);
            log.append(&event(
                request,
                AuditId::generate(),
                slot.now,
                DecisionResult::Deny,
                reason,
                context,
            ))?;
        }
        Ok(())
    }

    /// Records the expiry of `request_id` if nobody has yet.
    fn record_expiry(&self, request_id: &str) -> Result<(), ApprovalError> {
        self.approvals()?.store.update(request_id, |slot| {
            if slot.expired_now {
                self.expire(slot)?;
            }
            Ok::<_, ApprovalError>(())
        })
    }

    /// With an audit log: the request must be the one its creation event recorded.
    fn check_binding(&self, request: &ApprovalRequest) -> Result<(), ApprovalError> {
        let Some(log) = &self.inner.audit else { return Ok(()) };
        let unbound =
            |detail: String| ApprovalError::Unbound { id: request.request_id.clone(), detail };
        let Some(event_id) = &request.request_event_id else {
            return Err(unbound(
                "it names no creation event, so it cannot be checked against the audit log"
                    .to_owned(),
            ));
        };
        let found = log.find_decision(event_id.as_str())?;
        let Some(found) = found else {
            return Err(unbound(format!(
                "its creation event `{event_id}` is not in the audit log `{}`",
                log.location()
            )));
        };
        let context = found.event.context.unwrap_or_default();
        let recorded = (
            context.get("type").and_then(|v| v.as_str()),
            context.get("request_id").and_then(|v| v.as_str()),
            context.get("binding_digest").and_then(|v| v.as_str()),
        );
        let expected = request.binding_digest();
        if recorded
            != (
                Some("approval_request"),
                Some(request.request_id.as_str()),
                Some(expected.as_str()),
            )
        {
            return Err(unbound(format!(
                "it does not match what audit event `{event_id}` recorded when it was made (the \
                 approval store was edited)"
            )));
        }
        Ok(())
    }

    /// The stored request evaluated against the current policies (rules only: no rate limit or
    /// cumulative risk, which counted the request when it was made).
    fn reevaluate(
        &self,
        request: &ApprovalRequest,
        now: time::OffsetDateTime,
    ) -> agent_safe_pdp::Evaluation {
        let plain;
        // The stored requester is trusted as recorded: the store is bound to the audit event
        // of its decision (checked before this), which records whether it was verified.
        let caller = match &request.requester {
            Some(r) if r.verified => Caller::Verified(&r.identity),
            Some(r) => Caller::Unverified(&r.identity),
            None if request.caller == "anonymous" => Caller::Anonymous,
            None => {
                plain = CallerIdentity::unverified(request.caller.clone());
                Caller::Unverified(&plain)
            }
        };
        let req = Request {
            action: request.action.as_str(),
            target: Some(request.target.as_str()),
            caller,
            params: &request.params,
            ticket_id: request.ticket_id.as_deref(),
        };
        self.inner.pdp.evaluate_rules_only(&req, now)
    }

    /// ALLOW with the stored ticket when it still validates; DENY otherwise.
    fn approved_decision(&self, request: &ApprovalRequest) -> Decision {
        let approvers: Vec<&str> = request.approvals.iter().map(|a| a.by.as_str()).collect();
        let by = if approvers.is_empty() {
            request.resolved_by.clone().unwrap_or_else(|| "unknown".to_owned())
        } else {
            approvers.join(", ")
        };
        let id = &request.request_id;
        let Some(validator) = &self.inner.ticket_validator else {
            // No signing key: no tickets (as in the Python version); the store is the record.
            return decision_for(request, DecisionResult::Allow, format!("Approved by {by}"));
        };
        let Some(ticket) = &request.ticket else {
            return decision_for(
                request,
                DecisionResult::Deny,
                format!(
                    "Approval request {id} is marked approved but holds no ticket (approved \
                     elsewhere or edited by hand); request approval again"
                ),
            );
        };
        let expected = Expected {
            action: Some(request.action.as_str()),
            target: Some(request.target.as_str()),
            params: Some(&request.params),
        };
        match validator.verify_without_consuming(&ticket.token, &expected) {
            Ok(_) => {
                let mut d =
                    decision_for(request, DecisionResult::Allow, format!("Approved by {by}"));
                d.ticket = Some(ticket.clone());
                d
            }
            Err(e) => decision_for(
                request,
                DecisionResult::Deny,
                format!("Approval request {id} was approved, but its ticket cannot be used: {e}"),
            ),
        }
    }
}

/// A decision about a stored request: the original audit id, the request id, its risks.
fn decision_for(request: &ApprovalRequest, result: DecisionResult, reason: String) -> Decision {
    Decision {
        result,
        reason,
        action: request.action.clone(),
        target: request.target.clone(),
        caller: request.caller.clone(),
        risk_class: request.risk_class,
        effective_risk: request.effective_risk,
        policy_matched: request.policy_matched.clone(),
        audit_id: request.audit_id.clone(),
        ticket: None,
        request_id: Some(request.request_id.clone()),
        ticket_id: request.ticket_id.clone(),
        cumulative_risk_score: None,
        cumulative_risk_class: None,
        escalated_from: None,
    }
}

/// An audit event about `request`, linked to its decision (`correlation_id` and
/// `context.original_audit_id`); params are not repeated (they are in the decision's event).
fn event(
    request: &ApprovalRequest,
    event_id: AuditId,
    at: time::OffsetDateTime,
    result: DecisionResult,
    reason: String,
    context: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        event_id,
        correlation_id: Some(request.audit_id.to_string()),
        context: Some(context),
        ..AuditEvent::decision(&decision_for(request, result, reason), at, Params::new())
    }
}

#[cfg(test)]
mod tests;
