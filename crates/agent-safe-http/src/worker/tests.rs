//! Tests of the background worker: bounded concurrency, the bounded queue dropping the oldest
//! job, and both ways of ending. Jobs wait on gates the test opens; nothing sleeps.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::*;

/// How long a test waits for an event before failing (never reached when things work).
const PATIENCE: Duration = Duration::from_secs(20);

/// Reports its number when it starts, then waits for a permit of its gate, then reports again.
struct Gated {
    n: usize,
    gate: Arc<Semaphore>,
    events: Sender<(usize, &'static str)>,
}

impl Job for Gated {
    fn run(self) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.events.send((self.n, "started"));
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
            let _ = self.events.send((self.n, "finished"));
        })
    }
}

fn worker(capacity: usize, concurrency: usize, on_drop: OnDrop) -> Worker<Gated> {
    Worker::start(WorkerOptions { capacity, concurrency, on_drop, ..WorkerOptions::new("test") })
        .unwrap()
}

fn jobs(
    range: std::ops::Range<usize>,
    gate: &Arc<Semaphore>,
    events: &Sender<(usize, &'static str)>,
) -> Vec<Gated> {
    range.map(|n| Gated { n, gate: gate.clone(), events: events.clone() }).collect()
}

fn next(events: &Receiver<(usize, &'static str)>) -> (usize, &'static str) {
    events.recv_timeout(PATIENCE).unwrap()
}

#[test]
fn at_most_concurrency_jobs_run_and_the_rest_wait_in_order() {
    let (tx, events) = channel();
    let gate = Arc::new(Semaphore::new(0));
    let w = worker(10, 2, OnDrop::Abort);
    for job in jobs(0..5, &gate, &tx) {
        assert!(w.submit(job).is_none());
    }
    let mut started = vec![next(&events), next(&events)];
    started.sort_unstable();
    assert_eq!(started, [(0, "started"), (1, "started")]);
    let stats = w.stats();
    assert_eq!((stats.waiting, stats.running), (3, 2));
    gate.add_permits(5);
    let mut finished = 0;
    let mut order = Vec::new();
    while finished < 5 {
        match next(&events) {
            (_, "finished") => finished += 1,
            (n, _) => order.push(n),
        }
    }
    assert_eq!(order, [2, 3, 4]);
}

#[test]
fn a_full_queue_drops_the_oldest_waiting_job_and_counts_it() {
    let (tx, events) = channel();
    let gate = Arc::new(Semaphore::new(0));
    let w = worker(3, 1, OnDrop::Abort);
    let mut all = jobs(0..1000, &gate, &tx).into_iter();
    assert!(w.submit(all.next().unwrap()).is_none());
    assert_eq!(next(&events), (0, "started"));
    let mut evicted = Vec::new();
    for job in all {
        evicted.extend(w.submit(job).map(|j| j.n));
    }
    // Jobs 1..=996 were dropped, oldest first; 997..=999 wait behind the running job 0.
    assert_eq!(evicted, (1..=996).collect::<Vec<_>>());
    let stats = w.stats();
    assert_eq!((stats.waiting, stats.running, stats.dropped), (3, 1, 996));
    assert!(stats.allocated <= 8, "{stats:?}");
    assert_eq!(w.dropped(), 996);
    gate.add_permits(4);
    let started: Vec<usize> =
        (0..7).map(|_| next(&events)).filter(|e| e.1 == "started").map(|e| e.0).collect();
    assert_eq!(started, [997, 998, 999]);
}

#[test]
fn dropped_with_finish_runs_what_is_queued() {
    let (tx, events) = channel();
    let gate = Arc::new(Semaphore::new(0));
    let w = worker(10, 1, OnDrop::Finish);
    for job in jobs(0..3, &gate, &tx) {
        w.submit(job);
    }
    drop(tx);
    drop(w);
    gate.add_permits(3);
    let finished = (0..6).filter(|_| next(&events).1 == "finished").count();
    assert_eq!(finished, 3);
    // Every job (and with it every sender) is gone once the thread ended.
    assert_eq!(events.recv_timeout(PATIENCE), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn dropped_with_abort_abandons_running_and_waiting_jobs() {
    let (tx, events) = channel();
    let gate = Arc::new(Semaphore::new(0));
    let w = worker(10, 1, OnDrop::Abort);
    for job in jobs(0..3, &gate, &tx) {
        w.submit(job);
    }
    drop(tx);
    assert_eq!(next(&events), (0, "started"));
    // Returns once the thread ended: nothing finished, nothing else started.
    drop(w);
    assert!(events.try_iter().next().is_none());
    assert_eq!(Arc::strong_count(&gate), 1, "a job outlived the worker");
}

#[test]
fn zero_capacity_and_concurrency_count_as_one() {
    let (tx, events) = channel();
    let gate = Arc::new(Semaphore::new(0));
    let w = worker(0, 0, OnDrop::Abort);
    let mut all = jobs(0..3, &gate, &tx).into_iter();
    assert!(w.submit(all.next().unwrap()).is_none());
    assert_eq!(next(&events), (0, "started"));
    assert!(w.submit(all.next().unwrap()).is_none());
    assert_eq!(w.submit(all.next().unwrap()).map(|j| j.n), Some(1));
}
