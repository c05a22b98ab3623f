//! Audit shipping from the database's log: one process of the cluster ships to each
//! destination, its cursor in `ship_cursors`.

use std::fmt;
use std::sync::Arc;

use agent_safe_audit::AuditError;
use agent_safe_audit_ship::{
    CursorPosition, ShipChannel, ShipChunk, ShipEntry, ShipLogError, ShipSource, Shipper, StepLock,
    cursor_id,
};
use agent_safe_core::BoxFuture;
use deadpool_postgres::ClientWrapper;
use time::OffsetDateTime;

use crate::audit::{PgAuditLog, fail};
use crate::database::{Database, DbError, classify};

/// The audit log in the database as a shipping source (`agent_safe_audit_ship::ShipSource`):
/// entries read from `audit_log` in `seq` order, each destination's cursor a row of
/// `ship_cursors`.
///
/// One process ships to a destination at a time, for the whole cluster: the one holding the
/// destination's session advisory lock, taken on a connection of its own and kept while that
/// connection lives. The others stand by ([`agent_safe_audit_ship::ShipperStatus::standby`]),
/// asking again every poll interval, and one of them takes over when the shipping process
/// stops or loses its connection (the server then releases the lock). Cursor writes go over
/// the lock's connection, so a process that lost the lock cannot move the cursor.
pub struct PgShipSource {
    log: Arc<PgAuditLog>,
}

impl fmt::Debug for PgShipSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgShipSource({})", self.log.database().url())
    }
}

impl PgShipSource {
    /// Ships `log`.
    pub fn new(log: Arc<PgAuditLog>) -> Self {
        Self { log }
    }
}

impl ShipSource for PgShipSource {
    fn log_name(&self) -> String {
        self.log.database().url().to_owned()
    }

    fn head(&self) -> Result<(u64, u64), ShipLogError> {
        let head = self.log.head()?;
        Ok((head.seq, head.seq))
    }

    fn channel(&self, shipper: &dyn Shipper) -> Box<dyn ShipChannel> {
        Box::new(PgChannel {
            db: self.log.database().clone(),
            id: cursor_id(shipper),
            kind: shipper.kind().to_owned(),
            destination: shipper.destination(),
            client: None,
            leader: false,
        })
    }
}

/// One destination's cursor row and the log read from it.
struct PgChannel {
    db: Database,
    /// The `ship_cursors` key (also names the advisory lock).
    id: String,
    kind: String,
    destination: String,
    /// The connection holding (or asking for) the advisory lock; cursor and log reads of the
    /// process shipping go over it.
    client: Option<ClientWrapper>,
    /// `client` holds the lock.
    leader: bool,
}

impl fmt::Debug for PgChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgChannel")
            .field("db", &self.db.url())
            .field("id", &self.id)
            .field("leader", &self.leader)
            .finish_non_exhaustive()
    }
}

const SELECT_CURSOR: &str =
    "SELECT position, entry_seq, entry_hash FROM ship_cursors WHERE id = $1";

