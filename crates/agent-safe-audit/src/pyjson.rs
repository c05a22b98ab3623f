//! A JSON reader with the semantics of CPython 3.11's `json.loads` (C scanner), and the
//! canonical writer for what it reads. This is the verifier's slow path, used for any line that
//! is not already in canonical form; it is also the reference the fast path is tested against.
//!
//! Python's data model is kept where it matters for hashes: integers of any size (kept as their
//! digits), floats (`1E5` reads as `100000.0`; `1e400` as infinity, written `Infinity`), `NaN`
//! and `Infinity` literals, strings with lone surrogates (kept in generalized UTF-8, which sorts
//! by code point like Python's `str`), and duplicate keys (the last value wins). Error messages
//! are Python's (`Expecting ',' delimiter: line 1 column 8 (char 7)`).

use crate::canonical::{push_ascii_escape, push_u_escapes, write_float};

/// Deeper nesting is reported as an error instead of risking the stack (Python raises
/// `RecursionError` at about 1000 levels).
pub(crate) const MAX_DEPTH: usize = 500;

/// A decoded JSON value in Python's data model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PyValue {
    Null,
    Bool(bool),
    /// The decimal digits, `-` for negatives, never `-0`.
    Int(String),
    Float(f64),
    /// Generalized UTF-8 (surrogate code points encoded like any other).
    Str(Vec<u8>),
    Array(Vec<PyValue>),
    /// Sorted by key (code point order), one entry per key (the last one read).
    Object(Vec<(Vec<u8>, PyValue)>),
}

impl PyValue {
    /// Python's type name.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            PyValue::Null => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Array(_) => "list",
            PyValue::Object(_) => "dict",
        }
    }

    /// The value of `key` in an object.
    pub(crate) fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Object(members) => members
                .binary_search_by(|(k, _)| k.as_slice().cmp(key.as_bytes()))
                .ok()
                .map(|i| &members[i].1),
            _ => None,
        }
    }
}

/// A syntax error at a byte offset of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) msg: &'static str,
    pub(crate) pos: usize,
}

impl ParseError {
    /// Python's `str(JSONDecodeError)` for an error in `doc` (a single line).
    pub(crate) fn python_message(&self, doc: &str) -> String {
        let char_pos = doc.get(..self.pos).map_or(self.pos, |p| p.chars().count());
        format!("{}: line 1 column {} (char {})", self.msg, char_pos + 1, char_pos)
    }
}

enum Fail {
    /// Python's `StopIteration(pos)`: no value starts here ("Expecting value").
    NoValue(usize),
    Error(ParseError),
}

impl From<ParseError> for Fail {
    fn from(e: ParseError) -> Self {
        Fail::Error(e)
    }
}

fn err(msg: &'static str, pos: usize) -> ParseError {
    ParseError { msg, pos }
}

