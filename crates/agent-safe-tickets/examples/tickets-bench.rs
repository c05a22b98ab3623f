//! Prints ticket issue/validate figures as JSON: `cargo run --release -p agent-safe-tickets --example tickets-bench [iterations]`.

use std::io::Write as _;

fn main() -> std::io::Result<()> {
    let iterations = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let figures = agent_safe_tickets::bench::ticket_figures(iterations);
    writeln!(std::io::stdout().lock(), "{figures}")
}
