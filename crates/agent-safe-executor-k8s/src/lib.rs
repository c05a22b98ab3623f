//! The Kubernetes executor: the catalog's Kubernetes actions as API calls on kube-rs.
//!
//! [`K8sExecutor`] implements [`agent_safe_core::Executor`] (`kind() == "k8s"`). Each call
//! builds its client from the call's resolved credential (a kubeconfig, a bearer token with
//! the API server URL and CA bundle, or the in-cluster service account) or, without one,
//! from [`K8sSettings`]; nothing process-wide is changed (see [`client_config`]).
//!
//! - `execute` makes the action's API calls: patches and applies carry the field manager
//!   `agent-safe`; API refusals become FAILURE with the status code and message, connection
//!   and configuration problems ERROR.
//! - `get_state` returns the action's declared `state_fields` under their YAML names.
//! - `run_prechecks` answers each declared precheck with API reads.
//!
//! The mapping of every action, its API calls and the RBAC it needs are in
//! `docs/executors/kubernetes.md`.
//!
//! ```
//! use std::sync::Arc;
//! use agent_safe_core::{Executor, SystemClock};
//! use agent_safe_executor_k8s::{K8sExecutor, K8sSettings};
//!
//! // Connects per call: with the call's credential, else the kubeconfig's `staging` context.
//! let settings = K8sSettings { context: Some("staging".into()), ..K8sSettings::default() };
//! let executor = K8sExecutor::new(settings, Arc::new(SystemClock));
//! assert_eq!(executor.kind(), "k8s");
//! assert!(agent_safe_executor_k8s::supported_actions().any(|a| a == "drain-node"));
//! ```

mod actions;
mod client;
mod drain;
mod error;
mod params;
mod prechecks;
mod rollout;
mod state;

use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::{
    ActionCall, BoxFuture, Clock, ExecutionOutcome, Executor, ExecutorError, PreCheckResult,
    PrecheckSpec, StateMap,
};
use kube::api::PatchParams;

pub use client::{ClientError, K8sSettings, build_client, client_config};
pub use drain::{DEFAULT_DRAIN_TIMEOUT, EVICTION_RETRY_INTERVAL};
pub use state::REDACTED;

use actions::Ctx;
use agent_safe_k8s_actions::K8sAction;
use error::StepError;
use params::P;

/// The field manager recorded on every object the executor writes.
pub const FIELD_MANAGER: &str = "agent-safe";

/// The catalog actions this executor performs, in catalog order. `exec-pod` and
/// `port-forward` are not among them (they need a streaming connection): they are ERROR.
pub fn supported_actions() -> impl Iterator<Item = &'static str> {
    K8sAction::ALL.into_iter().filter(|a| !a.is_streaming()).map(K8sAction::name)
}

/// The Kubernetes executor.
pub struct K8sExecutor {
    source: Source,
    clock: Arc<dyn Clock>,
    retry_interval: Duration,
}

enum Source {
    Settings(K8sSettings),
    Fixed(kube::Client),
}

impl std::fmt::Debug for K8sExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Settings(s) => format!("{s:?}"),
            Source::Fixed(_) => "fixed client".to_owned(),
        };
        f.debug_struct("K8sExecutor").field("source", &source).finish_non_exhaustive()
    }
}

impl K8sExecutor {
    /// An executor that connects per call: with the call's credential when it has one,
    /// else as `settings` say. `clock` stamps restarts (`kubectl.kubernetes.io/restartedAt`).
    pub fn new(settings: K8sSettings, clock: Arc<dyn Clock>) -> Self {
        Self { source: Source::Settings(settings), clock, retry_interval: EVICTION_RETRY_INTERVAL }
    }

    /// An executor that sends every call through `client` and ignores call credentials
    /// (for embedding with an already configured client, and for tests against a mock API).
    pub fn with_client(client: kube::Client, clock: Arc<dyn Clock>) -> Self {
        Self { source: Source::Fixed(client), clock, retry_interval: EVICTION_RETRY_INTERVAL }
    }

    /// The client for one call.
    async fn client(&self, call: &ActionCall<'_>) -> Result<kube::Client, StepError> {
        match &self.source {
            Source::Fixed(client) => Ok(client.clone()),
            Source::Settings(settings) => {
                let config = client_config(call.credential, settings)
                    .await
                    .map_err(|e| StepError::Invalid(format!("kubernetes configuration: {e}")))?;
                build_client(config)
                    .map_err(|e| StepError::Invalid(format!("kubernetes configuration: {e}")))
            }
        }
    }

    async fn context<'a>(&self, call: &ActionCall<'a>) -> Result<(K8sAction, Ctx<'a>), StepError> {
        let action = actions::parse(call.action)?;
        let client = self.client(call).await?;
        let cx = Ctx {
            client,
            params: P(call.params),
            now: self.clock.now(),
            retry_interval: self.retry_interval,
        };
        Ok((action, cx))
    }
}

/// Patch parameters with the `agent-safe` field manager.
pub(crate) fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..PatchParams::default() }
}

impl Executor for K8sExecutor {
    fn kind(&self) -> &'static str {
        "k8s"
    }

    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        Box::pin(async move {
            let result = match self.context(&call).await {
                Ok((action, cx)) => actions::execute(action, cx).await,
                Err(e) => Err(e),
            };
            result.unwrap_or_else(StepError::into_outcome)
        })
    }

    fn get_state<'a>(
        &'a self,
        call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        Box::pin(async move {
            let (action, cx) = self.context(&call).await?;
            Ok(state::read(action, cx, call.state_fields).await?)
        })
    }

    fn run_prechecks<'a>(
        &'a self,
        call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        Box::pin(async move {
            match self.context(&call).await {
                Ok((action, cx)) => prechecks::run_all(action, cx, prechecks).await,
                Err(e) => prechecks
                    .iter()
                    .map(|spec| PreCheckResult {
                        name: spec.name.clone(),
                        passed: false,
                        message: e.to_string(),
                        advisory: !spec.blocking,
                    })
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_kubernetes_action_but_the_streaming_ones() {
        let names: Vec<&str> = supported_actions().collect();
        assert_eq!(names.len(), 18);
        for name in &names {
            assert_eq!(actions::parse(name).map(K8sAction::name).ok(), Some(*name));
        }
        let err = actions::parse("exec-pod").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "no Kubernetes API mapping for action `exec-pod` (it needs a streaming connection; use the kubectl executor)"
            )
        );
    }
}
