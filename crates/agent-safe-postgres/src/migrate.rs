//! Versioned schema migrations shipped in the crate.

use time::OffsetDateTime;

use crate::database::{Database, DbError};

/// One schema change: applied once, in order, recorded in `agent_safe_schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version (1, 2, …; contiguous).
    pub version: u32,
    /// A short name.
    pub name: &'static str,
    /// The SQL (run in one transaction with the others being applied).
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "ticket_nonces",
        sql: include_str!("../migrations/0001_ticket_nonces.sql"),
    },
    Migration {
        version: 2,
        name: "approval_requests",
        sql: include_str!("../migrations/0002_approval_requests.sql"),
    },
    Migration {
        version: 3,
        name: "audit_log",
        sql: include_str!("../migrations/0003_audit_log.sql"),
    },
    Migration {
        version: 4,
        name: "limit_windows",
        sql: include_str!("../migrations/0004_limit_windows.sql"),
    },
    Migration {
        version: 5,
        name: "ship_cursors",
        sql: include_str!("../migrations/0005_ship_cursors.sql"),
    },
    Migration {
        version: 6,
        name: "append_function",
        sql: include_str!("../migrations/0006_append_function.sql"),
    },
    Migration {
        version: 7,
        name: "audit_tree",
        sql: include_str!("../migrations/0007_audit_tree.sql"),
    },
];

/// The schema version this build needs and knows.
pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

/// Serialises migrators (`pg_advisory_xact_lock`): "agentsaf" in ASCII.
const MIGRATION_LOCK: i64 = 0x6167_656e_7473_6166;

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS agent_safe_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The database's schema, as `agent-safe db status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The database, without password.
    pub url: String,
    /// Its version (0: never migrated).
    pub current: u32,
    /// The version this build needs.
    pub latest: u32,
    /// Applied migrations: version, name, when.
    pub applied: Vec<(u32, String, OffsetDateTime)>,
    /// Migrations this build would apply.
    pub pending: Vec<Migration>,
}

impl Database {
    /// Applies the missing migrations in one transaction, under a lock that makes concurrent
    /// migrators wait for each other; returns the versions applied (none when up to date).
    /// A database newer than this build is refused and left as it is.
    pub fn migrate(&self) -> Result<Vec<u32>, DbError> {
        let url = self.url().to_owned();
        let outcome = self.run(async |client| {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
            tx.batch_execute(CREATE_SCHEMA_TABLE).await?;
            let current = current_version(&tx).await?;
            if current > LATEST_VERSION {
                return Ok(Err(current));
            }
            let mut applied = Vec::new();
            for m in MIGRATIONS.iter().filter(|m| m.version > current) {
                tx.batch_execute(m.sql).await?;
                let version = i32::try_from(m.version).unwrap_or(i32::MAX);
                tx.execute(
                    "INSERT INTO agent_safe_schema (version, name) VALUES ($1, $2)",
                    &[&version, &m.name],
                )
                .await?;
                applied.push(m.version);
            }
            tx.commit().await?;
            Ok(Ok(applied))
        })?;
        outcome.map_err(|found| DbError::SchemaTooNew { url, found, known: LATEST_VERSION })
    }

    /// The schema's version and history.
    pub fn status(&self) -> Result<SchemaStatus, DbError> {
        let rows = self.run(async |client| {
            let exists: bool = client
                .query_one("SELECT to_regclass('agent_safe_schema') IS NOT NULL", &[])
                .await?
                .get(0);
            if !exists {
                return Ok(Vec::new());
            }
            let rows = client
                .query(
                    "SELECT version, name, applied_at FROM agent_safe_schema ORDER BY version",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let version: i32 = r.get(0);
                    (u32::try_from(version).unwrap_or(0), r.get::<_, String>(1), r.get(2))
                })
                .collect::<Vec<(u32, String, OffsetDateTime)>>())
        })?;
        let current = rows.iter().map(|r| r.0).max().unwrap_or(0);
        Ok(SchemaStatus {
            url: self.url().to_owned(),
            current,
            latest: LATEST_VERSION,
            applied: rows,
            pending: MIGRATIONS.iter().copied().filter(|m| m.version > current).collect(),
        })
    }

    /// `Ok` when the schema is exactly the one this build needs; else why not.
    pub fn check_schema(&self) -> Result<(), DbError> {
        let status = self.status()?;
        let url = status.url;
        match status.current {
            v if v == LATEST_VERSION => Ok(()),
            v if v > LATEST_VERSION => {
                Err(DbError::SchemaTooNew { url, found: v, known: LATEST_VERSION })
            }
            v => Err(DbError::SchemaTooOld { url, found: v, needed: LATEST_VERSION }),
        }
    }
}

async fn current_version(
    tx: &deadpool_postgres::Transaction<'_>,
) -> Result<u32, tokio_postgres::Error> {
    let max: Option<i32> =
        tx.query_one("SELECT max(version) FROM agent_safe_schema", &[]).await?.get(0);
    Ok(max.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
}
