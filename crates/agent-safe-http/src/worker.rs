//! The one background delivery worker (approval notifications, audit shipping): a named
//! thread with its own small tokio runtime that runs queued jobs, a bounded number at a time.
//!
//! The queue of jobs waiting to start is bounded too: when it is full, [`Worker::submit`]
//! drops the **oldest** waiting job to make room, counts it ([`Worker::dropped`]) and hands it
//! back so the caller can record it. A long-running process that submits faster than the jobs
//! finish therefore holds at most `capacity` waiting and `concurrency` running jobs.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use agent_safe_core::BoxFuture;
//! use agent_safe_http::{Job, OnDrop, Worker, WorkerOptions};
//!
//! struct Count(Arc<AtomicUsize>);
//! impl Job for Count {
//!     fn run(self) -> BoxFuture<'static, ()> {
//!         Box::pin(async move { self.0.fetch_add(1, Ordering::SeqCst); })
//!     }
//! }
//!
//! let done = Arc::new(AtomicUsize::new(0));
//! let options = WorkerOptions { on_drop: OnDrop::Abort, ..WorkerOptions::new("doc-worker") };
//! let worker = Worker::start(options).unwrap();
//! assert!(worker.submit(Count(done.clone())).is_none());
//! while worker.stats().pending() > 0 {
//!     std::thread::yield_now();
//! }
//! assert_eq!(done.load(Ordering::SeqCst), 1);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use agent_safe_core::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// A unit of background work.
pub trait Job: Send + 'static {
    /// The work, run on the worker's runtime.
    fn run(self) -> BoxFuture<'static, ()>;
}

/// What dropping a [`Worker`] does with the jobs not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// Run every waiting job and let the running ones finish, on the detached thread (approval
    /// notifications: what was queued is still sent).
    Finish,
    /// Abandon the running jobs at their next await point, drop the waiting ones, and wait
    /// for the thread to end (audit shipping: what is not shipped stays in the log).
    Abort,
}

/// How a [`Worker`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// The thread's name.
    pub name: String,
    /// Jobs waiting to start, at most (0 counts as 1); when full, the oldest is dropped.
    pub capacity: usize,
    /// Jobs running at once, at most (0 counts as 1).
    pub concurrency: usize,
    /// What dropping the worker does.
    pub on_drop: OnDrop,
}

impl WorkerOptions {
    /// A thread named `name`, 10,000 waiting and 64 running jobs at most, finishing what is
    /// queued when dropped.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), capacity: 10_000, concurrency: 64, on_drop: OnDrop::Finish }
    }
}

/// Why a [`Worker`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerStartError {
    /// The thread could not be spawned.
    #[error("cannot start the thread: {0}")]
    Thread(std::io::Error),
    /// The tokio runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// The queue's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs waiting to start (at most the capacity).
    pub waiting: usize,
    /// Slots the waiting queue has allocated (bounded by the capacity, not by what was ever
    /// submitted).
    pub allocated: usize,
    /// Jobs running (at most the concurrency).
    pub running: usize,
    /// Jobs dropped so far because the queue was full.
    pub dropped: u64,
}

impl WorkerStats {
    /// Jobs not finished: waiting or running.
    pub fn pending(&self) -> usize {
        self.waiting + self.running
    }
}

/// A background thread running [`Job`]s; see the [module documentation](self).
pub struct Worker<J: Job> {
    shared: Arc<Shared<J>>,
    thread: Option<JoinHandle<()>>,
    options: WorkerOptions,
}

impl<J: Job> fmt::Debug for Worker<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Shared<J> {
    queue: Mutex<Queue<J>>,
    wake: Notify,
    capacity: usize,
    concurrency: usize,
}

struct Queue<J> {
    waiting: VecDeque<J>,
    running: usize,
    dropped: u64,
    /// Set when the worker is dropped.
    end: Option<OnDrop>,
}

impl<J> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, Queue<J>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the worker thread does next.
enum Next<J> {
    Run(J),
    Wait,
    Finish,
    Abort,
}

impl<J: Job> Worker<J> {
    /// Starts the thread and its runtime; jobs can be submitted at once.
    pub fn start(options: WorkerOptions) -> Result<Self, WorkerStartError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                running: 0,
                dropped: 0,
                end: None,
            }),
            wake: Notify::new(),
            capacity: options.capacity.max(1),
            concurrency: options.concurrency.max(1),
        });
        // The runtime is built on the new thread (dropping one inside async code panics);
        // the thread reports whether that worked before `start` returns.
        let (ready, started) = std::sync::mpsc::sync_channel(1);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(options.name.clone())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => {
                        let _ = ready.send(Ok(()));
                        runtime.block_on(run(&thread_shared));
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            })
            .map_err(WorkerStartError::Thread)?;
        match started.recv() {
            Ok(Ok(())) => Ok(Self { shared, thread: Some(thread), options }),
            Ok(Err(e)) => Err(WorkerStartError::Runtime(e)),
            Err(_) => Err(WorkerStartError::Runtime(std::io::Error::other(
                "the worker thread ended before starting its runtime",
            ))),
        }
    }

    /// Queues `job` and returns at once. When the queue is full, the oldest waiting job is
    /// dropped to make room, counted, and returned (it will not run).
    pub fn submit(&self, job: J) -> Option<J> {
        let mut queue = self.shared.lock();
        queue.waiting.push_back(job);
        let evicted = if queue.waiting.len() > self.shared.capacity {
            queue.dropped += 1;
            queue.waiting.pop_front()
        } else {
            None
        };
        drop(queue);
        self.shared.wake.notify_one();
        evicted
    }

    /// Jobs dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// The queue's figures now.
    pub fn stats(&self) -> WorkerStats {
        let queue = self.shared.lock();
        WorkerStats {
            waiting: queue.waiting.len(),
            allocated: queue.waiting.capacity(),
            running: queue.running,
            dropped: queue.dropped,
        }
    }

    /// The options it was started with.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }
}

impl<J: Job> Drop for Worker<J> {
    fn drop(&mut self) {
        self.shared.lock().end = Some(self.options.on_drop);
        self.shared.wake.notify_one();
        if self.options.on_drop == OnDrop::Abort
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// The worker thread's loop: start waiting jobs while there is room, reap finished ones,
/// sleep until a job is submitted or one finishes.
async fn run<J: Job>(shared: &Shared<J>) {
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        match next(shared, tasks.len()) {
            Next::Run(job) => {
                tasks.spawn(job.run());
            }
            Next::Wait if tasks.is_empty() => shared.wake.notified().await,
            Next::Wait => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    _ = tasks.join_next() => {}
                }
            }
            Next::Finish => {
                while tasks.join_next().await.is_some() {}
                return;
            }
            // Dropping the set aborts the running tasks.
            Next::Abort => return,
        }
    }
}

fn next<J>(shared: &Shared<J>, running: usize) -> Next<J> {
    let mut queue = shared.lock();
    queue.running = running;
    if queue.end == Some(OnDrop::Abort) {
        queue.waiting.clear();
        return Next::Abort;
    }
    if running < shared.concurrency
        && let Some(job) = queue.waiting.pop_front()
    {
        queue.running += 1;
        return Next::Run(job);
    }
    if queue.end == Some(OnDrop::Finish) && queue.waiting.is_empty() {
        return Next::Finish;
    }
    Next::Wait
}

#[cfg(test)]
mod tests;
