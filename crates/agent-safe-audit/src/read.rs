//! Typed reading of a log: every entry as an [`AuditEvent`] with its chain fields.

use std::fs::File;
use std::io;
use std::path::Path;

use agent_safe_core::{AuditEvent, EventType};
use serde::Deserialize;

use crate::AuditError;
use crate::entry::{Analysis, analyze};
use crate::lines::{Line, for_each_block, non_blank};

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The event.
    pub event: AuditEvent,
    /// Its `prev_hash`.
    pub prev_hash: String,
    /// Its `entry_hash` (`""` when absent, as in Python).
    pub entry_hash: String,
    /// Its `seq` (absent in entries written by the Python version).
    pub seq: Option<u64>,
    /// Line number, counting non-blank lines from 1 (as `verify` does).
    pub line: usize,
}

impl StoredEvent {
    /// Parses one stored line (without its newline) as entry number `line`; `None` when it is
    /// not an entry. Does not check its hash (see [`crate::verify_reader`]).
    pub fn parse(text: &[u8], line: usize) -> Option<StoredEvent> {
        crate::index::parse_entry(text, line)
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(flatten)]
    event: AuditEvent,
    prev_hash: String,
    #[serde(default)]
    entry_hash: String,
    #[serde(default)]
    seq: Option<u64>,
}

/// Reads every entry, in file order. Does not verify the chain (see [`crate::verify`]).
///
/// A line that is not an entry is [`AuditError::Corrupt`] naming the line, or
/// [`AuditError::TornTail`] when it is an unparsable final line without a newline.
/// Integers in `params`/`context` beyond the 64-bit range are read as floats here (the
/// verifier keeps them exact).
pub fn read_events(path: &Path) -> Result<Vec<StoredEvent>, AuditError> {
    let mut out = Vec::new();
    scan(path, |line, n, is_final| {
        out.push(parse(path, line, n, is_final)?);
        Ok(false)
    })?;
    Ok(out)
}

/// The first decision event whose `event_id` is `audit_id` (Python's `get_decision_event`).
///
/// Stops at the match. Only lines containing the id (as canonical JSON spells it) are parsed,
/// so corrupt lines elsewhere do not matter; a corrupt candidate line is an error.
pub fn find_decision(path: &Path, audit_id: &str) -> Result<Option<StoredEvent>, AuditError> {
    let mut needle = String::new();
    crate::canonical::write_str(audit_id, &mut needle);
    let needle = needle.into_bytes();
    let mut found = None;
    scan(path, |line, n, is_final| {
        if !contains(line.text, &needle) {
            return Ok(false);
        }
        let stored = parse(path, line, n, is_final)?;
        if stored.event.event_id == audit_id && stored.event.event_type == EventType::Decision {
            found = Some(stored);
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(found)
}

fn is_unparsable(text: &[u8]) -> bool {
    matches!(analyze(text), Analysis::NotJson(_) | Analysis::BadUtf8(_))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn parse(
    path: &Path,
    line: &Line<'_>,
    n: usize,
    is_final: bool,
) -> Result<StoredEvent, AuditError> {
    match serde_json::from_slice::<Wire>(line.text) {
        Ok(w) => Ok(StoredEvent {
            event: w.event,
            prev_hash: w.prev_hash,
            entry_hash: w.entry_hash,
            seq: w.seq,
            line: n,
        }),
        Err(_) if is_final && !line.term.is_lf() && is_unparsable(line.text) => {
            Err(AuditError::TornTail { path: path.to_owned(), line: n })
        }
        Err(e) => Err(AuditError::Corrupt {
            path: path.to_owned(),
            line: n,
            message: format!("not a valid entry: {e}"),
        }),
    }
}

/// Calls `f(line, number, is_final)` for each non-blank line until it returns `Ok(true)`.
fn scan(
    path: &Path,
    mut f: impl FnMut(&Line<'_>, usize, bool) -> Result<bool, AuditError>,
) -> Result<(), AuditError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AuditError::NotFound { path: path.to_owned() });
        }
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    let mut n = 0usize;
    let mut result: Result<bool, AuditError> = Ok(false);
    for_each_block(file, 1 << 20, |block, last| {
        let lines: Vec<Line<'_>> = non_blank(block).collect();
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            n += 1;
            result = f(line, n, last && i + 1 == count);
            if !matches!(result, Ok(false)) {
                return false;
            }
        }
        true
    })
    .map_err(|source| AuditError::Io { path: path.to_owned(), source })?;
    result.map(|_| ())
}
