//! agent-safe approval workflows: the request model, a durable store that is safe under
//! concurrent processes, the rules for who may approve, and webhook/Slack notifiers sent off the
//! decision path.
//!
//! - [`ApprovalRequest`]: SPEC §10's model plus the requester's identity, a params digest, the
//!   approval requirement (`required_approvals`, `approver_roles`), the approvals given, the one
//!   ticket minted on approval and notification outcomes.
//! - [`ApprovalStore`]: the store a process uses: creation times, lazy expiry and the one
//!   write path ([`ApprovalStore::update`]: exactly one concurrent resolution wins), over an
//!   [`ApprovalBackend`]: [`FileApprovalStore`] (`approvals.jsonl`, one sorted-key JSON object
//!   per line; appends and atomic rewrites under an OS lock; unreadable lines are reported with
//!   their line number and never dropped) or PostgreSQL (`agent-safe-postgres`).
//! - [`rules`]: the approver must be a verified identity, not the requester, not related to it
//!   by delegation, hold a required role, and a two-person rule needs distinct approvers.
//! - [`Dispatcher`]: webhook and Slack notifications with a timeout, retries and backoff, on a
//!   background thread, from a bounded queue (the oldest waiting notification is dropped and
//!   counted when it is full).
//!
//! The SDK (`agent-safe`) ties these to decisions, policies, tickets and the audit log. See
//! `docs/approvals.md`.
//!
//! ```
//! use std::sync::Arc;
//! use agent_safe_approvals::{ApprovalStatus, ApprovalStore, NewRequest, ApprovalRequirement};
//! use agent_safe_core::{ManualClock, RiskClass};
//! use time::macros::datetime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 10:00 UTC)));
//! let store = ApprovalStore::new(dir.path().join("approvals.jsonl"), clock.clone());
//! let request = store.create(NewRequest {
//!     audit_id: "evt-0123456789ab".into(),
//!     action: "restart-deployment".into(),
//!     target: "prod/api-server".into(),
//!     caller: "deploy-bot".into(),
//!     params: Default::default(),
//!     risk_class: RiskClass::Medium,
//!     effective_risk: RiskClass::Critical,
//!     policy_matched: Some("require-approval-prod".into()),
//!     reason: "Production changes need approval".into(),
//!     ticket_id: None,
//!     requester: None,
//!     requirement: ApprovalRequirement::default(),
//!     ttl: time::Duration::hours(1),
//!     request_event_id: None,
//! })?;
//! assert_eq!(store.list_pending()?.requests.len(), 1);
//! clock.advance(time::Duration::minutes(61));
//! assert_eq!(store.get(&request.request_id)?.status, ApprovalStatus::Expired);
//! # Ok(())
//! # }
//! ```

mod backend;
mod dispatch;
mod model;
mod notify;
pub mod rules;
mod store;

pub use backend::{ApprovalBackend, ApprovalStore, Slot, UpdateFn};
pub use dispatch::{
    DEFAULT_CONCURRENCY, DEFAULT_QUEUE_CAPACITY, Delivery, Dispatcher, OutcomeHook,
    RECENT_DELIVERIES, RetryPolicy, Sleeper, TokioSleeper,
};
pub use model::{
    Approval, ApprovalRequest, ApprovalRequirement, ApprovalStatus, DEFAULT_APPROVAL_TTL,
    NewRequest, NotificationRecord, REQUEST_ID_PREFIX,
};
pub use notify::{
    DEFAULT_NOTIFY_TIMEOUT, Message, Notifier, NotifierSettings, NotifyError, SlackNotifier,
    WebhookNotifier, build_notifiers, isoformat, slack_text, webhook_payload,
};
pub use rules::{Progress, ResolveError, Verdict, check_approver, record};
pub use store::{CorruptLine, FileApprovalStore, Listing, StoreError, read_request};

/// The contract every [`ApprovalBackend`] keeps, for backends' tests (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod store_contract;
