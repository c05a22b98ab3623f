//! agent-safe on PostgreSQL: the state that several agent-safe processes must share, in one
//! database that operators already run with replication and backups.
//!
//! - [`PgSettings`] and [`DatabaseUrl`]: where the database is (a `postgres://` URL whose
//!   password never appears in `Debug`, `Display` or errors), the pool size and the statement
//!   timeout. TLS follows the URL's `sslmode` (`disable`, `prefer` — the default, as libpq —
//!   or `require`) on the workspace's rustls set-up, which always verifies the server's
//!   certificate against the system's roots.
//! - [`Database`]: a connection pool driven by a runtime of its own, used through synchronous
//!   calls (the agent-safe facade is synchronous; `serve` calls it on blocking threads).
//! - Migrations shipped in the crate ([`MIGRATIONS`]): [`Database::migrate`] applies the
//!   missing ones in one transaction under an advisory lock (replicas may race to migrate);
//!   [`Database::check_schema`] refuses a database whose schema is older or newer than this
//!   build knows, naming both versions.
//! - [`PgNonceStore`]: execution-ticket nonces, consumed at most once across every replica.
//! - [`PgAuditLog`]: the audit log, one hash chain for every replica, appended in batches
//!   (group commit); its lines are the file log's, so an export is a file log.
//! - [`PgWindowStore`]: the rate-limit, circuit-breaker and cumulative-risk windows, per caller
//!   across every replica.
//! - [`PgApprovalStore`]: approval requests, listed and resolved through any replica; exactly
//!   one of concurrent resolutions wins.
//! - [`PgShipSource`]: audit shipping from the database's log, once for the cluster (one
//!   process per destination holds an advisory lock, the others stand by), cursors in the
//!   database.
//! - [`PgTree`] and [`PgCheckpointStore`]: the transparency layer's Merkle tree of the
//!   database's log and its signed checkpoints (`agent-safe-tlog`'s `TreeSource` and
//!   `CheckpointStore`), so a `LogSigner` signs the database's log as it signs a file log.
//!
//! ```no_run
//! use agent_safe_postgres::{Database, PgSettings};
//!
//! let settings = PgSettings::new("postgres://agent_safe@db.internal/agent_safe?sslmode=require".parse()?);
//! let db = Database::connect(&settings)?;
//! db.migrate()?;
//! let clock = std::sync::Arc::new(agent_safe_core::SystemClock);
//! let nonces = agent_safe_postgres::PgNonceStore::new(db, clock);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod approvals;
mod audit;
mod database;
mod migrate;
mod nonce;
mod settings;
mod ship;
mod tree;
mod windows;

pub use approvals::PgApprovalStore;
pub use audit::{ChainHead, ChainReader, IMPORT_CHUNK, PgAuditLog};
pub use database::{Database, DbError, MIN_POOL_SIZE};
pub use migrate::{LATEST_VERSION, MIGRATIONS, Migration, SchemaStatus};
pub use nonce::PgNonceStore;
pub use settings::{DatabaseUrl, PgSettings};
pub use ship::PgShipSource;
pub use tree::{PgCheckpointStore, PgTree};
pub use windows::PgWindowStore;
