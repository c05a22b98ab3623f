//! Prints shipping throughput as JSON: `cargo bench -p agent-safe-audit-ship --bench ship`.
//! Optional arguments: entries for the filesystem figures, entries for the webhook figure.
//!
//! - `ship_filesystem_per_s`: `replay` of a log into a new file (batches of up to 4,096
//!   entries, one write and one fsync per batch, cursor synced per batch);
//! - `ship_filesystem_worker_per_s`: the same through a `ShippingWorker` (start to flush);
//! - `ship_webhook_per_s`: `replay` to a webhook on 127.0.0.1 (one POST per entry, keep-alive,
//!   the cursor replaced after every entry), the server being the tests' std-thread server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability};
use agent_safe_audit_ship::{
    FilesystemShipper, ReplayOptions, ShippingOptions, ShippingWorker, WebhookShipper, replay,
};
use agent_safe_testkit::TestServer;

fn log_of(
    dir: &std::path::Path,
    name: &str,
    n: usize,
) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let path = dir.join(name);
    let log = AuditLog::open(&path, AuditOptions { durability: Durability::Buffered })?;
    for i in 0..n {
        log.append(&sample_event(i))?;
    }
    log.sync()?;
    Ok(path)
}

#[expect(clippy::print_stdout, reason = "printing the figures is what this binary is for")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let fs_n: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let web_n: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let dir = tempfile::tempdir()?;

    let log = log_of(dir.path(), "fs.jsonl", fs_n)?;
    let t = Instant::now();
    let report = replay(
        &log,
        Arc::new(FilesystemShipper::new(dir.path().join("copy-1.jsonl"))),
        &ReplayOptions::default(),
    )?;
    let fs_per_s = report.shipped as f64 / t.elapsed().as_secs_f64();
    if let Some(e) = report.error {
        return Err(e.into());
    }

    let t = Instant::now();
    let worker = ShippingWorker::start(
        &log,
        vec![Arc::new(FilesystemShipper::new(dir.path().join("copy-2.jsonl")))],
        ShippingOptions::default(),
    )?;
    if !worker.shutdown(Duration::from_secs(600)) {
        return Err("the worker did not finish".into());
    }
    let worker_per_s = fs_n as f64 / t.elapsed().as_secs_f64();

    let log = log_of(dir.path(), "web.jsonl", web_n)?;
    let server = TestServer::ok()?;
    let t = Instant::now();
    let report =
        replay(&log, Arc::new(WebhookShipper::new(&server.url())?), &ReplayOptions::default())?;
    let web_per_s = report.shipped as f64 / t.elapsed().as_secs_f64();
    if let Some(e) = report.error {
        return Err(e.into());
    }
    println!(
        "{}",
        serde_json::json!({
            "ship_filesystem_per_s": fs_per_s.round(),
            "ship_filesystem_worker_per_s": worker_per_s.round(),
            "ship_webhook_per_s": web_per_s.round(),
            "ship_filesystem_entries": fs_n,
            "ship_webhook_entries": web_n,
        })
    );
    Ok(())
}
