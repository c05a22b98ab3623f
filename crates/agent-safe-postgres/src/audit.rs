//! The audit log on PostgreSQL: one hash chain for every replica.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::sync::mpsc as std_mpsc;

use agent_safe_audit::{
    AppendReceipt, AuditError, AuditStore, Durability, GENESIS_HASH, PreparedEntry, StoredEvent,
    VerifyReport, link_ids,
};
use agent_safe_core::AuditEvent;
use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use crate::database::{Database, DbError, classify, pool_error};

/// At most this many entries go into one transaction.
const MAX_BATCH: usize = 256;

/// Entries inserted per statement by [`PgAuditLog::import`].
pub const IMPORT_CHUNK: u64 = 5_000;

/// Rows fetched per round trip when reading the chain.
const PAGE: i64 = 2000;

/// The audit log in the `audit_log` table: each row the exact line the file log would write,
/// chained in `seq` order across every replica.
///
/// Appends are batched (group commit): a task of the pool's runtime takes every append waiting
/// and writes them atomically after the chain head (see `write_batch`: one statement when this
/// process writes alone, else a transaction holding `audit_head … FOR UPDATE`), so replicas
/// append one batch at a time, each chained onto the last; an append returns once its batch is
/// committed (durable, with the server's `synchronous_commit` on).
pub struct PgAuditLog {
    db: Database,
    jobs: mpsc::UnboundedSender<Job>,
}

impl fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgAuditLog({})", self.db.url())
    }
}

struct Job {
    entry: PreparedEntry,
    event_id: String,
    event_type: &'static str,
    correlation_id: Option<String>,
    original_id: Option<String>,
    reply: std_mpsc::SyncSender<Result<AppendReceipt, AuditError>>,
}

/// The head of the chain: the last entry's `seq` and `entry_hash` (0 and the genesis hash for an
/// empty log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last entry's `seq` (0: empty).
    pub seq: u64,
    /// The last entry's `entry_hash`.
    pub entry_hash: String,
}

/// A database error as the audit crate reports it.
pub(crate) fn fail(e: DbError) -> AuditError {
    if e.is_unavailable() {
        AuditError::Unavailable(e.to_string())
    } else {
        AuditError::Backend(e.to_string())
    }
}

