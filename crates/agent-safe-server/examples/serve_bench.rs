//! Prints the serve figures of `cargo xtask bench` alone: `cargo run --release -p
//! agent-safe-server --example serve_bench [CONNECTIONS] [REQUESTS] [buffered|fsync]`.

#[expect(clippy::print_stdout, reason = "the example prints its figures")]
fn main() {
    let mut args = std::env::args().skip(1);
    let connections = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let total = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let durability = match args.next().as_deref() {
        Some("fsync") => agent_safe::DurabilityMode::Fsync,
        _ => agent_safe::DurabilityMode::Buffered,
    };
    let catalog = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
    let outcome = tempfile::tempdir().map_err(|e| e.to_string()).and_then(|dir| {
        agent_safe_server::bench::serve_figures(
            &catalog,
            dir.path(),
            connections,
            total,
            durability,
        )
    });
    match outcome {
        Ok(figures) => println!("{figures}"),
        Err(e) => {
            eprintln!("serve bench failed: {e}");
            std::process::exit(2);
        }
    }
}
