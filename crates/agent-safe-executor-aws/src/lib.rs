//! The AWS executor of agent-safe: runs the 13 AWS catalog actions (EC2 stop, start, reboot,
//! terminate; ECS update-service, scale-service, stop-task; Lambda update-function-config,
//! invoke-function; S3 delete-object, put-bucket-policy; IAM attach/detach-role-policy) on
//! the AWS SDK for Rust, behind the [`Executor`](agent_safe_core::Executor) trait.
//!
//! - **Credentials per call**, never from a mutated process environment: the resolved
//!   credential's `access_key_id` + `secret_access_key` (+ `session_token`), else its
//!   `profile_name`, else (no credential) the configured profile or the SDK's default
//!   chain. A credential that is present but unusable is an error, not a fallback.
//! - **Region** from the `region` parameter, then [`AwsExecutorConfig::region`], then the
//!   SDK's region chain.
//! - **Outcomes**: an error answered by AWS is a FAILURE with the AWS error code and
//!   message; an error that kept the request from being answered (configuration,
//!   credentials, network) is an ERROR.
//! - **State** uses the `state_fields` names of the action YAML (`state`, `desired_count`,
//!   `policy`, `attached_policies`…), so `before_state.<field>` rollback sources resolve.
//!   Lambda environment variable values are reported only as keyed digests.
//!
//! ```no_run
//! use agent_safe_core::{ActionCall, Executor, Params};
//! use agent_safe_executor_aws::{AwsExecutor, AwsExecutorConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = AwsExecutor::new(AwsExecutorConfig {
//!     region: Some("eu-west-1".into()),
//!     ..AwsExecutorConfig::default()
//! })?;
//! let params: Params = serde_json::from_str(
//!     r#"{"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}"#,
//! )?;
//! let fields = ["state".to_owned()];
//! let call = ActionCall {
//!     action: "ec2-stop-instance",
//!     target: "prod/web-1",
//!     params: &params,
//!     credential: None,
//!     state_fields: &fields,
//! };
//! let before = executor.get_state(call).await?;
//! let outcome = executor.execute(call).await;
//! println!("{before:?} -> {:?}: {}", outcome.status, outcome.output);
//! # Ok(())
//! # }
//! ```

mod config;
mod ec2;
mod ecs;
mod error;
mod executor;
mod iam;
mod lambda;
mod redact;
#[cfg(test)]
mod replay_tests;
mod request;
mod s3;
mod session;
mod spec;

pub use config::{AwsConfigError, AwsExecutorConfig};
pub use executor::AwsExecutor;
pub use lambda::INVOKE_PAYLOAD_CAP;
pub use spec::{ActionInfo, ParamInfo, ParamKind};
