//! The writer: durable, all-or-nothing appends under an in-process mutex and an OS file lock,
//! with group commit of fsyncs.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use agent_safe_core::AuditEvent;

use crate::AuditError;
use crate::entry::hex;
use crate::line::PreparedLine;
use crate::tail::{self, Head, TailError};

/// When an append counts as done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `append` returns after an fsync covering the entry (survives power loss). Concurrent
    /// appends share fsyncs (group commit).
    #[default]
    Fsync,
    /// `append` returns once the entry is in the OS page cache (survives a process crash, not
    /// a power loss). Call [`AuditLog::sync`] to make everything so far durable.
    Buffered,
}

/// Options for [`AuditLog::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AuditOptions {
    /// When an append counts as done (default: [`Durability::Fsync`]).
    pub durability: Durability,
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The entry's `seq` (its line number in a log written only by this crate).
    pub seq: u64,
    /// The entry's `entry_hash` (64 lowercase hex digits).
    pub entry_hash: String,
}

/// An open audit log. `Send + Sync`; share it with an `Arc`.
///
/// Any number of `AuditLog`s, in any number of processes, may append to the same file: every
/// append takes the OS lock, reads what others appended since, and chains onto it.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    options: AuditOptions,
    writer: Mutex<Writer>,
    /// A second handle on the same file, for fsync outside the writer mutex.
    sync_file: File,
    /// Appends completed (written) so far; a ticket for group commit.
    written: AtomicU64,
    /// fsyncs run so far (for the benchmark figures).
    pub(crate) fsyncs: AtomicU64,
    sync: Mutex<SyncState>,
    synced: Condvar,
}

