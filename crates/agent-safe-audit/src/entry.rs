//! Analysis of one stored line: parse it with Python's semantics and recompute its entry hash
//! over the parsed object (every key except `entry_hash`), as Python's `verify_log` does.
//!
//! Fast path: a line that is already canonical (what both writers produce) is validated in one
//! pass and hashed in place, with the `entry_hash` member cut out. Anything else (other
//! whitespace, escapes or number spellings, key order, duplicate keys, syntax errors) goes
//! through [`crate::pyjson`], which re-serialises the parsed value. Both give the same hash;
//! a property test checks it.

use agent_safe_core::hex;
use ring::digest;

use crate::pyjson::{self, PyValue};

/// SHA-256 digest bytes.
pub(crate) type Digest = [u8; 32];

/// The genesis `prev_hash`: 64 zeros.
pub(crate) const GENESIS: Digest = [0; 32];

/// A stored `prev_hash` / `entry_hash` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HashVal {
    /// The key is absent (Python reads it as `""`).
    Missing,
    /// An ASCII string of exactly 64 bytes (the shape of a hash; compared as bytes).
    Ascii64([u8; 64]),
    /// Any other string.
    Str(String),
    /// Not a string: its canonical JSON.
    Other(String),
}

impl HashVal {
    /// Python's `!=` between two stored values, for the cases that can occur.
    pub(crate) fn same(&self, other: &HashVal) -> bool {
        match (self, other) {
            (HashVal::Missing, HashVal::Str(s)) | (HashVal::Str(s), HashVal::Missing) => {
                s.is_empty()
            }
            (a, b) => a == b,
        }
    }

    /// The first 16 characters, as Python's messages show them.
    pub(crate) fn prefix16(&self) -> String {
        match self {
            HashVal::Missing => String::new(),
            HashVal::Ascii64(b) => String::from_utf8_lossy(&b[..16]).into_owned(),
            HashVal::Str(s) | HashVal::Other(s) => s.chars().take(16).collect(),
        }
    }

    /// The value as a string, when it is one.
    pub(crate) fn as_string(&self) -> Option<String> {
        match self {
            HashVal::Ascii64(b) => Some(String::from_utf8_lossy(b).into_owned()),
            HashVal::Str(s) => Some(s.clone()),
            HashVal::Missing | HashVal::Other(_) => None,
        }
    }

    fn from_str_bytes(s: &[u8]) -> HashVal {
        match <[u8; 64]>::try_from(s) {
            Ok(b) if b.is_ascii() => HashVal::Ascii64(b),
            _ => HashVal::Str(pyjson::lossy(s)),
        }
    }

    /// A digest as its lowercase hex string.
    pub(crate) fn digest(d: &Digest) -> HashVal {
        HashVal::Ascii64(hex::encode_32(d))
    }

    fn from_py(v: Option<&PyValue>) -> HashVal {
        match v {
            None => HashVal::Missing,
            Some(PyValue::Str(s)) => HashVal::from_str_bytes(s),
            Some(other) => {
                let mut out = String::new();
                pyjson::write(other, &mut out);
                HashVal::Other(out)
            }
        }
    }
}

/// A stored `seq` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeqVal {
    Missing,
    Int(u64),
    /// Not an integer that fits in `u64` (negative, float, string, …): its canonical JSON.
    Other(String),
}

impl SeqVal {
    fn from_py(v: Option<&PyValue>) -> SeqVal {
        match v {
            None => SeqVal::Missing,
            Some(PyValue::Int(digits)) => match digits.parse::<u64>() {
                Ok(n) => SeqVal::Int(n),
                Err(_) => SeqVal::Other(digits.clone()),
            },
            Some(other) => {
                let mut out = String::new();
                pyjson::write(other, &mut out);
                SeqVal::Other(out)
            }
        }
    }
}

/// A line that parsed as a JSON object.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) prev: HashVal,
    pub(crate) stored: HashVal,
    pub(crate) computed: Digest,
    pub(crate) seq: SeqVal,
    /// The (stripped) line is byte-identical to the canonical form of what it parses to.
    pub(crate) canonical: bool,
}

