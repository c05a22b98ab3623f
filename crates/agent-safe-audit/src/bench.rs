//! Throughput figures for `cargo xtask bench` and `benches/audit.rs` (not a stable API).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use agent_safe_core::{AuditEvent, AuditId, DecisionResult, EventType, RiskClass};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::{AuditError, AuditLog, AuditOptions, Durability, verify};

/// Threads used for the append figures.
pub const THREADS: usize = 8;

/// How many appends/entries each figure measures.
#[derive(Debug, Clone, Copy)]
pub struct BenchSizes {
    /// Appends per thread with [`Durability::Fsync`].
    pub fsync_per_thread: usize,
    /// Appends per thread with [`Durability::Buffered`]; the resulting log is then verified.
    pub buffered_per_thread: usize,
}

impl Default for BenchSizes {
    fn default() -> Self {
        Self { fsync_per_thread: 1_000, buffered_per_thread: 25_000 }
    }
}

/// A typical decision event (about 600 bytes as a line).
pub fn sample_event(i: usize) -> AuditEvent {
    let params = json!({"namespace": "staging", "deployment": format!("api-{i}"), "replicas": 3});
    AuditEvent {
        event_id: AuditId::new(format!("evt-{i:012x}")),
        timestamp: datetime!(2026-11-26 09:27:07.420959 UTC),
        event_type: EventType::Decision,
        action: "scale-deployment".into(),
        target: "staging/api-server".into(),
        caller: "deploy-bot".into(),
        params: params.as_object().cloned().unwrap_or_default(),
        decision: DecisionResult::Allow,
        reason: "Deployer agents are authorized for staging deployment management".into(),
        policy_matched: Some("allow-deployer-staging".into()),
        risk_class: RiskClass::Medium,
        effective_risk: RiskClass::Medium,
        correlation_id: None,
        ticket_id: Some("CHG-42".into()),
        context: Some(json!({"delegation_depth": 1, "original_caller": "orchestrator"})),
    }
}

/// Appends per second, and fsyncs run.
fn appends_per_s(
    path: &Path,
    durability: Durability,
    threads: usize,
    per_thread: usize,
) -> Result<(f64, u64), AuditError> {
    let log = Arc::new(AuditLog::open(path, AuditOptions { durability })?);
    let events: Vec<AuditEvent> = (0..per_thread).map(sample_event).collect();
    let events = Arc::new(events);
    let start = Instant::now();
    let results: Vec<Result<(), AuditError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let log = Arc::clone(&log);
                let events = Arc::clone(&events);
                s.spawn(move || events.iter().try_for_each(|e| log.append(e).map(|_| ())))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Ok(()))).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<(), _>>()?;
    let fsyncs = log.fsyncs.load(std::sync::atomic::Ordering::Relaxed);
    Ok(((threads * per_thread) as f64 / secs, fsyncs))
}

/// Measures append and verify throughput with logs in `dir`; returns
/// `{"audit_append_fsync_per_s", "audit_append_buffered_per_s", "audit_verify_per_s", ...}`.
pub fn bench_figures(dir: &Path, sizes: BenchSizes) -> Result<Value, AuditError> {
    let fsync_path = dir.join("bench-fsync.jsonl");
    let buffered_path = dir.join("bench-buffered.jsonl");
    let (fsync, fsyncs) =
        appends_per_s(&fsync_path, Durability::Fsync, THREADS, sizes.fsync_per_thread)?;
    let (fsync_1, _) = appends_per_s(
        &dir.join("bench-fsync-1.jsonl"),
        Durability::Fsync,
        1,
        sizes.fsync_per_thread,
    )?;
    let (buffered_1, _) = appends_per_s(
        &dir.join("bench-buffered-1.jsonl"),
        Durability::Buffered,
        1,
        sizes.buffered_per_thread * THREADS,
    )?;
    let (buffered, _) =
        appends_per_s(&buffered_path, Durability::Buffered, THREADS, sizes.buffered_per_thread)?;

    let bytes = std::fs::metadata(&buffered_path)
        .map_err(|source| AuditError::Io { path: buffered_path.clone(), source })?
        .len();
    let start = Instant::now();
    let report = verify(&buffered_path)?;
    let secs = start.elapsed().as_secs_f64();
    let expected = THREADS * sizes.buffered_per_thread;
    if !report.is_valid() || report.entries != expected {
        return Err(AuditError::Corrupt {
            path: buffered_path,
            line: report.errors.first().map_or(0, |e| e.line),
            message: format!(
                "benchmark log did not verify: {} entries, {} errors",
                report.entries,
                report.errors.len()
            ),
        });
    }
    Ok(json!({
        "audit_append_fsync_per_s": fsync.round(),
        "audit_append_buffered_per_s": buffered.round(),
        "audit_verify_per_s": (report.entries as f64 / secs).round(),
        "audit_verify_mb_per_s": (bytes as f64 / secs / 1e6).round(),
        "audit_append_fsync_1thread_per_s": fsync_1.round(),
        "audit_append_buffered_1thread_per_s": buffered_1.round(),
        "audit_threads": THREADS,
        "audit_fsync_appends": THREADS * sizes.fsync_per_thread,
        "audit_fsyncs": fsyncs,
        "audit_buffered_appends": expected,
        "audit_line_bytes": bytes / expected.max(1) as u64,
    }))
}
