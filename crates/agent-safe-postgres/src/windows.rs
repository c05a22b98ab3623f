//! Rate-limit, circuit-breaker and cumulative-risk windows on PostgreSQL.

use std::fmt;

use agent_safe_pdp::{WindowStore, WindowStoreError};

use crate::database::Database;

/// The PDP's per-caller windows in the `limit_windows` table, one row per window. An update
/// holds the row (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, which locks it) from its read
/// to its commit, so replicas checking one caller at once each see the window as the previous
/// one left it: a caller limited to N requests per window gets N across every replica.
#[derive(Clone)]
pub struct PgWindowStore {
    db: Database,
}

impl fmt::Debug for PgWindowStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgWindowStore({})", self.db.url())
    }
}

impl PgWindowStore {
    /// Windows in `db` (migrated: see [`Database::migrate`]).
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl WindowStore for PgWindowStore {
    fn update(
        &self,
        kind: &str,
        key: &str,
        update: &mut dyn FnMut(Option<&str>) -> String,
    ) -> Result<(), WindowStoreError> {
        let fail = |e: crate::DbError| WindowStoreError(e.to_string());
        let mut session = self.db.session().map_err(fail)?;
        session.begin().map_err(fail)?;
        let stored: String = session
            .run(async |c| {
                let row = c
                    .query_one(
                        "INSERT INTO limit_windows (kind, key, state) VALUES ($1, $2, '') \
                         ON CONFLICT (kind, key) DO UPDATE SET state = limit_windows.state \
                         RETURNING state",
                        &[&kind, &key],
                    )
                    .await?;
                Ok(row.get(0))
            })
            .map_err(fail)?;
        let next = update(Some(stored.as_str()).filter(|s| !s.is_empty()));
        session
            .run(async |c| {
                c.execute(
                    "UPDATE limit_windows SET state = $3, updated_at = now() \
                     WHERE kind = $1 AND key = $2",
                    &[&kind, &key, &next],
                )
                .await
            })
            .map_err(fail)?;
        session.commit().map_err(fail)
    }
}