impl PgAuditLog {
    /// The log in `db` (migrated: see [`Database::migrate`]); starts its appender task.
    pub fn new(db: Database) -> Result<Self, DbError> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let (pool, url) = db.pool();
        db.spawn(appender(pool, url, queue))?;
        Ok(Self { db, jobs })
    }

    /// The database the log is in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The head of the chain.
    pub fn head(&self) -> Result<ChainHead, AuditError> {
        let (seq, entry_hash) = self
            .db
            .run(async |c| {
                let row = c.query_one("SELECT seq, entry_hash FROM audit_head", &[]).await?;
                Ok((row.get::<_, i64>(0), row.get::<_, String>(1)))
            })
            .map_err(fail)?;
        Ok(ChainHead { seq: u64::try_from(seq).unwrap_or(0), entry_hash })
    }

    /// The lines from `seq` `from` on, in order, each with its newline: the file log's bytes.
    /// Read page by page as the reader is consumed.
    pub fn reader(&self, from: u64) -> ChainReader<'_> {
        ChainReader {
            log: self,
            next: i64::try_from(from.max(1)).unwrap_or(i64::MAX),
            buf: Vec::new(),
            pos: 0,
            done: false,
        }
    }

    /// Up to [`PAGE`] rows from `seq` `from` on.
    fn page(&self, from: i64) -> Result<Vec<(i64, String)>, AuditError> {
        self.seq_lines(
            "SELECT seq, line FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&from, &PAGE],
        )
    }

    /// The `(seq, line)` rows `sql` selects.
    fn seq_lines(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<(i64, String)>, AuditError> {
        self.db
            .run(async |c| {
                let rows = c.query(sql, params).await?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .map_err(fail)
    }

    fn stored(&self, rows: Vec<(i64, String)>) -> Result<Vec<StoredEvent>, AuditError> {
        rows.into_iter()
            .map(|(seq, line)| {
                StoredEvent::parse(line.as_bytes(), usize::try_from(seq).unwrap_or(0)).ok_or_else(
                    || {
                        AuditError::Backend(format!(
                            "{}: audit log row {seq} is not an entry",
                            self.db.url()
                        ))
                    },
                )
            })
            .collect()
    }

    /// Moves a file log's lines into this log, which must be empty, in one transaction: all of
    /// them or none. Each line is stored as it is; entry `n` must carry `seq` `n` (or none, as
    /// the Python version writes). Check the file first (`agent_safe_audit::verify`): this
    /// checks the shape of each line, not the chain. Lines are read and inserted
    /// [`IMPORT_CHUNK`] at a time, so a log of any size is imported in bounded memory. Returns
    /// the new head.
    pub fn import(
        &self,
        lines: impl IntoIterator<Item = io::Result<String>>,
    ) -> Result<ChainHead, AuditError> {
        let mut session = self.db.session().map_err(fail)?;
        session.begin().map_err(fail)?;
        let (head, stored) = session
            .run(async |c| {
                let head = c.query_one("SELECT seq FROM audit_head FOR UPDATE", &[]).await?;
                let stored = c.query_one("SELECT count(*) FROM audit_log", &[]).await?;
                Ok((head.get::<_, i64>(0), stored.get::<_, i64>(0)))
            })
            .map_err(fail)?;
        if head != 0 || stored != 0 {
            // Returning drops the session, which rolls the transaction back.
            return Err(AuditError::Backend(format!(
                "{}: the audit log is not empty ({stored} entries): import only into an empty \
                 database",
                self.db.url()
            )));
        }
        let mut rows = Rows::default();
        let mut last_hash = GENESIS_HASH.to_owned();
        let mut n: u64 = 0;
        for line in lines {
            let line = line.map_err(|e| {
                AuditError::Backend(format!("entry {}: cannot be read: {e}", n + 1))
            })?;
            if line.trim().is_empty() {
                continue;
            }
            n += 1;
            let number = usize::try_from(n).unwrap_or(usize::MAX);
            let Some(stored) = StoredEvent::parse(line.as_bytes(), number) else {
                return Err(AuditError::Backend(format!("entry {n}: not an audit entry")));
            };
            if stored.seq.is_some_and(|s| s != n) {
                return Err(AuditError::Backend(format!(
                    "entry {n}: its seq is {} (entries must be numbered from 1 without gaps)",
                    stored.seq.unwrap_or_default()
                )));
            }
            let (correlation, original) = link_ids(&stored.event);
            rows.push(
                i64::try_from(n).unwrap_or(i64::MAX),
                stored.event.event_id.as_str(),
                stored.event.event_type.as_str(),
                correlation,
                original,
                &stored.entry_hash,
                line.trim_end_matches(['\n', '\r']),
            );
            last_hash = stored.entry_hash;
            if rows.len() >= IMPORT_CHUNK {
                let chunk = std::mem::take(&mut rows);
                session.run(async |c| chunk.insert(&*c).await).map_err(fail)?;
            }
        }
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        session
            .run(async |c| {
                rows.insert(&*c).await?;
                c.execute("UPDATE audit_head SET seq = $1, entry_hash = $2", &[&count, &last_hash])
                    .await
            })
            .map_err(fail)?;
        session.commit().map_err(fail)?;
        Ok(ChainHead { seq: n, entry_hash: last_hash })
    }
}

/// Reads the chain as the file log's bytes (see [`PgAuditLog::reader`]).
pub struct ChainReader<'a> {
    log: &'a PgAuditLog,
    next: i64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChainReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChainReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.buf.len() && !self.done {
            let rows = self.log.page(self.next).map_err(io::Error::other)?;
            self.buf.clear();
            self.pos = 0;
            self.done = rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            for (seq, line) in rows {
                self.buf.extend_from_slice(line.as_bytes());
                self.buf.push(b'\n');
                self.next = seq + 1;
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

impl AuditStore for PgAuditLog {
    fn location(&self) -> String {
        self.db.url().to_owned()
    }

    fn durability(&self) -> Durability {
        Durability::Fsync
    }

    fn append(&self, event: &AuditEvent) -> Result<AppendReceipt, AuditError> {
        let (correlation, original) = link_ids(event);
        let (reply, outcome) = std_mpsc::sync_channel(1);
        let job = Job {
            entry: PreparedEntry::new(event),
            event_id: event.event_id.as_str().to_owned(),
            event_type: event.event_type.as_str(),
            correlation_id: correlation.map(str::to_owned),
            original_id: original.map(str::to_owned),
            reply,
        };
        let stopped =
            || AuditError::Unavailable(format!("{}: the appender stopped", self.db.url()));
        self.jobs.send(job).map_err(|_| stopped())?;
        outcome.recv().map_err(|_| stopped())?
    }

    /// Every append is committed before it returns.
    fn sync(&self) -> Result<(), AuditError> {
        Ok(())
    }

    fn find_decision(&self, audit_id: &str) -> Result<Option<StoredEvent>, AuditError> {
        let rows = self.seq_lines(
            "SELECT seq, line FROM audit_log WHERE event_id = $1 \
             AND event_type = 'decision' ORDER BY seq LIMIT 1",
            &[&audit_id],
        )?;
        Ok(self.stored(rows)?.pop())
    }

    fn linked(&self, audit_id: &str) -> Result<Vec<StoredEvent>, AuditError> {
        let rows = self.seq_lines(
            "SELECT seq, line FROM audit_log WHERE correlation_id = $1 OR original_id = $1 \
             ORDER BY seq",
            &[&audit_id],
        )?;
        self.stored(rows)
    }

    fn verify(&self) -> Result<VerifyReport, AuditError> {
        agent_safe_audit::verify_reader(self.reader(1)).map_err(|e| match e {
            // A page that could not be read is the database's failure, not the chain's.
            AuditError::Io { source, .. } => {
                let text = source.to_string();
                match source.into_inner().map(|inner| inner.downcast::<AuditError>()) {
                    Some(Ok(e)) => *e,
                    _ => AuditError::Unavailable(text),
                }
            }
            other => other,
        })
    }
}

/// A statement parameter.
type Param = dyn tokio_postgres::types::ToSql + Sync;

/// The insert of [`Rows`], its columns `$1` to `$7` (see [`Rows::params`]).
macro_rules! insert_rows {
    () => {
        "INSERT INTO audit_log \
         (seq, event_id, event_type, correlation_id, original_id, entry_hash, line) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
         $5::text[], $6::text[], $7::text[])"
    };
}

/// Columns of rows to insert with one `INSERT … SELECT FROM UNNEST(…)`.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    event_id: Vec<String>,
    event_type: Vec<String>,
    correlation_id: Vec<Option<String>>,
    original_id: Vec<Option<String>>,
    entry_hash: Vec<String>,
    line: Vec<String>,
}

impl Rows {
    #[expect(clippy::too_many_arguments, reason = "one argument per column")]
    fn push(
        &mut self,
        seq: i64,
        event_id: &str,
        event_type: &str,
        correlation_id: Option<&str>,
        original_id: Option<&str>,
        entry_hash: &str,
        line: &str,
    ) {
        self.seq.push(seq);
        self.event_id.push(event_id.to_owned());
        self.event_type.push(event_type.to_owned());
        self.correlation_id.push(correlation_id.map(str::to_owned));
        self.original_id.push(original_id.map(str::to_owned));
        self.entry_hash.push(entry_hash.to_owned());
        self.line.push(line.to_owned());
    }

    fn len(&self) -> u64 {
        self.seq.len() as u64
    }

    /// Inserts the rows and moves the head from `head` to `next` in one statement (one round
    /// trip, committed on its own), only if the head is still `head`: the number of rows
    /// inserted (0 when the head had moved).
    async fn insert_after_head(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        head: &Head,
        next: &Head,
    ) -> Result<u64, tokio_postgres::Error> {
        let mut params = self.params();
        params.extend([&next.0 as &Param, &next.1, &head.0, &head.1]);
        // Prepared once per connection: the hot path is one round trip.
        let statement = client
            .prepare_cached(concat!(
                "WITH moved AS (UPDATE audit_head SET seq = $8, entry_hash = $9 \
                 WHERE seq = $10 AND entry_hash = $11 RETURNING 1) ",
                insert_rows!(),
                " WHERE EXISTS (SELECT 1 FROM moved)"
            ))
            .await?;
        client.execute(&statement, &params).await
    }

    /// The seven columns, as the parameters `$1` to `$7` of [`insert_rows!`].
    fn params(&self) -> Vec<&Param> {
        vec![
            &self.seq,
            &self.event_id,
            &self.event_type,
            &self.correlation_id,
            &self.original_id,
            &self.entry_hash,
            &self.line,
        ]
    }

    async fn insert(
        &self,
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<u64, tokio_postgres::Error> {
        client.execute(insert_rows!(), &self.params()).await
    }
}

/// The appender task: takes every append waiting, writes them in one transaction, answers
/// each. Ends when every [`PgAuditLog`] handle is gone.
async fn appender(pool: Pool, url: String, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut cached = Cached::default();
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write_batch(&pool, &url, &batch, &mut cached).await {
            Ok(receipts) => {
                for (job, receipt) in batch.into_iter().zip(receipts) {
                    // The appender may have gone (a panicking caller): nothing to tell.
                    let _ = job.reply.send(Ok(receipt));
                }
            }
            Err(e) => {
                cached = Cached::default();
                let e = fail(e);
                for job in batch {
                    let _ = job.reply.send(Err(e.copy()));
                }
            }
        }
    }
}

/// A chain head as the appender sees it: the last `seq` and its `entry_hash`.
type Head = (i64, String);

/// What the appender knows of the head between batches.
#[derive(Default)]
struct Cached {
    /// The head this appender wrote last.
    head: Option<Head>,
    /// Nobody else moved the head between this appender's last two batches: the next batch
    /// assumes it is still `head` (one round trip) instead of reading it under a lock.
    alone: bool,
}

/// The batch chained onto `head`: its rows, receipts and the new head.
fn chain(batch: &[Job], head: &Head) -> (Rows, Vec<AppendReceipt>, Head) {
    let (mut seq, mut prev) = head.clone();
    let mut rows = Rows::default();
    let mut receipts = Vec::with_capacity(batch.len());
    for job in batch {
        seq += 1;
        let entry = job.entry.chain(&prev, u64::try_from(seq).unwrap_or(0));
        rows.push(
            seq,
            &job.event_id,
            job.event_type,
            job.correlation_id.as_deref(),
            job.original_id.as_deref(),
            &entry.entry_hash,
            &entry.line,
        );
        receipts.push(AppendReceipt {
            seq: u64::try_from(seq).unwrap_or(0),
            entry_hash: entry.entry_hash.clone(),
        });
        prev = entry.entry_hash;
    }
    (rows, receipts, (seq, prev))
}

/// Appends `batch` after the chain's head and moves the head, atomically, in one statement.
///
/// While this appender is the only one writing (the head it found last was the one it had
/// written), the batch is chained here onto the head it wrote last, and one statement, committed
/// on its own, moves the head with a compare-and-set and inserts the rows only if that
/// succeeded. Otherwise (or when that finds the head moved, writing nothing) the server chains
/// the batch (`agent_safe_append`: the head held `FOR UPDATE` for that one statement), from the
/// same parts the file log's lines are built from.
async fn write_batch(
    pool: &Pool,
    url: &str,
    batch: &[Job],
    cached: &mut Cached,
) -> Result<Vec<AppendReceipt>, DbError> {
    let client = pool.get().await.map_err(|e| pool_error(url, e))?;
    if let Some(head) = cached.head.take_if(|_| cached.alone) {
        let (rows, receipts, next) = chain(batch, &head);
        // One statement, its own transaction: the head is moved only if it is still `head`,
        // and the rows are inserted only once it was (the insert reads the update's result),
        // so they are never written without holding the head.
        let inserted =
            rows.insert_after_head(&client, &head, &next).await.map_err(|e| classify(url, &e))?;
        if inserted == rows.len() {
            cached.head = Some(next);
            return Ok(receipts);
        }
        // Another replica moved the head: nothing was written; let the server chain it.
    }
    // The server chains the batch under the head's row lock, in one statement (see
    // migrations/0006_append_function.sql), so replicas appending at once hold the head for
    // one statement and its commit.
    let parts: Vec<[&str; 4]> = batch.iter().map(|j| j.entry.parts()).collect();
    let part = |i: usize| parts.iter().map(|p| p[i]).collect::<Vec<&str>>();
    let (p1, p2, p3, p4) = (part(0), part(1), part(2), part(3));
    let ids: Vec<&str> = batch.iter().map(|j| j.event_id.as_str()).collect();
    let types: Vec<&str> = batch.iter().map(|j| j.event_type).collect();
    let correlation: Vec<Option<&str>> =
        batch.iter().map(|j| j.correlation_id.as_deref()).collect();
    let original: Vec<Option<&str>> = batch.iter().map(|j| j.original_id.as_deref()).collect();
    // Sent together (one round trip), run one after the other: the batch, committed without
    // waiting for the WAL flush (the head is free for the next batch at once), then a write
    // committed with the flush, which covers the batch. Nobody is answered before both.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&p1, &p2, &p3, &p4, &ids, &types, &correlation, &original];
    let prepared = async {
        let append = client
            .prepare_cached(
                "SELECT appended_seq, appended_hash \
                 FROM agent_safe_append($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await?;
        let flush = client
            .prepare_cached(
                "INSERT INTO audit_flush (pid, flushes) VALUES (pg_backend_pid(), 1) \
                 ON CONFLICT (pid) DO UPDATE SET flushes = audit_flush.flushes + 1",
            )
            .await?;
        Ok::<_, tokio_postgres::Error>((append, flush))
    };
    let (append, flush) = prepared.await.map_err(|e| classify(url, &e))?;
    let append = client.query(&append, &params);
    let flush = client.execute(&flush, &[]);
    let (rows, flushed) = tokio::join!(append, flush);
    let rows = rows.map_err(|e| classify(url, &e))?;
    flushed.map_err(|e| classify(url, &e))?;
    let appended: Vec<Head> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (Some(first), Some(last)) = (appended.first(), appended.last()) else {
        return Err(DbError::Statement {
            url: url.to_owned(),
            detail: "agent_safe_append appended nothing".to_owned(),
        });
    };
    if appended.len() != batch.len() {
        return Err(DbError::Statement {
            url: url.to_owned(),
            detail: format!("agent_safe_append appended {} of {}", appended.len(), batch.len()),
        });
    }
    // Nobody else wrote between this appender's last two batches: the next one assumes the
    // head it wrote (chained here, one statement); else the server chains it again.
    cached.alone = cached.head.as_ref().map(|h| h.0) == Some(first.0 - 1);
    cached.head = Some(last.clone());
    Ok(appended
        .into_iter()
        .map(|(seq, entry_hash)| AppendReceipt { seq: u64::try_from(seq).unwrap_or(0), entry_hash })
        .collect())
}