#[derive(Debug)]
struct Writer {
    file: File,
    head: Head,
    buf: Vec<u8>,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Every append with a ticket up to this is durable.
    durable: u64,
    /// An fsync is running.
    in_flight: bool,
    /// An fsync failed: nothing written since can be trusted to be durable.
    failed: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding these locks; if one did, the state is still usable
    // (the file is re-read under the OS lock before every append).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditLog {
    /// Opens the log at `path`, creating it if absent (its directory must exist), and reads
    /// the chain head (the last non-blank line) to resume from.
    ///
    /// Never truncates or rewrites anything. Fails with [`AuditError::TornTail`] when the file
    /// ends with an interrupted write (run `agent-safe audit repair`) and with
    /// [`AuditError::Corrupt`] when the last complete line is not an entry.
    pub fn open(path: &Path, options: AuditOptions) -> Result<AuditLog, AuditError> {
        let io_err = |source: io::Error| AuditError::Io { path: path.to_owned(), source };
        let (file, created) =
            match OpenOptions::new().read(true).append(true).create_new(true).open(path) {
                Ok(f) => (f, true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    (OpenOptions::new().read(true).append(true).open(path).map_err(io_err)?, false)
                }
                Err(e) => return Err(io_err(e)),
            };
        if created && options.durability == Durability::Fsync {
            crate::repair::sync_dir_of(path).map_err(io_err)?;
        }
        // A shared lock: no locked writer is half-way through a line while we read the end.
        file.lock_shared().map_err(io_err)?;
        let head = tail::resume(&file);
        file.unlock().map_err(io_err)?;
        let head = head.map_err(|e| tail_error(path, e))?;
        let sync_file = file.try_clone().map_err(io_err)?;
        Ok(AuditLog {
            path: path.to_owned(),
            options,
            writer: Mutex::new(Writer { file, head, buf: Vec::with_capacity(4096) }),
            sync_file,
            written: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it was opened with.
    pub fn options(&self) -> AuditOptions {
        self.options
    }

    /// Appends one event and returns once it is written (and, with [`Durability::Fsync`],
    /// durable).
    ///
    /// Under the in-process mutex and an exclusive OS lock on the file: re-reads the head
    /// (another process may have appended), sets `prev_hash` to the head's `entry_hash` and
    /// `seq` to the head's `seq` + 1, computes `entry_hash`, and writes the line with one
    /// `write` call. A failed or short write is cut back off, so no partial line stays.
    /// An error means the event may or may not be in the log, never that a partial entry is.
    pub fn append(&self, event: &AuditEvent) -> Result<AppendReceipt, AuditError> {
        let prepared = PreparedLine::new(event);
        let (receipt, ticket) = {
            let mut w = lock(&self.writer);
            if let Some(message) = &lock(&self.sync).failed {
                return Err(AuditError::SyncFailed {
                    path: self.path.clone(),
                    message: message.clone(),
                });
            }
            w.file.lock().map_err(|e| self.io(e))?;
            let result = self.append_locked(&mut w, &prepared);
            let unlocked = w.file.unlock();
            let receipt = result?;
            // The entry is written; still report a failure to release the lock, since other
            // writers would hang on it.
            unlocked.map_err(|e| self.io(e))?;
            (receipt, self.written.fetch_add(1, Ordering::SeqCst) + 1)
        };
        if self.options.durability == Durability::Fsync {
            self.wait_durable(ticket)?;
        }
        Ok(receipt)
    }

    /// Makes every entry appended so far through this handle durable (useful with
    /// [`Durability::Buffered`]; a no-op when they already are).
    pub fn sync(&self) -> Result<(), AuditError> {
        self.wait_durable(self.written.load(Ordering::SeqCst))
    }

    fn io(&self, source: io::Error) -> AuditError {
        AuditError::Io { path: self.path.clone(), source }
    }

    fn append_locked(
        &self,
        w: &mut Writer,
        prepared: &PreparedLine,
    ) -> Result<AppendReceipt, AuditError> {
        let len = w.file.metadata().map_err(|e| self.io(e))?.len();
        if len != w.head.len {
            let caught_up = if len > w.head.len {
                tail::catch_up(&w.file, &w.head, len)
            } else {
                // Shrunk (repaired, or truncated behind our back): start over from the end.
                tail::resume(&w.file)
            };
            w.head = caught_up.map_err(|e| tail_error(&self.path, e))?;
        }
        let seq = w.head.seq.saturating_add(1);
        let Writer { file, head, buf } = w;
        buf.clear();
        if head.needs_newline {
            buf.push(b'\n');
        }
        let hash = prepared.finish(&head.hash, Some(seq), buf);
        if let Err(e) = write_once(file, buf) {
            // Cut off whatever part of the line made it, so no partial entry stays behind.
            let cut = file.set_len(len);
            return Err(match cut {
                Ok(()) => self.io(e),
                Err(cut) => self.io(io::Error::new(
                    e.kind(),
                    format!("{e}; cutting the partial line off also failed: {cut}"),
                )),
            });
        }
        let hash = hex(&hash);
        *head = Head { len: len + buf.len() as u64, seq, hash: hash.clone(), needs_newline: false };
        Ok(AppendReceipt { seq, entry_hash: hash })
    }

    /// Group commit: waits until an fsync that started after ticket `ticket` was written has
    /// finished, running that fsync itself when none is in flight.
    fn wait_durable(&self, ticket: u64) -> Result<(), AuditError> {
        let mut s = lock(&self.sync);
        loop {
            if let Some(message) = &s.failed
                && s.durable < ticket
            {
                return Err(AuditError::SyncFailed {
                    path: self.path.clone(),
                    message: message.clone(),
                });
            }
            if s.durable >= ticket {
                return Ok(());
            }
            if s.in_flight {
                s = self.synced.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            s.in_flight = true;
            // Every append with a ticket up to `target` has finished its write.
            let target = self.written.load(Ordering::SeqCst);
            drop(s);
            let result = self.sync_file.sync_data();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            s = lock(&self.sync);
            s.in_flight = false;
            match result {
                Ok(()) => s.durable = s.durable.max(target),
                Err(e) => s.failed = Some(e.to_string()),
            }
            self.synced.notify_all();
        }
    }
}

/// One `write` call for the whole buffer; a short write is an error.
fn write_once(file: &mut File, buf: &[u8]) -> io::Result<()> {
    loop {
        match file.write(buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write ({n} of {} bytes)", buf.len()),
                ));
            }
            // Nothing was written; try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub(crate) fn tail_error(path: &Path, e: TailError) -> AuditError {
    match e {
        TailError::Io(source) => AuditError::Io { path: path.to_owned(), source },
        TailError::Torn { line } => AuditError::TornTail { path: path.to_owned(), line },
        TailError::Corrupt { line, message } => {
            AuditError::Corrupt { path: path.to_owned(), line, message }
        }
    }
}

#[cfg(test)]
mod tests;
