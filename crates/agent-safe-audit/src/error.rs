//! The crate's error type.

use std::path::PathBuf;

/// Why an audit-log operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading, writing, locking or syncing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The log (or backup) file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The log does not exist.
    #[error("audit log `{}` does not exist", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The log ends with an interrupted write: a final line without a newline that does not
    /// parse. Nothing is appended until `agent-safe audit repair` moves it aside.
    #[error(
        "{}:{line}: the log ends with a torn line (an interrupted write); \
         run `agent-safe audit repair` to move it aside",
        path.display()
    )]
    TornTail {
        /// The log.
        path: PathBuf,
        /// Line number of the torn line (counting non-blank lines).
        line: usize,
    },
    /// A complete line is not a valid entry where one is required.
    #[error("{}:{line}: {message}", path.display())]
    Corrupt {
        /// The log.
        path: PathBuf,
        /// Line number (counting non-blank lines).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The store cannot be reached now (a database that is down or slow): nothing was
    /// recorded; retrying later may succeed. The message names the database without password.
    #[error("{0}")]
    Unavailable(String),
    /// The store refused an operation (a database error other than unavailability), or holds
    /// something that is not an entry where one is required.
    #[error("{0}")]
    Backend(String),
    /// An earlier fsync of the log failed; entries written since may not be durable, so this
    /// handle refuses further appends. Reopen the log (and verify it) to continue.
    #[error("{}: an fsync failed ({message}); reopen the log to continue", path.display())]
    SyncFailed {
        /// The log.
        path: PathBuf,
        /// The fsync error.
        message: String,
    },
}

impl AuditError {
    /// The same error again, for each entry of a failed batch (`io::Error` is not `Clone`).
    pub fn copy(&self) -> AuditError {
        match self {
            AuditError::Io { path, source } => AuditError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            AuditError::NotFound { path } => AuditError::NotFound { path: path.clone() },
            AuditError::TornTail { path, line } => {
                AuditError::TornTail { path: path.clone(), line: *line }
            }
            AuditError::Corrupt { path, line, message } => {
                AuditError::Corrupt { path: path.clone(), line: *line, message: message.clone() }
            }
            AuditError::Unavailable(message) => AuditError::Unavailable(message.clone()),
            AuditError::Backend(message) => AuditError::Backend(message.clone()),
            AuditError::SyncFailed { path, message } => {
                AuditError::SyncFailed { path: path.clone(), message: message.clone() }
            }
        }
    }
}
