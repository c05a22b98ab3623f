//! `agent-safe serve`: run agent-safe as a sidecar HTTP/JSON API (see docs/server.md), with
//! SIGHUP reload and graceful shutdown on SIGTERM or ctrl-c.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_safe::ExecuteOptions;
use agent_safe::runner::KubectlConfig;
use agent_safe_server::{
    CallerAuth, CallerRateLimit, EventSink, ExecutorChoice, Server, ServerConfig, ServerEvent,
    Source,
};
use anyhow::Context as _;

use crate::output::line;
use crate::runner::ExecutorKind;
use crate::setup::ConfigArgs;
use crate::{Cli, exit};

const AFTER_HELP: &str = "\
Every request but /healthz, /readyz, /metrics and /v1/openapi.json needs an identity token as
`Authorization: Bearer <token>` unless --allow-anonymous is given. SIGHUP reloads the
configuration (a bad one leaves the old one serving); SIGTERM or ctrl-c finishes the requests
in flight, syncs the audit log and exits.

Exit codes:
  0  stopped after SIGTERM or ctrl-c
  2  usage or configuration error (bad flags or configuration, no signing key, address in use)";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Address to listen on (loopback by default; anything else exposes the API).
    #[arg(long, default_value = "127.0.0.1:8411", value_name = "ADDR")]
    listen: SocketAddr,
    /// Accept requests without an identity token, using the body's `caller` (local development
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
    /// Largest request body, in bytes (413 above).
    #[arg(long, default_value_t = 65_536, value_name = "BYTES")]
    body_limit: usize,
    /// Seconds a request may take, reading its body included (408 after).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    request_timeout: f64,
    /// Seconds a client may take to send the request headers.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    header_timeout: f64,
    /// Requests per second allowed per caller (429 above) [default: no limit]
    #[arg(long, value_name = "PER_SECOND")]
    rate_limit: Option<f64>,
    /// Burst of the per-caller rate limit.
    #[arg(long, default_value_t = 20, value_name = "N", requires = "rate_limit")]
    rate_burst: u32,
    /// The executor for POST /v1/execute.
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

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        anyhow::bail!(
            "`--{flag}` must be a number of seconds above 0 and at most 86400, got `{value}`"
        );
    }
    Ok(Duration::from_secs_f64(value))
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
    let rate_limit = match args.rate_limit {
        Some(per_second) if per_second.is_finite() && per_second > 0.0 => {
            Some(CallerRateLimit { per_second, burst: args.rate_burst.max(1) })
        }
        Some(other) => anyhow::bail!("`--rate-limit` must be a positive number, got `{other}`"),
        None => None,
    };
    let config = ServerConfig {
        listen: args.listen,
        auth: if args.allow_anonymous { CallerAuth::AllowAnonymous } else { CallerAuth::Required },
        body_limit: args.body_limit,
        request_timeout: seconds("request-timeout", args.request_timeout)?,
        header_timeout: seconds("header-timeout", args.header_timeout)?,
        rate_limit,
        executor: executor(args, cli, signing_key.as_ref())?,
        execute: ExecuteOptions {
            timeout: Some(seconds("execute-timeout", args.execute_timeout)?),
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
        let listen = config.listen;
        let server = Server::new(source, config).context("cannot load configuration")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        let bound = listener.local_addr().unwrap_or(listen);
        server.reload_on_sighup()?;
        let revision = server.current().revision.clone();
        line(&format!(
            "agent-safe serve: listening on http://{bound} (policy revision {revision})"
        ));
        if args.allow_anonymous {
            crate::output::error(
                "--allow-anonymous: requests without an identity token are accepted",
            );
        }
        server.serve(listener, agent_safe_server::shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

/// Prints what the server reports (stdout for progress, stderr for problems).
fn report(event: &ServerEvent) {
    match event {
        ServerEvent::Reloaded { revision } => {
            line(&format!("agent-safe serve: reloaded (policy revision {revision})"));
        }
        ServerEvent::ReloadFailed { error } => crate::output::error(&format!(
            "reload failed, the previous configuration keeps serving: {error}"
        )),
        ServerEvent::ShuttingDown => line("agent-safe serve: shutting down"),
        ServerEvent::Stopped { detail } => {
            for problem in detail {
                crate::output::error(problem);
            }
            line("agent-safe serve: stopped");
        }
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
