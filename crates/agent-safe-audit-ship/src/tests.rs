//! Outbox, cursor, replay and worker tests against real files (the webhook against a
//! loopback server is in `tests/it/ship.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_safe_core::{BoxFuture, Clock, ManualClock};
use time::macros::datetime;

use super::*;
use crate::outbox::LogReader;
use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability};

const WAIT: Duration = Duration::from_secs(30);

struct Fixture {
    dir: tempfile::TempDir,
    log: AuditLog,
    clock: Arc<dyn Clock>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(
            &dir.path().join("audit.jsonl"),
            AuditOptions { durability: Durability::Buffered },
        )
        .unwrap();
        Self { dir, log, clock: Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC))) }
    }

    fn path(&self) -> &Path {
        self.log.path()
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("copy.jsonl")
    }

    fn append(&self, range: std::ops::Range<usize>) {
        for i in range {
            self.log.append(&sample_event(i)).unwrap();
        }
    }

    fn replay(&self, shipper: Arc<dyn Shipper>, from_start: bool) -> ReplayReport {
        let options = ReplayOptions {
            from_start,
            clock: self.clock.clone(),
            sleeper: Arc::new(Instant::default()),
            ..ReplayOptions::default()
        };
        replay(self.path(), shipper, &options).unwrap()
    }

    fn options(&self, sleeper: Arc<dyn Sleeper>) -> ShippingOptions {
        ShippingOptions { clock: self.clock.clone(), sleeper, ..ShippingOptions::default() }
    }
}

/// A sleeper that records the waits and returns at once.
#[derive(Debug, Default)]
struct Instant {
    waits: Mutex<Vec<Duration>>,
    called: std::sync::Condvar,
}

impl Instant {
    /// Waits until the worker has backed off `n` times (that is, failed `n` times).
    fn wait_for(&self, n: usize) {
        let waits = self.waits.lock().unwrap();
        let (waits, timeout) =
            self.called.wait_timeout_while(waits, WAIT, |w| w.len() < n).unwrap();
        drop(waits);
        assert!(!timeout.timed_out());
    }
}

impl Sleeper for Instant {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.waits.lock().unwrap().push(duration);
        self.called.notify_all();
        Box::pin(async {})
    }
}

/// Wraps a shipper; its first `fail` calls ship and then report a failure, as if the
/// process had died before the cursor was recorded.
#[derive(Debug)]
struct ShipsThenFails {
    inner: FilesystemShipper,
    fail: AtomicUsize,
    calls: AtomicUsize,
}

impl ShipsThenFails {
    fn new(path: &Path, fail: usize) -> Self {
        Self {
            inner: FilesystemShipper::new(path),
            fail: AtomicUsize::new(fail),
            calls: AtomicUsize::new(0),
        }
    }
}

impl Shipper for ShipsThenFails {
    fn kind(&self) -> &str {
        "filesystem"
    }
    fn destination(&self) -> String {
        self.inner.destination()
    }
    fn max_batch(&self) -> usize {
        10
    }
    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let shipped = self.inner.ship(entries).await;
            if shipped.error.is_none()
                && self
                    .fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                    .is_ok()
            {
                return Shipped::failed(0, ShipError::Other("crashed before the cursor".into()));
            }
            shipped
        })
    }
    fn last_shipped(&self) -> BoxFuture<'_, Result<Option<String>, ShipError>> {
        self.inner.last_shipped()
    }
}

/// A shipper that remembers what it got and fails on chosen calls.
#[derive(Debug, Default)]
struct Recorder {
    got: Mutex<Vec<String>>,
    /// Fail the n-th call (0-based) after shipping this many of its entries.
    fail_on: Mutex<Vec<(usize, usize)>>,
    calls: AtomicUsize,
    batch: usize,
}

impl Shipper for Recorder {
    fn kind(&self) -> &str {
        "recorder"
    }
    fn destination(&self) -> String {
        "memory".into()
    }
    fn max_batch(&self) -> usize {
        self.batch.max(1)
    }
    fn ship<'a>(&'a self, entries: &'a [ShipEntry]) -> BoxFuture<'a, Shipped> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let fail = self.fail_on.lock().unwrap().iter().find(|(c, _)| *c == call).map(|f| f.1);
            let n = fail.unwrap_or(entries.len()).min(entries.len());
            self.got.lock().unwrap().extend(entries[..n].iter().map(|e| e.event_id().to_owned()));
            match fail {
                Some(_) => Shipped::failed(n, ShipError::Http("HTTP 500".into())),
                None => Shipped::all(n),
            }
        })
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| sample_event(i).event_id.as_str().to_owned()).collect()
}

