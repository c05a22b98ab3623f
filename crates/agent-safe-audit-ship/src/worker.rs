//! The background shipping worker: a thread with a small tokio runtime, one task per
//! destination, tailing the log from the destination's cursor.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent_safe_core::{Clock, SystemClock};
use tokio::sync::{Notify, watch};

use crate::outbox::{LogReader, Outbox, StepReport};
use crate::{CursorPosition, RetryPolicy, ShipLogError, Shipper, Sleeper, StartAt, TokioSleeper};

/// How the worker retries, polls and starts.
#[derive(Debug, Clone)]
pub struct ShippingOptions {
    /// Backoff after failures (retried without limit: nothing is dropped).
    pub retry: RetryPolicy,
    /// How often the log is checked for entries appended by other processes
    /// ([`ShippingWorker::notify`] wakes the worker at once).
    pub poll_interval: Duration,
    /// Where a destination without a cursor starts.
    pub start_at: StartAt,
    /// Stamps cursors and the webhook's `shipped_at`.
    pub clock: Arc<dyn Clock>,
    /// Waits out the backoff (tests inject one that does not sleep).
    pub sleeper: Arc<dyn Sleeper>,
}

impl Default for ShippingOptions {
    /// Backoff 1 s doubling up to 60 s, polling every second, whole log, system clock,
    /// tokio's timer.
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(1),
            start_at: StartAt::Beginning,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }
}

/// One destination's progress, for logs and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipperStatus {
    /// The shipper's kind.
    pub kind: String,
    /// The destination (no secrets).
    pub destination: String,
    /// Its cursor file.
    pub cursor: PathBuf,
    /// The last entry shipped, as this worker last saw the cursor.
    pub position: Option<CursorPosition>,
    /// Entries shipped by this worker.
    pub shipped: u64,
    /// Entries found already at the destination and skipped by this worker.
    pub skipped: u64,
    /// Entries in the log not shipped yet (`None` when the log could not be read).
    pub behind: Option<u64>,
    /// Failed attempts so far.
    pub failures: u64,
    /// Failed attempts since the last success (0 when healthy).
    pub consecutive_failures: u32,
    /// The most recent failure.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct TaskState {
    status: ShipperStatus,
    /// Everything before this offset is shipped; `None` before the first step.
    scanned_to: Option<u64>,
    /// The task has ended (the worker stopped, or it could not start).
    finished: bool,
}

#[derive(Debug)]
struct Shared {
    tasks: Mutex<Vec<TaskState>>,
    changed: Condvar,
    wake: Vec<Arc<Notify>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<TaskState>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut TaskState)) {
        if let Some(t) = self.lock().get_mut(i) {
            f(t);
        }
        self.changed.notify_all();
    }

    fn record(&self, i: usize, report: &StepReport) {
        self.update(i, |t| {
            t.status.shipped += report.shipped as u64;
            t.status.skipped += report.skipped as u64;
            if report.position.is_some() || t.scanned_to.is_none() {
                t.status.position = report.position.clone();
            }
            t.scanned_to = Some(report.scanned_to);
            match &report.error {
                Some(e) => {
                    t.status.failures += 1;
                    t.status.consecutive_failures = t.status.consecutive_failures.saturating_add(1);
                    t.status.last_error = Some(e.to_string());
                }
                None => t.status.consecutive_failures = 0,
            }
        });
    }
}

/// Ships a log to its destinations in the background until stopped.
///
/// Appending never waits for it: the SDK only calls [`ShippingWorker::notify`] (a few atomic
/// operations) after an append. Dropping the worker stops it at once: a shipment in flight
/// is abandoned and sent again by the next worker (its cursor was not advanced). Call
/// [`ShippingWorker::shutdown`] to ship what is pending first.
pub struct ShippingWorker {
    log: PathBuf,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ShippingWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self.shared.lock().iter().map(|t| t.status.kind.clone()).collect();
        f.debug_struct("ShippingWorker")
            .field("log", &self.log)
            .field("shippers", &kinds)
            .finish_non_exhaustive()
    }
}

