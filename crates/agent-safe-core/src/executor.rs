//! The executor interface (SPEC §12.1): what the runner calls to act on a target, read its
//! state and run prechecks. Object-safe (`Arc<dyn Executor>`), async via boxed futures, so this
//! crate needs no async runtime; the runner enforces timeouts around every call.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::secret::Secret;
use crate::timefmt::serde_utc;
use crate::{AuditId, Params};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The scope of a just-in-time credential, from the action's `credentials` block with
/// `{{ params.x }}` templates resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialScope {
    /// Credential type, e.g. `kubernetes` or `aws`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Resolved scope fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Lifetime in seconds.
    pub ttl: u64,
}

/// A credential issued for one execution. The payload is secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// `cred-` + 12 hex digits.
    pub credential_id: String,
    /// Credential type.
    pub kind: String,
    /// The secret material (e.g. `token`, `kubeconfig`, `access_key_id`…).
    pub payload: Secret<serde_json::Map<String, serde_json::Value>>,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// The scope it was issued for.
    pub scope: CredentialScope,
    /// Nonce of the ticket it was issued for.
    pub ticket_nonce: String,
}

/// One call to an executor: which action, on what, with which params and credential.
#[derive(Debug, Clone, Copy)]
pub struct ActionCall<'a> {
    /// Action name.
    pub action: &'a str,
    /// Target id.
    pub target: &'a str,
    /// Exactly the params the ticket permits.
    pub params: &'a Params,
    /// The resolved credential, if the action declares one.
    pub credential: Option<&'a Credential>,
    /// Names of the state fields the action declares (`state_fields`), in order.
    pub state_fields: &'a [String],
}

/// Outcome status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Done.
    Success,
    /// The target refused or the operation failed.
    Failure,
    /// Did not finish in time.
    Timeout,
    /// Not run (dry run, blocking precheck).
    Skipped,
    /// Could not be attempted (bad ticket, configuration, executor error).
    Error,
}

impl ExecutionStatus {
    /// The name used in JSON and the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Success => "success",
            ExecutionStatus::Failure => "failure",
            ExecutionStatus::Timeout => "timeout",
            ExecutionStatus::Skipped => "skipped",
            ExecutionStatus::Error => "error",
        }
    }
}

/// What an executor reports for one `execute` call.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutcome {
    /// Status.
    pub status: ExecutionStatus,
    /// Human-readable output (e.g. a summary of the API response).
    pub output: String,
    /// Error message for failure/error/timeout.
    pub error: Option<String>,
}

impl ExecutionOutcome {
    /// A success with `output`.
    pub fn success(output: impl Into<String>) -> Self {
        Self { status: ExecutionStatus::Success, output: output.into(), error: None }
    }

    /// A failure (the target refused) with `error`.
    pub fn failure(error: impl Into<String>) -> Self {
        Self { status: ExecutionStatus::Failure, output: String::new(), error: Some(error.into()) }
    }

    /// An error (could not be attempted) with `error`.
    pub fn error(error: impl Into<String>) -> Self {
        Self { status: ExecutionStatus::Error, output: String::new(), error: Some(error.into()) }
    }
}

/// A declared precheck (from the action's `prechecks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecheckSpec {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether a failure stops execution.
    pub blocking: bool,
}

/// The result of one precheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckResult {
    /// Precheck name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Explanation.
    #[serde(default)]
    pub message: String,
    /// Advisory (true) or blocking (false).
    #[serde(default = "yes")]
    pub advisory: bool,
}

fn yes() -> bool {
    true
}

/// Observed state of a target: the declared state fields (or, for executors that cannot
/// know them, whatever they read).
pub type StateMap = serde_json::Map<String, serde_json::Value>;

/// Why an executor could not read state or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecutorError {
    /// What went wrong.
    pub message: String,
}

impl ExecutorError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// A backend that acts on targets. Implementations: the runner's dry-run and kubectl
/// executors, `agent-safe-executor-k8s`, `agent-safe-executor-aws`.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// The executor type recorded in results (`dry-run`, `kubectl`, `k8s`, `aws`).
    fn kind(&self) -> &'static str;

    /// Whether the executor acts with credentials at all. `false` only for executors that
    /// touch nothing (the dry-run executor): the runner then resolves no credential for them,
    /// so a first run needs no vault, while every real executor stays gated.
    fn uses_credentials(&self) -> bool {
        true
    }

    /// Performs the action.
    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome>;

    /// Reads the target's current state.
    fn get_state<'a>(
        &'a self,
        call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>>;

    /// Runs the declared prechecks.
    fn run_prechecks<'a>(
        &'a self,
        call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>>;
}

/// The full record of one governed execution (SPEC §12.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionResult {
    /// Status.
    pub status: ExecutionStatus,
    /// Action name.
    pub action: String,
    /// Target id.
    pub target: String,
    /// Caller id.
    pub caller: String,
    /// Audit id of the decision that issued the ticket.
    pub audit_id: String,
    /// Nonce of the ticket.
    #[serde(default)]
    pub ticket_nonce: String,
    /// Output.
    #[serde(default)]
    pub output: String,
    /// Error.
    #[serde(default)]
    pub error: Option<String>,
    /// Wall time in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<f64>,
    /// Precheck results.
    #[serde(default)]
    pub precheck_results: Vec<PreCheckResult>,
    /// State before.
    #[serde(default)]
    pub before_state: StateMap,
    /// State after.
    #[serde(default)]
    pub after_state: StateMap,
    /// When it ran.
    #[serde(default, with = "serde_utc::option")]
    pub executed_at: Option<OffsetDateTime>,
    /// Executor type.
    #[serde(default)]
    pub executor_type: String,
    /// Audit id of the execution event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_audit_id: Option<AuditId>,
}
