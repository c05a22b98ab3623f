//! The dry-run executor (SPEC §12.3): does nothing, says what it would have done.

use agent_safe_core::{
    ActionCall, BoxFuture, ExecutionOutcome, ExecutionStatus, Executor, ExecutorError,
    PreCheckResult, PrecheckSpec, StateMap,
};

/// An executor without side effects: `execute` is SKIPPED with the output
/// `[dry-run] Would execute <action> on <target>`, `get_state` is empty, and every precheck
/// passes with the message `[dry-run] skipped`. Kind `dry-run`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DryRunExecutor;

impl DryRunExecutor {
    /// The output of a dry-run execution.
    pub fn output(action: &str, target: &str) -> String {
        format!("[dry-run] Would execute {action} on {target}")
    }
}

impl Executor for DryRunExecutor {
    fn kind(&self) -> &'static str {
        "dry-run"
    }

    fn uses_credentials(&self) -> bool {
        false
    }

    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        let outcome = ExecutionOutcome {
            status: ExecutionStatus::Skipped,
            output: Self::output(call.action, call.target),
            error: None,
        };
        Box::pin(async move { outcome })
    }

    fn get_state<'a>(
        &'a self,
        _call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        Box::pin(async { Ok(StateMap::new()) })
    }

    fn run_prechecks<'a>(
        &'a self,
        _call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        let results = prechecks
            .iter()
            .map(|spec| PreCheckResult {
                name: spec.name.clone(),
                passed: true,
                message: "[dry-run] skipped".to_owned(),
                advisory: !spec.blocking,
            })
            .collect();
        Box::pin(async move { results })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_safe_core::Params;

    #[tokio::test]
    async fn does_nothing_and_says_so() {
        let params = Params::new();
        let call = ActionCall {
            action: "restart-deployment",
            target: "dev/app",
            params: &params,
            credential: None,
            state_fields: &[],
        };
        let ex = DryRunExecutor;
        let outcome = ex.execute(call).await;
        assert_eq!(outcome.status, ExecutionStatus::Skipped);
        assert_eq!(outcome.output, "[dry-run] Would execute restart-deployment on dev/app");
        assert_eq!(ex.get_state(call).await, Ok(StateMap::new()));
        let specs = [
            PrecheckSpec { name: "a".into(), description: String::new(), blocking: false },
            PrecheckSpec { name: "b".into(), description: String::new(), blocking: true },
        ];
        let results = ex.run_prechecks(call, &specs).await;
        assert_eq!(
            results.iter().map(|r| (r.name.as_str(), r.passed, r.advisory)).collect::<Vec<_>>(),
            [("a", true, true), ("b", true, false)]
        );
        assert!(results.iter().all(|r| r.message == "[dry-run] skipped"));
        assert_eq!(ex.kind(), "dry-run");
    }
}
