//! The outbox: one read-ship-record step over a [`ShipChannel`], and the file log's reader.
//!
//! Only complete lines (ending with `\n`) are shipped: a line without one may be a write in
//! progress or a torn write (which `agent-safe audit repair` removes), so the reader stops
//! before it and waits.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::Clock;

use crate::cursor::CursorPosition;
use crate::entry::entry_hash_of;
use crate::source::{ShipChannel, ShipChunk, ShipSource};
use crate::{ShipEntry, ShipLogError, Shipper};
use agent_safe_audit::AuditError;
use agent_safe_audit::scan::{self as tail, Lines, Term};

/// Entries read (and shipped) per step at most.
pub(crate) const CHUNK_ENTRIES: usize = 4096;
/// First read size of a step; doubled while a single line does not fit.
const READ_BYTES: usize = 4 << 20;

/// Reads the log from byte offsets.
#[derive(Debug)]
pub(crate) struct LogReader {
    path: PathBuf,
    file: Option<File>,
    /// Identity of the file last opened (device, inode), to notice a replaced log.
    identity: Option<(u64, u64)>,
}

fn audit_io(path: &Path, source: io::Error) -> ShipLogError {
    if source.kind() == io::ErrorKind::NotFound {
        AuditError::NotFound { path: path.to_owned() }.into()
    } else {
        AuditError::Io { path: path.to_owned(), source }.into()
    }
}

impl LogReader {
    pub(crate) fn new(path: &Path) -> Self {
        Self { path: path.to_owned(), file: None, identity: None }
    }

    /// Opens the log again (at every step, so a replaced log is noticed); whether it is
    /// another file than the one opened before.
    pub(crate) fn reopen(&mut self) -> Result<bool, ShipLogError> {
        self.file = None;
        let path = self.path.clone();
        let meta = self.file()?.metadata().map_err(|e| audit_io(&path, e))?;
        let identity = file_identity(&meta);
        let changed = self.identity.is_some() && self.identity != identity;
        self.identity = identity;
        Ok(changed)
    }

    fn file(&mut self) -> Result<&File, ShipLogError> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path).map_err(|e| audit_io(&self.path, e))?);
        }
        match &self.file {
            Some(f) => Ok(f),
            None => Err(audit_io(&self.path, io::Error::other("the log is not open"))),
        }
    }

    fn len(&mut self) -> Result<u64, ShipLogError> {
        let path = self.path.clone();
        Ok(self.file()?.metadata().map_err(|e| audit_io(&path, e))?.len())
    }

    /// Up to `max` complete entries starting at `offset` (a line start); `line` is the number
    /// of non-blank lines before `offset`.
    pub(crate) fn read(
        &mut self,
        offset: u64,
        line: usize,
        max: usize,
    ) -> Result<ShipChunk, ShipLogError> {
        let path = self.path.clone();
        let len = self.len()?;
        let mut chunk = ShipChunk { scanned_to: offset, ..ShipChunk::default() };
        if offset >= len {
            return Ok(chunk);
        }
        let file = self.file()?;
        let mut size = READ_BYTES;
        loop {
            let want = (len - offset).min(size as u64);
            let buf = tail::read_range(file, offset, want).map_err(|e| audit_io(&path, e))?;
            let full = want < len - offset;
            let mut n = line;
            for l in Lines::new(&buf) {
                let term_len: usize = match l.term {
                    Term::Lf | Term::Cr => 1,
                    Term::CrLf => 2,
                    Term::Eof => break,
                };
                let end = l.start + l.raw.len() + term_len;
                // A `\r` at the end of what was read may be the first half of a `\r\n`.
                if l.term == Term::Cr && end == buf.len() {
                    break;
                }
                let end = offset + end as u64;
                if !l.text.is_empty() {
                    let parsed = std::str::from_utf8(l.text)
                        .map_err(|e| e.to_string())
                        .and_then(|text| ShipEntry::parse(text, n + 1));
                    match parsed {
                        Ok(entry) => {
                            chunk.entries.push(entry.with_end(end));
                            n += 1;
                        }
                        // Ship what comes before it first; the next read fails here.
                        Err(_) if !chunk.entries.is_empty() => {
                            chunk.more = true;
                            return Ok(chunk);
                        }
                        Err(e) => return Err(corrupt(&path, n + 1, e)),
                    }
                }
                chunk.scanned_to = end;
                if chunk.entries.len() >= max {
                    chunk.more = true;
                    return Ok(chunk);
                }
            }
            if chunk.scanned_to > offset || !full {
                // Stopped at the end of what was read: more may follow when it was not all.
                chunk.more = full;
                return Ok(chunk);
            }
            // Not even one line fits: read more.
            size = size.saturating_mul(2);
        }
    }

    /// The entry before `offset` must be the one `pos` describes.
    pub(crate) fn check(&mut self, pos: &CursorPosition) -> Result<(), String> {
        let len = self.len().map_err(|e| e.to_string())?;
        if pos.offset > len {
            return Err(format!(
                "the cursor is at byte {}, the log has only {len} bytes (truncated or replaced?)",
                pos.offset
            ));
        }
        let file = self.file().map_err(|e| e.to_string())?;
        let last = tail::last_line(file, pos.offset).map_err(|e| e.to_string())?;
        let found = last.filter(|l| l.lf).and_then(|l| entry_hash_of(&l.text));
        match found {
            Some(h) if h == pos.entry_hash => Ok(()),
            Some(h) => Err(format!(
                "the entry before byte {} has entry_hash `{}…`, the cursor records `{}…` \
                 (line {})",
                pos.offset,
                prefix(&h),
                prefix(&pos.entry_hash),
                pos.line
            )),
            None => Err(format!("no entry ends at byte {} (line {})", pos.offset, pos.line)),
        }
    }

    /// The position of the log's last complete entry (`None` for a log without one).
    pub(crate) fn last_entry(&mut self) -> Result<Option<CursorPosition>, ShipLogError> {
        let path = self.path.clone();
        let len = self.len()?;
        let file = self.file()?;
        let io = |e| audit_io(&path, e);
        let end = complete_end(file, len).map_err(io)?;
        let Some(last) = tail::last_line(file, end).map_err(io)? else { return Ok(None) };
        let line = usize::try_from(tail::count_lines(file, end).map_err(io)?).unwrap_or(usize::MAX);
        let text = std::str::from_utf8(&last.text).map_err(|e| corrupt(&path, line, e))?;
        let entry = ShipEntry::parse(text, line).map_err(|e| corrupt(&path, line, e))?;
        Ok(Some(CursorPosition {
            offset: end,
            line,
            seq: entry.seq(),
            entry_hash: entry.entry_hash().to_owned(),
        }))
    }

    /// Where the complete lines end, and the number (`seq`, else line number) of the last
    /// entry among them (0 when there is none).
    pub(crate) fn head(&mut self) -> Result<(u64, u64), ShipLogError> {
        let path = self.path.clone();
        let len = self.len()?;
        let file = self.file()?;
        let io = |e| audit_io(&path, e);
        let end = complete_end(file, len).map_err(io)?;
        let Some(last) = tail::last_line(file, end).map_err(io)? else { return Ok((end, 0)) };
        #[derive(serde::Deserialize)]
        struct Seq {
            seq: Option<u64>,
        }
        let number = match serde_json::from_slice::<Seq>(&last.text) {
            Ok(Seq { seq: Some(seq) }) => seq,
            _ => tail::count_lines(file, end).map_err(io)?,
        };
        Ok((end, number))
    }
}

