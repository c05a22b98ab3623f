//! Where a log's tree and checkpoints live, as the signer and the provers see them: a
//! [`TreeSource`] (the tree's stored hashes, caught up with the log) and a
//! [`CheckpointStore`] (the signed checkpoints, and the entries found by event id). The file
//! log's are [`TreeIndex`] and [`FileStore`]; the PostgreSQL backend implements both over its
//! tables.

use std::path::{Path, PathBuf};

use crate::files::{CheckpointRecord, append_checkpoint, checkpoints_path, read_checkpoints};
use crate::hash::Hash;
use crate::index::{IndexError, TreeIndex};

/// A log's Merkle tree, kept by an index that catches up with the log.
pub trait TreeSource: Send {
    /// Brings the tree up to the log's last entry; the number of leaves added.
    fn catch_up(&mut self) -> Result<u64, IndexError>;
    /// Leaves in the tree, as of the last catch-up.
    fn size(&self) -> u64;
    /// The root of every leaf.
    fn root(&self) -> Hash;
    /// Why the last catch-up rebuilt the tree from the log, if it did.
    fn rebuilt(&self) -> Option<&str>;
    /// The root of the tree of the first `size` leaves.
    fn root_at(&self, size: u64) -> Result<Hash, IndexError>;
    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, IndexError>;
    /// The consistency proof from the tree of the first `old` leaves to the first `new`.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, IndexError>;
}

impl TreeSource for TreeIndex {
    fn catch_up(&mut self) -> Result<u64, IndexError> {
        TreeIndex::catch_up(self)
    }

    fn size(&self) -> u64 {
        TreeIndex::size(self)
    }

    fn root(&self) -> Hash {
        TreeIndex::root(self)
    }

    fn rebuilt(&self) -> Option<&str> {
        TreeIndex::rebuilt(self)
    }

    fn root_at(&self, size: u64) -> Result<Hash, IndexError> {
        TreeIndex::root_at(self, size)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, IndexError> {
        TreeIndex::inclusion_proof(self, index, size)
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, IndexError> {
        TreeIndex::consistency_proof(self, old, new)
    }
}

/// Why a checkpoint store could not be used (its message names the store).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// A log's signed checkpoints, and its entries by event id.
pub trait CheckpointStore: Send {
    /// Where the checkpoints are, for messages (a path, a database without its password).
    fn location(&self) -> String;
    /// The records' signed notes, oldest first.
    fn notes(&self) -> Result<Vec<String>, StoreError>;
    /// Appends a record, durably.
    fn append(&mut self, record: &CheckpointRecord) -> Result<(), StoreError>;
    /// The first entry whose `event_id` is `event_id`: its leaf index (from 0) and its line
    /// exactly as stored.
    fn entry(&self, event_id: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
}

/// The file log's checkpoints (`<log>.checkpoints`) and entries (its sidecar index).
#[derive(Debug)]
pub struct FileStore {
    log: PathBuf,
    path: PathBuf,
}

impl FileStore {
    /// The store of the file log at `log`.
    pub fn new(log: &Path) -> FileStore {
        FileStore { log: log.to_owned(), path: checkpoints_path(log) }
    }
}

impl CheckpointStore for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn notes(&self) -> Result<Vec<String>, StoreError> {
        read_checkpoints(&self.path).map_err(|e| StoreError(e.to_string()))
    }

    fn append(&mut self, record: &CheckpointRecord) -> Result<(), StoreError> {
        append_checkpoint(&self.path, record).map_err(|e| StoreError(e.to_string()))
    }

    fn entry(&self, event_id: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let mut index = agent_safe_audit::AuditIndex::new(&self.log);
        let found = index.event_lines(event_id).map_err(|e| StoreError(e.to_string()))?;
        Ok(found.into_iter().next().map(|(event, line)| {
            (u64::try_from(event.line).unwrap_or(u64::MAX).saturating_sub(1), line)
        }))
    }
}
