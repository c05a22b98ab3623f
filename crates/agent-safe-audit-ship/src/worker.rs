//! The background shipping worker: one long-running job per destination on the workspace's
//! one background delivery worker (`agent_safe_http::Worker`: a thread with its own small
//! tokio runtime), tailing the log from the destination's cursor.
//!
//! Nothing here queues entries in memory: the log is the outbox, and the worker's job queue
//! holds exactly one job per destination.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use agent_safe_core::{BoxFuture, Clock, SystemClock};
use agent_safe_http::{Job, OnDrop, Worker, WorkerOptions, WorkerStartError};
use tokio::sync::Notify;

use crate::outbox::{Outbox, StepReport};
use crate::source::{FileSource, ShipSource};
use crate::{CursorPosition, RetryPolicy, ShipLogError, Shipper, Sleeper, StartAt, TokioSleeper};

/// How the worker retries, polls and starts.
#[derive(Debug, Clone)]
pub struct ShippingOptions {
    /// Backoff after failures (default [`RetryPolicy::SHIPPING`]: retried without limit,
    /// nothing is dropped; a limit on `attempts` is not used here).
    pub retry: RetryPolicy,
    /// How often the log is checked for entries appended by other processes
    /// ([`ShippingWorker::notify`] wakes the worker at once), and how often a worker standing
    /// by (another process ships a database log) asks to take over.
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
            retry: RetryPolicy::SHIPPING,
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
    /// Its cursor: the cursor file, or its row in the database.
    pub cursor: String,
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
    /// Another process ships this (database) log to this destination; this worker stands by
    /// and takes over when that process stops.
    pub standby: bool,
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
            t.status.standby = report.standby;
            if report.standby {
                return;
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
    source: Arc<dyn ShipSource>,
    shared: Arc<Shared>,
    /// `None` without destinations, or when its runtime could not start (then every task
    /// is marked finished with the error).
    worker: Option<Worker<Destination>>,
}

impl fmt::Debug for ShippingWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self.shared.lock().iter().map(|t| t.status.kind.clone()).collect();
        f.debug_struct("ShippingWorker")
            .field("log", &self.source.log_name())
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
        Self::start_from(Arc::new(FileSource::new(log)), shippers, options)
    }

    /// Starts shipping the log `source` reads (a file, or a database: see [`ShipSource`]) to
    /// `shippers`; fails as [`ShippingWorker::start`] does.
    pub fn start_from(
        source: Arc<dyn ShipSource>,
        shippers: Vec<Arc<dyn Shipper>>,
        options: ShippingOptions,
    ) -> Result<ShippingWorker, ShipLogError> {
        // Fails with `NotFound` when the log is missing.
        source.head()?;
        let mut outboxes = Vec::with_capacity(shippers.len());
        let mut tasks = Vec::with_capacity(shippers.len());
        for shipper in shippers {
            let mut outbox = Outbox::new(&*source, shipper.clone(), options.clock.clone());
            if options.start_at == StartAt::End {
                outbox.start_at_end()?;
            }
            tasks.push(TaskState {
                status: ShipperStatus {
                    kind: shipper.kind().to_owned(),
                    destination: shipper.destination(),
                    cursor: outbox.cursor_location(),
                    position: outbox.recorded().ok().flatten(),
                    shipped: 0,
                    skipped: 0,
                    behind: None,
                    failures: 0,
                    consecutive_failures: 0,
                    last_error: None,
                    standby: false,
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
        let worker = if outboxes.is_empty() {
            None
        } else {
            let destinations = outboxes.len();
            let worker_options = WorkerOptions {
                capacity: destinations,
                concurrency: destinations,
                on_drop: OnDrop::Abort,
                ..WorkerOptions::new("agent-safe-ship")
            };
            match Worker::start(worker_options) {
                Ok(worker) => {
                    for (i, outbox) in outboxes.into_iter().enumerate() {
                        let wake = shared.wake.get(i).cloned().unwrap_or_default();
                        let job = Destination {
                            i,
                            outbox,
                            shared: shared.clone(),
                            options: options.clone(),
                            wake,
                        };
                        // One job per destination: the queue holds them all, none is dropped.
                        let _ = worker.submit(job);
                    }
                    Some(worker)
                }
                Err(WorkerStartError::Runtime(e)) => {
                    for i in 0..destinations {
                        shared.update(i, |t| {
                            t.status.last_error =
                                Some(format!("cannot start the shipping runtime: {e}"));
                            t.finished = true;
                        });
                    }
                    None
                }
                Err(WorkerStartError::Thread(e)) => return Err(ShipLogError::Start(e.to_string())),
                Err(e) => return Err(ShipLogError::Start(e.to_string())),
            }
        };
        Ok(ShippingWorker { source, shared, worker })
    }

    /// Tells the worker that entries were appended (cheap; never blocks).
    pub fn notify(&self) {
        for wake in &self.shared.wake {
            wake.notify_one();
        }
    }

    /// Waits until every destination has everything the log held when this was called, at
    /// most `timeout`. Returns whether it got there. A destination this worker stands by for
    /// counts as flushed: the process shipping there has it.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Ok((target, _)) = self.source.head() else { return false };
        self.notify();
        let deadline = Instant::now().checked_add(timeout);
        let mut tasks = self.shared.lock();
        loop {
            if tasks.iter().all(|t| t.status.standby || t.scanned_to.is_some_and(|s| s >= target)) {
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
        let head = self.source.head().ok().map(|(_, number)| number);
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

    /// The background worker's queue figures (`None` without destinations).
    #[cfg(test)]
    pub(crate) fn job_stats(&self) -> Option<agent_safe_http::WorkerStats> {
        self.worker.as_ref().map(Worker::stats)
    }

    /// Ships what is pending (at most `timeout`), then stops. Returns whether everything
    /// was shipped.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        // Dropping the worker abandons the tasks and waits for its thread.
        self.worker = None;
        flushed
    }
}

/// One destination's long-running job.
struct Destination {
    i: usize,
    outbox: Outbox,
    shared: Arc<Shared>,
    options: ShippingOptions,
    wake: Arc<Notify>,
}

impl Job for Destination {
    fn run(self) -> BoxFuture<'static, ()> {
        Box::pin(task(self))
    }
}

/// One destination: step, record, back off after failures, wait when caught up. Runs until
/// the worker is dropped (which abandons it at an await point: a shipment in flight is sent
/// again by the next worker, its cursor not having advanced).
async fn task(destination: Destination) {
    let Destination { i, mut outbox, shared, options, wake } = destination;
    let mut resync = true;
    let mut failures = 0u32;
    loop {
        // A step and its backoff may complete without waiting (an injected sleeper, a failure
        // found without I/O); yielding lets the worker notice it is being dropped.
        tokio::task::yield_now().await;
        let report = outbox.step(resync).await;
        shared.record(i, &report);
        if report.standby {
            // Another process ships this destination: ask again later (appends do not wake a
            // worker standing by), then catch up with what the destination holds.
            resync = true;
            tokio::time::sleep(options.poll_interval).await;
        } else if report.error.is_some() {
            failures = failures.saturating_add(1);
            resync = true;
            options.sleeper.sleep(options.retry.backoff(failures)).await;
        } else {
            failures = 0;
            resync = false;
            if !report.more {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(options.poll_interval) => {}
                }
            }
        }
    }
}
