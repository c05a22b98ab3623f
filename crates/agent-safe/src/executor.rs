//! The one executor factory: [`ExecutorChoice`] names an executor and builds it, the same way
//! for `agent-safe runner execute`, `agent-safe serve` (`POST /v1/execute`) and `agent-safe mcp`.

use std::fmt;
use std::sync::Arc;

use agent_safe_core::{Clock, Executor};
use agent_safe_executor_kubectl::KubectlConfig;

/// An executor by name, with its settings.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ExecutorChoice {
    /// No side effects (the ticket is still used up, the execution still audited).
    #[default]
    DryRun,
    /// `kubectl`, one argument per value, never a shell.
    Subprocess(KubectlConfig),
    /// The Kubernetes API (feature `k8s`).
    #[cfg(feature = "k8s")]
    K8s(agent_safe_executor_k8s::K8sSettings),
    /// The AWS APIs (feature `aws`).
    #[cfg(feature = "aws")]
    Aws(agent_safe_executor_aws::AwsExecutorConfig),
    /// An executor of your own.
    Custom(Arc<dyn Executor>),
}

/// Why an executor could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the `{name}` executor: {message}")]
#[non_exhaustive]
pub struct ExecutorError {
    /// Which executor.
    pub name: &'static str,
    /// Why.
    pub message: String,
}

impl ExecutorChoice {
    /// Whether the executor acts with credentials (all but the dry-run executor; see
    /// [`Executor::uses_credentials`]).
    pub fn uses_credentials(&self) -> bool {
        match self {
            Self::DryRun => false,
            Self::Custom(executor) => executor.uses_credentials(),
            _ => true,
        }
    }

    /// The executor this choice names (`clock` is the Kubernetes executor's).
    pub fn build(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Executor>, ExecutorError> {
        let _ = &clock;
        Ok(match self {
            ExecutorChoice::DryRun => Arc::new(agent_safe_runner::DryRunExecutor),
            ExecutorChoice::Subprocess(config) => {
                Arc::new(agent_safe_executor_kubectl::SubprocessExecutor::new(config.clone()))
            }
            #[cfg(feature = "k8s")]
            ExecutorChoice::K8s(settings) => {
                Arc::new(agent_safe_executor_k8s::K8sExecutor::new(settings.clone(), clock))
            }
            #[cfg(feature = "aws")]
            ExecutorChoice::Aws(config) => Arc::new(
                agent_safe_executor_aws::AwsExecutor::new(config.clone())
                    .map_err(|e| ExecutorError { name: "aws", message: e.to_string() })?,
            ),
            ExecutorChoice::Custom(executor) => executor.clone(),
        })
    }

    /// The executor's name, as `--executor` spells it (`custom` for your own).
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorChoice::DryRun => "dry-run",
            ExecutorChoice::Subprocess(_) => "subprocess",
            #[cfg(feature = "k8s")]
            ExecutorChoice::K8s(_) => "k8s",
            #[cfg(feature = "aws")]
            ExecutorChoice::Aws(_) => "aws",
            ExecutorChoice::Custom(_) => "custom",
        }
    }
}

impl fmt::Debug for ExecutorChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ExecutorChoice::DryRun => "DryRun",
            ExecutorChoice::Subprocess(_) => "Subprocess",
            #[cfg(feature = "k8s")]
            ExecutorChoice::K8s(_) => "K8s",
            #[cfg(feature = "aws")]
            ExecutorChoice::Aws(_) => "Aws",
            ExecutorChoice::Custom(_) => "Custom",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_what_it_names() {
        let clock: Arc<dyn Clock> = Arc::new(agent_safe_core::SystemClock);
        let dry = ExecutorChoice::default();
        assert_eq!(format!("{dry:?}"), "DryRun");
        assert_eq!(dry.name(), "dry-run");
        let built = dry.build(clock.clone()).unwrap();
        assert_eq!(built.kind(), agent_safe_runner::DryRunExecutor.kind());
        let custom = ExecutorChoice::Custom(built.clone());
        assert!(Arc::ptr_eq(&custom.build(clock).unwrap(), &built), "your own executor as given");
    }
}
