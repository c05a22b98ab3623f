//! The executor options `runner execute`, `serve` and `mcp` share, and the executor they name.

use std::path::PathBuf;

use agent_safe::ExecutorChoice;
use agent_safe::kubectl::KubectlConfig;
use agent_safe_tickets::SigningKey;

/// Which executor acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecutorKind {
    /// No side effects: reports what would be executed (the ticket is still used up).
    DryRun,
    /// `kubectl`, one argument per value, never a shell.
    #[value(alias = "kubectl")]
    Subprocess,
    /// The Kubernetes API (feature `k8s`).
    K8s,
    /// The AWS APIs (feature `aws`).
    Aws,
}

/// `--executor` and the options of each executor.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecutorArgs {
    /// The executor that runs allowed actions.
    #[arg(long, value_enum, default_value = "dry-run")]
    executor: ExecutorKind,
    /// kubectl binary (subprocess executor).
    #[arg(long, value_name = "PATH")]
    kubectl_path: Option<PathBuf>,
    /// Kubeconfig file (subprocess and k8s executors) [default: $KUBECONFIG or ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (subprocess and k8s executors).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Use the pod's service account (k8s executor).
    #[arg(long)]
    in_cluster: bool,
    /// Region when the action's params name none (aws executor).
    #[arg(long, value_name = "REGION")]
    aws_region: Option<String>,
    /// Named profile for calls without a vault credential (aws executor).
    #[arg(long, value_name = "NAME")]
    aws_profile: Option<String>,
    /// Endpoint for every AWS service, e.g. LocalStack or moto (aws executor).
    #[arg(long, value_name = "URL")]
    aws_endpoint_url: Option<String>,
}

/// The key context of the AWS executor's digests of secret state values.
#[cfg(feature = "aws")]
const AWS_STATE_KEY_CONTEXT: &str = "agent-safe aws executor state digest v1";

impl ExecutorArgs {
    /// The executor the options name. `signing_key` (the private key, when there is one) keys
    /// the AWS executor's digests of secret state values, so they are stable across runs and
    /// the same for `runner execute`, `serve` and `mcp`.
    pub(crate) fn choice(
        &self,
        signing_key: Option<&SigningKey>,
    ) -> anyhow::Result<ExecutorChoice> {
        Ok(match self.executor {
            ExecutorKind::DryRun => ExecutorChoice::DryRun,
            ExecutorKind::Subprocess => ExecutorChoice::Subprocess(KubectlConfig {
                kubectl_path: self.kubectl_path.clone().unwrap_or_else(|| PathBuf::from("kubectl")),
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
            }),
            #[cfg(feature = "k8s")]
            ExecutorKind::K8s => ExecutorChoice::K8s(agent_safe::k8s::K8sSettings {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
                in_cluster: self.in_cluster,
            }),
            #[cfg(feature = "aws")]
            ExecutorKind::Aws => ExecutorChoice::Aws(agent_safe::aws::AwsExecutorConfig {
                region: self.aws_region.clone(),
                profile: self.aws_profile.clone(),
                endpoint_url: self.aws_endpoint_url.clone(),
                state_hmac_key: signing_key.map(|k| {
                    agent_safe_core::Secret::new(
                        k.derive_secret(AWS_STATE_KEY_CONTEXT).expose().to_vec(),
                    )
                }),
            }),
            #[cfg(not(feature = "k8s"))]
            ExecutorKind::K8s => not_compiled("k8s")?,
            #[cfg(not(feature = "aws"))]
            ExecutorKind::Aws => {
                let _ = signing_key;
                not_compiled("aws")?
            }
        })
    }
}

#[cfg(not(all(feature = "k8s", feature = "aws")))]
fn not_compiled(name: &str) -> anyhow::Result<ExecutorChoice> {
    anyhow::bail!(
        "the `{name}` executor is not compiled into this agent-safe binary: install it with \
         `cargo install agent-safe-cli --features {name}` (or use `--executor subprocess` for \
         kubectl)"
    )
}