impl ShippingWorker {
    /// Starts shipping the log at `log` to `shippers`.
    ///
    /// Fails when the log does not exist, when `start_at: end` cannot record the log's end
    /// in a new cursor, or when the thread cannot be started. Everything after that
    /// (unreachable destinations, a cursor that does not match the log) is retried and
    /// reported in [`ShippingWorker::status`].
    pub fn start(
        log: &Path,
        shippers: Vec<Arc<dyn Shipper>>,
        options: ShippingOptions,
    ) -> Result<ShippingWorker, ShipLogError> {
        // Fails with `NotFound` when the log is missing.
        LogReader::new(log).head()?;
        let mut outboxes = Vec::with_capacity(shippers.len());
        let mut tasks = Vec::with_capacity(shippers.len());
        for shipper in shippers {
            let mut outbox = Outbox::new(log, shipper.clone(), options.clock.clone());
            if options.start_at == StartAt::End {
                outbox.start_at_end()?;
            }
            tasks.push(TaskState {
                status: ShipperStatus {
                    kind: shipper.kind().to_owned(),
                    destination: shipper.destination(),
                    cursor: outbox.cursor_path().to_owned(),
                    position: outbox.recorded().ok().flatten(),
                    shipped: 0,
                    skipped: 0,
                    behind: None,
                    failures: 0,
                    consecutive_failures: 0,
                    last_error: None,
                },
                scanned_to: None,
                finished: false,
            });
            outboxes.push(outbox);
        }
        let shared = Arc::new(Shared {
            wake: tasks.iter().map(|_| Arc::new(Notify::new())).collect(),
            tasks: Mutex::new(tasks),
            changed: Condvar::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let thread = if outboxes.is_empty() {
            None
        } else {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("agent-safe-ship".to_owned())
                .spawn(move || run(outboxes, shared, options, stop_rx))
                .map_err(|e| ShipLogError::Start(e.to_string()))?;
            Some(spawned)
        };
        Ok(ShippingWorker { log: log.to_owned(), shared, stop, thread })
    }

    /// Tells the worker that entries were appended (cheap; never blocks).
    pub fn notify(&self) {
        for wake in &self.shared.wake {
            wake.notify_one();
        }
    }

    /// Waits until every destination has everything the log held when this was called, at
    /// most `timeout`. Returns whether it got there.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Ok((target, _)) = LogReader::new(&self.log).head() else { return false };
        self.notify();
        let deadline = Instant::now().checked_add(timeout);
        let mut tasks = self.shared.lock();
        loop {
            if tasks.iter().all(|t| t.scanned_to.is_some_and(|s| s >= target)) {
                return true;
            }
            if tasks.iter().any(|t| t.finished) {
                return false;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            tasks = match self.shared.changed.wait_timeout(tasks, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Every destination's progress; `behind` is computed from the log's last entry now.
    pub fn status(&self) -> Vec<ShipperStatus> {
        let head = LogReader::new(&self.log).head().ok().map(|(_, number)| number);
        self.shared
            .lock()
            .iter()
            .map(|t| {
                let shipped = t.status.position.as_ref().map_or(0, CursorPosition::number);
                ShipperStatus {
                    behind: head.map(|h| h.saturating_sub(shipped)),
                    ..t.status.clone()
                }
            })
            .collect()
    }

    /// The most entries any destination is behind (0 without destinations; `None` when the
    /// log could not be read).
    pub fn lag(&self) -> Option<u64> {
        self.status().iter().try_fold(0, |max, s| s.behind.map(|b| b.max(max)))
    }

    /// Ships what is pending (at most `timeout`), then stops. Returns whether everything
    /// was shipped.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.stop_and_join();
        flushed
    }

    fn stop_and_join(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ShippingWorker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The worker thread.
fn run(
    outboxes: Vec<Outbox>,
    shared: Arc<Shared>,
    options: ShippingOptions,
    stop: watch::Receiver<bool>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            for i in 0..outboxes.len() {
                shared.update(i, |t| {
                    t.status.last_error = Some(format!("cannot start the shipping runtime: {e}"));
                    t.finished = true;
                });
            }
            return;
        }
    };
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, outbox) in outboxes.into_iter().enumerate() {
            let wake = shared.wake.get(i).cloned().unwrap_or_default();
            set.spawn(task(i, outbox, shared.clone(), options.clone(), stop.clone(), wake));
        }
        while set.join_next().await.is_some() {}
    });
}

/// One destination: step, record, back off after failures, wait when caught up.
async fn task(
    i: usize,
    mut outbox: Outbox,
    shared: Arc<Shared>,
    options: ShippingOptions,
    mut stop: watch::Receiver<bool>,
    wake: Arc<Notify>,
) {
    let mut resync = true;
    let mut failures = 0u32;
    loop {
        let report = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            report = outbox.step(resync) => report,
        };
        shared.record(i, &report);
        if report.error.is_some() {
            failures = failures.saturating_add(1);
            resync = true;
            let wait = options.sleeper.sleep(options.retry.backoff(failures));
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                () = wait => {}
            }
        } else {
            failures = 0;
            resync = false;
            if !report.more {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => break,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(options.poll_interval) => {}
                }
            }
        }
    }
    shared.update(i, |t| t.finished = true);
}
