//! Single-use nonce stores: in process memory, and a file shared by processes and restarts.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use agent_safe_core::{Clock, fsutil};
use time::{Duration, OffsetDateTime};

/// How long a used nonce is kept after its ticket expired (covers clock skew between processes).
pub const NONCE_GRACE: Duration = Duration::minutes(30);

/// Longest accepted nonce.
pub const MAX_NONCE_LEN: usize = 128;

/// First word of the header line of a nonce file.
const HEADER_PREFIX: &str = "agent-safe-nonces v1 ";

/// Records which ticket nonces were used. Implementations must make
/// [`check_and_set`](NonceStore::check_and_set) atomic for everyone sharing the store, and must
/// keep a nonce at least until `expires_at` (the ticket's expiry) has passed.
pub trait NonceStore: Send + Sync + fmt::Debug {
    /// Atomically records `nonce` (valid until `expires_at`); `Ok(false)` if it was already recorded.
    fn check_and_set(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, NonceStoreError>;

    /// Whether `nonce` was recorded, without recording it (for dry runs).
    fn contains(&self, nonce: &str) -> Result<bool, NonceStoreError>;
}

/// A nonce store failure. The validator turns any of these into a rejection (fail closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NonceStoreError {
    /// An operating-system error on the store's files.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`open`, `lock`, `read`, `append to`, …).
        action: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A line of the nonce file that is not `<nonce> <unix-seconds>` (or a bad header).
    #[error("{}:{line}: {detail}", path.display())]
    Corrupt {
        /// The nonce file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A nonce that is empty, too long or has characters outside `[A-Za-z0-9_-]`.
    #[error(
        "invalid nonce `{0}`: expected 1 to {MAX_NONCE_LEN} characters from `A-Z`, `a-z`, `0-9`, `-` and `_`"
    )]
    InvalidNonce(String),
    /// The store's database failed (unreachable, timed out, refused the statement).
    #[error("nonce store {store}: {detail}")]
    Unavailable {
        /// The store (a database URL without its password).
        store: String,
        /// What went wrong.
        detail: String,
    },
}

/// Checks the shape of a nonce: 1 to [`MAX_NONCE_LEN`] characters from `[A-Za-z0-9_-]`
/// (Python's are 32 lowercase hex digits).
pub fn check_nonce(nonce: &str) -> Result<(), NonceStoreError> {
    let ok = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        let shown: String = nonce.chars().take(40).collect();
        let shown = if shown.len() < nonce.len() { format!("{shown}…") } else { shown };
        Err(NonceStoreError::InvalidNonce(shown.escape_debug().to_string()))
    }
}

fn is_expired(exp_unix: i64, now: OffsetDateTime) -> bool {
    exp_unix.saturating_add(NONCE_GRACE.whole_seconds()) < now.unix_timestamp()
}

/// Nonces in this process's memory (like the Python version): fine for one long-lived process,
/// lost on restart and not shared. Used nonces are purged `NONCE_GRACE` after their expiry.
#[derive(Debug)]
pub struct MemoryNonceStore {
    clock: Arc<dyn Clock>,
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    used: HashMap<String, i64>,
    purge_at_len: usize,
}

impl MemoryNonceStore {
    /// An empty store; `clock` decides when used nonces may be forgotten.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock, state: Mutex::new(MemoryState { used: HashMap::new(), purge_at_len: 1024 }) }
    }

    /// Number of nonces currently remembered.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).used.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NonceStore for MemoryNonceStore {
    fn check_and_set(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.used.len() >= state.purge_at_len {
            let now = self.clock.now();
            state.used.retain(|_, exp| !is_expired(*exp, now));
            state.purge_at_len = (state.used.len() * 2).max(1024);
        }
        if state.used.contains_key(nonce) {
            return Ok(false);
        }
        state.used.insert(nonce.to_owned(), expires_at.unix_timestamp());
        Ok(true)
    }

    fn contains(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        Ok(self.state.lock().unwrap_or_else(PoisonError::into_inner).used.contains_key(nonce))
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    /// Nonces kept (not yet `NONCE_GRACE` past their expiry).
    pub kept: usize,
    /// Nonces dropped.
    pub removed: usize,
}

