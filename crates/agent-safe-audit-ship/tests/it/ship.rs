//! Shipping end to end: the webhook shipper against a real HTTP server on 127.0.0.1 (down,
//! hanging, slow, answering 500, a worker crash with a request in flight), appends that
//! never wait for shipping, and the filesystem shipper's exactly-once copy across processes
//! that are killed (SIGKILL, or aborted between appending and recording the cursor).
//!
//! The cross-process test re-runs this test binary (`std::env::current_exe()`) as the
//! shipping process: with `AGENT_SAFE_SHIP_CHILD=<log>;<copy>;<abort at call>` set, it ships
//! and returns instead of orchestrating.

#![cfg(test)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability};
use agent_safe_audit_ship::{
    FilesystemShipper, RetryPolicy, ShipEntry, Shipped, Shipper, ShippingOptions, ShippingWorker,
    Sleeper, WebhookShipper,
};
use agent_safe_core::{BoxFuture, ManualClock};
use agent_safe_testkit::{Reply, TestServer};
use time::macros::datetime;
use tokio::sync::Semaphore;

const WAIT: Duration = Duration::from_secs(60);

/// Waits between retries only when the test opens the gate; records every wait.
#[derive(Debug)]
struct Gate {
    waits: Mutex<Vec<Duration>>,
    called: Condvar,
    permits: Arc<Semaphore>,
}

impl Gate {
    fn closed() -> Arc<Gate> {
        Arc::new(Gate {
            waits: Mutex::default(),
            called: Condvar::new(),
            permits: Arc::new(Semaphore::new(0)),
        })
    }

    fn open() -> Arc<Gate> {
        let gate = Gate::closed();
        gate.permits.add_permits(Semaphore::MAX_PERMITS);
        gate
    }

    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }

    /// Waits until the worker has asked to sleep `n` times.
    fn wait_for_sleeps(&self, n: usize) {
        let waits = self.waits.lock().unwrap();
        let (waits, timeout) =
            self.called.wait_timeout_while(waits, WAIT, |w| w.len() < n).unwrap();
        assert!(!timeout.timed_out(), "only {} retries", waits.len());
    }
}

impl Sleeper for Gate {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.waits.lock().unwrap().push(duration);
        self.called.notify_all();
        let permits = self.permits.clone();
        Box::pin(async move {
            if let Ok(p) = permits.acquire().await {
                p.forget();
            }
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: AuditLog,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered }).unwrap();
        Self { _dir: dir, log }
    }

    fn path(&self) -> &Path {
        self.log.path()
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.path()).unwrap().lines().map(str::to_owned).collect()
    }

    /// Appends `range`, notifying `worker` after each; the slowest append.
    fn append(&self, range: std::ops::Range<usize>, worker: Option<&ShippingWorker>) -> Duration {
        let mut slowest = Duration::ZERO;
        for i in range {
            let t = Instant::now();
            self.log.append(&sample_event(i)).unwrap();
            if let Some(w) = worker {
                w.notify();
            }
            slowest = slowest.max(t.elapsed());
        }
        slowest
    }

    fn worker(
        &self,
        shipper: Arc<dyn Shipper>,
        gate: &Arc<Gate>,
        retry: RetryPolicy,
    ) -> ShippingWorker {
        let options = ShippingOptions {
            retry,
            sleeper: gate.clone(),
            clock: Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC))),
            // Only `notify` wakes the worker: no timing depends on polling.
            poll_interval: Duration::from_secs(3600),
            ..ShippingOptions::default()
        };
        ShippingWorker::start(self.path(), vec![shipper], options).unwrap()
    }
}

fn retry(initial: u64, max: u64) -> RetryPolicy {
    RetryPolicy {
        attempts: None,
        initial_backoff: Duration::from_secs(initial),
        max_backoff: Duration::from_secs(max),
    }
}

fn webhook(server: &TestServer) -> WebhookShipper {
    WebhookShipper::new(&server.url())
        .unwrap()
        .with_header("Authorization", "Bearer test-token")
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(datetime!(2026-02-24 12:00:01 UTC))))
}

fn event_ids(server: &TestServer) -> Vec<String> {
    server.requests().iter().map(|r| r.event_id().unwrap()).collect()
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| sample_event(i).event_id.as_str().to_owned()).collect()
}

