//! Domain types shared by every agent-safe crate.
//!
//! Nothing here does I/O. The types mirror the Python `agent-safe` models (see
//! `docs/ARCHITECTURE.md`): risk classes and the risk matrix, targets, callers,
//! decisions, execution tickets and audit events, plus the injected [`Clock`]
//! and the one source of randomness ([`random`]).

mod caller;
pub mod canonical;
mod clock;
mod decision;
mod event;
mod executor;
pub mod fsutil;
pub mod glob;
pub mod hex;
mod ids;
#[cfg(any(test, feature = "test-util"))]
pub mod json_paths;
pub mod pyrepr;
pub mod random;
mod risk;
mod secret;
mod target;
pub mod timefmt;

pub use caller::{
    CallerIdentity, DelegationLink, DelegationScope, RecordedCaller, recorded_caller_json,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, ExecutionTicket};
pub use event::{AuditEvent, EventType};
pub use executor::{
    ActionCall, BoxFuture, Credential, CredentialScope, ExecutionOutcome, ExecutionResult,
    ExecutionStatus, Executor, ExecutorError, PreCheckResult, PrecheckSpec, StateMap,
};
pub use ids::{ActionName, AgentId, AuditId, TargetId};
pub use risk::{
    DecisionResult, Environment, ParseEnumError, RiskClass, Sensitivity, effective_risk,
};
pub use secret::{DIGEST_PREFIX, REDACTED, Secret};
pub use target::Target;

/// Request parameters: a JSON object whose key order is the request's order.
pub type Params = serde_json::Map<String, serde_json::Value>;
