//! Which audit log the `audit` commands read (`audit verify`, `show`, `repair`, `show-state`,
//! `state-coverage`, `export`): a file, or with `state: {backend: postgres}` the database's.

use std::path::PathBuf;

use crate::Cli;

/// The audit log a command reads: given path, else `audit_log` from agent-safe.yaml, else
/// `./audit.jsonl`.
pub(crate) fn log_path(cli: &Cli, given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    Ok(configured_log(crate::setup::config_file(cli)?.as_ref()))
}

/// `audit_log` of `config`, else `./audit.jsonl`.
fn configured_log(config: Option<&agent_safe::ConfigFile>) -> PathBuf {
    let resolved = crate::setup::resolve(config, &agent_safe::Overrides::default());
    resolved.audit_log.unwrap_or_default()
}

/// Where the log a command reads is.
pub(crate) enum LogSource {
    /// A file log.
    File(PathBuf),
    /// The database's log (`state: {backend: postgres}`).
    #[cfg(feature = "postgres")]
    Database(std::sync::Arc<agent_safe::postgres::PgAuditLog>),
}

/// The log a command reads: a given path; else, with `state: {backend: postgres}`, the
/// database's (a build without the backend says how to get one); else [`log_path`].
pub(crate) fn log_source(cli: &Cli, given: Option<&PathBuf>) -> anyhow::Result<LogSource> {
    if given.is_some() {
        return Ok(LogSource::File(log_path(cli, given)?));
    }
    let config = crate::setup::config_file(cli)?;
    let state = config.as_ref().and_then(|c| c.state.as_ref());
    if agent_safe::state::StateConfig::backend(state) == agent_safe::state::StateBackend::Postgres {
        let shared = agent_safe::state::SharedState::open(state)?;
        #[cfg(feature = "postgres")]
        if let Some(log) = shared.database_audit_log()? {
            return Ok(LogSource::Database(log));
        }
        drop(shared);
    }
    Ok(LogSource::File(configured_log(config.as_ref())))
}

impl LogSource {
    /// The log as messages name it (a database without password).
    pub(crate) fn name(&self) -> String {
        match self {
            LogSource::File(path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            LogSource::Database(log) => agent_safe_audit::AuditStore::location(log.as_ref()),
        }
    }

    /// What `audit ship` and the runner's shipping worker read: the file, or the database's
    /// log (shipped once for the cluster).
    pub(crate) fn ship_source(&self) -> std::sync::Arc<dyn agent_safe::shipping::ShipSource> {
        match self {
            LogSource::File(path) => agent_safe::shipping::FileSource::shared(path),
            #[cfg(feature = "postgres")]
            LogSource::Database(log) => {
                std::sync::Arc::new(agent_safe::postgres::PgShipSource::new(log.clone()))
            }
        }
    }

    /// The file log, or an error for commands that work on a file log only (by reference).
    #[cfg_attr(
        not(feature = "postgres"),
        expect(unused_variables, reason = "`what` names the command in the database's error")
    )]
    pub(crate) fn as_file(&self, what: &str) -> anyhow::Result<&std::path::Path> {
        match self {
            LogSource::File(path) => Ok(path),
            #[cfg(feature = "postgres")]
            LogSource::Database(log) => anyhow::bail!(
                "`{what}` works on a file log; the audit log is in the database {} (give a file \
                 made by `agent-safe audit export`)",
                agent_safe_audit::AuditStore::location(log.as_ref())
            ),
        }
    }

    /// An error for commands that work on a file log only.
    /// The database, when the log is the database's.
    #[cfg(feature = "postgres")]
    pub(crate) fn database(&self) -> Option<agent_safe::postgres::Database> {
        match self {
            LogSource::Database(log) => Some(log.database().clone()),
            LogSource::File(_) => None,
        }
    }

    pub(crate) fn file_only(self, what: &str) -> anyhow::Result<PathBuf> {
        self.as_file(what).map(std::path::Path::to_path_buf)
    }
}
