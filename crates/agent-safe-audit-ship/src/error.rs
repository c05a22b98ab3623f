//! Shipping errors: one shipment, the log and cursor, the configuration.

use std::path::PathBuf;

use agent_safe_audit::AuditError;

/// Why one shipment failed. Messages never contain a webhook URL or header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// Reading or writing a destination file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The destination file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The HTTP request failed: connection, timeout, TLS, or a non-2xx status.
    #[error("{0}")]
    Http(String),
    /// The S3 request failed.
    #[error("{0}")]
    S3(String),
    /// A custom shipper's failure.
    #[error("{0}")]
    Other(String),
}

/// Why the log could not be shipped: the log or a cursor is unusable, or a shipment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipLogError {
    /// The log could not be read, or a line of it is not an entry.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A cursor could not be read, written or locked.
    #[error("{cursor}: {message}")]
    Cursor {
        /// The cursor: its file, or its row in the database.
        cursor: String,
        /// What went wrong.
        message: String,
    },
    /// The cursor does not describe this log (the log was replaced, truncated or rewritten).
    #[error(
        "{log}: the log does not match its ship cursor `{cursor}`: {detail}; ship it again \
         from the start (`agent-safe audit ship --from-start`) or delete the cursor"
    )]
    CursorMismatch {
        /// The log: its path, or the database.
        log: String,
        /// The cursor: its file, or its row in the database.
        cursor: String,
        /// What does not match.
        detail: String,
    },
    /// Shipping an entry failed.
    #[error("{log}:{line}: shipping `{event_id}` via {kind} failed: {source}")]
    Ship {
        /// The log: its path, or the database.
        log: String,
        /// Line of the entry (counting non-blank lines; in a database, its `seq`).
        line: usize,
        /// Its `event_id`.
        event_id: String,
        /// The shipper's kind.
        kind: String,
        /// The failure.
        source: ShipError,
    },
    /// A destination could not tell what it already holds.
    #[error("{kind} destination `{destination}`: {source}")]
    Destination {
        /// The shipper's kind.
        kind: String,
        /// The destination.
        destination: String,
        /// The failure.
        source: ShipError,
    },
    /// Another process ships this log to the destination (a database log is shipped by one
    /// process of the cluster at a time).
    #[error(
        "{log}: another process is shipping this log to the destination (cursor {cursor}); it \
         goes on from there"
    )]
    Standby {
        /// The log.
        log: String,
        /// The cursor.
        cursor: String,
    },
    /// The worker thread or its runtime could not be started.
    #[error("cannot start the audit shipping worker: {0}")]
    Start(String),
}

/// Why shippers could not be built from their settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShipperConfigError {
    /// The webhook URL or a header cannot be used.
    #[error(transparent)]
    Webhook(#[from] agent_safe_http::WebhookConfigError),
    /// A duration is zero, negative or not a number.
    #[error("{setting}: must be a positive number of seconds, got {value}")]
    BadDuration {
        /// The setting.
        setting: &'static str,
        /// The value.
        value: String,
    },
    /// A name or path is empty.
    #[error("{setting}: must not be empty")]
    Empty {
        /// The setting.
        setting: &'static str,
    },
    /// `s3_bucket` is set, but this build has no S3 support.
    #[error(
        "s3_bucket: this build of agent-safe has no S3 support: install the CLI with `cargo \
         install agent-safe-cli --features aws` (or enable the `s3` feature of \
         agent-safe-audit-ship)"
    )]
    NoS3Support,
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] agent_safe_http::HttpClientError),
}
