//! Differential-testing helper: applies every single-byte change (delete, replace with each
//! byte value, insert each byte value) at every position of a log and prints one JSON line per
//! change with the verifier's errors, for comparison with Python's `verify_log`
//! (`tests/data/audit/differential.py` does the Python side and the comparison).
//!
//! `cargo run --release -p agent-safe-audit --example verify_mutations -- LOG > rust.jsonl`

use std::io::{BufWriter, Write};

use agent_safe_audit::{IssueKind, verify_reader};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: verify_mutations LOG")?;
    let log = std::fs::read(path)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut emit = |op: &str, pos: usize, byte: u8, bytes: &[u8]| -> std::io::Result<()> {
        let report = verify_reader(bytes).map_err(std::io::Error::other)?;
        // `seq` checks are ours; Python has no such messages.
        let errors: Vec<String> = report
            .errors
            .iter()
            .filter(|e| !matches!(e.kind, IssueKind::SeqBroken | IssueKind::InvalidSeq))
            .map(|e| match e.kind {
                // Python words a torn tail as ordinary invalid JSON.
                IssueKind::TornTail => e
                    .message
                    .replace(" torn final line (no trailing newline; an interrupted write):", "")
                    .replace("; `agent-safe audit repair` moves it aside", ""),
                _ => e.message.clone(),
            })
            .collect();
        let kinds: Vec<String> = report.errors.iter().map(|e| format!("{:?}", e.kind)).collect();
        writeln!(
            out,
            "{}",
            json!({"op": op, "pos": pos, "byte": byte, "errors": errors, "kinds": kinds})
        )
    };
    for pos in 0..log.len() {
        let mut m = log.clone();
        m.remove(pos);
        emit("delete", pos, 0, &m)?;
        for b in 0..=255u8 {
            if b != log[pos] {
                let mut m = log.clone();
                m[pos] = b;
                emit("replace", pos, b, &m)?;
            }
            let mut m = log.clone();
            m.insert(pos, b);
            emit("insert", pos, b, &m)?;
        }
    }
    out.flush()?;
    Ok(())
}
