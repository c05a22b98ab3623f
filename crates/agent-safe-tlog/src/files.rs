//! The files of the transparency layer: the checkpoint key files (`agent-safe keys generate
//! --kind checkpoint`) and a log's checkpoints (`<log>.checkpoints`).

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::note::{Checkpoint, NoteError, SignerKey, VerifierKey};

/// Key files larger than this are refused unread.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why a key file or the checkpoint log could not be used. Messages name the file, never a
/// key's secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A key file that is already there (key files are never overwritten).
    #[error("{}: already exists (key files are never overwritten)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold a key of the expected kind.
    #[error("{}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: NoteError,
    },
    /// A line of the checkpoint log is not a checkpoint record.
    #[error("{}:{line}: not a checkpoint record: {detail}", path.display())]
    Record {
        /// The checkpoint log.
        path: PathBuf,
        /// Its line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// Writes `<dir>/<stem>.key` (the signer key, mode 0600) and `<dir>/<stem>.pub` (the verifier
/// key, for auditors); neither may exist yet. Returns both paths.
pub fn write_key_files(
    dir: &Path,
    stem: &str,
    key: &SignerKey,
) -> Result<(PathBuf, PathBuf), FileError> {
    let private = dir.join(format!("{stem}.key"));
    let public = dir.join(format!("{stem}.pub"));
    for path in [&private, &public] {
        if path.exists() {
            return Err(FileError::Exists { path: path.clone() });
        }
    }
    let write = |path: &Path, text: String, mode| {
        agent_safe_core::fsutil::write_new(path, format!("{text}\n").as_bytes(), mode).map_err(
            |source| match source.kind() {
                io::ErrorKind::AlreadyExists => FileError::Exists { path: path.to_owned() },
                _ => FileError::Io { path: path.to_owned(), source },
            },
        )
    };
    write(&private, key.secret_text(), 0o600)?;
    write(&public, key.verifier().to_string(), 0o644)?;
    Ok((private, public))
}

fn read_small(path: &Path) -> Result<String, FileError> {
    let io = |source| FileError::Io { path: path.to_owned(), source };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(FileError::Key {
            path: path.to_owned(),
            source: NoteError::BadKey {
                kind: "checkpoint",
                reason: format!("{len} bytes is too large for a key file"),
            },
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// The signer key in the file at `path`.
pub fn read_signer_key(path: &Path) -> Result<SignerKey, FileError> {
    SignerKey::parse(&read_small(path)?)
        .map_err(|source| FileError::Key { path: path.to_owned(), source })
}

/// The verifier key in the file at `path` (a public key file, or the private one).
pub fn read_verifier_key(path: &Path) -> Result<VerifierKey, FileError> {
    let text = read_small(path)?;
    let key = if text.trim_start().starts_with("PRIVATE+KEY+") {
        SignerKey::parse(&text).map(|k| k.verifier().clone())
    } else {
        VerifierKey::parse(&text)
    };
    key.map_err(|source| FileError::Key { path: path.to_owned(), source })
}

/// Where the checkpoints of the log at `log` are kept: `<log>.checkpoints`.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// One record of a checkpoint log (`<log>.checkpoints`, a JSON line): the signed note, what
/// it says, and the fields a shipper keys on (`event_id`, `timestamp`, `entry_hash`), so the
/// checkpoint log ships to the audit log's destinations as the audit log does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointRecord {
    /// SHA-256 of the note, hex.
    pub entry_hash: String,
    /// `checkpoint-<tree size>-<first 8 hex digits of entry_hash>`: the same for the same
    /// note, different for the same tree with other (co)signatures.
    pub event_id: String,
    /// `checkpoint`.
    pub event_type: String,
    /// The signed note (with any witnesses' cosignatures).
    pub note: String,
    /// The log's origin.
    pub origin: String,
    /// The root hash, base64.
    pub root: String,
    /// When it was signed (or cosigned), RFC 3339 UTC.
    pub timestamp: String,
    /// The tree size.
    pub tree_size: u64,
}

impl CheckpointRecord {
    /// The record of `note`, which signs `checkpoint`, made at `at`.
    pub fn new(checkpoint: &Checkpoint, note: &str, at: time::OffsetDateTime) -> Self {
        let entry_hash = agent_safe_core::hex::encode(
            ring::digest::digest(&ring::digest::SHA256, note.as_bytes()).as_ref(),
        );
        CheckpointRecord {
            event_id: format!("checkpoint-{}-{}", checkpoint.size, &entry_hash[..8]),
            entry_hash,
            event_type: "checkpoint".to_owned(),
            note: note.to_owned(),
            origin: checkpoint.origin.clone(),
            root: checkpoint.root.to_base64(),
            timestamp: agent_safe_core::timefmt::format_utc(at),
            tree_size: checkpoint.size,
        }
    }
}

/// Appends a record to the checkpoint log at `path`, synced before returning.
pub fn append_checkpoint(path: &Path, record: &CheckpointRecord) -> Result<(), FileError> {
    let io = |source| FileError::Io { path: path.to_owned(), source };
    let mut line = serde_json::to_string(record).map_err(|e| io(io::Error::other(e)))?;
    line.push('\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}

/// The signed notes of the checkpoint log at `path` (its records' `note`), oldest first (none
/// when it does not exist). A torn last line (no newline) is ignored.
pub fn read_checkpoints(path: &Path) -> Result<Vec<String>, FileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(FileError::Io { path: path.to_owned(), source }),
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut notes = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record =
            |detail: String| FileError::Record { path: path.to_owned(), line: i + 1, detail };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| record(e.to_string()))?;
        let note = value
            .get("note")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| record("no `note`".to_owned()))?;
        notes.push(note.to_owned());
    }
    Ok(notes)
}
