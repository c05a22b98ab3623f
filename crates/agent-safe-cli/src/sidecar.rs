//! What `serve` and `mcp` share: where the configuration comes from, the executor and the
//! execution options of the long-running server behind both.

use std::path::PathBuf;
use std::time::Duration;

use agent_safe::ExecuteOptions;
use agent_safe::ExecutorChoice;
use agent_safe_server::Source;

use crate::Cli;
use crate::executor_args::ExecutorArgs;
use crate::keys::KeyArgs;
use crate::setup::ConfigArgs;

/// The configuration, key, executor and execution options of a server.
#[derive(Debug, clap::Args)]
pub(crate) struct SidecarArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Signing key: verifies identity tokens and signs execution tickets.
    #[command(flatten)]
    key: KeyArgs,
    /// Approval store [default: from agent-safe.yaml (approvals.store), else none]
    #[arg(long, value_name = "FILE")]
    approval_store: Option<PathBuf>,
    /// Seconds the executor may take per execution.
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    execute_timeout: f64,
    /// Let actions that declare credentials run with the executor's own credentials (no vault).
    #[arg(long)]
    ambient_credentials: bool,
    #[command(flatten)]
    vault: crate::vault_args::VaultArgs,
    #[command(flatten)]
    executor: ExecutorArgs,
}

/// `value` seconds as a duration, for `--{flag}`: above 0 and at most a day.
pub(crate) fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        anyhow::bail!(
            "`--{flag}` must be a number of seconds above 0 and at most 86400, got `{value}`"
        );
    }
    Ok(Duration::from_secs_f64(value))
}

impl SidecarArgs {
    /// Where the served configuration comes from: `--config` (or discovery) with the flags'
    /// overrides, re-read on every reload.
    pub(crate) fn source(&self, cli: &Cli) -> anyhow::Result<Source> {
        let mut source = Source::new();
        if let Some(path) = &cli.config {
            source = source.config_file(path);
        }
        if let Some(dir) = &self.config.registry {
            source = source.registry(dir);
        }
        if let Some(dir) = &self.config.policies {
            source = source.policies(dir);
        }
        if let Some(file) = &self.config.inventory {
            source = source.inventory(file);
        }
        if let Some(file) = &self.audit_log {
            source = source.audit_log(file);
        }
        if let Some(file) = &self.approval_store {
            source = source.approval_store(file);
        }
        if let Some(key) = self.key.flag_key()? {
            source = source.signing_key(key);
        }
        if let Some(audience) = &cli.ticket_audience {
            source = source.ticket_audience(audience.clone());
        }
        // A vault flag replaces `credentials.vault` of agent-safe.yaml (which the SDK reads
        // itself, on every reload).
        let clock: std::sync::Arc<dyn agent_safe_core::Clock> =
            std::sync::Arc::new(agent_safe_core::SystemClock);
        if let Some(vault) = self.vault.flag_vault(&clock)? {
            source =
                source.customize(std::sync::Arc::new(move |b| b.credential_vault(vault.clone())));
        }
        Ok(source)
    }

    /// The executor `--executor` names. Its digests of secret state values are keyed with the
    /// flag's signing key, else the configuration's, as `runner execute` does.
    pub(crate) fn executor(&self, cli: &Cli) -> anyhow::Result<ExecutorChoice> {
        let key = match self.key.flag_key()? {
            Some(key) => Some(key),
            None => {
                let config = crate::setup::config_file(cli)?;
                self.key.signing_key(config.as_ref()).ok()
            }
        };
        self.executor.choice(key.as_ref())
    }

    /// Warns on stderr when credentialed actions will run on credentials not limited to
    /// their scope (see `AgentSafe::credential_warning`).
    pub(crate) fn warn_unscoped(
        &self,
        server: &agent_safe_server::Server,
        executor: &agent_safe::ExecutorChoice,
    ) {
        if let Some(warning) =
            server.agent_safe().credential_warning(executor, self.ambient_credentials)
        {
            crate::output::error(&format!("warning: {warning}"));
        }
    }

    /// `--execute-timeout` and `--ambient-credentials`.
    pub(crate) fn execute_options(&self) -> anyhow::Result<ExecuteOptions> {
        Ok(ExecuteOptions {
            timeout: Some(seconds("execute-timeout", self.execute_timeout)?),
            ambient_credentials: self.ambient_credentials,
            ..ExecuteOptions::default()
        })
    }
}