/// The server got the events `expected` (indices into the log), in that order, each body
/// carrying the stored line byte for byte.
#[track_caller]
fn assert_delivered(server: &TestServer, f: &Fixture, expected: &[usize]) {
    let all = ids(0..f.lines().len());
    let expected: Vec<String> = expected.iter().map(|&i| all[i].clone()).collect();
    assert_eq!(event_ids(server), expected);
    // Each body carries the stored line byte for byte.
    let lines = f.lines();
    let mut first: Vec<&agent_safe_testkit::Request> = Vec::new();
    let requests = server.requests();
    for r in &requests {
        if first.last().is_none_or(|p| p.event_id() != r.event_id()) {
            first.push(r);
        }
    }
    for (r, line) in first.iter().zip(&lines) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook");
        assert_eq!(
            r.body,
            format!("{{\"event\": {line}, \"shipped_at\": \"2026-02-24T12:00:01+00:00\"}}")
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("authorization"), Some("Bearer test-token"));
        assert_eq!(r.header("idempotency-key"), r.event_id().as_deref());
    }
}

#[test]
fn webhook_down_appends_unaffected_events_shipped_after_recovery() {
    let f = Fixture::new();
    let mut server = TestServer::ok().unwrap();
    server.stop();
    let gate = Gate::closed();
    let worker = f.worker(Arc::new(webhook(&server)), &gate, retry(1, 30));
    let slowest = f.append(0..200, Some(&worker));
    gate.wait_for_sleeps(1);
    let status = &worker.status()[0];
    assert_eq!(status.behind, Some(200));
    assert!(status.consecutive_failures >= 1);
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("audit.jsonl:1: shipping `evt-000000000000` via webhook failed: cannot connect to http://127.0.0.1:"), "{error}");
    assert!(!error.contains("/hook"), "the URL path is not shown: {error}");
    eprintln!("slowest append while the webhook is down: {slowest:?}");
    // Back up: the worker retries (the test opens the backoff gate) and ships everything.
    server.restart().unwrap();
    gate.permits.add_permits(Semaphore::MAX_PERMITS);
    assert!(worker.flush(WAIT));
    assert_delivered(&server, &f, &(0..200).collect::<Vec<_>>());
    assert_eq!(worker.lag(), Some(0));
}

#[test]
fn a_hanging_webhook_never_blocks_appends() {
    let f = Fixture::new();
    // The first request hangs until released (timeout: an hour).
    let server =
        TestServer::start(|n, _| if n == 0 { Reply::Hold } else { Reply::Status(200) }).unwrap();
    let shipper = Arc::new(webhook(&server).with_timeout(Duration::from_secs(3600)));
    let worker = f.worker(shipper, &Gate::open(), retry(1, 30));
    f.append(0..1, Some(&worker));
    assert!(server.wait_holding(1, WAIT));
    let slowest = f.append(1..500, Some(&worker));
    // All 500 appends returned while the first shipment was still in flight.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(f.lines().len(), 500);
    eprintln!("slowest append while the webhook hangs: {slowest:?}");
    server.release();
    assert!(worker.flush(WAIT));
    assert_delivered(&server, &f, &(0..500).collect::<Vec<_>>());
}

#[test]
fn a_slow_webhook_times_out_and_is_retried() {
    let f = Fixture::new();
    let server =
        TestServer::start(|n, _| if n == 0 { Reply::Hold } else { Reply::Status(200) }).unwrap();
    let shipper = Arc::new(webhook(&server).with_timeout(Duration::from_millis(200)));
    let gate = Gate::open();
    let worker = f.worker(shipper, &gate, retry(1, 30));
    f.append(0..5, Some(&worker));
    assert!(worker.flush(WAIT));
    // The first POST got no answer in time and was sent again.
    assert_delivered(&server, &f, &[0, 0, 1, 2, 3, 4]);
    assert_eq!(gate.waits(), [Duration::from_secs(1)]);
    let status = &worker.status()[0];
    assert!(status.last_error.as_deref().unwrap().contains("no answer within 200ms"), "{status:?}");
    assert_eq!((status.failures, status.consecutive_failures, status.shipped), (1, 0, 5));
}

#[test]
fn http_500_is_retried_with_capped_exponential_backoff() {
    let f = Fixture::new();
    let server =
        TestServer::start(|n, _| if n < 4 { Reply::Status(500) } else { Reply::Status(200) })
            .unwrap();
    let gate = Gate::open();
    let worker = f.worker(Arc::new(webhook(&server)), &gate, retry(1, 3));
    f.append(0..3, Some(&worker));
    assert!(worker.flush(WAIT));
    let secs: Vec<u64> = gate.waits().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 3, 3]);
    // Event 0 four times refused, then accepted; the others once.
    assert_delivered(&server, &f, &[0, 0, 0, 0, 0, 1, 2]);
}

