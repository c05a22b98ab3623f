//! Verification of a log: Python's `verify_log` semantics and messages, plus `seq` checks,
//! torn-tail reporting and non-canonical-line warnings.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use agent_safe_core::hex;

use crate::AuditError;
use crate::entry::{Analysis, Entry, GENESIS, HashVal, SeqVal, analyze};
use crate::lines::{Line, Term, for_each_block, non_blank};

/// Bytes read per block; lines in a block are analysed in parallel.
const BLOCK: usize = 4 << 20;
/// Below this many lines a block is analysed on the calling thread.
const PARALLEL_MIN_LINES: usize = 512;

/// The result of verifying a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of non-blank lines checked (Python's count).
    pub entries: usize,
    /// Everything that makes the log invalid, in line order.
    pub errors: Vec<VerifyIssue>,
    /// Findings that do not make the log invalid: lines whose bytes are not the canonical
    /// form of their content (reformatted or re-encoded; the hashes cover the content, so
    /// Python accepts them too), a missing final newline.
    pub warnings: Vec<VerifyIssue>,
}

impl VerifyReport {
    /// No errors (warnings do not count).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The line number of a torn final line, if the log ends with one.
    pub fn torn_tail(&self) -> Option<usize> {
        self.errors.iter().find(|e| e.kind == IssueKind::TornTail).map(|e| e.line)
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyIssue {
    /// Line number, counting non-blank lines from 1 (as Python does).
    pub line: usize,
    /// What kind of finding this is.
    pub kind: IssueKind,
    /// The message, starting `Line N: ` (Python's wording where Python has the check).
    pub message: String,
}

/// Kinds of verification findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssueKind {
    /// `Line N: invalid JSON: <Python's JSONDecodeError text>`.
    InvalidJson,
    /// The line is not UTF-8 (Python's verifier crashes on such a file).
    InvalidUtf8,
    /// Valid JSON but not an object (Python's verifier crashes on such a line).
    NotAnObject,
    /// The final line has no newline and does not parse: an interrupted write.
    TornTail,
    /// `prev_hash` is not the previous entry's `entry_hash` (genesis for the first).
    ChainBroken,
    /// `entry_hash` is not the SHA-256 of the entry's canonical JSON without `entry_hash`.
    HashMismatch,
    /// `seq` is not one more than the previous entry's.
    SeqBroken,
    /// `seq` is present but not a non-negative integer.
    InvalidSeq,
    /// Warning: the line's bytes are not the canonical form of its content.
    NonCanonical,
    /// Warning: the final line has no trailing newline (but is a complete entry).
    NoFinalNewline,
}

/// Verifies the log at `path` (see [`verify_reader`] for the rules).
///
/// A missing file is [`AuditError::NotFound`]; Python's verifier calls it valid, so the caller
/// decides what a missing log means.
pub fn verify(path: &Path) -> Result<VerifyReport, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AuditError::NotFound { path: path.to_owned() });
        }
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    verify_read(file).map_err(|source| AuditError::Io { path: path.to_owned(), source })
}

/// Verifies a log read from `r`.
///
/// Rules (Python's `verify_log`, then our additions):
/// - lines end at `\n`, `\r\n` or `\r`; surrounding whitespace is stripped; blank lines are
///   skipped and not counted;
/// - a line that does not parse: `Line N: invalid JSON: <err>`, and the expected `prev_hash`
///   is not advanced;
/// - `prev_hash` (missing = `""`) must equal the previous line's stored `entry_hash` (genesis
///   for the first): `Line N: chain broken — expected prev_hash <16>..., got <16>...`;
/// - `entry_hash` must be the SHA-256 of the canonical JSON of the parsed object without
///   `entry_hash`: `Line N: hash mismatch — stored <16>..., computed <16>...`;
/// - the next expected `prev_hash` is the **stored** `entry_hash`;
/// - `seq`, where present, must be a non-negative integer equal to the previous stored `seq`
///   plus the number of lines since it (the line number when no earlier line has a `seq`);
///   lines without `seq` (written by the Python version) are accepted anywhere;
/// - a final line without a trailing newline that does not parse is reported as a torn tail.
pub fn verify_reader(r: impl BufRead) -> Result<VerifyReport, AuditError> {
    verify_read(r).map_err(|source| AuditError::Io { path: PathBuf::from("<reader>"), source })
}

pub(crate) fn verify_read(r: impl Read) -> io::Result<VerifyReport> {
    let mut chain = Chain::default();
    for_each_block(r, BLOCK, |block, last| {
        chain.block(block, last);
        true
    })?;
    Ok(chain.report)
}

#[derive(Default)]
struct Chain {
    report: VerifyReport,
    /// `None` until the first entry: genesis.
    expected_prev: Option<HashVal>,
    /// The last stored `seq` and its line.
    last_seq: Option<(u64, usize)>,
}