/// What a (stripped, non-blank) line is.
#[derive(Debug, Clone)]
pub(crate) enum Analysis {
    Entry(Entry),
    /// Not valid UTF-8; the byte offset of the first bad byte.
    BadUtf8(usize),
    /// Python's `JSONDecodeError` text.
    NotJson(String),
    /// Valid JSON, but not an object; Python's type name.
    NotObject(&'static str),
}

pub(crate) fn sha256(parts: &[&[u8]]) -> Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    finish(ctx)
}

pub(crate) fn finish(ctx: digest::Context) -> Digest {
    let mut d = [0u8; 32];
    d.copy_from_slice(ctx.finish().as_ref());
    d
}

/// Analyses one stripped, non-blank line.
pub(crate) fn analyze(line: &[u8]) -> Analysis {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return Analysis::BadUtf8(e.valid_up_to()),
    };
    if let Some(entry) = fast::scan(line) {
        return Analysis::Entry(entry);
    }
    slow(text)
}

/// The reference path: parse, then re-serialise canonically.
pub(crate) fn slow(text: &str) -> Analysis {
    let value = match pyjson::loads(text) {
        Ok(v) => v,
        Err(e) => return Analysis::NotJson(e.python_message(text)),
    };
    let PyValue::Object(members) = &value else {
        return Analysis::NotObject(value.type_name());
    };
    let mut hashed = String::with_capacity(text.len());
    pyjson::write_object(members, Some("entry_hash"), &mut hashed);
    let mut full = String::with_capacity(text.len());
    pyjson::write_object(members, None, &mut full);
    Analysis::Entry(Entry {
        prev: HashVal::from_py(value.get("prev_hash")),
        stored: HashVal::from_py(value.get("entry_hash")),
        computed: sha256(&[hashed.as_bytes()]),
        seq: SeqVal::from_py(value.get("seq")),
        canonical: full == text,
    })
}

/// The single-pass validator/hasher for canonical lines.
mod fast {
    use super::{Entry, HashVal, SeqVal, sha256};
    use crate::canonical::write_float;
    use crate::pyjson::MAX_DEPTH;

    /// Length of the leading run of bytes canonical JSON writes raw inside a string (printable
    /// ASCII except `"` and `\`). Most strings of an entry are short (keys, enum values), so the
    /// first 16 bytes are tested one by one; past them, the run ends at the first quote or
    /// backslash (`memchr2`) or at the first control or non-ASCII byte before it, found by a
    /// branch-free fold over the run so the common all-plain case needs no byte-by-byte exit.
    pub(super) fn plain_run(s: &[u8]) -> usize {
        const SHORT: usize = 16;
        let head = s.get(..SHORT).unwrap_or(s);
        if let Some(p) = head.iter().position(|&b| !is_plain(b)) {
            return p;
        }
        match s.get(SHORT..) {
            Some(rest) if !rest.is_empty() => SHORT + long_run(rest),
            _ => head.len(),
        }
    }

    fn is_plain(b: u8) -> bool {
        (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
    }

    fn long_run(s: &[u8]) -> usize {
        let end = memchr::memchr2(b'"', b'\\', s).unwrap_or(s.len());
        let run = s.get(..end).unwrap_or(s);
        let printable = |b: u8| (0x20..0x7f).contains(&b);
        if run.iter().fold(true, |all, &b| all & printable(b)) {
            return run.len();
        }
        run.iter().position(|&b| !printable(b)).unwrap_or(run.len())
    }

    /// A top-level member: byte ranges of the whole member and of its value.
    #[derive(Clone, Copy)]
    struct Member {
        start: usize,
        value_start: usize,
        end: usize,
    }

    struct Scanner<'a> {
        b: &'a [u8],
        i: usize,
    }

