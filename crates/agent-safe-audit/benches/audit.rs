//! Prints the audit log's throughput figures as JSON: `cargo bench -p agent-safe-audit`.
//! Optional arguments: appends per thread with fsync, appends per thread buffered.

use agent_safe_audit::bench::{BenchSizes, bench_figures};

#[expect(clippy::print_stdout, reason = "printing the figures is what this binary is for")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sizes = BenchSizes::default();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let Some(n) = args.first() {
        sizes.fsync_per_thread = n.parse()?;
    }
    if let Some(n) = args.get(1) {
        sizes.buffered_per_thread = n.parse()?;
    }
    let dir = tempfile::tempdir()?;
    let figures = bench_figures(dir.path(), sizes)?;
    println!("{figures}");
    Ok(())
}