/// A persistent nonce store shared by every process using the same file, surviving restarts.
///
/// File format (text, one record per line, see `docs/tickets.md`):
///
/// ```text
/// agent-safe-nonces v1 <generation>
/// <nonce> <expiry, unix seconds>
/// ```
///
/// Every operation takes an exclusive OS lock on the sidecar file `<path>.lock` (never renamed, so
/// all processes lock the same inode), then reads what other processes appended since its last
/// look, checks, appends and (unless built [`with_fsync(false)`](Self::with_fsync)) fsyncs. Entries `NONCE_GRACE` past their expiry are dropped by
/// rewriting the file to a temporary file and renaming it over the old one, under the same lock;
/// the generation in the header tells other processes to re-read the file from the start.
/// A corrupt line is an error naming the line: the store fails closed. A torn final line (a crash
/// during an append that therefore never reported success) is cut off.
pub struct FileNonceStore {
    path: PathBuf,
    lock_path: PathBuf,
    clock: Arc<dyn Clock>,
    compaction_threshold: usize,
    /// fsync each recorded nonce before `check_and_set` returns.
    fsync: bool,
    index: Mutex<Index>,
}

impl fmt::Debug for FileNonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileNonceStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// This process's view of the file: what was read up to `offset`, under header `header`.
#[derive(Debug, Default)]
struct Index {
    header: Option<String>,
    offset: u64,
    lines: usize,
    entries: HashMap<String, i64>,
    check_compaction_at: usize,
}

impl FileNonceStore {
    /// Opens (creating if missing, with mode 0600) the nonce file at `path` and reads it, so a
    /// corrupt or unreadable store is reported now rather than at the first ticket.
    pub fn open(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Self, NonceStoreError> {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let store = Self {
            path,
            lock_path: PathBuf::from(lock_path),
            clock,
            compaction_threshold: 4096,
            fsync: true,
            index: Mutex::new(Index::default()),
        };
        store.locked(|_, _| Ok(()))?;
        Ok(store)
    }

    /// Compacts automatically once the file holds at least `entries` nonces and half of them are
    /// past their grace period (default 4096).
    pub fn with_compaction_threshold(mut self, entries: usize) -> Self {
        self.compaction_threshold = entries.max(1);
        let index = self.index.get_mut().unwrap_or_else(PoisonError::into_inner);
        index.check_compaction_at = (index.entries.len() * 2).max(self.compaction_threshold);
        self
    }

    /// Whether [`check_and_set`](NonceStore::check_and_set) fsyncs the nonce it records
    /// before returning (default `true`: a used nonce survives a power loss). With `false` it
    /// returns once the record is in the OS page cache, which survives a crash of the process
    /// but not of the machine, like an audit log in buffered mode: the SDK and the CLI use
    /// `false` exactly when the audit log is buffered. An fdatasync costs 0.2 to 3 ms on
    /// ordinary disks, most of what the runner adds to an action.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The nonce file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of nonces in the file (including expired ones not yet compacted).
    pub fn len(&self) -> Result<usize, NonceStoreError> {
        self.locked(|index, _| Ok(index.entries.len()))
    }

    /// Whether the file holds no nonce.
    pub fn is_empty(&self) -> Result<bool, NonceStoreError> {
        Ok(self.len()? == 0)
    }

    /// Drops nonces `NONCE_GRACE` past their expiry now.
    pub fn compact(&self) -> Result<CompactionStats, NonceStoreError> {
        self.locked(|index, _| self.compact_locked(index))
    }

    /// Runs `f` holding the cross-process lock, with the index brought up to date.
    fn locked<T>(
        &self,
        f: impl FnOnce(&mut Index, &mut File) -> Result<T, NonceStoreError>,
    ) -> Result<T, NonceStoreError> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let lock =
            open_private(&self.lock_path, false).map_err(self.io_at(&self.lock_path, "open"))?;
        lock.lock().map_err(self.io_at(&self.lock_path, "lock"))?;
        let result = open_private(&self.path, true)
            .map_err(self.io_at(&self.path, "open"))
            .and_then(|mut file| {
                // On any error the view is discarded, so the next call re-reads from the start.
                let refreshed = self.refresh(&mut index, &mut file);
                if refreshed.is_err() {
                    *index = Index::default();
                }
                refreshed?;
                f(&mut index, &mut file)
            });
        // Dropping the file also releases the lock; unlocking explicitly reports nothing useful.
        let _ = lock.unlock();
        result
    }