    /// `Some` only when the line is canonical JSON of an object and every top-level member
    /// the verifier reads is plain; `None` means "use the slow path" (which also reports errors).
    pub(super) fn scan(b: &[u8]) -> Option<Entry> {
        let mut s = Scanner { b, i: 0 };
        // The `entry_hash` member, the end of the member before it and the start of the one
        // after it (to cut it and one separator out of the hashed bytes).
        let mut entry_hash: Option<Member> = None;
        let mut before_entry_hash: Option<usize> = None;
        let mut after_entry_hash: Option<usize> = None;
        let mut prev_hash: Option<Member> = None;
        let mut seq: Option<Member> = None;
        let mut last_end: Option<usize> = None;
        s.expect(b'{')?;
        if s.peek()? == b'}' {
            s.i += 1;
        } else {
            let mut prev_key: Option<&[u8]> = None;
            loop {
                let start = s.i;
                let key = s.plain_string()?;
                if prev_key.is_some_and(|p| key <= p) {
                    return None;
                }
                prev_key = Some(key);
                s.expect(b':')?;
                s.expect(b' ')?;
                let value_start = s.i;
                s.value(1)?;
                let m = Member { start, value_start, end: s.i };
                if entry_hash.is_some() && after_entry_hash.is_none() {
                    after_entry_hash = Some(start);
                }
                match key {
                    b"entry_hash" => {
                        entry_hash = Some(m);
                        before_entry_hash = last_end;
                    }
                    b"prev_hash" => prev_hash = Some(m),
                    b"seq" => seq = Some(m),
                    _ => {}
                }
                last_end = Some(m.end);
                match s.peek()? {
                    b',' => {
                        s.i += 1;
                        s.expect(b' ')?;
                    }
                    b'}' => {
                        s.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if s.i != b.len() {
            return None;
        }
        let hash_field = |m: Option<Member>| -> Option<HashVal> {
            let Some(m) = m else { return Some(HashVal::Missing) };
            let v = &b[m.value_start..m.end];
            match v.first() {
                Some(b'"') => {
                    let inner = &v[1..v.len() - 1];
                    if inner.contains(&b'\\') { None } else { Some(HashVal::from_str_bytes(inner)) }
                }
                _ => Some(HashVal::Other(String::from_utf8_lossy(v).into_owned())),
            }
        };
        let prev = hash_field(prev_hash)?;
        let stored = hash_field(entry_hash)?;
        let seq = match seq {
            None => SeqVal::Missing,
            Some(m) => {
                let v = &b[m.value_start..m.end];
                match std::str::from_utf8(v).ok().and_then(|t| t.parse::<u64>().ok()) {
                    Some(n) if v.first().is_some_and(u8::is_ascii_digit) => SeqVal::Int(n),
                    _ => SeqVal::Other(String::from_utf8_lossy(v).into_owned()),
                }
            }
        };
        // Cut the `entry_hash` member and one adjacent separator out of the hashed bytes.
        let computed = match entry_hash {
            None => sha256(&[b]),
            Some(m) => {
                let (cut_start, cut_end) = match (after_entry_hash, before_entry_hash) {
                    (Some(next), _) => (m.start, next),
                    (None, Some(before)) => (before, m.end),
                    (None, None) => (m.start, m.end),
                };
                sha256(&[&b[..cut_start], &b[cut_end..]])
            }
        };
        Some(Entry { prev, stored, computed, seq, canonical: true })
    }

    impl<'a> Scanner<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn expect(&mut self, c: u8) -> Option<()> {
            if self.peek()? == c {
                self.i += 1;
                Some(())
            } else {
                None
            }
        }

        /// A string without escapes; returns its content.
        fn plain_string(&mut self) -> Option<&'a [u8]> {
            self.expect(b'"')?;
            let start = self.i;
            let len = plain_run(&self.b[start..]);
            self.i = start + len;
            self.expect(b'"')?;
            Some(&self.b[start..start + len])
        }

        fn value(&mut self, depth: usize) -> Option<()> {
            match self.peek()? {
                b'"' => self.string(),
                b'{' => self.object(depth + 1),
                b'[' => self.array(depth + 1),
                b'n' => self.word(b"null"),
                b't' => self.word(b"true"),
                b'f' => self.word(b"false"),
                b'N' => self.word(b"NaN"),
                b'I' => self.word(b"Infinity"),
                b'-' if self.b.get(self.i + 1) == Some(&b'I') => self.word(b"-Infinity"),
                b'-' | b'0'..=b'9' => self.number(),
                _ => None,
            }
        }

        fn word(&mut self, w: &[u8]) -> Option<()> {
            if self.b.get(self.i..self.i + w.len())? == w {
                self.i += w.len();
                Some(())
            } else {
                None
            }
        }

        /// A string in exactly the form `json.dumps` (ensure_ascii) writes.
        fn string(&mut self) -> Option<()> {
            self.i += 1;
            loop {
                let c = self.peek()?;
                match c {
                    b'"' => {
                        self.i += 1;
                        return Some(());
                    }
                    b'\\' => {
                        match self.b.get(self.i + 1)? {
                            b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => self.i += 2,
                            b'u' => {
                                let digits = self.b.get(self.i + 2..self.i + 6)?;
                                let mut cp = 0u32;
                                for &d in digits {
                                    let v = match d {
                                        b'0'..=b'9' => d - b'0',
                                        b'a'..=b'f' => d - b'a' + 10,
                                        _ => return None,
                                    };
                                    cp = (cp << 4) | u32::from(v);
                                }
                                // Only what canonical output escapes this way.
                                let named = matches!(cp, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                                if !((cp < 0x20 && !named) || cp >= 0x7f) {
                                    return None;
                                }
                                self.i += 6;
                            }
                            _ => return None,
                        }
                    }
                    0x20..=0x7e => self.i += plain_run(&self.b[self.i..]),
                    _ => return None,
                }
            }
        }

        fn object(&mut self, depth: usize) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.i += 1;
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            let mut prev_key: Option<&[u8]> = None;
            loop {
                let key = self.plain_string()?;
                if prev_key.is_some_and(|p| key <= p) {
                    return None;
                }
                prev_key = Some(key);
                self.expect(b':')?;
                self.expect(b' ')?;
                self.value(depth)?;
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.expect(b' ')?;
                    }
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn array(&mut self, depth: usize) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.i += 1;
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            loop {
                self.value(depth)?;
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.expect(b' ')?;
                    }
                    b']' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        /// A number spelled exactly as Python prints the value it reads as.
        fn number(&mut self) -> Option<()> {
            let start = self.i;
            if self.peek()? == b'-' {
                self.i += 1;
            }
            match self.peek()? {
                b'0' => self.i += 1,
                b'1'..=b'9' => self.digits(),
                _ => return None,
            }
            let mut is_float = false;
            if self.peek() == Some(b'.') {
                self.i += 1;
                if !self.peek()?.is_ascii_digit() {
                    return None;
                }
                self.digits();
                is_float = true;
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if !self.peek()?.is_ascii_digit() {
                    return None;
                }
                self.digits();
                is_float = true;
            }
            let token = &self.b[start..self.i];
            if !is_float {
                // Python reads `-0` as the int 0 and writes `0`; a leading zero is an error.
                return (token != b"-0" && !self.peek().is_some_and(|c| c.is_ascii_digit()))
                    .then_some(());
            }
            let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
            let mut repr = String::with_capacity(24);
            write_float(value, &mut repr);
            (repr.as_bytes() == token).then_some(())
        }

        fn digits(&mut self) {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Was `swar.rs`'s test: the run ends at the first byte canonical JSON escapes, for every
    /// byte at every offset.
    #[test]
    fn plain_run_agrees_with_a_bytewise_search_for_every_byte_at_every_offset() {
        let plain = |c: u8| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\';
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let run = s.iter().position(|&c| !plain(c)).unwrap_or(len);
                    assert_eq!(fast::plain_run(&s), run, "{s:?}");
                }
            }
        }
    }

    fn both(line: &str) -> (Option<Entry>, Analysis) {
        (fast::scan(line.as_bytes()), slow(line))
    }

    #[track_caller]
    fn check_fast(line: &str) {
        let (fast, slow) = both(line);
        let fast = fast.unwrap_or_else(|| panic!("fast path refused canonical line {line}"));
        let Analysis::Entry(slow) = slow else { panic!("slow path failed on {line}") };
        assert!(slow.canonical, "{line}");
        assert_eq!(fast.computed, slow.computed, "{line}");
        assert_eq!(fast.prev, slow.prev);
        assert_eq!(fast.stored, slow.stored);
        assert_eq!(fast.seq, slow.seq);
    }

    #[track_caller]
    fn check_slow_only(line: &str) {
        assert!(fast::scan(line.as_bytes()).is_none(), "fast path accepted {line}");
    }

    #[test]
    fn fast_and_slow_paths_agree_on_canonical_lines() {
        check_fast(r#"{}"#);
        check_fast(r#"{"entry_hash": "x"}"#);
        check_fast(r#"{"a": 1, "entry_hash": "x"}"#);
        check_fast(r#"{"entry_hash": "x", "z": [1, 2.5, {"k": null}]}"#);
        check_fast(
            r#"{"a": "\u00e9\ud83d\ude00\n\"\\", "b": [NaN, Infinity, -Infinity, 1e-05, 1e+16, -0.0, 0, -1], "seq": 3}"#,
        );
        check_fast(r#"{"a": "\ud800 lone \udfff", "prev_hash": 5, "seq": -1}"#);
        check_fast(r#"{"a": 123456789012345678901234567890, "seq": 18446744073709551616}"#);
    }

    #[test]
    fn fast_path_refuses_non_canonical_spellings() {
        check_slow_only(r#"{"a":1}"#);
        check_slow_only(r#"{"a": 1,"b": 2}"#);
        check_slow_only(r#"{"b": 1, "a": 2}"#);
        check_slow_only(r#"{"a": 1, "a": 2}"#);
        check_slow_only(r#"{"a": "\u00E9"}"#);
        check_slow_only(r#"{"a": "\u0041"}"#);
        check_slow_only(r#"{"a": "\u000a"}"#);
        check_slow_only(r#"{"a": "\/"}"#);
        check_slow_only("{\"a\": \"\u{e9}\"}");
        check_slow_only("{\"a\": \"\u{7f}\"}");
        check_slow_only(r#"{"a": 1E5}"#);
        check_slow_only(r#"{"a": 1.50}"#);
        check_slow_only(r#"{"a": 1e-5}"#);
        check_slow_only(r#"{"a": 1e400}"#);
        check_slow_only(r#"{"a": -0}"#);
        check_slow_only(r#"{"a": 01}"#);
        check_slow_only(r#"{"\u00e9": 1}"#);
        check_slow_only(r#"{"entry_hash": "\u0061"}"#);
        check_slow_only(r#"[1]"#);
        check_slow_only(r#"{"a": 1} "#);
    }

    #[test]
    fn slow_path_hashes_the_parsed_object() {
        // The same content in canonical and in a re-encoded form hashes the same.
        let canonical = r#"{"a": 100000.0, "b": "\u00e9/", "entry_hash": "h", "prev_hash": "p"}"#;
        let reencoded =
            r#"{ "prev_hash":"p","b":"é\/","a":1E5 , "entry_hash":"h2", "entry_hash": "h"}"#;
        let (Analysis::Entry(a), Analysis::Entry(b)) = (slow(canonical), slow(reencoded)) else {
            panic!("both parse")
        };
        assert_eq!(a.computed, b.computed);
        assert_eq!(b.stored, HashVal::Str("h".into()));
        assert!(a.canonical);
        assert!(!b.canonical);
        let expected = sha256(&[br#"{"a": 100000.0, "b": "\u00e9/", "prev_hash": "p"}"#]);
        assert_eq!(a.computed, expected);
    }

    #[test]
    fn classifies_bad_lines() {
        assert!(matches!(analyze(b"\xff{}"), Analysis::BadUtf8(0)));
        assert!(matches!(analyze(b"[1, 2]"), Analysis::NotObject("list")));
        let Analysis::NotJson(msg) = analyze(br#"{"a": 1"#) else { panic!() };
        assert_eq!(msg, "Expecting ',' delimiter: line 1 column 8 (char 7)");
    }
}
