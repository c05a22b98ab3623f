//! Approval requests on PostgreSQL.

use std::fmt;

use agent_safe_approvals::{
    ApprovalBackend, ApprovalRequest, CorruptLine, Listing, StoreError, UpdateFn, read_request,
};

use crate::database::{Database, DbError};

/// Approval requests in the `approval_requests` table, one row per request holding the line the
/// file store would write. An update holds the row (`SELECT … FOR UPDATE`) from its read to its
/// commit, so of the replicas resolving one request at once each sees it as the previous one
/// left it, and exactly one sees it pending.
#[derive(Clone)]
pub struct PgApprovalStore {
    db: Database,
}

impl fmt::Debug for PgApprovalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgApprovalStore({})", self.db.url())
    }
}

impl PgApprovalStore {
    /// Requests in `db` (migrated: see [`Database::migrate`]).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    fn fail(e: DbError) -> StoreError {
        if e.is_unavailable() {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }

    fn read(&self, seq: i64, line: &str) -> Result<ApprovalRequest, CorruptLine> {
        read_request(line.as_bytes(), usize::try_from(seq).unwrap_or(0))
    }
}

fn serialize(request: &ApprovalRequest) -> Result<String, StoreError> {
    request
        .to_line()
        .map_err(|source| StoreError::Serialize { id: request.request_id.clone(), source })
}

impl ApprovalBackend for PgApprovalStore {
    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn exists(&self) -> bool {
        true
    }

    fn insert(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let line = serialize(request)?;
        let (id, status) = (request.request_id.as_str(), request.status.as_str());
        let inserted = self
            .db
            .run(async |c| {
                c.execute(
                    "INSERT INTO approval_requests (id, status, line) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                    &[&id, &status, &line],
                )
                .await
            })
            .map_err(Self::fail)?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(request.request_id.clone()));
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<ApprovalRequest, StoreError> {
        let row = self
            .db
            .run(async |c| {
                let row = c
                    .query_opt("SELECT seq, line FROM approval_requests WHERE id = $1", &[&id])
                    .await?;
                Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))))
            })
            .map_err(Self::fail)?;
        let Some((seq, line)) = row else { return Err(StoreError::NotFound(id.to_owned())) };
        self.read(seq, &line).map_err(|c| self.corrupt_error(&c))
    }

    fn list(&self, pending_only: bool) -> Result<Listing, StoreError> {
        let sql = if pending_only {
            "SELECT seq, line FROM approval_requests WHERE status = 'pending' ORDER BY seq"
        } else {
            "SELECT seq, line FROM approval_requests ORDER BY seq"
        };
        let rows = self
            .db
            .run(async |c| {
                let rows = c.query(sql, &[]).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
                    .collect::<Vec<_>>())
            })
            .map_err(Self::fail)?;
        let mut listing = Listing::default();
        for (seq, line) in rows {
            match self.read(seq, &line) {
                Ok(request) => listing.requests.push(request),
                Err(corrupt) => listing.corrupt.push(corrupt),
            }
        }
        Ok(listing)
    }

    fn update(&self, id: &str, f: &mut UpdateFn<'_>) -> Result<(), StoreError> {
        let mut session = self.db.session().map_err(Self::fail)?;
        session.begin().map_err(Self::fail)?;
        let row = session
            .run(async |c| {
                let row = c
                    .query_opt(
                        "SELECT seq, line FROM approval_requests WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?;
                Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))))
            })
            .map_err(Self::fail)?;
        // Returning drops the session, which rolls the transaction back.
        let Some((seq, line)) = row else { return Err(StoreError::NotFound(id.to_owned())) };
        let stored = self.read(seq, &line).map_err(|c| self.corrupt_error(&c))?;
        if let Some(changed) = f(&stored) {
            let line = serialize(&changed)?;
            let status = changed.status.as_str();
            session
                .run(async |c| {
                    c.execute(
                        "UPDATE approval_requests SET line = $2, status = $3 WHERE id = $1",
                        &[&id, &line, &status],
                    )
                    .await
                })
                .map_err(Self::fail)?;
        }
        session.commit().map_err(Self::fail)
    }

    fn corrupt_error(&self, corrupt: &CorruptLine) -> StoreError {
        StoreError::CorruptRow {
            store: self.db.url().to_owned(),
            seq: corrupt.line,
            detail: corrupt.detail.clone(),
        }
    }
}
