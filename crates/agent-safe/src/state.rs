//! `state:` in agent-safe.yaml: where the state that replicas must share lives. `file` (the
//! default) keeps each piece in a file next to the audit log, as one process needs; `postgres`
//! (cargo feature `postgres`) keeps it in one PostgreSQL database shared by every replica.
//! The execution-ticket nonces, the approval requests, the rate-limit and cumulative-risk
//! windows and the audit chain move; audit shipping from the database follows (see
//! docs/state.md). [`SharedState`] opens the backend once per facade.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_approvals::ApprovalStore;
use agent_safe_audit::AuditStore;
use agent_safe_core::{Clock, Secret};
use agent_safe_tickets::{FileNonceStore, NonceStore};
use serde::Deserialize;

/// The environment variable that gives (and overrides) `state.url`, so the URL and its
/// password can stay out of the file.
pub const DATABASE_URL_VAR: &str = "AGENT_SAFE_DATABASE_URL";

/// Which backend holds the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// Files next to the audit log (one process, or processes sharing one disk).
    #[default]
    File,
    /// One PostgreSQL database for every replica (cargo feature `postgres`).
    Postgres,
}

/// `state:` in agent-safe.yaml.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `file` (default) or `postgres`.
    #[serde(default)]
    pub backend: StateBackend,
    /// The database, `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require`;
    /// `AGENT_SAFE_DATABASE_URL` overrides it.
    #[serde(default)]
    pub url: Option<Secret<String>>,
    /// Connections per process, at most (default 16, at least 2).
    #[serde(default)]
    pub pool_size: Option<usize>,
    /// Longest a statement may run, in milliseconds (default 5000).
    #[serde(default)]
    pub statement_timeout_ms: Option<u64>,
}

impl std::fmt::Debug for StateConfig {
    /// Without the URL (it may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateConfig")
            .field("backend", &self.backend)
            .field("url", &self.url.as_ref().map(|_| agent_safe_core::REDACTED))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish()
    }
}

/// Why the configured state backend cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `backend: postgres` in a build without it.
    #[error(
        "`state.backend: postgres` is not in this build: install the CLI with `cargo install \
         agent-safe-cli --features postgres` (or enable the `postgres` feature of agent-safe)"
    )]
    NotBuilt,
    /// `backend: postgres` without a URL.
    #[error(
        "`state.backend: postgres` needs a database URL: set `state.url` in agent-safe.yaml or \
         {DATABASE_URL_VAR}"
    )]
    NoUrl,
    /// The URL does not parse (the message never quotes it).
    #[error("state.url: {0}")]
    Url(String),
    /// The file backend was asked for a database.
    #[error("`state.backend` is `file`: there is no database (set `state: {{backend: postgres}}`)")]
    NotPostgres,
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] agent_safe_audit::AuditError),
    /// The database failed or has the wrong schema.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Database(#[from] agent_safe_postgres::DbError),
    /// The file nonce store could not be opened.
    #[error("cannot open the nonce store: {0}")]
    NonceStore(#[from] agent_safe_tickets::NonceStoreError),
}

impl StateError {
    /// Whether the database could not be reached or answered too slowly (retrying later may
    /// succeed).
    pub fn is_unavailable(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            StateError::Database(e) => e.is_unavailable(),
            StateError::Audit(e) => matches!(e, agent_safe_audit::AuditError::Unavailable(_)),
            StateError::NonceStore(e) => {
                matches!(e, agent_safe_tickets::NonceStoreError::Unavailable { .. })
            }
            _ => false,
        }
    }
}

impl StateConfig {
    /// The configured backend (`file` without a `state:` section).
    pub fn backend(config: Option<&Self>) -> StateBackend {
        config.map(|c| c.backend).unwrap_or_default()
    }

    /// The database of `backend: postgres`, as configured (URL from [`DATABASE_URL_VAR`], else
    /// `url`); not connected yet, schema not checked. [`StateError::NotPostgres`] for the file
    /// backend.
    #[cfg(feature = "postgres")]
    pub fn database(config: Option<&Self>) -> Result<agent_safe_postgres::Database, StateError> {
        let Some(config) = config.filter(|c| c.backend == StateBackend::Postgres) else {
            return Err(StateError::NotPostgres);
        };
        let url = match std::env::var(DATABASE_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => config.url.as_ref().map(|u| u.expose().clone()).ok_or(StateError::NoUrl)?,
        };
        let mut settings =
            agent_safe_postgres::PgSettings::new(url.parse().map_err(StateError::Url)?);
        if let Some(size) = config.pool_size {
            settings.pool_size = size;
        }
        if let Some(ms) = config.statement_timeout_ms {
            settings.statement_timeout = std::time::Duration::from_millis(ms);
        }
        Ok(agent_safe_postgres::Database::connect(&settings)?)
    }
}

/// The state backend of one facade (or one CLI command), opened once: with `backend:
/// postgres`, one connection pool that every store shares, its schema checked (a database that
/// is not migrated, or migrated by a newer release, is refused naming both versions). Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct SharedState {
    config: Option<StateConfig>,
    #[cfg(feature = "postgres")]
    db: Option<agent_safe_postgres::Database>,
    /// The database's audit log, made once (its appender task) and shared by reloads.
    #[cfg(feature = "postgres")]
    audit: Arc<std::sync::OnceLock<Arc<agent_safe_postgres::PgAuditLog>>>,
}

