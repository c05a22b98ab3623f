//! agent-safe's hash-chained audit log: durable, locked appends, verification, repair and
//! typed reading, byte-compatible with the Python `agent-safe` log.
//!
//! A log is a JSON Lines file. Each line is the canonical JSON ([`canonical`]) of one event
//! with `prev_hash` (the previous line's `entry_hash`; 64 zeros for the first), `seq` (1, 2,
//! …; absent in lines written by the Python version) and `entry_hash` (SHA-256 of the line's
//! canonical JSON without `entry_hash`). See `docs/audit-log.md` for the format, what
//! verification does and does not detect, and the differences from the Python version.
//!
//! ```
//! # fn main() -> Result<(), agent_safe_audit::AuditError> {
//! use agent_safe_audit::{AuditLog, AuditOptions, verify};
//! # let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("audit.jsonl");
//! let log = AuditLog::open(&path, AuditOptions::default())?;
//! # let event = agent_safe_audit::bench::sample_event(1);
//! let receipt = log.append(&event)?;
//! assert_eq!(receipt.seq, 1);
//! let report = verify(&path)?;
//! assert!(report.is_valid());
//! assert_eq!(report.entries, 1);
//! # Ok(())
//! # }
//! ```

pub mod canonical;
pub mod diff;
mod entry;
mod error;
mod index;
mod line;
mod lines;
mod log;
mod pyjson;
mod read;
mod repair;
pub mod scan;
pub mod state;
mod store;
mod tail;
mod verify;

#[cfg(test)]
mod tamper_tests;

#[doc(hidden)]
/// Sample events and the benchmark figures (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod bench;

pub use error::AuditError;
pub use index::{AuditIndex, GAP_LIMIT, IndexStats, index_path};
pub use log::{AppendReceipt, AuditLog, AuditOptions, Durability};
pub use read::{StoredEvent, find_decision, read_events};
pub use repair::{RepairReport, repair};
pub use store::{AuditStore, ChainedEntry, FileAuditStore, PreparedEntry, link_ids};
pub use verify::{IssueKind, VerifyIssue, VerifyReport, verify, verify_reader};

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
