//! Splitting a log into lines the way the Python version reads it: text mode with universal
//! newlines (`\n`, `\r\n` and a lone `\r` all end a line), then `str.strip()`.
//!
//! Line numbers everywhere in this crate count the non-blank lines, as Python's verifier does.

use std::io::{self, Read};

/// How a physical line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// `\n`, what both writers put at the end of every entry.
    Lf,
    /// `\r\n`.
    CrLf,
    /// A lone `\r`.
    Cr,
    /// End of input without a terminator.
    Eof,
}

impl Term {
    /// Whether the line ends with a `\n` byte (so it is not an interrupted write).
    pub fn is_lf(self) -> bool {
        matches!(self, Term::Lf | Term::CrLf)
    }
}

/// One physical line of a buffer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Line<'a> {
    /// Byte offset of the line's first byte in the buffer.
    pub start: usize,
    /// The line without its terminator.
    pub raw: &'a [u8],
    /// `raw` with Python-whitespace stripped from both ends; empty for a blank line.
    pub text: &'a [u8],
    /// How it ended.
    pub term: Term,
}

/// Iterator over the physical lines (blank ones included) of a buffer.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The lines of `buf`, from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let start = self.pos;
        let (raw, term, consumed) = match memchr::memchr2(b'\n', b'\r', rest) {
            None => (rest, Term::Eof, rest.len()),
            Some(i) if rest[i] == b'\n' => (&rest[..i], Term::Lf, i + 1),
            Some(i) if rest.get(i + 1) == Some(&b'\n') => (&rest[..i], Term::CrLf, i + 2),
            Some(i) => (&rest[..i], Term::Cr, i + 1),
        };
        self.pos += consumed;
        Some(Line { start, raw, text: strip_py(raw), term })
    }
}

/// The non-blank lines of `buf`.
pub(crate) fn non_blank(buf: &[u8]) -> impl Iterator<Item = Line<'_>> {
    Lines::new(buf).filter(|l| !l.text.is_empty())
}

/// Python's `str.strip()` on UTF-8 bytes: removes leading and trailing characters for which
/// `str.isspace()` is true (ASCII whitespace, `\x1c`–`\x1f`, NEL, NBSP and the Unicode spaces).
pub(crate) fn strip_py(mut s: &[u8]) -> &[u8] {
    while let Some(n) = leading_space(s) {
        s = &s[n..];
    }
    while let Some(n) = trailing_space(s) {
        s = &s[..s.len() - n];
    }
    s
}

fn is_ascii_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ')
}

fn is_unicode_space(c: u32) -> bool {
    matches!(c, 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000)
}

fn leading_space(s: &[u8]) -> Option<usize> {
    let &b = s.first()?;
    if is_ascii_space(b) {
        return Some(1);
    }
    let n = match b {
        0xc2 => 2,
        0xe1..=0xe3 => 3,
        _ => return None,
    };
    let c = std::str::from_utf8(s.get(..n)?).ok()?.chars().next()?;
    is_unicode_space(u32::from(c)).then_some(n)
}

fn trailing_space(s: &[u8]) -> Option<usize> {
    let &b = s.last()?;
    if is_ascii_space(b) {
        return Some(1);
    }
    for n in [2, 3] {
        if let Some(tail) = s.len().checked_sub(n).and_then(|i| s.get(i..)) {
            let c = std::str::from_utf8(tail).ok().and_then(|t| t.chars().next());
            if let Some(c) = c.filter(|c| c.len_utf8() == n) {
                return is_unicode_space(u32::from(c)).then_some(n);
            }
        }
    }
    None
}

/// Reads a stream in blocks that end right after a `\n` (or at end of input), so no line is
/// split between blocks, and hands each block to `f` together with whether it is the last.
/// Stops early when `f` returns `false`.
pub(crate) fn for_each_block(
    mut r: impl Read,
    block: usize,
    mut f: impl FnMut(&[u8], bool) -> bool,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut scanned = 0;
    loop {
        let eof = fill(&mut r, &mut buf, block)?;
        if eof {
            f(&buf, true);
            return Ok(());
        }
        // Search only the new bytes for the last newline.
        let cut = buf[scanned..].iter().rposition(|&b| b == b'\n').map(|p| scanned + p + 1);
        match cut {
            Some(cut) => {
                if !f(&buf[..cut], false) {
                    return Ok(());
                }
                buf.drain(..cut);
                // What is left has no newline (the cut was at the last one).
                scanned = buf.len();
            }
            None => {
                // A line longer than a block: keep reading.
                scanned = buf.len();
            }
        }
    }
}

/// Reads until `buf` holds `want` more bytes than it did, or the input ends (returns `true`
/// at end of input).
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let n = r.take(want as u64).read_to_end(buf)?;
    Ok(n < want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &[(&str, Term)]) {
        let got: Vec<(String, Term)> = non_blank(input.as_bytes())
            .map(|l| (String::from_utf8_lossy(l.text).into_owned(), l.term))
            .collect();
        let expected: Vec<(String, Term)> =
            expected.iter().map(|(s, t)| ((*s).to_owned(), *t)).collect();
        assert_eq!(got, expected, "lines of {input:?}");
    }

    #[test]
    fn splits_like_python_universal_newlines() {
        check("", &[]);
        check("a\nb\n", &[("a", Term::Lf), ("b", Term::Lf)]);
        check("a\r\nb\rc", &[("a", Term::CrLf), ("b", Term::Cr), ("c", Term::Eof)]);
        check("\n\n  \t\n a \n\n", &[("a", Term::Lf)]);
        // `str.strip()` removes Unicode whitespace and the ASCII separators, but not a BOM.
        check("\u{a0}\u{3000}x\u{2028}\u{85}\x1c\x0b\n", &[("x", Term::Lf)]);
        check("\u{feff}x\u{200b}\n", &[("\u{feff}x\u{200b}", Term::Lf)]);
        check("\u{a0}\n\u{2029}\r", &[]);
    }

    #[test]
    fn strips_only_whole_characters() {
        // 0xc2 0xa0 is NBSP, but 0xa0 alone is a stray continuation byte.
        assert_eq!(strip_py(b"\xa0x\xa0"), b"\xa0x\xa0");
        assert_eq!(strip_py(b"\xc2\xa0x\xc2\xa0"), b"x");
        assert_eq!(strip_py(b"x\xe3\x80\x80"), b"x");
        assert_eq!(strip_py(b"\xe2\x80\x8bx"), b"\xe2\x80\x8bx");
    }

    #[test]
    fn blocks_never_split_lines() {
        let text: String = (0..500).map(|i| format!("line-{i}-{}\n", "x".repeat(i % 37))).collect();
        for block in [1, 7, 64, 4096] {
            let mut lines = Vec::new();
            let mut last_seen = 0;
            for_each_block(text.as_bytes(), block, |b, last| {
                if !last {
                    assert_eq!(b.last(), Some(&b'\n'));
                }
                last_seen += usize::from(last);
                lines.extend(non_blank(b).map(|l| String::from_utf8_lossy(l.text).into_owned()));
                true
            })
            .unwrap();
            assert_eq!(last_seen, 1);
            assert_eq!(lines.len(), 500, "block {block}");
            assert_eq!(lines[499], format!("line-499-{}", "x".repeat(499 % 37)));
        }
    }
}