#[test]
fn reader_ships_complete_lines_only_and_counts_like_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let e = |n: usize| {
        format!(
            r#"{{"entry_hash": "h{n}", "event_id": "evt-{n}", "seq": {n}, "timestamp": "2026-02-24T12:00:00Z"}}"#
        )
    };
    // Blank lines are skipped and not counted; CRLF ends a line; the last line has no
    // newline yet (a write in progress) and is not read.
    let text = format!("{}\n\n  \n{}\r\n{}\n{}", e(1), e(2), e(3), e(4));
    std::fs::write(&path, &text).unwrap();
    let mut reader = LogReader::new(&path);
    let chunk = reader.read(0, 0, 100).unwrap();
    let got: Vec<(usize, &str)> = chunk.entries.iter().map(|e| (e.line(), e.event_id())).collect();
    assert_eq!(got, [(1, "evt-1"), (2, "evt-2"), (3, "evt-3")]);
    assert_eq!(chunk.scanned_to, (text.len() - e(4).len()) as u64);
    assert!(!chunk.more);
    // A limit stops early; reading on from there continues the numbering.
    let first = reader.read(0, 0, 1).unwrap();
    assert!(first.more);
    let rest = reader.read(first.scanned_to, 1, 100).unwrap();
    assert_eq!(rest.entries.iter().map(ShipEntry::line).collect::<Vec<_>>(), [2, 3]);
    // Where the complete lines end, and the last entry's number.
    assert_eq!(reader.head().unwrap(), (chunk.scanned_to, 3));
    // A line longer than one read is still read whole.
    let long = format!(
        r#"{{"entry_hash": "h", "event_id": "evt-long", "pad": "{}", "timestamp": "2026-02-24T12:00:00Z"}}"#,
        "x".repeat(600_000)
    );
    std::fs::write(&path, format!("{long}\n")).unwrap();
    let chunk = LogReader::new(&path).read(0, 0, 100).unwrap();
    assert_eq!(chunk.entries.len(), 1);
    assert_eq!(chunk.entries[0].json(), long);
}

#[test]
fn a_line_that_is_not_an_entry_stops_shipping_with_its_line() {
    let f = Fixture::new();
    f.append(0..3);
    let mut text = std::fs::read_to_string(f.path()).unwrap();
    text.push_str("{\"not\": \"an entry\"}\n");
    std::fs::write(f.path(), &text).unwrap();
    let recorder = Arc::new(Recorder { batch: 100, ..Recorder::default() });
    let report = f.replay(recorder.clone(), false);
    assert_eq!(report.shipped, 3, "the entries before the bad line are shipped");
    assert_eq!(*recorder.got.lock().unwrap(), ids(0..3));
    let err = report.error.unwrap().to_string();
    assert!(err.contains("audit.jsonl:4: cannot ship this line: not an audit entry"), "{err}");
    assert!(err.contains("agent-safe audit verify"), "{err}");
}

#[test]
fn replay_resumes_from_the_cursor() {
    let f = Fixture::new();
    f.append(0..5);
    let dest = f.dest();
    let shipper: Arc<dyn Shipper> = Arc::new(FilesystemShipper::new(&dest));
    let report = f.replay(shipper.clone(), false);
    assert_eq!((report.shipped, report.skipped), (5, 0));
    assert!(report.error.is_none());
    let pos = report.position.unwrap();
    assert_eq!(
        (pos.line, pos.seq, pos.offset),
        (5, Some(5), std::fs::metadata(f.path()).unwrap().len())
    );
    // The cursor file, next to the log.
    let cursor = cursor_path(f.path(), &*shipper);
    assert_eq!(cursor, report.cursor);
    let name = cursor.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("audit.jsonl.ship-filesystem-") && name.ends_with(".cursor"),
        "{name}"
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cursor).unwrap()).unwrap();
    assert_eq!(stored["entry_hash"], pos.entry_hash.as_str());
    assert_eq!(stored["line"], 5);
    assert_eq!(stored["updated_at"], "2026-02-24T12:00:00Z");
    assert_eq!(stored["destination"], dest.display().to_string());
    // Nothing new: nothing shipped.
    let again = f.replay(shipper.clone(), false);
    assert_eq!((again.shipped, again.skipped), (0, 0));
    f.append(5..8);
    let more = f.replay(shipper, false);
    assert_eq!((more.shipped, more.skipped), (3, 0));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(f.path()).unwrap());
}

#[test]
fn filesystem_never_ships_twice_when_the_cursor_is_behind() {
    let f = Fixture::new();
    f.append(0..20);
    let dest = f.dest();
    let shipper: Arc<dyn Shipper> = Arc::new(FilesystemShipper::new(&dest));
    f.replay(shipper.clone(), false);
    let log_bytes = std::fs::read(f.path()).unwrap();
    // The cursor lost (deleted, or an older copy restored): the file is checked instead.
    std::fs::remove_file(cursor_path(f.path(), &*shipper)).unwrap();
    let report = f.replay(shipper.clone(), false);
    assert_eq!((report.shipped, report.skipped), (0, 20));
    assert_eq!(std::fs::read(&dest).unwrap(), log_bytes);
    // `--from-start` too.
    let report = f.replay(shipper.clone(), true);
    assert_eq!((report.shipped, report.skipped), (0, 20));
    // A new destination gets everything.
    let other: Arc<dyn Shipper> = Arc::new(FilesystemShipper::new(f.dir.path().join("b.jsonl")));
    assert_eq!(f.replay(other, false).shipped, 20);
}

