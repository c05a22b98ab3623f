//! Where a log's entries are kept: the [`AuditStore`] trait, implemented by the file log
//! ([`FileAuditStore`]) and by PostgreSQL (`agent-safe-postgres`), and [`PreparedEntry`], the
//! one way an event becomes a chained line, whichever store keeps it.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use agent_safe_core::{AuditEvent, hex};

use crate::AuditError;
use crate::index::{AuditIndex, original_audit_id};
use crate::line::PreparedLine;
use crate::log::{AppendReceipt, AuditLog, Durability};
use crate::read::StoredEvent;
use crate::verify::VerifyReport;

/// A log's entries, appended in one hash chain and looked up by id. `Send + Sync`.
///
/// Every store writes the same lines (see [`PreparedEntry`]), so a log kept in one can be
/// exported to the file format and verified by any verifier, this crate's or the Python one.
pub trait AuditStore: fmt::Debug + Send + Sync {
    /// Where the entries are, as messages name it: the file, or the database (never with a
    /// password).
    fn location(&self) -> String;

    /// The file, for the file log.
    fn file_path(&self) -> Option<&Path> {
        None
    }

    /// When an append counts as done.
    fn durability(&self) -> Durability;

    /// Appends `event` after the chain's head and returns once it is recorded as
    /// [`AuditStore::durability`] says. An error means the event may or may not be recorded,
    /// never that a partial entry is.
    fn append(&self, event: &AuditEvent) -> Result<AppendReceipt, AuditError>;

    /// Makes every append so far durable.
    fn sync(&self) -> Result<(), AuditError>;

    /// The first decision event whose `event_id` is `audit_id`.
    fn find_decision(&self, audit_id: &str) -> Result<Option<StoredEvent>, AuditError>;

    /// Every entry linked to `audit_id` (its `correlation_id` or `context.original_audit_id`
    /// is `audit_id`), in chain order.
    fn linked(&self, audit_id: &str) -> Result<Vec<StoredEvent>, AuditError>;

    /// Verifies the whole chain, as `agent-safe audit verify` does.
    fn verify(&self) -> Result<VerifyReport, AuditError>;
}

/// An event serialised up to its chain fields; [`PreparedEntry::chain`] completes it.
/// Serialising happens before any lock is taken; only the short suffix from `prev_hash` on is
/// hashed once the head is known.
pub struct PreparedEntry {
    line: PreparedLine,
}

impl fmt::Debug for PreparedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedEntry")
    }
}

/// An entry completed with its chain fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// The line, exactly as the file log writes it, without the newline.
    pub line: String,
    /// Its `entry_hash` (64 lowercase hex digits).
    pub entry_hash: String,
}

impl PreparedEntry {
    /// Serialises `event`.
    pub fn new(event: &AuditEvent) -> Self {
        Self { line: PreparedLine::new(event) }
    }

    /// The four ASCII parts [`PreparedEntry::chain`] completes, for a store that chains on its
    /// server (`agent-safe-postgres`' `agent_safe_append`): with `body = "\"" + prev_hash +
    /// "\"" + p3 + ", \"seq\": " + seq + p4`, the `entry_hash` is the hex SHA-256 of
    /// `p1 + p2 + body` and the line is `p1 + "\"entry_hash\": \"" + entry_hash + "\", " + p2 +
    /// body`.
    pub fn parts(&self) -> [&str; 4] {
        self.line.parts()
    }

    /// The entry at `seq` after the entry whose hash is `prev_hash` (the genesis hash for the
    /// first).
    pub fn chain(&self, prev_hash: &str, seq: u64) -> ChainedEntry {
        let mut out = Vec::new();
        let hash = self.line.finish(prev_hash, Some(seq), &mut out);
        out.pop();
        ChainedEntry {
            // The line is built from `String`s and ASCII.
            line: String::from_utf8(out).unwrap_or_default(),
            entry_hash: hex::encode(&hash),
        }
    }
}

/// The ids an entry is found by: its `event_id`, and the decision it is linked to through its
/// `correlation_id` or `context.original_audit_id` (what [`AuditStore::linked`] follows).
pub fn link_ids(event: &AuditEvent) -> (Option<&str>, Option<&str>) {
    (event.correlation_id.as_deref(), original_audit_id(event.context.as_ref()))
}

/// The file log as an [`AuditStore`]: [`AuditLog`] appends, lookups through its sidecar index
/// (`<log>.idx`, created on first use).
#[derive(Debug)]
pub struct FileAuditStore {
    log: AuditLog,
    index: Mutex<Option<AuditIndex>>,
}

impl FileAuditStore {
    /// The store of `log`.
    pub fn new(log: AuditLog) -> Self {
        Self { log, index: Mutex::new(None) }
    }

    /// The log.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    fn with_index<T>(
        &self,
        f: impl FnOnce(&mut AuditIndex) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut guard = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        f(guard.get_or_insert_with(|| AuditIndex::new(self.log.path())))
    }
}

impl AuditStore for FileAuditStore {
    fn location(&self) -> String {
        self.log.path().display().to_string()
    }

    fn file_path(&self) -> Option<&Path> {
        Some(self.log.path())
    }

    fn durability(&self) -> Durability {
        self.log.options().durability
    }

    fn append(&self, event: &AuditEvent) -> Result<AppendReceipt, AuditError> {
        self.log.append(event)
    }

    fn sync(&self) -> Result<(), AuditError> {
        self.log.sync()
    }

    fn find_decision(&self, audit_id: &str) -> Result<Option<StoredEvent>, AuditError> {
        self.with_index(|index| index.find_decision(audit_id))
    }

    fn linked(&self, audit_id: &str) -> Result<Vec<StoredEvent>, AuditError> {
        self.with_index(|index| index.linked(audit_id))
    }

    fn verify(&self) -> Result<VerifyReport, AuditError> {
        crate::verify(self.log.path())
    }
}
