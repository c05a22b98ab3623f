//! The runner's error: the one failure that is not an outcome.

use crate::RunOutcome;

/// Why a run could not be completed as a recorded outcome. Everything else (an invalid
/// ticket, a missing action, a credential failure, an executor failure, a timeout) is a
/// [`RunOutcome`] with its status, and is in the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The outcome could not be written to the audit log. The run happened as `outcome`
    /// says (the action may have been executed); the caller must treat it as unrecorded.
    #[error("the execution outcome ({}) could not be written to the audit log: {source}", outcome.result.status.as_str())]
    Audit {
        /// What happened.
        outcome: Box<RunOutcome>,
        /// The audit log's error.
        #[source]
        source: agent_safe_audit::AuditError,
    },
}
