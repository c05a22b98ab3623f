//! Lookup figures on a large log: `cargo run --release -p agent-safe-audit --example
//! index_lookup [EVENTS]` (default 1,000,000). Writes a log where every third event is a
//! state capture of the decision before it, then times the index build, loading it in a new
//! process-like `AuditIndex`, warm `find_decision` and latest-capture lookups, lookups after
//! appends (the gap), and the linear `find_decision` it replaces. Prints JSON.

use std::time::{Duration, Instant};

use agent_safe_audit::state::latest_capture;
use agent_safe_audit::{AuditIndex, AuditLog, AuditOptions, Durability, index_path};
use agent_safe_core::{AuditEvent, AuditId, EventType};
use serde_json::json;

fn event(i: usize) -> AuditEvent {
    let mut e = agent_safe_audit::bench::sample_event(i);
    if i % 3 == 2 {
        let original = format!("evt-{:012x}", i - 1);
        e.event_type = EventType::StateCapture;
        e.correlation_id = Some(original.clone());
        e.context = Some(json!({"type": "state_capture", "original_audit_id": original,
            "before_state": {"replicas": 2}, "after_state": {"replicas": 3},
            "diff": {"added": {}, "removed": {}, "changed": {"replicas": {"old": 2, "new": 3}}, "unchanged": []},
            "capture_duration_ms": 1.0, "state_fields_declared": ["replicas"], "state_fields_captured": ["replicas"]}));
    }
    e.event_id = AuditId::new(format!("evt-{i:012x}"));
    e
}

/// Median, 90th and 99th percentile, in microseconds (the machine is shared: the tail
/// includes scheduling stalls).
fn percentiles(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    let r = |q: f64| (at(q) * 10.0).round() / 10.0;
    json!({"p50_us": r(0.5), "p90_us": r(0.9), "p99_us": r(0.99), "n": samples.len()})
}

/// A decision id spread over the whole log (every 3rd event from 1 is a captured decision).
fn decision_id(k: usize, events: usize) -> (String, usize) {
    let i = (k.wrapping_mul(2_654_435_761) % (events / 3)) * 3 + 1;
    (format!("evt-{i:012x}"), i)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

#[expect(clippy::print_stdout, reason = "printing the figures is what this example is for")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered })?;
    let start = Instant::now();
    for i in 0..events {
        log.append(&event(i))?;
    }
    let write = start.elapsed();
    let log_bytes = std::fs::metadata(&path)?.len();

    // First lookup: no index yet, so it is built from the whole log.
    let mut index = AuditIndex::new(&path);
    let (first, build) = time(|| index.find_decision(&decision_id(0, events).0));
    assert!(first?.is_some());
    let index_bytes = std::fs::metadata(index_path(&path))?.len();
    // Let the OS write both files out, so page-cache writeback does not stall the timings.
    log.sync()?;
    std::fs::File::open(index_path(&path))?.sync_all()?;

    // A new AuditIndex (as a new CLI process would): validates the header and looks up.
    let mut fresh = Vec::new();
    for k in 0..50 {
        let mut one = AuditIndex::new(&path);
        let (found, took) = time(|| one.find_decision(&decision_id(k, events).0));
        assert!(found?.is_some());
        fresh.push(took);
    }

    // Warm lookups in one long-lived index (as in the SDK).
    let mut decisions = Vec::new();
    let mut captures = Vec::new();
    for k in 0..2_000 {
        let (id, i) = decision_id(k, events);
        let (found, took) = time(|| index.find_decision(&id));
        assert_eq!(found?.map(|e| e.line), Some(i + 1));
        decisions.push(took);
        let (capture, took) = time(|| latest_capture(&mut index, &id));
        assert!(capture?.is_some());
        captures.push(took);
    }

    // Appends after the index was written: the gap is scanned, then looked up.
    for i in events..events + 1_000 {
        log.append(&event(i))?;
    }
    let (found, gap_first) = time(|| index.events(&format!("evt-{:012x}", events + 997)));
    assert_eq!(found?.len(), 1);
    let mut gap = Vec::new();
    for k in 0..500 {
        let (id, _) = decision_id(k, events);
        let (found, took) = time(|| latest_capture(&mut index, &id));
        assert!(found?.is_some());
        gap.push(took);
    }

    // The linear scan the index replaces (Python's behaviour), for an id in the middle.
    let (mid, _) = decision_id(7, events);
    let (found, linear) = time(|| agent_safe_audit::find_decision(&path, &mid));
    assert!(found?.is_some());

    let figures = json!({
        "events": events,
        "log_mb": (log_bytes as f64 / 1e6).round(),
        "index_mb": (index_bytes as f64 / 1e6 * 10.0).round() / 10.0,
        "write_log_s": (write.as_secs_f64() * 10.0).round() / 10.0,
        "index_build_s": (build.as_secs_f64() * 100.0).round() / 100.0,
        "new_index_lookup": percentiles(fresh),
        "warm_find_decision": percentiles(decisions),
        "warm_latest_capture": percentiles(captures),
        "after_1000_appends_first_lookup_ms": (gap_first.as_secs_f64() * 1e4).round() / 10.0,
        "after_1000_appends_latest_capture": percentiles(gap),
        "linear_find_decision_ms": (linear.as_secs_f64() * 1e4).round() / 10.0,
        "stats": format!("{:?}", index.stats()),
    });
    println!("{}", serde_json::to_string_pretty(&figures)?);
    Ok(())
}
