//! Resolving paths and settings: explicit flag > `agent-safe.yaml` > built-in default.

use std::path::PathBuf;
use std::sync::OnceLock;

use agent_safe::{Builder, ConfigFile, Defaults, Overrides, Resolved};
use anyhow::Context as _;

use crate::Cli;

/// The options every command that loads configuration shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ConfigArgs {
    /// Actions directory [default: from agent-safe.yaml, else ./actions]
    #[arg(long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
    /// Policies directory [default: from agent-safe.yaml, else ./policies]
    #[arg(long, value_name = "DIR")]
    pub(crate) policies: Option<PathBuf>,
    /// Inventory file [default: from agent-safe.yaml, else ./inventory.yaml if it exists]
    #[arg(long, value_name = "FILE")]
    pub(crate) inventory: Option<PathBuf>,
}

/// The config file in effect: `--config`, or one discovered from the current directory.
pub(crate) fn config_file(cli: &Cli) -> anyhow::Result<Option<ConfigFile>> {
    let path = match &cli.config {
        Some(path) => Some(path.clone()),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            ConfigFile::discover(&cwd)
        }
    };
    path.map(|p| ConfigFile::load(&p).map_err(anyhow::Error::from)).transpose()
}

impl ConfigArgs {
    /// The flags as overrides of `agent-safe.yaml` (the SDK applies the precedence).
    pub(crate) fn overrides(&self) -> Overrides {
        let mut o = Overrides::default();
        o.registry.clone_from(&self.registry);
        o.policies.clone_from(&self.policies);
        o.inventory.clone_from(&self.inventory);
        o
    }
}

/// The global flags that override agent-safe.yaml for every command (set once, in `main`).
static GLOBALS: OnceLock<Overrides> = OnceLock::new();
/// `--exit-flush-timeout`.
static EXIT_FLUSH_TIMEOUT: OnceLock<Option<std::time::Duration>> = OnceLock::new();

/// Records the global flags (`--ticket-audience` as an override every command applies,
/// `--exit-flush-timeout`).
pub(crate) fn init_globals(cli: &Cli) {
    let mut globals = Overrides::default();
    globals.ticket_audience.clone_from(&cli.ticket_audience);
    let _ = GLOBALS.set(globals);
    let _ = EXIT_FLUSH_TIMEOUT.set(cli.exit_flush_timeout);
}

/// `--exit-flush-timeout`, when given.
pub(crate) fn exit_flush_timeout() -> Option<std::time::Duration> {
    EXIT_FLUSH_TIMEOUT.get().copied().flatten()
}

/// `overrides` with the global flags added (a command's own flags never set them).
pub(crate) fn with_globals(overrides: &Overrides) -> Overrides {
    match GLOBALS.get() {
        Some(globals) => overrides.clone().merge(globals),
        None => overrides.clone(),
    }
}

/// Flags > `agent-safe.yaml` > the project layout in the working directory, resolved by the SDK.
pub(crate) fn resolve(config: Option<&ConfigFile>, overrides: &Overrides) -> Resolved {
    agent_safe::settings::resolve(config, &with_globals(overrides), Defaults::WorkingDir)
}

/// Fully resolved paths.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) registry: PathBuf,
    pub(crate) policies: PathBuf,
    pub(crate) inventory: Option<PathBuf>,
}

/// Resolves the registry, policies and inventory paths.
pub(crate) fn paths(config: Option<&ConfigFile>, args: &ConfigArgs) -> Paths {
    let r = resolve(config, &args.overrides());
    // The working-directory defaults always give a registry and policies.
    Paths {
        registry: r.registry.unwrap_or_default(),
        policies: r.policies.unwrap_or_default(),
        inventory: r.inventory,
    }
}

/// A builder on the loaded config (not read again) with the working-directory defaults and
/// `overrides` applied.
pub(crate) fn builder(config: Option<ConfigFile>, overrides: &Overrides) -> Builder {
    Builder::from_config(config).defaults(Defaults::WorkingDir).overrides(&with_globals(overrides))
}

/// Parses a `--params` value: a JSON object, or a usage error naming the flag.
pub(crate) fn parse_params(text: &str) -> anyhow::Result<agent_safe::Params> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => anyhow::bail!("invalid JSON in --params: expected an object"),
        Err(e) => anyhow::bail!("invalid JSON in --params: {e}"),
    }
}
