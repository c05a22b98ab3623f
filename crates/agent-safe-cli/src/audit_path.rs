//! Which audit log the `audit` commands read (`audit verify`, `show`, `repair`, `show-state`,
//! `state-coverage`).

use std::path::PathBuf;

use crate::Cli;

/// The audit log a command reads: given path, else `audit_log` from agent-safe.yaml, else
/// `./audit.jsonl`.
pub(crate) fn log_path(cli: &Cli, given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let config = crate::setup::config_file(cli)?;
    let resolved = crate::setup::resolve(config.as_ref(), &agent_safe::Overrides::default());
    Ok(resolved.audit_log.unwrap_or_default())
}
