//! Where shipping reads the log and keeps its cursors: [`ShipSource`] and one destination's
//! view of it, [`ShipChannel`]. The file log with cursor files next to it is [`FileSource`];
//! the log kept in PostgreSQL (cursors in a table, one process of the cluster shipping) is
//! `agent_safe_postgres::PgShipSource`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::BoxFuture;
use time::OffsetDateTime;

use crate::cursor::{CursorFile, CursorLock};
use crate::outbox::LogReader;
use crate::{CursorPosition, ShipEntry, ShipLogError, Shipper};

/// A log to ship and the place its destinations' cursors are kept.
pub trait ShipSource: Send + Sync + fmt::Debug {
    /// The log, as messages name it (a path, or the database without its password).
    fn log_name(&self) -> String;

    /// Where the log's complete entries end (the `offset` of a position just after the last
    /// one) and the last entry's number (its `seq`, else its line number); `(0, 0)` for an
    /// empty log. Fails when the log does not exist or cannot be read.
    fn head(&self) -> Result<(u64, u64), ShipLogError>;

    /// `shipper`'s view of the log: its cursor and the entries after it.
    fn channel(&self, shipper: &dyn Shipper) -> Box<dyn ShipChannel>;
}

/// Held while one process ships to a destination (one step); released on drop.
pub type StepLock = Box<dyn Send>;

/// One destination's cursor and the log read from it. The worker and `audit ship` call it
/// from one task at a time: lock, read the cursor, check it, read entries, write progress.
pub trait ShipChannel: Send + fmt::Debug {
    /// The cursor, as messages and status name it (its file, or its row in the database).
    fn cursor_location(&self) -> String;

    /// The recorded position, read without the lock (for status); `None` when nothing was
    /// shipped yet.
    fn peek(&self) -> Result<Option<CursorPosition>, ShipLogError>;

    /// When no cursor exists yet, records the log's last entry as shipped (`start_at: end`).
    fn start_at_end(&mut self, now: OffsetDateTime) -> Result<(), ShipLogError>;

    /// The right to ship to this destination for one step: `Some` (released on drop), or
    /// `None` when another process ships there; this one then stands by and asks again later.
    fn lock(&mut self) -> BoxFuture<'_, Result<Option<StepLock>, ShipLogError>>;

    /// Whether the log was replaced since the last call (its cursor is then checked again).
    fn log_replaced(&mut self) -> Result<bool, ShipLogError>;

    /// The recorded position (the lock held); `None` when nothing was shipped yet.
    fn read_cursor(&mut self) -> BoxFuture<'_, Result<Option<CursorPosition>, ShipLogError>>;

    /// Records `pos` as shipped (the lock held); with `durable`, on disk before returning.
    fn write_cursor<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
        now: OffsetDateTime,
        durable: bool,
    ) -> BoxFuture<'a, Result<(), ShipLogError>>;

    /// Whether the entry `pos` names is in the log where it says: `Ok(None)` when it is,
    /// `Ok(Some(what differs))` when it is not.
    fn check<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
    ) -> BoxFuture<'a, Result<Option<String>, ShipLogError>>;

    /// Up to `max` complete entries after `from` (from the first entry when `None`), each
    /// with its [`ShipEntry::end`].
    fn read<'a>(
        &'a mut self,
        from: Option<&'a CursorPosition>,
        max: usize,
    ) -> BoxFuture<'a, Result<ShipChunk, ShipLogError>>;
}

/// Entries read by [`ShipChannel::read`].
#[derive(Debug, Default)]
pub struct ShipChunk {
    /// The entries, in order.
    pub entries: Vec<ShipEntry>,
    /// Where reading goes on: after the last entry (and any blank lines after it), or where
    /// it started when there was none.
    pub scanned_to: u64,
    /// More entries may follow (the read stopped at `max` or another limit).
    pub more: bool,
}

/// The file log at a path, with a cursor file per destination next to it (see
/// [`crate::cursor_path`]).
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// The file log at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// As a shared source.
    pub fn shared(path: &Path) -> Arc<dyn ShipSource> {
        Arc::new(Self::new(path))
    }
}

impl ShipSource for FileSource {
    fn log_name(&self) -> String {
        self.path.display().to_string()
    }

    fn head(&self) -> Result<(u64, u64), ShipLogError> {
        LogReader::new(&self.path).head()
    }

    fn channel(&self, shipper: &dyn Shipper) -> Box<dyn ShipChannel> {
        Box::new(FileChannel {
            reader: LogReader::new(&self.path),
            cursor: CursorFile::new(&self.path, shipper),
        })
    }
}

#[derive(Debug)]
struct FileChannel {
    reader: LogReader,
    cursor: CursorFile,
}

impl ShipChannel for FileChannel {
    fn cursor_location(&self) -> String {
        self.cursor.path().display().to_string()
    }

    fn peek(&self) -> Result<Option<CursorPosition>, ShipLogError> {
        self.cursor.peek()
    }

    fn start_at_end(&mut self, now: OffsetDateTime) -> Result<(), ShipLogError> {
        let _lock = self.cursor.lock_blocking()?;
        if self.cursor.read()?.is_some() {
            return Ok(());
        }
        if let Some(pos) = self.reader.last_entry()? {
            self.cursor.write(&pos, now, true)?;
        }
        Ok(())
    }

    fn lock(&mut self) -> BoxFuture<'_, Result<Option<StepLock>, ShipLogError>> {
        Box::pin(async {
            let lock: CursorLock = self.cursor.lock().await?;
            Ok(Some(Box::new(lock) as StepLock))
        })
    }

    fn log_replaced(&mut self) -> Result<bool, ShipLogError> {
        self.reader.reopen()
    }

    fn read_cursor(&mut self) -> BoxFuture<'_, Result<Option<CursorPosition>, ShipLogError>> {
        Box::pin(async { self.cursor.read() })
    }

    fn write_cursor<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
        now: OffsetDateTime,
        durable: bool,
    ) -> BoxFuture<'a, Result<(), ShipLogError>> {
        Box::pin(async move { self.cursor.write(pos, now, durable) })
    }

    fn check<'a>(
        &'a mut self,
        pos: &'a CursorPosition,
    ) -> BoxFuture<'a, Result<Option<String>, ShipLogError>> {
        Box::pin(async move { Ok(self.reader.check(pos).err()) })
    }

    fn read<'a>(
        &'a mut self,
        from: Option<&'a CursorPosition>,
        max: usize,
    ) -> BoxFuture<'a, Result<ShipChunk, ShipLogError>> {
        Box::pin(async move {
            let (offset, line) = from.map_or((0, 0), |p| (p.offset, p.line));
            self.reader.read(offset, line, max)
        })
    }
}
