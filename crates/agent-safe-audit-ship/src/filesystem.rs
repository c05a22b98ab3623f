//! The filesystem shipper: appends each entry's line, byte for byte, to another file
//! (another disk, an NFS mount), exactly once.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use agent_safe_core::BoxFuture;

use crate::entry::entry_hash_of;
use crate::{ShipEntry, ShipError, Shipped, Shipper};
use agent_safe_audit::scan as tail;

/// Appends entries to a file (created if missing; its directory must exist), as the log
/// has them, one per line, synced before the cursor moves.
///
/// Exactly once: under an exclusive lock on the file it reads the file's last line and
/// skips the entries up to the one with that `entry_hash`, so entries appended just before
/// a crash (before the cursor recorded them) are not appended again. A final line without a
/// newline that is not an entry (a write cut short by a crash) is cut off first. Ship one
/// log per destination file.
#[derive(Debug, Clone)]
pub struct FilesystemShipper {
    path: PathBuf,
}

impl FilesystemShipper {
    /// A shipper appending to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The destination file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: io::Error) -> ShipError {
        ShipError::Io { path: self.path.clone(), source }
    }

    fn append(&self, entries: &[ShipEntry]) -> Result<(), ShipError> {
        let (file, created) =
            match OpenOptions::new().read(true).append(true).create_new(true).open(&self.path) {
                Ok(f) => (f, true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (
                    OpenOptions::new()
                        .read(true)
                        .append(true)
                        .open(&self.path)
                        .map_err(|e| self.io(e))?,
                    false,
                ),
                Err(e) => return Err(self.io(e)),
            };
        if created {
            agent_safe_core::fsutil::sync_parent_dir(&self.path).map_err(|e| self.io(e))?;
        }
        file.lock().map_err(|e| self.io(e))?;
        let result = self.append_locked(&file, entries);
        let unlocked = file.unlock();
        result?;
        unlocked.map_err(|e| self.io(e))
    }

    fn append_locked(&self, mut file: &File, entries: &[ShipEntry]) -> Result<(), ShipError> {
        let (held, needs_newline) = self.tail(file)?;
        // Skip what the file already holds (shipped before a crash, cursor not recorded).
        let skip = held
            .and_then(|h| entries.iter().position(|e| e.entry_hash() == h))
            .map_or(0, |i| i + 1);
        let rest = &entries[skip.min(entries.len())..];
        if rest.is_empty() {
            return Ok(());
        }
        let mut buf =
            Vec::with_capacity(rest.iter().map(|e| e.json().len() + 1).sum::<usize>() + 1);
        if needs_newline {
            buf.push(b'\n');
        }
        for e in rest {
            buf.extend_from_slice(e.json().as_bytes());
            buf.push(b'\n');
        }
        file.write_all(&buf).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))
    }

    /// The `entry_hash` of the file's last entry, and whether the file lacks a final
    /// newline; cuts off a torn final line.
    fn tail(&self, file: &File) -> Result<(Option<String>, bool), ShipError> {
        loop {
            let len = file.metadata().map_err(|e| self.io(e))?.len();
            let Some(last) = tail::last_line(file, len).map_err(|e| self.io(e))? else {
                return Ok((None, false));
            };
            let hash = entry_hash_of(&last.text);
            if last.lf || hash.is_some() {
                let needs_newline = !last.lf
                    || tail::read_range(file, len - 1, 1).map_err(|e| self.io(e))? != b"\n";
                return Ok((hash, needs_newline));
            }
            // An interrupted append: remove it, then look again.
            file.set_len(last.start).map_err(|e| self.io(e))?;
            file.sync_data().map_err(|e| self.io(e))?;
        }
    }

    fn held(&self) -> Result<Option<String>, ShipError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        file.lock_shared().map_err(|e| self.io(e))?;
        let result = (|| {
            let mut end = file.metadata().map_err(|e| self.io(e))?.len();
            // The last complete entry: a torn final line (cut off at the next append) is
            // passed over.
            while let Some(last) = tail::last_line(&file, end).map_err(|e| self.io(e))? {
                let hash = entry_hash_of(&last.text);
                if last.lf || hash.is_some() {
                    return Ok(hash);
                }
                end = last.start;
            }
            Ok(None)
        })();
        let _ = file.unlock();
        result
    }
}

impl Shipper for FilesystemShipper {
    fn kind(&self) -> &str {
        "filesystem"
    }

    fn destination(&self) -> String {
        self.path.display().to_string()
    }

    fn destination_id(&self) -> String {
        std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone()).display().to_string()
    }

    fn max_batch(&self) -> usize {
        4096
    }

    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            match self.append(entries) {
                Ok(()) => Shipped::all(entries.len()),
                Err(e) => Shipped::failed(0, e),
            }
        })
    }

    fn last_shipped(&self) -> BoxFuture<'_, Result<Option<String>, ShipError>> {
        Box::pin(async move { self.held() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> ShipEntry {
        let json = format!(
            r#"{{"entry_hash": "h{n}", "event_id": "evt-{n}", "seq": {n}, "timestamp": "2026-02-24T12:00:00Z"}}"#
        );
        ShipEntry::parse(&json, n).unwrap()
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
    }

    /// Ships `batch` into a destination holding `before`; the destination's lines after.
    #[track_caller]
    fn check(before: &str, batch: &[usize], expected: &[usize]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.jsonl");
        if !before.is_empty() {
            std::fs::write(&path, before).unwrap();
        }
        let shipper = FilesystemShipper::new(&path);
        let entries: Vec<ShipEntry> = batch.iter().map(|&n| entry(n)).collect();
        shipper.append(&entries).unwrap();
        let want: Vec<String> = expected.iter().map(|&n| entry(n).json().to_owned()).collect();
        assert_eq!(lines(&path), want, "before: {before:?}");
        assert!(std::fs::read(&path).unwrap().ends_with(b"\n"));
        let held = expected.last().map(|n| format!("h{n}"));
        assert_eq!(shipper.held().unwrap(), held);
    }

    /// What a destination holding `text` says it has.
    fn held(text: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.jsonl");
        std::fs::write(&path, text).unwrap();
        FilesystemShipper::new(&path).held().unwrap()
    }

    #[test]
    fn appends_each_entry_once() {
        let e = |n: usize| format!("{}\n", entry(n).json());
        check("", &[1, 2, 3], &[1, 2, 3]);
        check(&e(1), &[2, 3], &[1, 2, 3]);
        // Already there (a crash after the append, before the cursor moved): skipped.
        check(&format!("{}{}", e(1), e(2)), &[2, 3], &[1, 2, 3]);
        check(&format!("{}{}{}", e(1), e(2), e(3)), &[2, 3], &[1, 2, 3]);
        // A torn write at the end is cut off first (and passed over when asked what the
        // file holds).
        let torn = format!("{}{{\"entry_hash\": \"h2\", \"ev", e(1));
        assert_eq!(held(&torn), Some("h1".to_owned()));
        check(&torn, &[2, 3], &[1, 2, 3]);
        // A complete entry without its newline is kept, and counts.
        check(&format!("{}{}", e(1), entry(2).json()), &[2, 3], &[1, 2, 3]);
        check(&format!("{}{}", e(1), entry(2).json()), &[3], &[1, 2, 3]);
    }

    #[test]
    fn reports_io_errors_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/copy.jsonl");
        let shipper = FilesystemShipper::new(&path);
        let err = shipper.append(&[entry(1)]).unwrap_err();
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        assert_eq!(shipper.held().unwrap(), None);
    }
}
