//! The leaves of a file log: its complete non-blank lines, each the exact bytes of the line
//! without its terminator (the lines `agent-safe audit verify` counts), read in chunks from a
//! byte offset. The one place the tree's leaves are cut from a log.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

use agent_safe_audit::scan::{Lines, Term};

/// The log is read this much at a time (more when one line is longer).
const READ_CHUNK: u64 = 4 << 20;

/// What [`scan_leaves`] hands its visitor.
pub(crate) enum Step<'a> {
    /// A non-blank line (without its terminator) and where it starts.
    Leaf(&'a [u8], u64),
    /// A chunk was read and its lines visited.
    Chunk,
}

/// Reads `log` from byte `from` up to its last complete line (as long as it is now), handing
/// `visit` every non-blank line, then the end of each chunk. A line without its terminator (a
/// write in progress, a torn line) is not read. Returns the offset after the last complete
/// line; read errors go through `read_err`.
pub(crate) fn scan_leaves<E>(
    log: &File,
    from: u64,
    read_err: impl Fn(io::Error) -> E,
    mut visit: impl FnMut(Step<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let log_len = log.metadata().map_err(&read_err)?.len();
    let mut offset = from;
    let mut chunk = READ_CHUNK;
    while offset < log_len {
        let want = (log_len - offset).min(chunk);
        let mut buf = vec![0u8; usize::try_from(want).unwrap_or(0)];
        log.read_exact_at(&mut buf, offset).map_err(&read_err)?;
        let whole = offset + want == log_len;
        let mut consumed = 0usize;
        for line in Lines::new(&buf) {
            let term = match line.term {
                Term::Lf | Term::Cr => 1,
                Term::CrLf => 2,
                // Not complete yet: a write in progress, or a torn line.
                Term::Eof => break,
            };
            let end = line.start + line.raw.len() + term;
            // A `\r` at the end of what was read may be the first half of a `\r\n`.
            if line.term == Term::Cr && end == buf.len() && !whole {
                break;
            }
            if !line.text.is_empty() {
                visit(Step::Leaf(line.raw, offset + line.start as u64))?;
            }
            consumed = end;
        }
        if consumed == 0 {
            if whole {
                break;
            }
            // One line longer than the chunk: read more at once.
            chunk = chunk.saturating_mul(2);
            continue;
        }
        offset += consumed as u64;
        visit(Step::Chunk)?;
    }
    Ok(offset)
}
