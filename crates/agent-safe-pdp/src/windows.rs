//! Where the per-caller windows of the rate limiter, the circuit breaker and cumulative risk
//! live. By default in the process (a mutex-guarded map, as one process needs); with a
//! [`WindowStore`] (`Pdp::set_window_store`) in a store several processes share, such as the
//! PostgreSQL one of `agent-safe-postgres`, so a caller limited to 10 requests a minute gets 10
//! across every replica, not 10 per replica.
//!
//! The rules stay here: the PDP reads a caller's window from the store, applies the same code
//! the in-process windows use, and writes it back, while the store holds that window
//! exclusively. The store keeps opaque JSON and does no I/O the PDP sees.

use std::fmt;

/// A store of windows shared by several processes.
pub trait WindowStore: fmt::Debug + Send + Sync {
    /// Holds the window `key` of `kind` (`rate_limit`, `cumulative_risk`) exclusively, against
    /// every process using the store; hands its stored JSON (`None` when there is none) to
    /// `update` once, and stores what `update` returns before letting go.
    fn update(
        &self,
        kind: &str,
        key: &str,
        update: &mut dyn FnMut(Option<&str>) -> String,
    ) -> Result<(), WindowStoreError>;
}

/// The store could not be used (a database that is down or slow). The decision cannot be made:
/// the request is refused without being recorded as decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowStoreError(pub String);

/// A time as stored in a window: microseconds since the Unix epoch.
pub(crate) fn to_micros(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The time of [`to_micros`].
pub(crate) fn from_micros(us: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