#[test]
fn filesystem_crash_between_append_and_cursor_ships_nothing_twice() {
    let f = Fixture::new();
    f.append(0..35);
    let dest = f.dest();
    // Batches of 10; the first two calls "crash" after appending.
    let shipper = Arc::new(ShipsThenFails::new(&dest, 2));
    let report = f.replay(shipper.clone(), false);
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.shipped + report.skipped, 35);
    assert_eq!(report.skipped, 20);
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(f.path()).unwrap());
}

#[test]
fn a_cursor_that_does_not_match_the_log_is_refused() {
    let f = Fixture::new();
    f.append(1000..1004);
    let recorder = Arc::new(Recorder::default());
    f.replay(recorder.clone(), false);
    // The log is replaced by another one of the same length.
    let other = Fixture::new();
    other.append(2000..2004);
    std::fs::copy(other.path(), f.path()).unwrap();
    let report = f.replay(recorder.clone(), false);
    let err = report.error.unwrap().to_string();
    assert!(err.contains("the log does not match its ship cursor"), "{err}");
    assert!(err.contains("the cursor records"), "{err}");
    assert!(err.contains("--from-start"), "{err}");
    // Truncated below the cursor.
    std::fs::write(f.path(), b"").unwrap();
    let err = f.replay(recorder.clone(), false).error.unwrap().to_string();
    assert!(err.contains("the log has only 0 bytes"), "{err}");
    // `--from-start` ignores the cursor (and replaces it).
    other.append(2004..2005);
    std::fs::copy(other.path(), f.path()).unwrap();
    let report = f.replay(recorder.clone(), true);
    assert!(report.error.is_none());
    assert_eq!(report.shipped, 5);
    assert!(f.replay(recorder, false).error.is_none());
}

#[test]
fn replay_retries_then_stops_before_the_failing_entry() {
    let f = Fixture::new();
    f.append(0..6);
    // Batches of 2; call 1 ships one entry then fails, calls 2 and 3 fail: 3 attempts.
    let recorder = Arc::new(Recorder {
        batch: 2,
        fail_on: Mutex::new(vec![(1, 1), (2, 0), (3, 0)]),
        ..Recorder::default()
    });
    let sleeper = Arc::new(Instant::default());
    let options = ReplayOptions {
        clock: f.clock.clone(),
        sleeper: sleeper.clone(),
        ..ReplayOptions::default()
    };
    let report = replay(f.path(), recorder.clone(), &options).unwrap();
    assert_eq!(report.shipped, 3);
    assert_eq!(report.position.as_ref().map(|p| p.line), Some(3));
    let err = report.error.unwrap().to_string();
    assert!(
        err.ends_with("audit.jsonl:4: shipping `evt-000000000003` via recorder failed: HTTP 500"),
        "{err}"
    );
    assert_eq!(*sleeper.waits.lock().unwrap(), [Duration::from_secs(1), Duration::from_secs(2)]);
    // Run again: resumes at entry 4, no entry is shipped twice.
    let report = replay(f.path(), recorder.clone(), &options).unwrap();
    assert!(report.error.is_none());
    assert_eq!(report.shipped, 3);
    assert_eq!(*recorder.got.lock().unwrap(), ids(0..6));
    // A missing log is an error of its own.
    let missing = replay(&f.dir.path().join("nope.jsonl"), recorder, &options).unwrap_err();
    assert!(
        matches!(missing, ShipLogError::Audit(agent_safe_audit::AuditError::NotFound { .. })),
        "{missing}"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let retry = RetryPolicy {
        attempts: None,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(5),
    };
    let waits: Vec<u64> = (1..=6).map(|n| retry.backoff(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 5, 5, 5]);
    assert_eq!(retry.backoff(u32::MAX), Duration::from_secs(5));
}

#[test]
fn worker_retries_with_backoff_and_reports_progress() {
    let f = Fixture::new();
    f.append(0..4);
    let recorder = Arc::new(Recorder {
        fail_on: Mutex::new(vec![(0, 0), (1, 0), (2, 0)]),
        ..Recorder::default()
    });
    let sleeper = Arc::new(Instant::default());
    let worker = ShippingWorker::start(
        f.path(),
        vec![recorder.clone()],
        ShippingOptions {
            retry: RetryPolicy {
                attempts: None,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(3),
            },
            // Only `notify` wakes it, so the lag below is stable.
            poll_interval: Duration::from_secs(3600),
            ..f.options(sleeper.clone())
        },
    )
    .unwrap();
    assert!(worker.flush(WAIT));
    assert_eq!(
        *sleeper.waits.lock().unwrap(),
        [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3)]
    );
    assert_eq!(*recorder.got.lock().unwrap(), ids(0..4));
    let status = worker.status();
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!((s.kind.as_str(), s.destination.as_str()), ("recorder", "memory"));
    assert_eq!((s.shipped, s.failures, s.consecutive_failures, s.behind), (4, 3, 0, Some(0)));
    assert!(s.last_error.as_deref().unwrap().contains("HTTP 500"));
    assert_eq!(s.position.as_ref().map(|p| p.line), Some(4));
    // Appends reach it once notified; the lag shows what is pending.
    f.append(4..10);
    assert_eq!(worker.lag(), Some(6));
    worker.notify();
    assert!(worker.shutdown(WAIT));
    assert_eq!(*recorder.got.lock().unwrap(), ids(0..10));
}