/// `json.loads(s)`.
pub(crate) fn loads(s: &str) -> Result<PyValue, ParseError> {
    if s.starts_with('\u{feff}') {
        return Err(err("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let b = s.as_bytes();
    let start = skip_ws(b, 0);
    let (v, end) = match scan_once(b, start, 0) {
        Ok(ok) => ok,
        Err(Fail::NoValue(pos)) => return Err(err("Expecting value", pos)),
        Err(Fail::Error(e)) => return Err(e),
    };
    let end = skip_ws(b, end);
    if end != b.len() {
        return Err(err("Extra data", end));
    }
    Ok(v)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn scan_once(b: &[u8], idx: usize, depth: usize) -> Result<(PyValue, usize), Fail> {
    let Some(&c) = b.get(idx) else {
        return Err(Fail::NoValue(idx));
    };
    let constant = |word: &[u8], v: PyValue| -> Result<(PyValue, usize), Fail> {
        if b.get(idx..idx + word.len()) == Some(word) {
            Ok((v, idx + word.len()))
        } else {
            Err(Fail::NoValue(idx))
        }
    };
    match c {
        b'"' => {
            let (s, end) = scanstring(b, idx + 1)?;
            Ok((PyValue::Str(s), end))
        }
        b'{' | b'[' if depth >= MAX_DEPTH => {
            Err(Fail::Error(err("Nesting too deep (more than 500 levels)", idx)))
        }
        b'{' => parse_object(b, idx + 1, depth + 1),
        b'[' => parse_array(b, idx + 1, depth + 1),
        b'n' => constant(b"null", PyValue::Null),
        b't' => constant(b"true", PyValue::Bool(true)),
        b'f' => constant(b"false", PyValue::Bool(false)),
        b'N' => constant(b"NaN", PyValue::Float(f64::NAN)),
        b'I' => constant(b"Infinity", PyValue::Float(f64::INFINITY)),
        b'-' if b.get(idx + 1) == Some(&b'I') => {
            constant(b"-Infinity", PyValue::Float(f64::NEG_INFINITY))
        }
        _ => match_number(b, idx),
    }
}

fn parse_object(b: &[u8], mut idx: usize, depth: usize) -> Result<(PyValue, usize), Fail> {
    let mut members: Vec<(Vec<u8>, PyValue)> = Vec::new();
    idx = skip_ws(b, idx);
    if b.get(idx) != Some(&b'}') {
        loop {
            if b.get(idx) != Some(&b'"') {
                return Err(err("Expecting property name enclosed in double quotes", idx).into());
            }
            let (key, next) = scanstring(b, idx + 1)?;
            idx = skip_ws(b, next);
            if b.get(idx) != Some(&b':') {
                return Err(err("Expecting ':' delimiter", idx).into());
            }
            idx = skip_ws(b, idx + 1);
            let (val, next) = scan_once(b, idx, depth)?;
            members.push((key, val));
            idx = skip_ws(b, next);
            if b.get(idx) == Some(&b'}') {
                break;
            }
            if b.get(idx) != Some(&b',') {
                return Err(err("Expecting ',' delimiter", idx).into());
            }
            idx = skip_ws(b, idx + 1);
        }
    }
    // A dict keeps the last value of a repeated key; the stable sort keeps read order among
    // equal keys, so the last of each run wins.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut deduped: Vec<(Vec<u8>, PyValue)> = Vec::with_capacity(members.len());
    for m in members {
        match deduped.last_mut() {
            Some(last) if last.0 == m.0 => *last = m,
            _ => deduped.push(m),
        }
    }
    Ok((PyValue::Object(deduped), idx + 1))
}

fn parse_array(b: &[u8], mut idx: usize, depth: usize) -> Result<(PyValue, usize), Fail> {
    let mut items = Vec::new();
    idx = skip_ws(b, idx);
    if b.get(idx) != Some(&b']') {
        loop {
            let (val, next) = scan_once(b, idx, depth)?;
            items.push(val);
            idx = skip_ws(b, next);
            if b.get(idx) == Some(&b']') {
                break;
            }
            if b.get(idx) != Some(&b',') {
                return Err(err("Expecting ',' delimiter", idx).into());
            }
            idx = skip_ws(b, idx + 1);
        }
    }
    Ok((PyValue::Array(items), idx + 1))
}

fn is_digit(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// CPython's `_match_number_unicode`, including its look-ahead quirks (`1.` and `1e` leave the
/// `.`/`e` unread).
fn match_number(b: &[u8], start: usize) -> Result<(PyValue, usize), Fail> {
    let len = b.len();
    let mut idx = start;
    if b.get(idx) == Some(&b'-') {
        idx += 1;
        if idx >= len {
            return Err(Fail::NoValue(start));
        }
    }
    match b.get(idx) {
        Some(b'1'..=b'9') => {
            idx += 1;
            while is_digit(b, idx) {
                idx += 1;
            }
        }
        Some(b'0') => idx += 1,
        _ => return Err(Fail::NoValue(start)),
    }
    let mut is_float = false;
    if idx + 1 < len && b[idx] == b'.' && is_digit(b, idx + 1) {
        is_float = true;
        idx += 2;
        while is_digit(b, idx) {
            idx += 1;
        }
    }
    if idx + 1 < len && (b[idx] == b'e' || b[idx] == b'E') {
        let e_start = idx;
        idx += 1;
        if idx + 1 < len && (b[idx] == b'-' || b[idx] == b'+') {
            idx += 1;
        }
        while is_digit(b, idx) {
            idx += 1;
        }
        if is_digit(b, idx - 1) {
            is_float = true;
        } else {
            idx = e_start;
        }
    }
    let text = std::str::from_utf8(&b[start..idx]).unwrap_or("0");
    let value = if is_float {
        PyValue::Float(text.parse::<f64>().unwrap_or(f64::NAN))
    } else {
        let digits =
            text.strip_prefix("-0").map_or(text, |rest| if rest.is_empty() { "0" } else { text });
        PyValue::Int(digits.to_owned())
    };
    Ok((value, idx))
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = (v << 4) | char::from(d).to_digit(16)?;
    }
    Some(v)
}

/// CPython's `scanstring_unicode` (strict): `end` is just after the opening quote; returns the
/// decoded text in generalized UTF-8 and the index after the closing quote.
fn scanstring(b: &[u8], end: usize) -> Result<(Vec<u8>, usize), ParseError> {
    let begin = end - 1;
    let len = b.len();
    let mut out = Vec::new();
    let mut end = end;
    loop {
        let mut next = end;
        while next < len && b[next] != b'"' && b[next] != b'\\' {
            if b[next] <= 0x1f {
                return Err(err("Invalid control character at", next));
            }
            next += 1;
        }
        if next >= len {
            return Err(err("Unterminated string starting at", begin));
        }
        out.extend_from_slice(&b[end..next]);
        if b[next] == b'"' {
            return Ok((out, next + 1));
        }
        // A backslash.
        next += 1;
        if next == len {
            return Err(err("Unterminated string starting at", begin));
        }
        if b[next] != b'u' {
            let c = match b[next] {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                _ => return Err(err("Invalid \\escape", next - 1)),
            };
            out.push(c);
            end = next + 1;
            continue;
        }
        // `next` is at the `u`.
        end = next + 5;
        if end >= len {
            return Err(err("Invalid \\uXXXX escape", next));
        }
        let Some(mut c) = hex4(b, next + 1) else {
            return Err(err("Invalid \\uXXXX escape", next));
        };
        if (0xd800..0xdc00).contains(&c) && end + 6 < len && b[end] == b'\\' && b[end + 1] == b'u' {
            let Some(c2) = hex4(b, end + 2) else {
                return Err(err("Invalid \\uXXXX escape", end + 1));
            };
            if (0xdc00..0xe000).contains(&c2) {
                c = 0x1_0000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
                end += 6;
            }
        }
        push_wtf8(c, &mut out);
    }
}

/// Generalized UTF-8 for any code point up to U+10FFFF (surrogates included).
fn push_wtf8(c: u32, out: &mut Vec<u8>) {
    // Each `as u8` below keeps the low bits only, by construction in range.
    if c < 0x80 {
        out.push(c as u8);
    } else if c < 0x800 {
        out.extend_from_slice(&[0xc0 | (c >> 6) as u8, 0x80 | (c & 0x3f) as u8]);
    } else if c < 0x1_0000 {
        out.extend_from_slice(&[
            0xe0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            0xf0 | (c >> 18) as u8,
            0x80 | ((c >> 12) & 0x3f) as u8,
            0x80 | ((c >> 6) & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ]);
    }
}

/// Decodes generalized UTF-8 written by [`push_wtf8`] (or taken from valid UTF-8 input).
fn next_code_point(s: &[u8], i: usize) -> (u32, usize) {
    let b0 = u32::from(s[i]);
    let cont = |k: usize| s.get(i + k).map_or(0, |&b| u32::from(b) & 0x3f);
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xe0 {
        (((b0 & 0x1f) << 6) | cont(1), 2)
    } else if b0 < 0xf0 {
        (((b0 & 0x0f) << 12) | (cont(1) << 6) | cont(2), 3)
    } else {
        (((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), 4)
    }
}

/// Appends `json.dumps(s)` (ensure_ascii) for a decoded string.
pub(crate) fn write_str(s: &[u8], out: &mut String) {
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
            i += 1;
        } else if b < 0x80 {
            push_ascii_escape(b, out);
            i += 1;
        } else {
            let (cp, n) = next_code_point(s, i);
            push_u_escapes(cp, out);
            i += n;
        }
    }
    out.push('"');
}

/// Appends `json.dumps(v, sort_keys=True)`.
pub(crate) fn write(v: &PyValue, out: &mut String) {
    match v {
        PyValue::Null => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(digits) => out.push_str(digits),
        PyValue::Float(f) => write_float(*f, out),
        PyValue::Str(s) => write_str(s, out),
        PyValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        PyValue::Object(members) => write_object(members, None, out),
    }
}

/// Appends a (sorted) object, leaving out the member named `skip`.
pub(crate) fn write_object(members: &[(Vec<u8>, PyValue)], skip: Option<&str>, out: &mut String) {
    out.push('{');
    let mut first = true;
    for (key, item) in members {
        if skip.is_some_and(|s| s.as_bytes() == key.as_slice()) {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        write_str(key, out);
        out.push_str(": ");
        write(item, out);
    }
    out.push('}');
}

/// Python's `str` of a decoded string, for messages (lone surrogates become U+FFFD).
pub(crate) fn lossy(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        let got = match loads(input) {
            Ok(v) => {
                let mut s = String::new();
                write(&v, &mut s);
                s
            }
            Err(e) => format!("error: {}", e.python_message(input)),
        };
        assert_eq!(got, expected, "json.loads({input:?})");
    }

    // Expected values: CPython 3.11, `json.dumps(json.loads(s), sort_keys=True)` or the
    // `JSONDecodeError` text.
    #[test]
    fn reads_values_like_python() {
        check(r#" {"b": 1, "a": [true, false, null]} "#, r#"{"a": [true, false, null], "b": 1}"#);
        check(
            "[1E5, -0, 1e400, -1e400, 1e-400, NaN, -Infinity, 1.50, 0.1e1]",
            "[100000.0, 0, Infinity, -Infinity, 0.0, NaN, -Infinity, 1.5, 1.0]",
        );
        check("123456789012345678901234567890", "123456789012345678901234567890");
        check("-123456789012345678901234567890", "-123456789012345678901234567890");
        check(r#"{"a": 1, "a": 2, "b": 3, "a": 4}"#, r#"{"a": 4, "b": 3}"#);
        check(
            r#""\ud83d\ude00 \ud83d \ude00x \ud800\ud800\udc00 \u00E9\/é""#,
            r#""\ud83d\ude00 \ud83d \ude00x \ud800\ud800\udc00 \u00e9/\u00e9""#,
        );
        check("\"\u{7f}\u{10ffff}\"", r#""\u007f\udbff\udfff""#);
        check(
            r#"{"\ud800": 1, "\ue000": 2, "😀": 3, "\uffff": 4}"#,
            r#"{"\ud800": 1, "\ue000": 2, "\uffff": 4, "\ud83d\ude00": 3}"#,
        );
    }

    #[test]
    fn reports_errors_like_python() {
        check("", "error: Expecting value: line 1 column 1 (char 0)");
        check(
            "{",
            "error: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        );
        check(r#"{"a""#, "error: Expecting ':' delimiter: line 1 column 5 (char 4)");
        check(r#"{"a":"#, "error: Expecting value: line 1 column 6 (char 5)");
        check(r#"{"a": 1"#, "error: Expecting ',' delimiter: line 1 column 8 (char 7)");
        check(
            r#"{"a": 1, }"#,
            "error: Expecting property name enclosed in double quotes: line 1 column 10 (char 9)",
        );
        check(r#"{"a": 1}}"#, "error: Extra data: line 1 column 9 (char 8)");
        check("[1,]", "error: Expecting value: line 1 column 4 (char 3)");
        check("[", "error: Expecting value: line 1 column 2 (char 1)");
        check(r#""abc"#, "error: Unterminated string starting at: line 1 column 1 (char 0)");
        check("\"a\u{1}b\"", "error: Invalid control character at: line 1 column 3 (char 2)");
        check(r#""a\qb""#, "error: Invalid \\escape: line 1 column 3 (char 2)");
        check(r#""\u12""#, "error: Invalid \\uXXXX escape: line 1 column 3 (char 2)");
        check(r#""\u12g4""#, "error: Invalid \\uXXXX escape: line 1 column 3 (char 2)");
        check(r#""\ud800\u12""#, "error: Invalid \\uXXXX escape: line 1 column 9 (char 8)");
        check("01", "error: Extra data: line 1 column 2 (char 1)");
        check("1.", "error: Extra data: line 1 column 2 (char 1)");
        check("-", "error: Expecting value: line 1 column 1 (char 0)");
        check(".5", "error: Expecting value: line 1 column 1 (char 0)");
        check("nul", "error: Expecting value: line 1 column 1 (char 0)");
        check(r#"{"é": "\x"}"#, "error: Invalid \\escape: line 1 column 8 (char 7)");
        check(
            "\u{feff}{}",
            "error: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
        );
        check(r#"{"a": -}"#, "error: Expecting value: line 1 column 7 (char 6)");
        check(r#"{"é": 1, "a" 2}"#, "error: Expecting ':' delimiter: line 1 column 14 (char 13)");
        check(r#"{"a": "b\"}"#, "error: Unterminated string starting at: line 1 column 7 (char 6)");
        check(r#"{"a": 1e}"#, "error: Expecting ',' delimiter: line 1 column 8 (char 7)");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(loads(&deep).is_err());
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(loads(&ok).is_ok());
    }
}
