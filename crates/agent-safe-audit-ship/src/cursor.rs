//! Cursor files: how far a log has been shipped to one destination.
//!
//! `<log>.ship-<kind>-<id>.cursor` holds one line of canonical JSON:
//! `{"destination": …, "entry_hash": …, "kind": …, "line": …, "offset": …, "seq": …,
//! "updated_at": …, "version": 1}` — the last entry shipped (its `entry_hash`, line number,
//! `seq`, and the byte offset just after it in the log), padded with spaces to a fixed size.
//! It is created (and replaced when a record outgrows it) atomically: written to
//! `<cursor>.tmp`, synced, renamed over. Progress updates rewrite the whole record in place
//! with one `write` of the same size, so a reader always sees a complete record; they are
//! synced at the end of each step. (Renaming over the cursor after every webhook POST cost
//! about 4 ms on ext4, which flushes a file renamed over another: 260 events/s at most.)
//! Everyone shipping the log to that destination (the
//! SDK's worker, `agent-safe audit ship`, in any process) takes an exclusive lock on
//! `<cursor>.lock` around each read-ship-record step, so they never ship the same entries
//! concurrently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::digest;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::{ShipLogError, Shipper};

/// The last entry shipped to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPosition {
    /// Where the log goes on after the entry: in a file log the byte offset just after its
    /// line; in a database log its row number (`seq`).
    pub offset: u64,
    /// Its line number (counting non-blank lines); in a database log its row number.
    pub line: usize,
    /// Its `seq` (absent in lines written by the Python version).
    pub seq: Option<u64>,
    /// Its `entry_hash`.
    pub entry_hash: String,
}

impl CursorPosition {
    /// The entry's number in the log: its `seq`, or its line number when it has none.
    pub fn number(&self) -> u64 {
        self.seq.unwrap_or(self.line as u64)
    }

    /// The position just after `entry`.
    pub fn after(entry: &crate::ShipEntry) -> Self {
        Self {
            offset: entry.end(),
            line: entry.line(),
            seq: entry.seq(),
            entry_hash: entry.entry_hash().to_owned(),
        }
    }
}

/// What names the cursor of `shipper` (in a cursor file's name, or a database row):
/// `<kind>-<first 12 hex digits of SHA-256(destination id)>`, e.g. `webhook-3f2a9c0d1b7e`.
pub fn cursor_id(shipper: &dyn Shipper) -> String {
    let kind: String = shipper
        .kind()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let d = digest::digest(&digest::SHA256, shipper.destination_id().as_bytes());
    format!("{kind}-{}", agent_safe_core::hex::encode(&d.as_ref()[..6]))
}

/// The cursor file of `shipper` for the log at `log`: `<log>.ship-<cursor id>.cursor` (see
/// [`cursor_id`]), e.g. `audit.jsonl.ship-webhook-3f2a9c0d1b7e.cursor`.
pub fn cursor_path(log: &Path, shipper: &dyn Shipper) -> PathBuf {
    let mut name = log.file_name().unwrap_or(log.as_os_str()).to_owned();
    name.push(format!(".ship-{}.cursor", cursor_id(shipper)));
    log.with_file_name(name)
}

#[derive(Deserialize)]
struct Stored {
    offset: u64,
    line: usize,
    #[serde(default)]
    seq: Option<u64>,
    entry_hash: String,
}

/// One cursor file and its lock.
#[derive(Debug)]
pub(crate) struct CursorFile {
    path: PathBuf,
    lock_path: PathBuf,
    lock: Option<File>,
    /// The cursor file as opened by the last [`CursorFile::read`] under the lock, and its
    /// size: updates that fit are written in place.
    handle: Option<(File, u64)>,
    kind: String,
    destination: String,
}

/// Holds the cursor lock (a handle on the lock file's open description); released on drop.
#[derive(Debug)]
pub(crate) struct CursorLock {
    file: File,
}

impl Drop for CursorLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// How long to wait before trying a contended cursor lock again.
const LOCK_RETRY: Duration = Duration::from_millis(20);