    fn io_at<'a>(
        &self,
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> NonceStoreError + 'a {
        move |source| NonceStoreError::Io { path: path.to_owned(), action, source }
    }

    /// Reads what is new in the file (everything, if another process compacted it).
    fn refresh(&self, index: &mut Index, file: &mut File) -> Result<(), NonceStoreError> {
        // `lseek` rather than `fstat` for the length: much cheaper here, and every read below
        // positions itself.
        let len = file.seek(SeekFrom::End(0)).map_err(self.io_at(&self.path, "read"))?;
        if len == 0 {
            return self.start_file(index, file);
        }
        let unchanged = match &index.header {
            Some(header) if len >= index.offset => {
                let mut first = vec![0u8; header.len()];
                file.seek(SeekFrom::Start(0))
                    .and_then(|_| file.read_exact(&mut first))
                    .map_err(self.io_at(&self.path, "read"))?;
                first == header.as_bytes()
            }
            _ => false,
        };
        if !unchanged {
            *index = Index::default();
        }
        let start = index.offset;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(self.io_at(&self.path, "read"))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            // A torn final line: its append never returned, so no ticket relied on it.
            let keep = start + u64::try_from(complete).unwrap_or(u64::MAX);
            file.set_len(keep)
                .and_then(|()| file.sync_data())
                .map_err(self.io_at(&self.path, "truncate a torn line of"))?;
            if keep == 0 {
                return self.start_file(index, file);
            }
        }
        let text = std::str::from_utf8(&bytes[..complete]).map_err(|e| {
            let line =
                index.lines + 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            self.corrupt(line, "not UTF-8 text".to_owned())
        })?;
        for line in text.split_terminator('\n') {
            index.lines += 1;
            if index.header.is_none() {
                if index.lines != 1 || !is_header(line) {
                    return Err(self.corrupt(
                        index.lines,
                        format!("expected the header `{HEADER_PREFIX}<generation>`"),
                    ));
                }
                index.header = Some(format!("{line}\n"));
                continue;
            }
            let (nonce, exp) =
                parse_entry(line).map_err(|detail| self.corrupt(index.lines, detail))?;
            index.entries.entry(nonce.to_owned()).or_insert(exp);
        }
        index.offset = start + u64::try_from(complete).unwrap_or(u64::MAX);
        if index.check_compaction_at == 0 {
            index.check_compaction_at = (index.entries.len() * 2).max(self.compaction_threshold);
        }
        Ok(())
    }

    /// Writes the header of an empty file.
    fn start_file(&self, index: &mut Index, file: &mut File) -> Result<(), NonceStoreError> {
        let header = new_header();
        file.write_all(header.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(self.io_at(&self.path, "write the header of"))?;
        *index = Index {
            offset: header.len() as u64,
            header: Some(header),
            lines: 1,
            entries: HashMap::new(),
            check_compaction_at: self.compaction_threshold,
        };
        Ok(())
    }

    fn compact_locked(&self, index: &mut Index) -> Result<CompactionStats, NonceStoreError> {
        let now = self.clock.now();
        let before = index.entries.len();
        let mut live: Vec<(&String, &i64)> =
            index.entries.iter().filter(|(_, exp)| !is_expired(**exp, now)).collect();
        live.sort_unstable_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)));
        let header = new_header();
        let mut text = header.clone();
        for (nonce, exp) in &live {
            text.push_str(&format!("{nonce} {exp}\n"));
        }
        let kept = live.len();
        let dir =
            self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".compact-{}", agent_safe_core::random::hex(6)));
        let tmp = dir.join(tmp_name);
        let written = open_private_new(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(NonceStoreError::Io { path: self.path.clone(), action: "compact", source });
        }
        // Makes the rename durable. Best effort: the nonces are already recorded.
        let _ = fsutil::sync_dir(dir);
        index.entries.retain(|_, exp| !is_expired(*exp, now));
        index.offset = text.len() as u64;
        index.lines = 1 + kept;
        index.header = Some(header);
        index.check_compaction_at = (kept * 2).max(self.compaction_threshold);
        Ok(CompactionStats { kept, removed: before - kept })
    }

    fn corrupt(&self, line: usize, detail: String) -> NonceStoreError {
        NonceStoreError::Corrupt { path: self.path.clone(), line, detail }
    }
}