#[test]
fn a_worker_crash_resends_only_the_event_in_flight() {
    let f = Fixture::new();
    let server =
        TestServer::start(|n, _| if n == 10 { Reply::Hold } else { Reply::Status(200) }).unwrap();
    f.append(0..30, None);
    let worker = f.worker(Arc::new(webhook(&server)), &Gate::open(), retry(1, 30));
    assert!(server.wait_holding(1, WAIT));
    // Crash: the worker goes away with event 10 in flight.
    drop(worker);
    f.append(30..40, None);
    let worker = f.worker(Arc::new(webhook(&server)), &Gate::open(), retry(1, 30));
    assert!(worker.flush(WAIT));
    let got = event_ids(&server);
    assert_eq!(got.len(), 41);
    assert_eq!(got[10], got[11], "event 10 was sent again");
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique, ids(0..40));
    server.release();
}

/// The shipping process of the cross-process test: a filesystem shipper in batches of 7
/// that prints `SHIPPED <call>` after each batch and, at call `abort_at`, aborts right after
/// appending (before the cursor is recorded).
#[derive(Debug)]
struct Announcing {
    inner: FilesystemShipper,
    calls: AtomicUsize,
    abort_at: usize,
}

impl Shipper for Announcing {
    fn kind(&self) -> &str {
        "filesystem"
    }
    fn destination(&self) -> String {
        self.inner.destination()
    }
    fn destination_id(&self) -> String {
        self.inner.destination_id()
    }
    fn max_batch(&self) -> usize {
        7
    }
    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            let shipped = self.inner.ship(entries).await;
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call == self.abort_at {
                std::process::abort();
            }
            println!("SHIPPED {call}");
            shipped
        })
    }
    fn last_shipped(
        &self,
    ) -> BoxFuture<'_, Result<Option<String>, agent_safe_audit_ship::ShipError>> {
        self.inner.last_shipped()
    }
}

const CHILD_ENV: &str = "AGENT_SAFE_SHIP_CHILD";

fn run_as_child() -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return false };
    let parts: Vec<&str> = spec.split(';').collect();
    let [log, copy, abort_at] = parts[..] else { panic!("bad {CHILD_ENV}: {spec}") };
    let shipper = Announcing {
        inner: FilesystemShipper::new(copy),
        calls: AtomicUsize::new(0),
        abort_at: abort_at.parse().unwrap(),
    };
    let worker =
        ShippingWorker::start(Path::new(log), vec![Arc::new(shipper)], ShippingOptions::default())
            .unwrap();
    assert!(worker.shutdown(WAIT));
    println!("DONE");
    true
}

/// `test` (a test of this module) as the test harness names it: `module::test`.
fn harness_name(test: &str) -> String {
    module_path!().split_once("::").map_or_else(|| test.to_owned(), |(_, m)| format!("{m}::{test}"))
}

fn spawn_child(log: &Path, copy: &Path, abort_at: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            &harness_name("filesystem_copy_is_exact_across_killed_processes"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{};{};{abort_at}", log.display(), copy.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn filesystem_copy_is_exact_across_killed_processes() {
    if run_as_child() {
        return;
    }
    let f = Fixture::new();
    let copy = f.path().with_file_name("copy.jsonl");
    f.append(0..1500, None);
    // Dies between appending batch 4 and recording it.
    let status = spawn_child(f.path(), &copy, 4).wait().unwrap();
    assert!(!status.success());
    assert_eq!(std::fs::read_to_string(&copy).unwrap().lines().count(), 28);
    let mut next = 1500;
    for round in 0..6 {
        // Killed (SIGKILL) somewhere after its batch `3 + 5 * round`.
        let mut child = spawn_child(f.path(), &copy, 0);
        let out = BufReader::new(child.stdout.take().unwrap());
        let kill_after = format!("SHIPPED {}", 3 + 5 * round);
        for line in out.lines() {
            let line = line.unwrap();
            if line == kill_after || line == "DONE" {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        f.append(next..next + 100, None);
        next += 100;
    }
    let mut child = spawn_child(f.path(), &copy, 0);
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(f.path()).unwrap());
}