fn cursor_row(row: &tokio_postgres::Row) -> CursorPosition {
    let position = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    CursorPosition {
        offset: position,
        line: usize::try_from(position).unwrap_or(usize::MAX),
        seq: row.get::<_, Option<i64>>(1).and_then(|s| u64::try_from(s).ok()),
        entry_hash: row.get(2),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgChannel {
    fn location(&self) -> String {
        format!("{}: ship cursor `{}`", self.db.url(), self.id)
    }

    /// A driver error, as the audit crate reports it; a connection that broke is dropped
    /// (and with it the lock).
    fn failed(&mut self, e: &tokio_postgres::Error) -> ShipLogError {
        let e = classify(self.db.url(), e);
        if e.is_unavailable() {
            self.client = None;
            self.leader = false;
        }
        fail(e).into()
    }

    /// The connection of the process shipping (call after [`ShipChannel::lock`] said so).
    fn leader_client(&self) -> Result<&ClientWrapper, ShipLogError> {
        match &self.client {
            Some(c) if self.leader => Ok(c),
            _ => Err(AuditError::Unavailable(format!(
                "{}: this process does not hold the shipping lock",
                self.location()
            ))
            .into()),
        }
    }

    async fn try_lock(&mut self) -> Result<bool, ShipLogError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
            self.leader = false;
        }
        if self.leader {
            return Ok(true);
        }
        if self.client.is_none() {
            self.client = Some(self.db.detached().await.map_err(|e| ShipLogError::from(fail(e)))?);
        }
        let Some(client) = &self.client else { return Ok(false) };
        let taken = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended('agent-safe ship ' || $1, 0))",
                &[&self.id],
            )
            .await;
        match taken {
            Ok(row) => {
                self.leader = row.get(0);
                Ok(self.leader)
            }
            Err(e) => Err(self.failed(&e)),
        }
    }

    async fn read_entries(
        &mut self,
        from: Option<&CursorPosition>,
        max: usize,
    ) -> Result<ShipChunk, ShipLogError> {
        let after = from.map_or(0, |p| p.offset);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = self
            .leader_client()?
            .query(
                "SELECT seq, line FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&to_i64(after), &limit],
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Err(self.failed(&e)),
        };
        let mut chunk =
            ShipChunk { scanned_to: after, more: rows.len() >= max, ..ShipChunk::default() };
        for row in rows {
            let seq = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
            let line: &str = row.get(1);
            match ShipEntry::parse(line, usize::try_from(seq).unwrap_or(usize::MAX)) {
                Ok(entry) => {
                    chunk.entries.push(entry.with_end(seq));
                    chunk.scanned_to = seq;
                }
                // Ship what comes before it first; the next read fails here.
                Err(_) if !chunk.entries.is_empty() => {
                    chunk.more = true;
                    return Ok(chunk);
                }
                Err(e) => {
                    return Err(AuditError::Backend(format!(
                        "{}: audit log row {seq} cannot be shipped: {e}; run `agent-safe audit \
                         verify`",
                        self.db.url()
                    ))
                    .into());
                }
            }
        }
        Ok(chunk)
    }

    async fn check_entry(&mut self, pos: &CursorPosition) -> Result<Option<String>, ShipLogError> {
        let found = self
            .leader_client()?
            .query_opt("SELECT entry_hash FROM audit_log WHERE seq = $1", &[&to_i64(pos.offset)])
            .await;
        let found = match found {
            Ok(row) => row.map(|r| r.get::<_, String>(0)),
            Err(e) => return Err(self.failed(&e)),
        };
        Ok(match found {
            Some(hash) if hash == pos.entry_hash => None,
            Some(hash) => Some(format!(
                "entry {} has entry_hash `{}…`, the cursor records `{}…`",
                pos.offset,
                prefix(&hash),
                prefix(&pos.entry_hash)
            )),
            None => Some(format!(
                "the cursor is after entry {}, which the log does not have (restored from an \
                 older backup, or another database?)",
                pos.offset
            )),
        })
    }

    async fn write(&mut self, pos: &CursorPosition) -> Result<(), ShipLogError> {
        let entry_seq = pos.seq.map(to_i64);
        let written = self
            .leader_client()?
            .execute(
                "INSERT INTO ship_cursors (id, kind, destination, position, entry_seq, \
                 entry_hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6, now()) \
                 ON CONFLICT (id) DO UPDATE SET kind = $2, destination = $3, position = $4, \
                 entry_seq = $5, entry_hash = $6, updated_at = now()",
                &[
                    &self.id,
                    &self.kind,
                    &self.destination,
                    &to_i64(pos.offset),
                    &entry_seq,
                    &pos.entry_hash,
                ],
            )
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed(&e)),
        }
    }

    async fn read_cursor_row(&mut self) -> Result<Option<CursorPosition>, ShipLogError> {
        let row = self.leader_client()?.query_opt(SELECT_CURSOR, &[&self.id]).await;
        match row {
            Ok(row) => Ok(row.as_ref().map(cursor_row)),
            Err(e) => Err(self.failed(&e)),
        }
    }
}

fn prefix(hash: &str) -> String {
    hash.chars().take(16).collect()
}

impl ShipChannel for PgChannel {
    fn cursor_location(&self) -> String {
        self.location()
    }

    fn peek(&self) -> Result<Option<CursorPosition>, ShipLogError> {
        let id = self.id.clone();
        self.db
            .run(async |c| Ok(c.query_opt(SELECT_CURSOR, &[&id]).await?.as_ref().map(cursor_row)))
            .map_err(|e| fail(e).into())
    }

    fn start_at_end(&mut self, _now: OffsetDateTime) -> Result<(), ShipLogError> {
        let (id, kind, destination) =
            (self.id.clone(), self.kind.clone(), self.destination.clone());
        self.db
            .run(async |c| {
                c.execute(
                    "INSERT INTO ship_cursors (id, kind, destination, position, entry_seq, \
                     entry_hash) SELECT $1, $2, $3, l.seq, (l.line::jsonb ->> 'seq')::bigint, \
                     l.entry_hash FROM audit_head h JOIN audit_log l ON l.seq = h.seq \
                     ON CONFLICT (id) DO NOTHING",
                    &[&id, &kind, &destination],
                )
                .await
                .map(|_| ())
            })
            .map_err(|e: DbError| fail(e).into())
    }

    fn lock(&mut self) -> BoxFuture<'_, Result<Option<StepLock>, ShipLogError>> {
        Box::pin(async {
            // The session lock outlives the step: this process keeps shipping until it stops.
            Ok(self.try_lock().await?.then(|| Box::new(()) as StepLock))
        })
    }

    fn log_replaced(&mut self) -> Result<bool, ShipLogError> {
        Ok(false)
    }

    fn read_cursor(&mut self) -> BoxFuture<'_, Result<Option<CursorPosition>, ShipLogError>> {
        Box::pin(self.read_cursor_row())
    }

    fn write_cursor<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
        _now: OffsetDateTime,
        _durable: bool,
    ) -> BoxFuture<'a, Result<(), ShipLogError>> {
        // Committed before it returns: always durable.
        Box::pin(self.write(pos))
    }

    fn check<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
    ) -> BoxFuture<'a, Result<Option<String>, ShipLogError>> {
        Box::pin(self.check_entry(pos))
    }

    fn read<'a>(
        &'a mut self,
        from: Option<&'a CursorPosition>,
        max: usize,
    ) -> BoxFuture<'a, Result<ShipChunk, ShipLogError>> {
        Box::pin(self.read_entries(from, max))
    }
}
