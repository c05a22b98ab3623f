//! `AwsExecutor`: the [`Executor`] implementation that maps each of the 13 AWS catalog
//! actions to its API calls, state reads and prechecks.

use agent_safe_core::{
    ActionCall, BoxFuture, ExecutionOutcome, Executor, ExecutorError, PreCheckResult, PrecheckSpec,
    StateMap,
};
use aws_sdk_ec2::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::{AwsConfigError, AwsExecutorConfig};
use crate::error::CallError;
use crate::redact::Redactor;
use crate::request::{self, Parsed, Request};
use crate::session::{Clients, Session};
use crate::spec::{ACTIONS, ActionInfo};
use crate::{ec2, ecs, iam, lambda, s3};

/// Executes the AWS catalog actions with the AWS SDK for Rust.
///
/// Each call builds its clients from the resolved credential (see the crate docs), so one
/// executor serves any number of tickets concurrently. Requests are retried by the SDK's
/// standard retry policy; the runner's timeout bounds the whole call.
#[derive(Debug)]
pub struct AwsExecutor {
    session: Session,
    redactor: Redactor,
}

/// The HTTPS client every executor uses: hyper with rustls on ring, trusting the
/// platform's root certificates. Plain `http://` endpoints (moto, LocalStack) work too.
pub(crate) fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl AwsExecutor {
    /// An executor with `config`. Nothing is loaded until the first call.
    pub fn new(config: AwsExecutorConfig) -> Result<Self, AwsConfigError> {
        config.validate()?;
        Ok(Self::with_http_client(config, https_client()))
    }

    /// An executor whose requests go through `http` (tests replay canned responses).
    pub(crate) fn with_http_client(config: AwsExecutorConfig, http: SharedHttpClient) -> Self {
        let redactor = Redactor::new(config.state_hmac_key.as_ref());
        Self { session: Session::new(config, http), redactor }
    }

    /// The actions this executor implements, with their parameters, state fields,
    /// prechecks and the IAM actions their calls need.
    pub fn actions() -> &'static [ActionInfo] {
        ACTIONS
    }

    async fn prepare(&self, call: &ActionCall<'_>) -> Result<(Parsed, Clients), CallError> {
        let parsed = request::parse(call.action, call.params)
            .map_err(|e| CallError::Refused(e.to_string()))?;
        let clients = self.session.clients(parsed.region.as_deref(), call.credential).await?;
        Ok((parsed, clients))
    }

    async fn run(&self, c: &Clients, request: &Request) -> Result<ExecutionOutcome, CallError> {
        let value = match request {
            Request::Ec2 { op, instance_id } => ec2::execute(&c.ec2(), *op, instance_id).await?,
            Request::EcsService { cluster, service, desired_count, force_new_deployment } => {
                ecs::update_service(
                    &c.ecs(),
                    cluster,
                    service,
                    *desired_count,
                    *force_new_deployment,
                )
                .await?
            }
            Request::EcsStopTask { cluster, task, reason } => {
                ecs::stop_task(&c.ecs(), cluster, task, reason.as_deref()).await?
            }
            Request::LambdaUpdate { function_name, memory_size, timeout, environment } => {
                lambda::update_config(
                    &c.lambda(),
                    function_name,
                    *memory_size,
                    *timeout,
                    environment.as_ref(),
                )
                .await?
            }
            Request::LambdaInvoke { function_name, payload } => {
                return lambda::invoke(&c.lambda(), function_name, payload.as_deref()).await;
            }
            Request::S3DeleteObject { bucket, key } => {
                s3::delete_object(&c.s3(), bucket, key).await?
            }
            Request::S3PutBucketPolicy { bucket, policy } => {
                s3::put_bucket_policy(&c.s3(), bucket, policy).await?
            }
            Request::IamRolePolicy { attach, role_name, policy_arn } => {
                iam::set_attached(&c.iam(), *attach, role_name, policy_arn).await?
            }
        };
        Ok(ExecutionOutcome::success(value.to_string()))
    }

    /// Every state field the executor knows for the request.
    async fn full_state(&self, c: &Clients, request: &Request) -> Result<StateMap, CallError> {
        match request {
            Request::Ec2 { instance_id, .. } => ec2::state(&c.ec2(), instance_id).await,
            Request::EcsService { cluster, service, .. } => {
                ecs::service_state(&c.ecs(), cluster, service).await
            }
            Request::EcsStopTask { cluster, task, .. } => {
                ecs::task_state(&c.ecs(), cluster, task).await
            }
            Request::LambdaUpdate { function_name, .. } => {
                lambda::state_from_configuration(&c.lambda(), function_name, &self.redactor).await
            }
            Request::LambdaInvoke { function_name, .. } => {
                lambda::state_from_function(&c.lambda(), function_name, &self.redactor).await
            }
            Request::S3DeleteObject { bucket, key } => s3::object_state(&c.s3(), bucket, key).await,
            Request::S3PutBucketPolicy { bucket, .. } => s3::policy_state(&c.s3(), bucket).await,
            Request::IamRolePolicy { role_name, .. } => iam::state(&c.iam(), role_name).await,
        }
    }

    async fn precheck(
        &self,
        c: &Clients,
        parsed: &Parsed,
        name: &str,
    ) -> Option<Result<(bool, String), CallError>> {
        if !parsed.info.prechecks.contains(&name) {
            return None;
        }
        match &parsed.request {
            Request::Ec2 { instance_id, .. } => ec2::precheck(&c.ec2(), instance_id, name).await,
            Request::EcsService { cluster, service, .. } => {
                Some(ecs::service_active(&c.ecs(), cluster, service).await)
            }
            Request::EcsStopTask { cluster, task, .. } => {
                Some(ecs::task_running(&c.ecs(), cluster, task).await)
            }
            Request::LambdaUpdate { function_name, .. }
            | Request::LambdaInvoke { function_name, .. } => {
                let state = self.full_state(c, &parsed.request).await;
                Some(lambda::function_exists(function_name, state))
            }
            Request::S3DeleteObject { bucket, key } => {
                Some(s3::object_exists(&c.s3(), bucket, key).await)
            }
            Request::S3PutBucketPolicy { bucket, policy } => Some(match name {
                "policy-well-formed" => Ok(match s3::check_policy(policy) {
                    Ok(()) => (true, "the policy is a JSON policy document".to_owned()),
                    Err(why) => (false, why),
                }),
                _ => s3::bucket_exists(&c.s3(), bucket).await,
            }),
            Request::IamRolePolicy { role_name, policy_arn, .. } => {
                iam::precheck(&c.iam(), role_name, policy_arn, name).await
            }
        }
    }
}

