//! `agent-safe serve`: run agent-safe as a sidecar HTTP/JSON API (see docs/server.md), with
//! SIGHUP reload and graceful shutdown on SIGTERM or ctrl-c.

use std::net::SocketAddr;
use std::sync::Arc;

use agent_safe_server::{
    CallerAuth, CallerRateLimit, EventSink, Server, ServerConfig, ServerEvent,
};
use anyhow::Context as _;

use crate::output::line;
use crate::sidecar::{SidecarArgs, seconds};
use crate::{Cli, exit};

const AFTER_HELP: &str = "\
Every request but /healthz, /readyz, /metrics and /v1/openapi.json needs an identity token as
`Authorization: Bearer <token>` unless --allow-anonymous is given. SIGHUP, and a change of
agent-safe.yaml or of a file it names (see --watch-interval), reload the configuration (a bad
one leaves the old one serving); SIGTERM or ctrl-c finishes the requests in flight, syncs the
audit log and exits.

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
    /// Serve HTTPS with this PEM certificate chain (server certificate first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Require client certificates signed by a CA of this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Seconds between looks at agent-safe.yaml and the files it names; a change reloads as
    /// SIGHUP does (0 = off).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    watch_interval: f64,
    #[command(flatten)]
    sidecar: SidecarArgs,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let source = args.sidecar.source(cli)?;
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
        executor: args.sidecar.executor(cli)?,
        execute: args.sidecar.execute_options()?,
        events: Some(EventSink(Arc::new(report))),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()).map(|(cert_chain, key)| {
            agent_safe_server::TlsConfig { cert_chain, key, client_ca: args.tls_client_ca.clone() }
        }),
        ..ServerConfig::default()
    };
    let watch = if args.watch_interval == 0.0 {
        None
    } else {
        Some(seconds("watch-interval", args.watch_interval)?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listen = config.listen;
        let executor = config.executor.clone();
        let server = Server::new(source, config).context("cannot load configuration")?;
        args.sidecar.warn_unscoped(&server, &executor);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on `{listen}`"))?;
        let bound = listener.local_addr().unwrap_or(listen);
        server.reload_on_sighup()?;
        if let Some(interval) = watch {
            server.reload_on_change(interval);
        }
        // Before the line below: a SIGTERM from whoever reads it must find the handler.
        let shutdown = agent_safe_server::shutdown_signal();
        let revision = server.current().revision.clone();
        let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
        line(&format!(
            "agent-safe serve: listening on {scheme}://{bound} (policy revision {revision})"
        ));
        if args.allow_anonymous {
            crate::output::error(
                "--allow-anonymous: requests without an identity token are accepted",
            );
        }
        server.serve(listener, shutdown).await?;
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
        ServerEvent::CheckpointFailed { error } => {
            crate::output::error(&format!("audit checkpoints: {error}"));
        }
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
