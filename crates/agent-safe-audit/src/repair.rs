//! Recovery from an interrupted write: moving a torn final line aside.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::tail::{count_lines, last_line, read_range};

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Non-blank lines left in the log.
    pub kept_entries: usize,
    /// Bytes cut off the end (0 when there was nothing to repair).
    pub removed_bytes: u64,
    /// Where the removed bytes were saved (`<log>.torn-<n>`), when something was removed.
    pub backup: Option<PathBuf>,
}

/// Removes a torn final line: the last non-blank line when it has no trailing newline and
/// does not parse (what a crash in the middle of a write leaves). The removed bytes are first
/// saved to `<path>.torn-<n>` (the first free `n` from 1) and synced, then the log is cut
/// back to where that line started and synced. Runs under the exclusive OS lock that writers
/// take, so it never races an append.
///
/// Never drops a complete entry: a final line that parses (even without a newline) is kept,
/// and a log without a torn tail is left untouched (`removed_bytes == 0`). Corruption
/// elsewhere is not touched either; [`crate::verify`] reports it.
pub fn repair(path: &Path) -> Result<RepairReport, AuditError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AuditError::NotFound { path: path.to_owned() });
        }
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    let io_err = |path: &Path, source: io::Error| AuditError::Io { path: path.to_owned(), source };
    file.lock().map_err(|e| io_err(path, e))?;
    let result = repair_locked(&file, path);
    let unlocked = file.unlock();
    let report = result?;
    unlocked.map_err(|e| io_err(path, e))?;
    Ok(report)
}

fn repair_locked(file: &File, path: &Path) -> Result<RepairReport, AuditError> {
    let io_err = |source: io::Error| AuditError::Io { path: path.to_owned(), source };
    let len = file.metadata().map_err(io_err)?.len();
    let last = last_line(file, len).map_err(io_err)?;
    let Some(torn) = last.filter(|l| l.is_torn()) else {
        let kept = count_lines(file, len).map_err(io_err)?;
        return Ok(RepairReport { kept_entries: to_usize(kept), removed_bytes: 0, backup: None });
    };
    let removed = read_range(file, torn.start, len - torn.start).map_err(io_err)?;
    let backup = write_backup(path, &removed)?;
    file.set_len(torn.start).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    let kept = count_lines(file, torn.start).map_err(io_err)?;
    Ok(RepairReport {
        kept_entries: to_usize(kept),
        removed_bytes: len - torn.start,
        backup: Some(backup),
    })
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Saves `bytes` to the first free `<path>.torn-<n>`, durably.
fn write_backup(path: &Path, bytes: &[u8]) -> Result<PathBuf, AuditError> {
    for n in 1..=10_000u32 {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{n}"));
        let backup = PathBuf::from(name);
        let io_err = |source: io::Error| AuditError::Io { path: backup.clone(), source };
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&backup) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(e)),
        };
        f.write_all(bytes).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        sync_dir_of(&backup).map_err(io_err)?;
        return Ok(backup);
    }
    Err(AuditError::Io {
        path: path.to_owned(),
        source: io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free `.torn-<n>` backup name (1 to 10000 exist)",
        ),
    })
}

/// Makes a newly created file's directory entry durable.
pub(crate) fn sync_dir_of(path: &Path) -> io::Result<()> {
    agent_safe_core::fsutil::sync_parent_dir(path)
}