impl CursorFile {
    pub(crate) fn new(log: &Path, shipper: &dyn Shipper) -> Self {
        let path = cursor_path(log, shipper);
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self {
            path,
            lock_path: PathBuf::from(lock_path),
            lock: None,
            handle: None,
            kind: shipper.kind().to_owned(),
            destination: shipper.destination(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ShipLogError {
        ShipLogError::Cursor {
            cursor: self.path.display().to_string(),
            message: format!("{what}: {e}"),
        }
    }

    /// A handle on the lock file (opened once; every handle shares its lock).
    fn lock_file(&mut self) -> Result<File, ShipLogError> {
        let lock_err = |e: io::Error| ShipLogError::Cursor {
            cursor: self.lock_path.display().to_string(),
            message: format!("cannot open the cursor lock: {e}"),
        };
        let file = match &self.lock {
            Some(file) => file.try_clone().map_err(lock_err)?,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&self.lock_path)
                    .map_err(lock_err)?;
                let handle = file.try_clone().map_err(lock_err)?;
                self.lock = Some(file);
                handle
            }
        };
        Ok(file)
    }

    /// Takes the exclusive lock, waiting (without blocking the runtime) while another
    /// shipper of the same log and destination holds it.
    pub(crate) async fn lock(&mut self) -> Result<CursorLock, ShipLogError> {
        // Another process may have replaced the cursor file while we did not hold the lock.
        self.handle = None;
        let file = self.lock_file()?;
        let path = self.lock_path.clone();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CursorLock { file }),
                Err(fs::TryLockError::WouldBlock) => tokio::time::sleep(LOCK_RETRY).await,
                Err(fs::TryLockError::Error(e)) => {
                    return Err(ShipLogError::Cursor {
                        cursor: path.display().to_string(),
                        message: format!("cannot lock the cursor: {e}"),
                    });
                }
            }
        }
    }

    /// Takes the exclusive lock, blocking the thread.
    pub(crate) fn lock_blocking(&mut self) -> Result<CursorLock, ShipLogError> {
        self.handle = None;
        let file = self.lock_file()?;
        let path = self.lock_path.clone();
        file.lock().map_err(|e| ShipLogError::Cursor {
            cursor: path.display().to_string(),
            message: format!("cannot lock the cursor: {e}"),
        })?;
        Ok(CursorLock { file })
    }

    fn parse(&self, bytes: &[u8]) -> Result<Option<CursorPosition>, ShipLogError> {
        let stored: Stored = serde_json::from_slice(bytes).map_err(|e| {
            self.err("not a ship cursor (delete it to ship the whole log again)", e)
        })?;
        Ok(Some(CursorPosition {
            offset: stored.offset,
            line: stored.line,
            seq: stored.seq,
            entry_hash: stored.entry_hash,
        }))
    }

    /// The recorded position, read without the lock (for status); `None` when nothing was
    /// shipped yet (no cursor file).
    pub(crate) fn peek(&self) -> Result<Option<CursorPosition>, ShipLogError> {
        match fs::read(&self.path) {
            Ok(bytes) => self.parse(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("cannot read the cursor", e)),
        }
    }

    /// The recorded position (call with the lock held; later writes in the same step go to
    /// the file read here); `None` when nothing was shipped yet.
    pub(crate) fn read(&mut self) -> Result<Option<CursorPosition>, ShipLogError> {
        self.handle = None;
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("cannot read the cursor", e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| self.err("cannot read the cursor", e))?;
        let pos = self.parse(&bytes)?;
        self.handle = Some((file, bytes.len() as u64));
        Ok(pos)
    }

    /// Records `pos`: in place when the record fits the file read by [`CursorFile::read`],
    /// else (a new cursor, or a record that outgrew it) via `<cursor>.tmp` and a rename. With
    /// `durable`, synced before returning.
    pub(crate) fn write(
        &mut self,
        pos: &CursorPosition,
        now: OffsetDateTime,
        durable: bool,
    ) -> Result<(), ShipLogError> {
        let value = json!({
            "version": 1,
            "kind": self.kind,
            "destination": self.destination,
            "offset": pos.offset,
            "line": pos.line,
            "seq": pos.seq,
            "entry_hash": pos.entry_hash,
            "updated_at": agent_safe_core::timefmt::format_utc(now),
        });
        let record = agent_safe_audit::canonical::to_string(&value);
        let path = self.path.clone();
        let err = |e: io::Error| ShipLogError::Cursor {
            cursor: path.display().to_string(),
            message: format!("cannot write the cursor: {e}"),
        };
        if let Some((file, size)) = &mut self.handle
            && (record.len() as u64) < *size
        {
            let padded = pad(&record, *size);
            file.seek(SeekFrom::Start(0)).map_err(err)?;
            file.write_all(padded.as_bytes()).map_err(err)?;
            if durable {
                file.sync_data().map_err(err)?;
            }
            return Ok(());
        }
        // Room for the numbers to grow before the next rename.
        let size = (record.len() as u64 + 64).div_ceil(256) * 256;
        let padded = pad(&record, size);
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(padded.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(err)?;
        if durable {
            agent_safe_core::fsutil::sync_parent_dir(&self.path).map_err(err)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(&self.path).map_err(err)?;
        self.handle = Some((file, size));
        Ok(())
    }
}

/// `record`, spaces, and a newline: `size` bytes in all (`record` is shorter).
fn pad(record: &str, size: u64) -> String {
    let size = usize::try_from(size).unwrap_or(record.len() + 1);
    let mut out = String::with_capacity(size);
    out.push_str(record);
    while out.len() + 1 < size {
        out.push(' ');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FilesystemShipper;
    use time::macros::datetime;

    fn pos(n: usize, hash: &str) -> CursorPosition {
        CursorPosition {
            offset: n as u64 * 700,
            line: n,
            seq: Some(n as u64),
            entry_hash: hash.into(),
        }
    }

    #[cfg(unix)]
    fn inode(path: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
    }

    #[test]
    fn progress_is_written_in_place_and_a_longer_record_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let shipper = FilesystemShipper::new(dir.path().join("copy.jsonl"));
        let mut cursor = CursorFile::new(&dir.path().join("audit.jsonl"), &shipper);
        let now = datetime!(2026-02-24 12:00 UTC);
        let _lock = cursor.lock_blocking().unwrap();
        assert_eq!(cursor.read().unwrap(), None);
        cursor.write(&pos(1, &"a".repeat(64)), now, true).unwrap();
        let size = fs::metadata(cursor.path()).unwrap().len();
        assert_eq!(size % 256, 0);
        #[cfg(unix)]
        let first = inode(cursor.path());
        // Growing numbers fit the padding: same file, same size, always one complete record.
        for n in [2, 99, 12_345, 9_999_999] {
            cursor.write(&pos(n, &"b".repeat(64)), now, false).unwrap();
            assert_eq!(cursor.peek().unwrap(), Some(pos(n, &"b".repeat(64))));
            let text = fs::read_to_string(cursor.path()).unwrap();
            assert_eq!(text.len() as u64, size);
            assert!(text.ends_with(" \n") && text.matches('\n').count() == 1, "{text:?}");
        }
        #[cfg(unix)]
        assert_eq!(inode(cursor.path()), first);
        // A record that does not fit replaces the file (atomically).
        cursor.write(&pos(3, &"c".repeat(400)), now, true).unwrap();
        assert!(fs::metadata(cursor.path()).unwrap().len() > size);
        assert_eq!(cursor.peek().unwrap(), Some(pos(3, &"c".repeat(400))));
        // A file that is not a cursor is reported.
        fs::write(cursor.path(), "garbage").unwrap();
        let err = cursor.read().unwrap_err().to_string();
        assert!(err.contains("not a ship cursor (delete it to ship the whole log again)"), "{err}");
    }
}
