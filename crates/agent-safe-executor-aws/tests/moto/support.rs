//! Test support: moto from `agent_safe_testkit::moto` (one server per test binary,
//! tests serialised, moto reset before each); a runner-like `run` (validate params against
//! the catalog, prechecks, before-state, execute, after-state) and rollback params computed
//! from the catalog's `rollback_params`.

use std::path::Path;
use std::sync::LazyLock;

use agent_safe_core::{
    ActionCall, Credential, CredentialScope, ExecutionOutcome, ExecutionStatus, Executor, Params,
    PreCheckResult, PrecheckSpec, Secret, StateMap,
};
use agent_safe_executor_aws::AwsExecutor;
use agent_safe_registry::Registry;
use agent_safe_testkit::moto as testing;
pub use agent_safe_testkit::moto::{ACCOUNT, REGION};
use aws_config::SdkConfig;
use serde_json::Value;

static CATALOG: LazyLock<Registry> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
    Registry::load_dir(&dir).unwrap()
});

/// A test's view of moto: exclusive while it lives, freshly reset.
pub struct Moto {
    pub executor: AwsExecutor,
    pub sdk: SdkConfig,
    credential: Credential,
    _moto: testing::Moto,
}

/// What the runner would record for one execution.
#[derive(Debug)]
pub struct Run {
    pub prechecks: Vec<PreCheckResult>,
    pub before: StateMap,
    pub outcome: ExecutionOutcome,
    pub after: StateMap,
}

/// moto, reset and exclusive, or `None` (with a loud message) when there is none.
pub async fn moto(test: &str) -> Option<Moto> {
    let moto = testing::moto(test).await.unwrap()?;
    Some(Moto {
        executor: AwsExecutor::new(agent_safe_executor_aws::AwsExecutorConfig {
            region: Some(REGION.into()),
            endpoint_url: Some(moto.endpoint().to_owned()),
            ..Default::default()
        })
        .unwrap(),
        sdk: moto.sdk_config().await,
        credential: credential(),
        _moto: moto,
    })
}

/// The credential the runner would resolve: static keys (moto accepts any).
pub fn credential() -> Credential {
    Credential {
        credential_id: "cred-0123456789ab".into(),
        kind: "aws".into(),
        payload: Secret::new(testing::credential_payload()),
        expires_at: time::macros::datetime!(2099-01-01 00:00 UTC),
        scope: CredentialScope { kind: "aws".into(), fields: Default::default(), ttl: 300 },
        ticket_nonce: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn params(value: Value) -> Params {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object: {other}"),
    }
}

fn declared_state_fields(action: &str) -> Vec<String> {
    let def = CATALOG.get(action).unwrap().definition();
    def.state_fields.iter().map(|f| f.name.clone()).collect()
}

impl Moto {
    fn call<'a>(
        &'a self,
        action: &'a str,
        params: &'a Params,
        fields: &'a [String],
    ) -> ActionCall<'a> {
        ActionCall {
            action,
            target: "test/target",
            params,
            credential: Some(&self.credential),
            state_fields: fields,
        }
    }

    /// `execute` alone.
    pub async fn execute(&self, action: &str, p: Value) -> ExecutionOutcome {
        let p = params(p);
        self.executor.execute(self.call(action, &p, &[])).await
    }

    /// `get_state` with the action's declared state fields.
    pub async fn state(&self, action: &str, p: Value) -> Result<StateMap, String> {
        let p = params(p);
        let fields = declared_state_fields(action);
        self.executor.get_state(self.call(action, &p, &fields)).await.map_err(|e| e.message)
    }

    /// The action's declared prechecks (all blocking, as `agent-safe-runner` treats them).
    pub async fn prechecks(&self, action: &str, p: Value) -> Vec<PreCheckResult> {
        let p = params(p);
        let def = CATALOG.get(action).unwrap().definition();
        let specs: Vec<PrecheckSpec> = def
            .prechecks
            .iter()
            .map(|p| PrecheckSpec {
                name: p.name.clone(),
                description: p.description.clone(),
                blocking: true,
            })
            .collect();
        self.executor.run_prechecks(self.call(action, &p, &[]), &specs).await
    }

    /// What the runner does with a ticket: the params must pass the catalog's validation;
    /// prechecks; before-state; execute; after-state (only after success, `{}` on error).
    pub async fn run(&self, action: &str, p: Value) -> Run {
        let errors = CATALOG.get(action).unwrap().validate_params(&params(p.clone()));
        assert!(errors.is_empty(), "the catalog refuses {action} {p}: {errors:?}");
        let prechecks = self.prechecks(action, p.clone()).await;
        let before = self.state(action, p.clone()).await.unwrap_or_default();
        let outcome = self.execute(action, p.clone()).await;
        let after = if outcome.status == ExecutionStatus::Success {
            self.state(action, p).await.unwrap_or_default()
        } else {
            StateMap::new()
        };
        Run { prechecks, before, outcome, after }
    }

    /// The rollback of `run`: the declared rollback action with params from the catalog's
    /// `rollback_params` (`params.x` from the original params, `before_state.x` from the
    /// before-state), run like any other action.
    pub async fn rollback(&self, action: &str, original: Value, run: &Run) -> (String, Value, Run) {
        let def = CATALOG.get(action).unwrap().definition();
        let rollback_action = def.rollback_action.as_ref().unwrap().to_string();
        let mut out = serde_json::Map::new();
        for (name, source) in &def.rollback_params {
            let value = match source.source.split_once('.') {
                Some(("params", field)) => original.get(field).cloned(),
                Some(("before_state", field)) => run.before.get(field).cloned(),
                _ => panic!("bad source {}", source.source),
            };
            if let Some(value) = value {
                out.insert(name.clone(), value);
            }
        }
        let rollback_params = Value::Object(out);
        let rollback_run = self.run(&rollback_action, rollback_params.clone()).await;
        (rollback_action, rollback_params, rollback_run)
    }
}

/// Asserts a successful run whose prechecks all passed.
#[track_caller]
pub fn assert_success(run: &Run) {
    assert_eq!(run.outcome.status, ExecutionStatus::Success, "{run:#?}");
    assert!(run.prechecks.iter().all(|p| p.passed), "{run:#?}");
}

/// Asserts a FAILURE whose error contains `code`.
#[track_caller]
pub fn assert_failure(outcome: &ExecutionOutcome, code: &str) {
    assert_eq!(outcome.status, ExecutionStatus::Failure, "{outcome:#?}");
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("AWS API error: ") && error.contains(code), "{outcome:#?}");
}

/// The output JSON of a successful outcome.
#[track_caller]
pub fn output(outcome: &ExecutionOutcome) -> Value {
    serde_json::from_str(&outcome.output).unwrap_or_else(|e| panic!("{e}: {}", outcome.output))
}

/// One precheck's result by name.
#[track_caller]
pub fn precheck<'a>(results: &'a [PreCheckResult], name: &str) -> &'a PreCheckResult {
    results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no {name} in {results:?}"))
}
