//! Execution-ticket nonces on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agent_safe_core::Clock;
use agent_safe_tickets::{NONCE_GRACE, NonceStore, NonceStoreError, check_nonce};
use time::OffsetDateTime;

use crate::database::{Database, DbError};

/// Expired nonces are deleted once every this many recorded ones.
const PURGE_EVERY: u64 = 1024;

/// Nonces in the `ticket_nonces` table: recorded with `INSERT … ON CONFLICT DO NOTHING`, so of
/// any number of replicas presenting one ticket at once exactly one sees the row inserted.
/// Kept until [`NONCE_GRACE`] after the ticket's expiry (a ticket past its expiry is refused
/// before its nonce is looked at), then deleted in batches.
#[derive(Debug, Clone)]
pub struct PgNonceStore {
    db: Database,
    clock: Arc<dyn Clock>,
    recorded: Arc<AtomicU64>,
}

impl PgNonceStore {
    /// Nonces in `db` (migrated: see [`Database::migrate`]); `clock` dates the purges.
    pub fn new(db: Database, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock, recorded: Arc::default() }
    }

    /// Deletes the nonces whose tickets expired more than [`NONCE_GRACE`] before `now`;
    /// returns how many.
    pub fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, DbError> {
        let cutoff = now - NONCE_GRACE;
        self.db.run(async |c| {
            c.execute("DELETE FROM ticket_nonces WHERE expires_at < $1", &[&cutoff]).await
        })
    }

    fn fail(&self, e: DbError) -> NonceStoreError {
        let detail = match e {
            DbError::Unavailable { detail, .. } | DbError::Statement { detail, .. } => detail,
            other => other.to_string(),
        };
        NonceStoreError::Unavailable { store: self.db.url().to_owned(), detail }
    }
}

impl NonceStore for PgNonceStore {
    fn check_and_set(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        let inserted = self
            .db
            .run(async |c| {
                c.execute(
                    "INSERT INTO ticket_nonces (nonce, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (nonce) DO NOTHING",
                    &[&nonce, &expires_at],
                )
                .await
            })
            .map_err(|e| self.fail(e))?;
        if inserted == 1
            && self.recorded.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1
        {
            // Housekeeping: a failure here does not undo the recorded nonce.
            let _ = self.purge_expired(self.clock.now());
        }
        Ok(inserted == 1)
    }

    fn contains(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        self.db
            .run(async |c| {
                let row = c
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM ticket_nonces WHERE nonce = $1)",
                        &[&nonce],
                    )
                    .await?;
                Ok(row.get::<_, bool>(0))
            })
            .map_err(|e| self.fail(e))
    }
}
