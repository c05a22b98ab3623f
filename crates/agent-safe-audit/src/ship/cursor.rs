//! Cursor files: how far a log has been shipped to one destination.
//!
//! `<log>.ship-<kind>-<id>.cursor` holds one line of canonical JSON:
//! `{"destination": …, "entry_hash": …, "kind": …, "line": …, "offset": …, "seq": …,
//! "updated_at": …, "version": 1}` — the last entry shipped (its `entry_hash`, line number,
//! `seq`, and the byte offset just after it in the log). It is replaced atomically (written to
//! `<cursor>.tmp`, then renamed over). Everyone shipping the log to that destination (the
//! SDK's worker, `agent-safe audit ship`, in any process) takes an exclusive lock on
//! `<cursor>.lock` around each read-ship-record step, so they never ship the same entries
//! concurrently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::digest;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{ShipLogError, Shipper};

/// The last entry shipped to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPosition {
    /// Byte offset just after the entry's line in the log.
    pub offset: u64,
    /// Its line number (counting non-blank lines).
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
}

/// The cursor file of `shipper` for the log at `log`:
/// `<log>.ship-<kind>-<first 12 hex digits of SHA-256(destination id)>.cursor`, e.g.
/// `audit.jsonl.ship-webhook-3f2a9c0d1b7e.cursor`.
pub fn cursor_path(log: &Path, shipper: &dyn Shipper) -> PathBuf {
    let kind: String = shipper
        .kind()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    let d = digest::digest(&digest::SHA256, shipper.destination_id().as_bytes());
    let id: String = d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    let mut name = log.file_name().unwrap_or(log.as_os_str()).to_owned();
    name.push(format!(".ship-{kind}-{id}.cursor"));
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
            kind: shipper.kind().to_owned(),
            destination: shipper.destination(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ShipLogError {
        ShipLogError::Cursor { path: self.path.clone(), message: format!("{what}: {e}") }
    }

    /// A handle on the lock file (opened once; every handle shares its lock).
    fn lock_file(&mut self) -> Result<File, ShipLogError> {
        let lock_err = |e: io::Error| ShipLogError::Cursor {
            path: self.lock_path.clone(),
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
        let file = self.lock_file()?;
        let path = self.lock_path.clone();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CursorLock { file }),
                Err(fs::TryLockError::WouldBlock) => tokio::time::sleep(LOCK_RETRY).await,
                Err(fs::TryLockError::Error(e)) => {
                    return Err(ShipLogError::Cursor {
                        path,
                        message: format!("cannot lock the cursor: {e}"),
                    });
                }
            }
        }
    }

    /// Takes the exclusive lock, blocking the thread.
    pub(crate) fn lock_blocking(&mut self) -> Result<CursorLock, ShipLogError> {
        let file = self.lock_file()?;
        let path = self.lock_path.clone();
        file.lock().map_err(|e| ShipLogError::Cursor {
            path,
            message: format!("cannot lock the cursor: {e}"),
        })?;
        Ok(CursorLock { file })
    }

    /// The recorded position; `None` when nothing was shipped yet (no cursor file).
    pub(crate) fn read(&self) -> Result<Option<CursorPosition>, ShipLogError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err("cannot read the cursor", e)),
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| {
            self.err("not a ship cursor (delete it to ship the whole log again)", e)
        })?;
        Ok(Some(CursorPosition {
            offset: stored.offset,
            line: stored.line,
            seq: stored.seq,
            entry_hash: stored.entry_hash,
        }))
    }

    /// Records `pos`: written to `<cursor>.tmp`, then renamed over the cursor. With
    /// `durable`, the data and the rename are synced before returning.
    pub(crate) fn write(
        &self,
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
        let mut text = crate::canonical::to_string(&value);
        text.push('\n');
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            if durable {
                f.sync_all()?;
            }
            drop(f);
            fs::rename(&tmp, &self.path)?;
            if durable {
                crate::repair::sync_dir_of(&self.path)?;
            }
            Ok(())
        };
        write().map_err(|e| self.err("cannot write the cursor", e))
    }
}
