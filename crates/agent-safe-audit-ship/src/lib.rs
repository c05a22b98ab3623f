//! Audit shipping: copies of the log's entries (`agent-safe-audit`) sent to other places (a
//! file, a webhook, S3 behind the cargo feature `s3`), off the decision path, from a durable
//! outbox. The audit crate itself stays synchronous and network-free; everything that talks to
//! a destination lives here.
//!
//! The outbox is the log itself: an entry is durable there before any decision is returned,
//! so nothing needs to be queued in memory. Each destination has a **cursor file** next to
//! the log (`<log>.ship-<kind>-<id>.cursor`, see [`cursor_path`]) recording the last entry
//! shipped there (byte offset, line, `seq`, `entry_hash`). It is created atomically (a
//! temporary file renamed over it), then updated in place, one whole fixed-size record at a
//! time, under a lock shared by every process shipping there. A [`ShippingWorker`] (one job
//! per destination on the workspace's background delivery worker, `agent_safe_http::Worker`)
//! tails the log from each cursor, ships
//! entries in order, retries failures with capped exponential backoff and records progress;
//! [`replay`] does the same once, for `agent-safe audit ship`. A restart resumes where the
//! cursor says.
//!
//! Guarantees (see `docs/audit-log.md`, "Shipping"):
//! - the filesystem shipper is exactly-once: before appending it reads the destination's last
//!   line and skips what is already there, so a crash between appending and recording the
//!   cursor ships nothing twice;
//! - webhook and S3 are at-least-once, the `event_id` being the idempotency key (sent as the
//!   `Idempotency-Key` header; an S3 object key contains it). The cursor advances after every
//!   event, so after a crash only the event in flight is sent again.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use agent_safe_audit::{AuditLog, AuditOptions};
//! use agent_safe_audit_ship::{FilesystemShipper, ShippingOptions, ShippingWorker};
//! # let dir = tempfile::tempdir()?;
//! let log_path = dir.path().join("audit.jsonl");
//! let log = AuditLog::open(&log_path, AuditOptions::default())?;
//! let copy = dir.path().join("copy.jsonl");
//! let worker = ShippingWorker::start(
//!     &log_path,
//!     vec![Arc::new(FilesystemShipper::new(&copy))],
//!     ShippingOptions::default(),
//! )?;
//! # let event = agent_safe_audit::bench::sample_event(1);
//! log.append(&event)?;
//! worker.notify();
//! assert!(worker.flush(Duration::from_secs(10)));
//! assert_eq!(std::fs::read(&copy)?, std::fs::read(&log_path)?);
//! # Ok(())
//! # }
//! ```

mod config;
mod cursor;
mod entry;
mod error;
mod filesystem;
mod outbox;
mod replay;
#[cfg(feature = "s3")]
mod s3;
mod source;
mod webhook;
mod worker;

#[cfg(test)]
mod tests;

use std::fmt;

use agent_safe_core::BoxFuture;

pub use config::{DEFAULT_EXIT_FLUSH_TIMEOUT, DEFAULT_S3_PREFIX, ShipperConfig, StartAt};
pub use cursor::{CursorPosition, cursor_id, cursor_path};
pub use entry::ShipEntry;
pub use error::{ShipError, ShipLogError, ShipperConfigError};
pub use filesystem::FilesystemShipper;
pub use replay::{ReplayOptions, ReplayReport, replay, replay_async, replay_from};
#[cfg(feature = "s3")]
pub use s3::{S3Options, S3Shipper};
pub use source::{FileSource, ShipChannel, ShipChunk, ShipSource, StepLock};
pub use webhook::{DEFAULT_WEBHOOK_TIMEOUT, WebhookShipper};
pub use worker::{ShipperStatus, ShippingOptions, ShippingWorker};

/// A destination for audit entries.
///
/// Object-safe: the worker holds `Arc<dyn Shipper>`. [`Shipper::ship`] gets entries in log
/// order and reports how many of them (a prefix) it shipped; the worker records that in the
/// cursor and retries the rest.
pub trait Shipper: Send + Sync + fmt::Debug {
    /// The backend: `filesystem`, `webhook`, `s3`, or a custom name (letters, digits, `-`,
    /// `_`; used in the cursor file name).
    fn kind(&self) -> &str;

    /// The destination for messages and status: a path, a URL without its path and query,
    /// a bucket and prefix. Must not contain secrets.
    fn destination(&self) -> String;

    /// What identifies the destination; the cursor file name carries a digest of it, so
    /// another destination gets its own cursor. May contain secrets (only its digest is
    /// written anywhere). Default: [`Shipper::destination`].
    fn destination_id(&self) -> String {
        self.destination()
    }

    /// The most entries one [`Shipper::ship`] call gets (default 1: the cursor then
    /// advances after every entry, so a crash re-sends at most the one in flight).
    fn max_batch(&self) -> usize {
        1
    }

    /// Ships `entries` (never empty, at most [`Shipper::max_batch`]) in order.
    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped>;

    /// The `entry_hash` of the last entry the destination already holds, when it can tell
    /// (the filesystem shipper reads its file's last line). After a crash or an error the
    /// worker moves the cursor forward to that entry instead of shipping it again.
    fn last_shipped(&self) -> BoxFuture<'_, Result<Option<String>, ShipError>> {
        Box::pin(async { Ok(None) })
    }
}

/// What one [`Shipper::ship`] call did.
#[derive(Debug)]
pub struct Shipped {
    /// Entries shipped, from the first: `entries[..count]` are at the destination.
    pub count: usize,
    /// Why the rest were not; `None` when all were.
    pub error: Option<ShipError>,
}

impl Shipped {
    /// All `count` entries were shipped.
    pub fn all(count: usize) -> Self {
        Self { count, error: None }
    }

    /// `count` entries were shipped, then `error` stopped it.
    pub fn failed(count: usize, error: ShipError) -> Self {
        Self { count, error: Some(error) }
    }
}

pub use agent_safe_http::{RetryPolicy, Sleeper, TokioSleeper};
