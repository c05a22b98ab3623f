//! Reading a log file's raw lines, for tools that follow the log from a byte offset (the
//! shipper, `agent-safe-audit-ship`): lines split the way the Python version reads them, the
//! last line before an offset, non-blank lines counted. Synchronous, plain file reads.
//!
//! ```
//! use agent_safe_audit::scan::{Lines, Term};
//! let lines: Vec<_> = Lines::new(b"{\"a\": 1}\r\n\n  x").collect();
//! assert_eq!(lines.len(), 3);
//! assert_eq!((lines[0].text, lines[0].term), (&b"{\"a\": 1}"[..], Term::CrLf));
//! assert_eq!((lines[2].text, lines[2].term), (&b"x"[..], Term::Eof));
//! ```

pub use crate::lines::{Line, Lines, Term};
pub use crate::tail::{LastLine, count_lines, last_line, read_range};
