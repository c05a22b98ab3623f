//! Concurrent writers: threads of one process, and several processes, appending to one log
//! leave one intact chain with `seq` 1..=N.
//!
//! The cross-process tests re-run this test binary (`std::env::current_exe()`) as the writer
//! processes: with `AGENT_SAFE_AUDIT_CHILD=<path>;<appends>;<fsync|buffered>` set, a test
//! appends to the log and returns instead of orchestrating.

#![cfg(test)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability, read_events, verify};

const CHILD_ENV: &str = "AGENT_SAFE_AUDIT_CHILD";

fn options(durability: Durability) -> AuditOptions {
    AuditOptions { durability }
}

fn append_from_threads(path: &Path, threads: usize, per_thread: usize, durability: Durability) {
    let log = Arc::new(AuditLog::open(path, options(durability)).unwrap());
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = Arc::clone(&log);
            s.spawn(move || {
                let mut last = 0;
                for i in 0..per_thread {
                    let seq = log.append(&sample_event(t * 1_000_000 + i)).unwrap().seq;
                    // One writer's own entries are in order.
                    assert!(seq > last);
                    last = seq;
                }
            });
        }
    });
}

/// How often consecutive entries come from different writers (each writer's event ids are
/// `writer * 1_000_000 + i`).
fn writer_switches(path: &Path) -> usize {
    let writers: Vec<u64> = read_events(path)
        .unwrap()
        .iter()
        .map(|e| u64::from_str_radix(&e.event.event_id.as_str()[4..], 16).unwrap() / 1_000_000)
        .collect();
    writers.windows(2).filter(|w| w[0] != w[1]).count()
}

#[track_caller]
fn assert_one_chain(path: &Path, expected: usize) {
    let report = verify(path).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", &report.errors[..report.errors.len().min(10)]);
    assert!(report.warnings.is_empty(), "{:#?}", &report.warnings[..report.warnings.len().min(10)]);
    assert_eq!(report.entries, expected);
    let seqs: Vec<Option<u64>> = read_events(path).unwrap().into_iter().map(|e| e.seq).collect();
    assert!(
        seqs.iter().copied().eq((1..=expected as u64).map(Some)),
        "seqs are not 1..={expected}"
    );
}

/// In a child process: do the appends described by the environment and return `true`.
fn run_as_child() -> bool {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return false };
    let mut parts = spec.split(';');
    let (Some(path), Some(n), Some(mode)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad {CHILD_ENV}: {spec}")
    };
    let durability = if mode == "fsync" { Durability::Fsync } else { Durability::Buffered };
    let log = AuditLog::open(Path::new(path), options(durability)).unwrap();
    let pid = std::process::id() as usize;
    for i in 0..n.parse::<usize>().unwrap() {
        log.append(&sample_event(pid * 1_000_000 + i)).unwrap();
    }
    true
}

/// `test` (a test of this module) as the test harness names it: `module::test`.
fn harness_name(test: &str) -> String {
    module_path!().split_once("::").map_or_else(|| test.to_owned(), |(_, m)| format!("{m}::{test}"))
}

fn spawn_child(test: &str, path: &Path, appends: usize, durability: Durability) -> Child {
    let mode = if durability == Durability::Fsync { "fsync" } else { "buffered" };
    Command::new(std::env::current_exe().unwrap())
        .args([&harness_name(test), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{};{appends};{mode}", path.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn processes_and_threads(
    test: &str,
    procs: usize,
    threads: usize,
    per: usize,
    durability: Durability,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Create the log first so every writer opens an existing file.
    drop(AuditLog::open(&path, options(durability)).unwrap());
    let children: Vec<Child> =
        (0..procs).map(|_| spawn_child(test, &path, per, durability)).collect();
    append_from_threads(&path, threads, per, durability);
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "writer process failed: {status}");
    }
    assert_one_chain(&path, (procs + threads) * per);
    // The writers really ran concurrently: run one after another they would switch
    // `procs + threads - 1` times.
    let switches = writer_switches(&path);
    assert!(switches > procs + threads, "{switches} switches");
}

#[test]
fn eight_threads_append_eight_thousand_entries() {
    if run_as_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    append_from_threads(&path, 8, 1_000, Durability::Fsync);
    assert_one_chain(&path, 8_000);
}

#[test]
fn eight_processes_and_eight_threads_share_one_chain() {
    if run_as_child() {
        return;
    }
    processes_and_threads(
        "eight_processes_and_eight_threads_share_one_chain",
        8,
        8,
        1_000,
        Durability::Buffered,
    );
}

#[test]
fn processes_and_threads_with_fsync() {
    if run_as_child() {
        return;
    }
    processes_and_threads("processes_and_threads_with_fsync", 4, 4, 100, Durability::Fsync);
}
