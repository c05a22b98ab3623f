//! `agent-safe mcp`: the Model Context Protocol tool server on stdin/stdout (see docs/mcp.md).
//! stdout is the protocol: everything this command reports goes to stderr.

use std::sync::Arc;

use agent_safe_server::mcp::McpServer;
use agent_safe_server::{CallerAuth, EventSink, Server, ServerConfig, ServerEvent};
use anyhow::Context as _;

use crate::sidecar::SidecarArgs;
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
    sidecar: SidecarArgs,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let source = args.sidecar.source(cli)?;
    let config = ServerConfig {
        auth: if args.allow_anonymous { CallerAuth::AllowAnonymous } else { CallerAuth::Required },
        executor: args.sidecar.executor(cli)?,
        execute: args.sidecar.execute_options()?,
        events: Some(EventSink(Arc::new(report))),
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let executor = config.executor.clone();
        let server = Server::new(source, config).context("cannot load configuration")?;
        args.sidecar.warn_unscoped(&server, &executor);
        server.reload_on_sighup()?;
        let revision = server.current().revision.clone();
        let mcp = McpServer::new(server, args.identity_token.clone())?;
        let who = mcp.agent_id().map_or_else(
            || "anonymous callers (--allow-anonymous)".to_owned(),
            |id| format!("agent `{id}`"),
        );
        crate::output::note(&format!(
            "agent-safe mcp: serving {who} on stdio (policy revision {revision})"
        ));
        mcp.serve_stdio().await?;
        anyhow::Ok(())
    })?;
    Ok(exit::OK)
}

/// Reports what the server says, on stderr (stdout is the protocol).
fn report(event: &ServerEvent) {
    match event {
        ServerEvent::Reloaded { revision } => {
            crate::output::note(&format!("agent-safe mcp: reloaded (policy revision {revision})"));
        }
        ServerEvent::ReloadFailed { error } => crate::output::error(&format!(
            "reload failed, the previous configuration keeps serving: {error}"
        )),
        ServerEvent::CheckpointFailed { error } => {
            crate::output::error(&format!("audit checkpoints: {error}"));
        }
        _ => {}
    }
}
