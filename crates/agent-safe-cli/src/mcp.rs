//! `agent-safe mcp`: the Model Context Protocol tool server on stdin/stdout (see docs/mcp.md).
//! stdout is the protocol: everything this command reports goes to stderr.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_safe::ExecuteOptions;
use agent_safe::runner::KubectlConfig;
use agent_safe_server::mcp::McpServer;
use agent_safe_server::{
    CallerAuth, EventSink, ExecutorChoice, Server, ServerConfig, ServerEvent, Source,
};
use anyhow::Context as _;

use crate::runner::ExecutorKind;
use crate::setup::ConfigArgs;
use crate::{Cli, exit};

const AFTER_HELP: &str = "\
Speaks MCP (JSON-RPC, one message per line) on stdin/stdout; logs go to stderr. Register it
with an MCP client as a stdio server, e.g. {\"command\": \"agent-safe\", \"args\": [\"mcp\"],
\"env\": {\"AGENT_SAFE_IDENTITY_TOKEN\": \"<token>\"}}. The identity token is verified at start
and again on every call; without one, --allow-anonymous lets the tools take a `caller`.
SIGHUP reloads the configuration (a bad one leaves the old one serving).

Exit codes:
  0  the client closed stdin
  2  usage or configuration error (bad flags or configuration, missing or invalid token)";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// The agent's identity token (`delegation` commands issue them).
    #[arg(long, env = "AGENT_SAFE_IDENTITY_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    identity_token: Option<String>,
    /// Run without an identity token: the tools take a `caller` argument (local development
    /// only).
    #[arg(long)]
    allow_anonymous: bool,
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Signing key: verifies identity tokens and signs execution tickets.
    #[command(flatten)]
    key: crate::keys::KeyArgs,
    /// Approval store [default: from agent-safe.yaml (approvals.store), else none]
    #[arg(long, value_name = "FILE")]
    approval_store: Option<PathBuf>,
    /// The executor execute_action runs allowed actions with.
    #[arg(long, value_enum, default_value = "dry-run")]
    executor: ExecutorKind,
    /// Seconds the executor may take per execution.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    execute_timeout: f64,
    /// Let actions that declare credentials run with the executor's own credentials (no vault).
    #[arg(long)]
    ambient_credentials: bool,
    /// kubectl binary (subprocess executor).
    #[arg(long, value_name = "PATH")]
    kubectl_path: Option<PathBuf>,
    /// Kubeconfig file (subprocess and k8s executors).
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
    /// Named profile (aws executor).
    #[arg(long, value_name = "NAME")]
    aws_profile: Option<String>,
    /// Endpoint for every AWS service (aws executor).
    #[arg(long, value_name = "URL")]
    aws_endpoint_url: Option<String>,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let mut source = Source::new();
    if let Some(path) = &cli.config {
        source = source.config_file(path);
    }
    if let Some(dir) = &args.config.registry {
        source = source.registry(dir);
    }
    if let Some(dir) = &args.config.policies {
        source = source.policies(dir);
    }
    if let Some(file) = &args.config.inventory {
        source = source.inventory(file);
    }
    if let Some(file) = &args.audit_log {
        source = source.audit_log(file);
    }
    if let Some(file) = &args.approval_store {
        source = source.approval_store(file);
    }
    let signing_key = args.key.flag_key()?;
    if let Some(key) = &signing_key {
        source = source.signing_key(key.clone());
    }
    let timeout = args.execute_timeout;
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 86_400.0) {
        anyhow::bail!(
            "`--execute-timeout` must be a number of seconds above 0 and at most 86400, got \
             `{timeout}`"
        );
    }
    let config = ServerConfig {
        auth: if args.allow_anonymous { CallerAuth::AllowAnonymous } else { CallerAuth::Required },
        executor: executor(args, cli, signing_key.as_ref())?,
        execute: ExecuteOptions {
            timeout: Some(Duration::from_secs_f64(timeout)),
            ambient_credentials: args.ambient_credentials,
            ..ExecuteOptions::default()
        },
        events: Some(EventSink(Arc::new(report))),
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::new(source, config).context("cannot load configuration")?;
        server.reload_on_sighup()?;
        let revision = server.current().revision.clone();
        let mcp = McpServer::new(server, args.identity_token.clone())?;
        let who = mcp.agent_id().map_or_else(
            || "anonymous callers (--allow-anonymous)".to_owned(),
            |id| format!("agent `{id}`"),
        );
        eprintln!("agent-safe mcp: serving {who} on stdio (policy revision {revision})");
        mcp.serve_stdio().await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

/// Reports what the server says, on stderr (stdout is the protocol).
fn report(event: &ServerEvent) {
    match event {
        ServerEvent::Reloaded { revision } => {
            eprintln!("agent-safe mcp: reloaded (policy revision {revision})");
        }
        ServerEvent::ReloadFailed { error } => crate::output::error(&format!(
            "reload failed, the previous configuration keeps serving: {error}"
        )),
        _ => {}
    }
}

fn executor(
    args: &Args,
    cli: &Cli,
    signing_key: Option<&agent_safe::tickets::SigningKey>,
) -> anyhow::Result<ExecutorChoice> {
    let _ = (cli, signing_key);
    Ok(match args.executor {
        ExecutorKind::DryRun => ExecutorChoice::DryRun,
        ExecutorKind::Subprocess => ExecutorChoice::Subprocess(KubectlConfig {
            kubectl_path: args.kubectl_path.clone().unwrap_or_else(|| PathBuf::from("kubectl")),
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        }),
        #[cfg(feature = "k8s")]
        ExecutorKind::K8s => ExecutorChoice::K8s(agent_safe::k8s::K8sSettings {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            in_cluster: args.in_cluster,
        }),
        #[cfg(feature = "aws")]
        ExecutorKind::Aws => {
            // The same key for digests of secret state values as `runner execute` uses.
            let config = crate::setup::config_file(cli)?;
            let key = match signing_key {
                Some(k) => Some(k.clone()),
                None => args.key.signing_key(config.as_ref()).ok(),
            };
            let key = key.map(|k| {
                agent_safe::core::Secret::new(
                    k.derive_secret(crate::runner::AWS_STATE_KEY_CONTEXT).expose().to_vec(),
                )
            });
            ExecutorChoice::Aws(agent_safe::aws::AwsExecutorConfig {
                region: args.aws_region.clone(),
                profile: args.aws_profile.clone(),
                endpoint_url: args.aws_endpoint_url.clone(),
                state_hmac_key: key,
            })
        }
        #[cfg(not(feature = "k8s"))]
        ExecutorKind::K8s => anyhow::bail!(
            "the `k8s` executor is not compiled into this agent-safe binary: install it with \
             `cargo install agent-safe-cli --features k8s`"
        ),
        #[cfg(not(feature = "aws"))]
        ExecutorKind::Aws => anyhow::bail!(
            "the `aws` executor is not compiled into this agent-safe binary: install it with \
             `cargo install agent-safe-cli --features aws`"
        ),
    })
}
