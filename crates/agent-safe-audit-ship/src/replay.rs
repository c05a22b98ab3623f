//! One-off shipping of a log (`agent-safe audit ship`): from the destination's cursor (or
//! the start) to the end, with a few retries, then stop.

use std::path::Path;
use std::sync::Arc;

use agent_safe_core::{Clock, SystemClock};

use crate::outbox::Outbox;
use crate::source::{FileSource, ShipSource};
use crate::{CursorPosition, RetryPolicy, ShipLogError, Shipper, Sleeper, TokioSleeper};

/// How [`replay`] starts and retries.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Ignore the cursor and start from the first entry (the filesystem shipper still skips
    /// what its file holds). The cursor is updated as usual.
    pub from_start: bool,
    /// Attempts per entry before giving up (0 counts as 1; without a limit it never gives up
    /// on a failing destination) and the backoff between them.
    pub retry: RetryPolicy,
    /// Stamps the cursor.
    pub clock: Arc<dyn Clock>,
    /// Waits out the backoff.
    pub sleeper: Arc<dyn Sleeper>,
}

impl Default for ReplayOptions {
    /// From the cursor, 3 attempts, waiting 1 s then 2 s, system clock, tokio's timer.
    fn default() -> Self {
        Self {
            from_start: false,
            retry: RetryPolicy::REPLAY,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }
}

/// What [`replay`] did.
#[derive(Debug)]
pub struct ReplayReport {
    /// The shipper's kind.
    pub kind: String,
    /// The destination (no secrets).
    pub destination: String,
    /// The cursor: its file, or its row in the database.
    pub cursor: String,
    /// Entries shipped.
    pub shipped: usize,
    /// Entries found already at the destination (filesystem) and skipped.
    pub skipped: usize,
    /// The last entry shipped (now or before), `None` when none ever was.
    pub position: Option<CursorPosition>,
    /// What stopped it before the end of the log; progress before it is recorded.
    pub error: Option<ShipLogError>,
}

/// Ships the log at `log` to `shipper` from its cursor (or the start) to the end, in order.
/// An entry that fails `retry.attempts` times in a row stops the replay (the cursor stays before
/// it, so running again resumes there); a log line that is not an entry, or a cursor that
/// does not match the log, stops it at once. Both are reported in
/// [`ReplayReport::error`]; `Err` only when the log cannot be opened.
///
/// Builds its own tokio runtime: call it outside async code (or use [`replay_async`]).
pub fn replay(
    log: &Path,
    shipper: Arc<dyn Shipper>,
    options: &ReplayOptions,
) -> Result<ReplayReport, ShipLogError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ShipLogError::Start(e.to_string()))?;
    runtime.block_on(replay_async(log, shipper, options))
}

/// [`replay`] in async code.
pub async fn replay_async(
    log: &Path,
    shipper: Arc<dyn Shipper>,
    options: &ReplayOptions,
) -> Result<ReplayReport, ShipLogError> {
    replay_from(&FileSource::new(log), shipper, options).await
}

/// [`replay_async`] for the log `source` reads (a file, or a database: see [`ShipSource`]).
/// When another process ships a database log to this destination, stops at once with
/// [`ShipLogError::Standby`] in the report.
pub async fn replay_from(
    source: &dyn ShipSource,
    shipper: Arc<dyn Shipper>,
    options: &ReplayOptions,
) -> Result<ReplayReport, ShipLogError> {
    source.head()?;
    let mut outbox = Outbox::new(source, shipper.clone(), options.clock.clone());
    if options.from_start {
        outbox.restart_from_first_entry();
    }
    let mut report = ReplayReport {
        kind: shipper.kind().to_owned(),
        destination: shipper.destination(),
        cursor: outbox.cursor_location(),
        shipped: 0,
        skipped: 0,
        position: None,
        error: None,
    };
    let mut resync = true;
    let mut failures = 0u32;
    loop {
        let step = outbox.step(resync).await;
        if step.standby {
            report.error = Some(ShipLogError::Standby {
                log: source.log_name(),
                cursor: report.cursor.clone(),
            });
            return Ok(report);
        }
        report.shipped += step.shipped;
        report.skipped += step.skipped;
        if step.position.is_some() {
            report.position = step.position;
        }
        match step.error {
            None if step.more => {
                failures = 0;
                resync = false;
            }
            None => return Ok(report),
            Some(e) => {
                let transient =
                    matches!(e, ShipLogError::Ship { .. } | ShipLogError::Destination { .. });
                // A step that shipped something starts a new count for the next entry.
                failures = if step.shipped > 0 { 1 } else { failures.saturating_add(1) };
                if !transient || options.retry.exhausted(failures) {
                    report.error = Some(e);
                    return Ok(report);
                }
                options.sleeper.sleep(options.retry.backoff(failures)).await;
                resync = true;
            }
        }
    }
}
