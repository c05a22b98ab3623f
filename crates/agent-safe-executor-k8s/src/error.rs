//! How API and client errors become outcomes: a status from the API server is the target
//! refusing (FAILURE, with code and message); anything else means the call could not be made
//! (ERROR).

use agent_safe_core::{ExecutionOutcome, ExecutorError};

/// Why one step of an action did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// The API server answered with a `Status` failure.
    #[error("{}", api_message(.0))]
    Api(Box<kube::core::Status>),
    /// The request could not be made or its answer not read.
    #[error("kubernetes client error: {0}")]
    Client(#[source] kube::Error),
    /// The params or the cluster's objects do not allow the action (no API refusal).
    #[error("{0}")]
    Refused(String),
    /// The call is malformed (bad params, unknown action): it was not attempted.
    #[error("{0}")]
    Invalid(String),
}

impl StepError {
    /// The HTTP status code of an API refusal.
    pub(crate) fn code(&self) -> Option<u16> {
        match self {
            StepError::Api(status) => Some(status.code),
            _ => None,
        }
    }

    /// Whether the API said the object does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// The outcome for an `execute` that stopped here.
    pub(crate) fn into_outcome(self) -> ExecutionOutcome {
        match self {
            StepError::Api(_) | StepError::Refused(_) => {
                ExecutionOutcome::failure(self.to_string())
            }
            StepError::Client(_) | StepError::Invalid(_) => {
                ExecutionOutcome::error(self.to_string())
            }
        }
    }
}

impl From<kube::Error> for StepError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => StepError::Api(status),
            other => StepError::Client(other),
        }
    }
}

impl From<StepError> for ExecutorError {
    fn from(e: StepError) -> Self {
        ExecutorError::new(e.to_string())
    }
}

fn api_message(status: &kube::core::Status) -> String {
    let reason = if status.reason.is_empty() { "Failure" } else { status.reason.as_str() };
    if status.message.is_empty() {
        format!("kubernetes API error ({} {reason})", status.code)
    } else {
        format!("kubernetes API error ({} {reason}): {}", status.code, status.message)
    }
}
