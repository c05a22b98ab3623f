//! Resolving paths and settings: explicit flag > `agent-safe.yaml` > built-in default.

use std::path::{Path, PathBuf};

use agent_safe::{AgentSafe, Builder, ConfigFile};
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

/// Fully resolved paths.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) registry: PathBuf,
    pub(crate) policies: PathBuf,
    pub(crate) inventory: Option<PathBuf>,
}

/// Resolves the registry, policies and inventory paths.
pub(crate) fn paths(config: Option<&ConfigFile>, args: &ConfigArgs) -> Paths {
    let registry = args
        .registry
        .clone()
        .or_else(|| config.and_then(|c| c.registry.clone()))
        .unwrap_or_else(|| PathBuf::from("actions"));
    let policies = args
        .policies
        .clone()
        .or_else(|| config.and_then(|c| c.policies.clone()))
        .unwrap_or_else(|| PathBuf::from("policies"));
    let inventory =
        args.inventory.clone().or_else(|| config.and_then(|c| c.inventory.clone())).or_else(|| {
            let default = Path::new("inventory.yaml");
            default.is_file().then(|| default.to_path_buf())
        });
    Paths { registry, policies, inventory }
}

/// A builder with the resolved paths and the config file's other settings applied.
pub(crate) fn builder(config: Option<&ConfigFile>, paths: &Paths) -> anyhow::Result<Builder> {
    let mut builder = AgentSafe::builder().registry(&paths.registry).policies(&paths.policies);
    if let Some(inventory) = &paths.inventory {
        builder = builder.inventory(inventory);
    }
    if let Some(config) = config {
        builder = builder.config_file(&config.path)?;
    }
    Ok(builder)
}

/// Parses a `--params` value: a JSON object, or a usage error naming the flag.
pub(crate) fn parse_params(text: &str) -> anyhow::Result<agent_safe::Params> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => anyhow::bail!("invalid JSON in --params: expected an object"),
        Err(e) => anyhow::bail!("invalid JSON in --params: {e}"),
    }
}