impl NonceStore for FileNonceStore {
    fn check_and_set(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        self.locked(|index, file| {
            if index.entries.contains_key(nonce) {
                return Ok(false);
            }
            let exp = expires_at.unix_timestamp();
            let line = format!("{nonce} {exp}\n");
            file.write_all(line.as_bytes())
                .and_then(|()| if self.fsync { file.sync_data() } else { Ok(()) })
                .map_err(self.io_at(&self.path, "append to"))?;
            index.offset += line.len() as u64;
            index.lines += 1;
            index.entries.insert(nonce.to_owned(), exp);
            if index.entries.len() >= index.check_compaction_at {
                let now = self.clock.now();
                let expired = index.entries.values().filter(|exp| is_expired(**exp, now)).count();
                if expired * 2 >= index.entries.len() {
                    // The nonce is recorded; a failed compaction must not undo that.
                    let _ = self.compact_locked(index);
                } else {
                    index.check_compaction_at =
                        (index.entries.len() * 2).max(self.compaction_threshold);
                }
            }
            Ok(true)
        })
    }

    fn contains(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        check_nonce(nonce)?;
        self.locked(|index, _| Ok(index.entries.contains_key(nonce)))
    }
}

fn new_header() -> String {
    format!("{HEADER_PREFIX}{}\n", agent_safe_core::random::hex(8))
}

fn is_header(line: &str) -> bool {
    line.strip_prefix(HEADER_PREFIX)
        .is_some_and(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn parse_entry(line: &str) -> Result<(&str, i64), String> {
    let expected = "expected `<nonce> <expiry unix seconds>`";
    let Some((nonce, exp)) = line.split_once(' ') else {
        return Err(format!("{expected}, found `{}`", line.escape_debug()));
    };
    check_nonce(nonce).map_err(|e| e.to_string())?;
    let exp = exp
        .parse::<i64>()
        .map_err(|_| format!("{expected}; `{}` is not an integer", exp.escape_debug()))?;
    Ok((nonce, exp))
}

/// Opens for reading and appending (`data`) or reading and writing (lock file), creating the
/// file with mode 0600 if missing.
fn open_private(path: &Path, data: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).create(true);
    if data {
        options.append(true);
    } else {
        options.write(true);
    }
    fsutil::open_private(path, &mut options)
}

fn open_private_new(path: &Path) -> io::Result<File> {
    fsutil::open_private(path, OpenOptions::new().write(true).create_new(true))
}

#[cfg(any(test, feature = "test-util"))]
#[expect(clippy::unwrap_used, reason = "test scaffolding: a failed call is a failed test")]
pub mod contract;
#[cfg(test)]
mod tests;
