//! Reading the end of a log file: the chain head to resume from, torn final lines.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use agent_safe_core::hex;

use crate::entry::{Analysis, GENESIS, SeqVal, analyze};
use crate::lines::{Lines, for_each_block, non_blank};

/// Where the next entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// File length this head was read at.
    pub(crate) len: u64,
    /// `seq` of the last entry (its line number when it has none); 0 for an empty log.
    pub(crate) seq: u64,
    /// `entry_hash` of the last entry (genesis for an empty log).
    pub(crate) hash: String,
    /// The file does not end with `\n`, so the next write must start with one.
    pub(crate) needs_newline: bool,
}

/// Why the end of a log cannot be appended to.
#[derive(Debug)]
pub(crate) enum TailError {
    Io(io::Error),
    /// The last line has no newline and does not parse.
    Torn {
        line: usize,
    },
    /// The last complete line is not a usable entry.
    Corrupt {
        line: usize,
        message: String,
    },
}

impl From<io::Error> for TailError {
    fn from(e: io::Error) -> Self {
        TailError::Io(e)
    }
}

/// The last non-blank line of a file.
#[derive(Debug)]
#[non_exhaustive]
pub struct LastLine {
    /// Stripped text.
    pub text: Vec<u8>,
    /// Byte offset where the (unstripped) line starts.
    pub start: u64,
    /// Whether it ends with `\n`.
    pub lf: bool,
}

impl LastLine {
    /// An interrupted write: no newline, and it does not parse.
    pub(crate) fn is_torn(&self) -> bool {
        !self.lf && matches!(analyze(&self.text), Analysis::NotJson(_) | Analysis::BadUtf8(_))
    }
}

/// Reads `len` bytes at `start`.
pub fn read_range(file: &File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut f = file;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the log shrank while being read",
        ));
    }
    Ok(buf)
}

/// Finds the last non-blank line in the first `len` bytes, reading backwards.
pub fn last_line(file: &File, len: u64) -> io::Result<Option<LastLine>> {
    let mut chunk: u64 = 64 << 10;
    loop {
        let start = len.saturating_sub(chunk);
        let buf = read_range(file, start, len - start)?;
        // Unless at the start of the file, the first line in `buf` may be cut: skip it.
        let skip = if start == 0 {
            Some(0)
        } else {
            buf.iter().position(|&b| b == b'\n' || b == b'\r').map(|p| p + 1)
        };
        if let Some(skip) = skip
            && let Some(line) = non_blank(&buf[skip..]).last()
        {
            return Ok(Some(LastLine {
                text: line.text.to_vec(),
                start: start + (skip + line.start) as u64,
                lf: line.term.is_lf(),
            }));
        }
        if start == 0 {
            return Ok(None);
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Non-blank lines in the first `upto` bytes.
pub fn count_lines(file: &File, upto: u64) -> io::Result<u64> {
    let mut f = file;
    f.seek(SeekFrom::Start(0))?;
    let mut n = 0u64;
    for_each_block(f.take(upto), 1 << 20, |block, _| {
        n += non_blank(block).count() as u64;
        true
    })?;
    Ok(n)
}

fn file_len(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

fn ends_without_newline(file: &File, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    Ok(read_range(file, len - 1, 1)? != b"\n")
}

/// What the last line says about the head: `(entry_hash, seq)`.
fn interpret(file: &File, last: &LastLine) -> Result<(String, Option<u64>), TailError> {
    let line_no =
        || count_lines(file, last.start).map(|n| usize::try_from(n + 1).unwrap_or(usize::MAX));
    let corrupt = |message: String| -> Result<(String, Option<u64>), TailError> {
        Err(TailError::Corrupt { line: line_no()?, message })
    };
    match analyze(&last.text) {
        Analysis::Entry(e) => match e.stored.as_string() {
            Some(hash) => Ok((hash, if let SeqVal::Int(s) = e.seq { Some(s) } else { None })),
            None => corrupt("the last entry has no string `entry_hash`".to_owned()),
        },
        Analysis::NotJson(_) | Analysis::BadUtf8(_) if !last.lf => {
            Err(TailError::Torn { line: line_no()? })
        }
        Analysis::NotJson(msg) => corrupt(format!("the last entry is not valid JSON: {msg}")),
        Analysis::BadUtf8(at) => {
            corrupt(format!("the last entry is not valid UTF-8 (byte {})", at + 1))
        }
        Analysis::NotObject(ty) => {
            corrupt(format!("the last line is not a JSON object (a JSON {ty})"))
        }
    }
}

/// Reads the head of the whole file (for `open`, and after the file shrank).
pub(crate) fn resume(file: &File) -> Result<Head, TailError> {
    let len = file_len(file)?;
    let needs_newline = ends_without_newline(file, len)?;
    let Some(last) = last_line(file, len)? else {
        return Ok(Head { len, seq: 0, hash: hex::encode(&GENESIS), needs_newline });
    };
    let (hash, seq) = interpret(file, &last)?;
    let seq = match seq {
        Some(s) => s,
        // A log written by the Python version: the next entry's seq is its line number.
        None => count_lines(file, len)?,
    };
    Ok(Head { len, seq, hash, needs_newline })
}

/// Brings `head` up to date with what other writers appended after it (the file is now
/// `new_len` bytes and `head.len` was at a line end).
pub(crate) fn catch_up(file: &File, head: &Head, new_len: u64) -> Result<Head, TailError> {
    let region = read_range(file, head.len, new_len - head.len)?;
    let needs_newline =
        region.last().is_some_and(|&b| b != b'\n') || (region.is_empty() && head.needs_newline);
    let mut added = 0u64;
    let mut last = None;
    for line in Lines::new(&region).filter(|l| !l.text.is_empty()) {
        added += 1;
        last = Some(line);
    }
    let Some(line) = last else {
        return Ok(Head { len: new_len, needs_newline, ..head.clone() });
    };
    let last = LastLine {
        text: line.text.to_vec(),
        start: head.len + line.start as u64,
        lf: line.term.is_lf(),
    };
    let (hash, seq) = interpret(file, &last)?;
    Ok(Head {
        len: new_len,
        seq: seq.unwrap_or(head.seq.saturating_add(added)),
        hash,
        needs_newline,
    })
}