/// A service's refusal is a FAILURE; anything that kept the call from being made is an
/// ERROR.
fn outcome(err: CallError) -> ExecutionOutcome {
    match err {
        CallError::Service { .. } | CallError::NotFound(_) => {
            ExecutionOutcome::failure(err.to_string())
        }
        CallError::Transport(_) | CallError::Refused(_) => ExecutionOutcome::error(err.to_string()),
    }
}

/// Keeps the declared fields, in declared order; all known fields when none are declared.
fn select(mut full: StateMap, declared: &[String]) -> StateMap {
    if declared.is_empty() {
        return full;
    }
    declared.iter().filter_map(|name| full.remove(name).map(|v| (name.clone(), v))).collect()
}

impl Executor for AwsExecutor {
    fn kind(&self) -> &'static str {
        "aws"
    }

    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        Box::pin(async move {
            let (parsed, clients) = match self.prepare(&call).await {
                Ok(p) => p,
                Err(e) => return outcome(e),
            };
            self.run(&clients, &parsed.request).await.unwrap_or_else(outcome)
        })
    }

    fn get_state<'a>(
        &'a self,
        call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        Box::pin(async move {
            let (parsed, clients) =
                self.prepare(&call).await.map_err(|e| ExecutorError::new(e.to_string()))?;
            let full = self
                .full_state(&clients, &parsed.request)
                .await
                .map_err(|e| ExecutorError::new(e.to_string()))?;
            Ok(select(full, call.state_fields))
        })
    }

    fn run_prechecks<'a>(
        &'a self,
        call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        Box::pin(async move {
            let result = |spec: &PrecheckSpec, passed: bool, message: String| PreCheckResult {
                name: spec.name.clone(),
                passed,
                message,
                advisory: !spec.blocking,
            };
            let (parsed, clients) = match self.prepare(&call).await {
                Ok(p) => p,
                Err(e) => {
                    return prechecks
                        .iter()
                        .map(|spec| result(spec, false, format!("precheck could not run: {e}")))
                        .collect();
                }
            };
            let mut results = Vec::with_capacity(prechecks.len());
            for spec in prechecks {
                let (passed, message) = match self.precheck(&clients, &parsed, &spec.name).await {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => (false, format!("precheck could not run: {e}")),
                    None => (
                        false,
                        format!(
                            "the aws executor has no precheck `{}` for `{}`",
                            spec.name, call.action
                        ),
                    ),
                };
                results.push(result(spec, passed, message));
            }
            results
        })
    }
}