#[test]
fn worker_start_at_end_skips_the_backlog_and_a_missing_log_is_an_error() {
    let f = Fixture::new();
    f.append(0..3);
    let recorder = Arc::new(Recorder::default());
    let options =
        ShippingOptions { start_at: StartAt::End, ..f.options(Arc::new(Instant::default())) };
    let worker = ShippingWorker::start(f.path(), vec![recorder.clone()], options.clone()).unwrap();
    f.append(3..5);
    worker.notify();
    assert!(worker.shutdown(WAIT));
    assert_eq!(*recorder.got.lock().unwrap(), ids(3..5));
    let err = ShippingWorker::start(&f.dir.path().join("nope.jsonl"), vec![recorder], options)
        .unwrap_err();
    assert!(err.to_string().contains("nope.jsonl` does not exist"), "{err}");
}

#[test]
fn two_workers_on_one_destination_ship_each_entry_once() {
    let f = Fixture::new();
    f.append(0..300);
    let dest = f.dest();
    let start = || {
        ShippingWorker::start(
            f.path(),
            vec![Arc::new(FilesystemShipper::new(&dest))],
            f.options(Arc::new(Instant::default())),
        )
        .unwrap()
    };
    let (a, b) = (start(), start());
    f.append(300..600);
    a.notify();
    b.notify();
    assert!(a.flush(WAIT) && b.flush(WAIT));
    assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(f.path()).unwrap());
    let total: u64 = a.status()[0].shipped + b.status()[0].shipped;
    assert_eq!(total, 600);
}

#[test]
fn a_worker_notices_a_replaced_log() {
    let f = Fixture::new();
    f.append(1000..1004);
    let recorder = Arc::new(Recorder::default());
    let sleeper = Arc::new(Instant::default());
    let worker = ShippingWorker::start(
        f.path(),
        vec![recorder.clone()],
        ShippingOptions { poll_interval: Duration::from_secs(3600), ..f.options(sleeper.clone()) },
    )
    .unwrap();
    assert!(worker.flush(WAIT));
    // Another log of the same length is renamed over it.
    let other = Fixture::new();
    other.append(2000..2005);
    let tmp = f.dir.path().join("new.jsonl");
    std::fs::copy(other.path(), &tmp).unwrap();
    std::fs::rename(&tmp, f.path()).unwrap();
    worker.notify();
    sleeper.wait_for(1);
    let status = &worker.status()[0];
    let error = status.last_error.as_deref().unwrap();
    assert!(error.contains("the log does not match its ship cursor"), "{error}");
    assert_eq!(*recorder.got.lock().unwrap(), ids(1000..1004), "nothing from the new file");
}

/// Issue #13: the shipping side has no queue that grows (the log is the outbox). However many
/// appends are announced, the worker holds one job per destination and drops nothing.
#[test]
fn notifications_queue_nothing_the_log_is_the_outbox() {
    let f = Fixture::new();
    f.append(0..3);
    let recorder = Arc::new(Recorder::default());
    let worker = ShippingWorker::start(
        f.path(),
        vec![recorder.clone(), Arc::new(FilesystemShipper::new(f.dir.path().join("copy.jsonl")))],
        ShippingOptions {
            poll_interval: Duration::from_secs(3600),
            ..f.options(Arc::new(Instant::default()))
        },
    )
    .unwrap();
    for _ in 0..100_000 {
        worker.notify();
    }
    assert!(worker.flush(WAIT));
    let stats = worker.job_stats().unwrap();
    assert_eq!((stats.waiting, stats.running, stats.dropped), (0, 2, 0), "{stats:?}");
    assert!(stats.allocated <= 4, "{stats:?}");
    assert_eq!(*recorder.got.lock().unwrap(), ids(0..3));
}