#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_identity(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The offset just after the last `\n` in the first `len` bytes (0 when there is none).
fn complete_end(file: &File, len: u64) -> io::Result<u64> {
    let mut f = file;
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn corrupt(path: &Path, line: usize, e: impl std::fmt::Display) -> ShipLogError {
    AuditError::Corrupt {
        path: path.to_owned(),
        line,
        message: format!("cannot ship this line: {e}; run `agent-safe audit verify`"),
    }
    .into()
}

fn prefix(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// What one step did.
#[derive(Debug, Default)]
pub(crate) struct StepReport {
    /// Entries shipped.
    pub(crate) shipped: usize,
    /// Entries found already at the destination and skipped.
    pub(crate) skipped: usize,
    /// The last entry shipped (after the step), `None` when none ever was.
    pub(crate) position: Option<CursorPosition>,
    /// Everything before this offset is shipped (or blank).
    pub(crate) scanned_to: u64,
    /// More entries may be waiting.
    pub(crate) more: bool,
    /// What stopped the step; progress before it is recorded.
    pub(crate) error: Option<ShipLogError>,
    /// Another process ships to this destination; this step did nothing.
    pub(crate) standby: bool,
}

/// A log and one destination, with the cursor between them.
#[derive(Debug)]
pub(crate) struct Outbox {
    log: String,
    channel: Box<dyn ShipChannel>,
    shipper: Arc<dyn Shipper>,
    clock: Arc<dyn Clock>,
    /// The cursor as this outbox last checked or wrote it; re-checked against the log when
    /// the store says otherwise (another process shipped meanwhile).
    trusted: Option<Option<CursorPosition>>,
    /// Start here instead of at the cursor on the next step (`--from-start`).
    start_override: Option<Option<CursorPosition>>,
}

impl Outbox {
    pub(crate) fn new(
        source: &dyn ShipSource,
        shipper: Arc<dyn Shipper>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            log: source.log_name(),
            channel: source.channel(&*shipper),
            shipper,
            clock,
            trusted: None,
            start_override: None,
        }
    }

    /// The cursor, as messages name it.
    pub(crate) fn cursor_location(&self) -> String {
        self.channel.cursor_location()
    }

    /// Ignore the cursor on the next step and start from the first entry.
    pub(crate) fn restart_from_first_entry(&mut self) {
        self.start_override = Some(None);
    }

    /// The recorded position (no lock; for status).
    pub(crate) fn recorded(&self) -> Result<Option<CursorPosition>, ShipLogError> {
        self.channel.peek()
    }

    /// When no cursor exists yet, records the log's last complete entry as shipped (the
    /// `start_at: end` setting).
    pub(crate) fn start_at_end(&mut self) -> Result<(), ShipLogError> {
        self.channel.start_at_end(self.clock.now())
    }

    fn mismatch(&self, detail: String) -> ShipLogError {
        ShipLogError::CursorMismatch {
            log: self.log.clone(),
            cursor: self.channel.cursor_location(),
            detail,
        }
    }

    /// One step under the destination's lock: read the cursor (check it against the log when
    /// it changed), with `resync` ask the destination what it already holds and skip that,
    /// read up to a chunk of entries and ship them, recording progress after every
    /// [`Shipper::ship`] call (durable at the end of the step). When another process holds
    /// the lock (a database log shipped by another replica) the step does nothing and says
    /// it stood by.
    pub(crate) async fn step(&mut self, resync: bool) -> StepReport {
        let mut report = StepReport::default();
        if let Err(e) = self.step_locked(resync, &mut report).await {
            report.error = Some(e);
        }
        report
    }

    /// The first entry after `from` whose `entry_hash` is `hash`.
    async fn find(
        &mut self,
        from: Option<&CursorPosition>,
        hash: &str,
    ) -> Result<Option<CursorPosition>, ShipLogError> {
        let mut at = from.cloned();
        loop {
            let chunk = self.channel.read(at.as_ref(), CHUNK_ENTRIES).await?;
            if let Some(e) = chunk.entries.iter().find(|e| e.entry_hash() == hash) {
                return Ok(Some(CursorPosition::after(e)));
            }
            let Some(last) = chunk.entries.last() else { return Ok(None) };
            if !chunk.more {
                return Ok(None);
            }
            at = Some(CursorPosition::after(last));
        }
    }

    async fn step_locked(
        &mut self,
        resync: bool,
        report: &mut StepReport,
    ) -> Result<(), ShipLogError> {
        let Some(_lock) = self.channel.lock().await? else {
            report.standby = true;
            self.trusted = None;
            return Ok(());
        };
        if self.channel.log_replaced()? {
            // Another file under the log's name: check the cursor against it.
            self.trusted = None;
        }
        let mut pos = match self.start_override.take() {
            Some(start) => {
                self.trusted = Some(start.clone());
                start
            }
            None => self.channel.read_cursor().await?,
        };
        if self.trusted.as_ref() != Some(&pos) {
            if let Some(p) = &pos
                && let Some(detail) = self.channel.check(p).await?
            {
                return Err(self.mismatch(detail));
            }
            self.trusted = Some(pos.clone());
        }
        report.position = pos.clone();
        report.scanned_to = pos.as_ref().map_or(0, |p| p.offset);
        if resync {
            let held =
                self.shipper.last_shipped().await.map_err(|source| ShipLogError::Destination {
                    kind: self.shipper.kind().to_owned(),
                    destination: self.shipper.destination(),
                    source,
                })?;
            if let Some(hash) = held
                && pos.as_ref().is_none_or(|p| p.entry_hash != hash)
                && let Some(found) = self.find(pos.as_ref(), &hash).await?
            {
                report.skipped += found.line - pos.as_ref().map_or(0, |p| p.line);
                self.channel.write_cursor(&found, self.clock.now(), true).await?;
                self.trusted = Some(Some(found.clone()));
                report.scanned_to = found.offset;
                pos = Some(found);
                report.position = pos.clone();
            }
        }
        let chunk = self.channel.read(pos.as_ref(), CHUNK_ENTRIES).await?;
        let entries = &chunk.entries;
        let max = self.shipper.max_batch().max(1);
        let mut i = 0;
        while i < entries.len() {
            let batch = &entries[i..entries.len().min(i + max)];
            let out = self.shipper.ship(batch).await;
            let n = out.count.min(batch.len());
            let error = match out.error {
                Some(e) => Some(e),
                None if n < batch.len() => Some(crate::ShipError::Other(format!(
                    "the shipper took {n} of {} entries without an error",
                    batch.len()
                ))),
                None => None,
            };
            if n > 0 {
                let p = CursorPosition::after(&batch[n - 1]);
                let last = error.is_some() || i + n >= entries.len();
                self.channel.write_cursor(&p, self.clock.now(), last).await?;
                self.trusted = Some(Some(p.clone()));
                report.shipped += n;
                report.scanned_to = p.offset;
                report.position = Some(p);
            }
            if let Some(source) = error {
                // The first entry not shipped (the last one if the shipper claimed them all).
                let failed = batch.get(n).or(batch.last());
                return Err(ShipLogError::Ship {
                    log: self.log.clone(),
                    line: failed.map_or(0, ShipEntry::line),
                    event_id: failed.map_or_else(String::new, |e| e.event_id().to_owned()),
                    kind: self.shipper.kind().to_owned(),
                    source,
                });
            }
            i += n;
        }
        report.scanned_to = chunk.scanned_to;
        report.more = chunk.more;
        Ok(())
    }
}