impl SharedState {
    /// Opens the configured backend (the file backend opens nothing).
    pub fn open(config: Option<&StateConfig>) -> Result<Self, StateError> {
        match StateConfig::backend(config) {
            StateBackend::File => Ok(Self {
                config: config.cloned(),
                #[cfg(feature = "postgres")]
                db: None,
                #[cfg(feature = "postgres")]
                audit: Arc::default(),
            }),
            #[cfg(feature = "postgres")]
            StateBackend::Postgres => {
                let db = StateConfig::database(config)?;
                db.check_schema()?;
                Ok(Self { config: config.cloned(), db: Some(db), audit: Arc::default() })
            }
            #[cfg(not(feature = "postgres"))]
            StateBackend::Postgres => Err(StateError::NotBuilt),
        }
    }

    /// `previous` when it was opened from the same configuration (a reload keeps its pool),
    /// else the configured backend, opened.
    pub fn reopen(previous: &Self, config: Option<&StateConfig>) -> Result<Self, StateError> {
        if previous.config.as_ref() == config {
            return Ok(previous.clone());
        }
        Self::open(config)
    }

    /// Whether the backend can serve now: with `backend: postgres`, the database answers
    /// (`SELECT 1` on a pooled connection, made anew when the pooled ones broke); always for
    /// the file backend. `Err` says why not, without the password.
    pub fn ready(&self) -> Result<(), StateError> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.db {
            db.ping()?;
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> StateBackend {
        StateConfig::backend(self.config.as_ref())
    }

    /// The database, with `backend: postgres`.
    #[cfg(feature = "postgres")]
    pub fn database(&self) -> Option<&agent_safe_postgres::Database> {
        self.db.as_ref()
    }

    /// The nonce store: the database's with `backend: postgres`; else the file store at
    /// `file`, fsynced per nonce unless the audit log is buffered; else none.
    pub fn nonce_store(
        &self,
        file: Option<&Path>,
        durability: agent_safe_audit::Durability,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<Arc<dyn NonceStore>>, StateError> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.db {
            return Ok(Some(Arc::new(agent_safe_postgres::PgNonceStore::new(
                db.clone(),
                clock.clone(),
            ))));
        }
        let Some(path) = file else { return Ok(None) };
        let store = FileNonceStore::open(path, clock.clone())?
            .with_fsync(durability == agent_safe_audit::Durability::Fsync);
        Ok(Some(Arc::new(store)))
    }

    /// The audit log: the database's with `backend: postgres` (always there: the `audit_log`
    /// file setting is not used); else the file log at `file`, opened with `durability`; else
    /// none.
    pub fn audit_store(
        &self,
        file: Option<&Path>,
        durability: agent_safe_audit::Durability,
    ) -> Result<Option<Arc<dyn AuditStore>>, StateError> {
        #[cfg(feature = "postgres")]
        if let Some(log) = self.database_audit_log()? {
            return Ok(Some(log));
        }
        let Some(path) = file else { return Ok(None) };
        let log =
            agent_safe_audit::AuditLog::open(path, agent_safe_audit::AuditOptions { durability })?;
        Ok(Some(Arc::new(agent_safe_audit::FileAuditStore::new(log))))
    }

    /// The database's audit log, with `backend: postgres` (made once, shared by reloads).
    #[cfg(feature = "postgres")]
    pub fn database_audit_log(
        &self,
    ) -> Result<Option<Arc<agent_safe_postgres::PgAuditLog>>, StateError> {
        let Some(db) = &self.db else { return Ok(None) };
        if let Some(log) = self.audit.get() {
            return Ok(Some(log.clone()));
        }
        let log = Arc::new(agent_safe_postgres::PgAuditLog::new(db.clone())?);
        // Two threads racing here: one log wins, the other's appender stops with it.
        Ok(Some(self.audit.get_or_init(|| log).clone()))
    }

    /// What audit shipping reads: the database's log with `backend: postgres` (shipped once
    /// for the cluster, cursors in the database); else the file log at `file`; else none.
    pub fn ship_source(
        &self,
        file: Option<&Path>,
    ) -> Result<Option<Arc<dyn agent_safe_audit_ship::ShipSource>>, StateError> {
        #[cfg(feature = "postgres")]
        if let Some(log) = self.database_audit_log()? {
            return Ok(Some(Arc::new(agent_safe_postgres::PgShipSource::new(log))));
        }
        Ok(file.map(agent_safe_audit_ship::FileSource::shared))
    }

    /// The store of the PDP's rate-limit, circuit-breaker and cumulative-risk windows: the
    /// database's with `backend: postgres`; else none (they live in the process).
    pub fn window_store(&self) -> Option<Arc<dyn agent_safe_pdp::WindowStore>> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.db {
            return Some(Arc::new(agent_safe_postgres::PgWindowStore::new(db.clone())));
        }
        None
    }

    /// The approval store: the database's with `backend: postgres` (always there: the
    /// `approval_store` file setting is not used); else the file store at `file`; else none.
    pub fn approval_store(
        &self,
        file: Option<PathBuf>,
        clock: &Arc<dyn Clock>,
    ) -> Option<ApprovalStore> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.db {
            let backend = Arc::new(agent_safe_postgres::PgApprovalStore::new(db.clone()));
            return Some(ApprovalStore::with_backend(backend, clock.clone()));
        }
        file.map(|path| ApprovalStore::new(path, clock.clone()))
    }
}