impl Chain {
    fn block(&mut self, block: &[u8], last: bool) {
        let lines: Vec<Line<'_>> = non_blank(block).collect();
        let analyses = analyze_all(&lines);
        let count = lines.len();
        for (i, (line, analysis)) in lines.iter().zip(analyses).enumerate() {
            let is_final = last && i + 1 == count;
            self.line(line, analysis, is_final);
        }
    }

    fn error(&mut self, line: usize, kind: IssueKind, message: String) {
        self.report.errors.push(VerifyIssue { line, kind, message });
    }

    fn warning(&mut self, line: usize, kind: IssueKind, message: String) {
        self.report.warnings.push(VerifyIssue { line, kind, message });
    }

    fn line(&mut self, line: &Line<'_>, analysis: Analysis, is_final: bool) {
        self.report.entries += 1;
        let n = self.report.entries;
        let torn = is_final && !line.term.is_lf();
        let entry = match analysis {
            Analysis::Entry(e) => e,
            Analysis::NotJson(err) if torn => {
                return self.error(
                    n,
                    IssueKind::TornTail,
                    format!(
                        "Line {n}: torn final line (no trailing newline; an interrupted write): \
                         invalid JSON: {err}; `agent-safe audit repair` moves it aside"
                    ),
                );
            }
            Analysis::NotJson(err) => {
                return self.error(
                    n,
                    IssueKind::InvalidJson,
                    format!("Line {n}: invalid JSON: {err}"),
                );
            }
            Analysis::BadUtf8(at) => {
                let kind = if torn { IssueKind::TornTail } else { IssueKind::InvalidUtf8 };
                return self.error(n, kind, format!("Line {n}: invalid UTF-8 at byte {}", at + 1));
            }
            Analysis::NotObject(ty) => {
                return self.error(
                    n,
                    IssueKind::NotAnObject,
                    format!("Line {n}: not a JSON object (a JSON {ty})"),
                );
            }
        };
        self.entry(n, &entry);
        if !entry.canonical
            || line.raw.len() != line.text.len()
            || !matches!(line.term, Term::Lf | Term::Eof)
        {
            self.warning(
                n,
                IssueKind::NonCanonical,
                format!(
                    "Line {n}: not byte-identical to the canonical form of its content \
                     (reformatted or re-encoded; the hashes cover the content)"
                ),
            );
        } else if is_final && line.term == Term::Eof {
            self.warning(n, IssueKind::NoFinalNewline, format!("Line {n}: no trailing newline"));
        }
    }

    fn entry(&mut self, n: usize, e: &Entry) {
        let expected = self.expected_prev.take().unwrap_or_else(|| HashVal::digest(&GENESIS));
        if !e.prev.same(&expected) {
            let msg = format!(
                "Line {n}: chain broken \u{2014} expected prev_hash {}..., got {}...",
                expected.prefix16(),
                e.prev.prefix16()
            );
            self.error(n, IssueKind::ChainBroken, msg);
        }
        if !e.stored.same(&HashVal::digest(&e.computed)) {
            let msg = format!(
                "Line {n}: hash mismatch \u{2014} stored {}..., computed {}...",
                e.stored.prefix16(),
                &hex::encode(&e.computed)[..16]
            );
            self.error(n, IssueKind::HashMismatch, msg);
        }
        self.expected_prev = Some(e.stored.clone());
        match &e.seq {
            SeqVal::Missing => {}
            SeqVal::Int(s) => {
                let expected = match self.last_seq {
                    Some((s0, l0)) => u128::from(s0) + (n - l0) as u128,
                    None => n as u128,
                };
                if u128::from(*s) != expected {
                    let msg = format!(
                        "Line {n}: sequence broken \u{2014} expected seq {expected}, got {s}"
                    );
                    self.error(n, IssueKind::SeqBroken, msg);
                }
                self.last_seq = Some((*s, n));
            }
            SeqVal::Other(text) => {
                let shown: String = text.chars().take(40).collect();
                let msg = format!(
                    "Line {n}: invalid seq \u{2014} expected a non-negative integer, got {shown}"
                );
                self.error(n, IssueKind::InvalidSeq, msg);
            }
        }
    }
}

/// Analyses lines, in parallel when there are enough of them.
fn analyze_all(lines: &[Line<'_>]) -> Vec<Analysis> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads <= 1 || lines.len() < PARALLEL_MIN_LINES {
        return lines.iter().map(|l| analyze(l.text)).collect();
    }
    let per = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(per)
            .skip(1)
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(|l| analyze(l.text)).collect::<Vec<_>>())
            })
            .collect();
        let mut out: Vec<Analysis> =
            lines[..per.min(lines.len())].iter().map(|l| analyze(l.text)).collect();
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                // `analyze` does not panic; should a thread die anyway, redo its share here.
                Err(_) => return lines.iter().map(|l| analyze(l.text)).collect(),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests;
