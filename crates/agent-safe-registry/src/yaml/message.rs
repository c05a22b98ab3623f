//! Turns `serde_yaml` errors into our messages: file and line up front, the location inside
//! the document named in words, and a "did you mean" for unknown fields and variants.

use std::fmt::Write as _;
use std::path::Path;

use super::path::{DisplayPath, PathSegment};
use super::{Hints, YamlError};
use crate::suggest::did_you_mean;

/// The error the tree builder raises when a document expands past its node budget.
pub(crate) const TOO_MANY_NODES: &str =
    "the document expands to too many nodes (an alias bomb?); refusing to expand it";

/// Messages that `serde_yaml` or serde produce after a `<path>: ` prefix.
const KNOWN_PREFIXES: &[&str] = &[
    "unknown field",
    "missing field",
    "duplicate field",
    "duplicate key",
    "invalid type",
    "invalid value",
    "invalid length",
    "unknown variant",
    TOO_MANY_NODES,
];

/// The phrase naming the mapping at a location (``on parameter `x` ``), from the document
/// being deserialized and its [`Hints`]; `None` where there is none.
pub(crate) type NameNode<'a> = dyn Fn(&[PathSegment]) -> Option<String> + 'a;

/// `err` as our message about file `path` with content `text`.
pub(crate) fn convert(
    path: &Path,
    text: &str,
    err: &serde_yaml::Error,
    name_node: &NameNode<'_>,
    hints: &dyn Hints,
) -> YamlError {
    let mut position = err.location().map(|l| (l.line(), l.column()));
    let mut full = err.to_string();
    if let Some((line, column)) = position {
        let mark = format!(" at line {line} column {column}");
        if let Some(i) = full.find(&mark) {
            full.replace_range(i..i + mark.len(), "");
        }
    }
    if let Some((range, offset)) = find_offset(&full) {
        full.replace_range(range, "");
        position = Some(line_column(text, offset));
    }
    let message = match full.as_str() {
        "deserializing from YAML containing more than one document is not supported" => {
            "the file contains more than one YAML document; expected exactly one".to_owned()
        }
        "recursion limit exceeded" => {
            "the document is nested too deeply (the limit is 128 levels)".to_owned()
        }
        "repetition limit exceeded" => {
            "too many alias expansions (an alias bomb?); refusing to expand them".to_owned()
        }
        "EOF while parsing a value" => "unexpected end of the file".to_owned(),
        "unknown anchor" => "an alias (`*name`) refers to an unknown anchor".to_owned(),
        _ => {
            let (at, msg) = split_path(&full);
            rewrite(&at, msg, name_node, hints)
        }
    };
    let mut error = YamlError::new(path, position.map(|(l, _)| l), message);
    error.column = position.map(|(_, c)| c);
    error
}

/// Finds libyaml's ` at position N` (used when it has no line) and the offset N.
fn find_offset(message: &str) -> Option<(std::ops::Range<usize>, usize)> {
    const NEEDLE: &str = " at position ";
    let start = message.find(NEEDLE)?;
    let digits_start = start + NEEDLE.len();
    let digits_len = message[digits_start..].bytes().take_while(u8::is_ascii_digit).count();
    let offset = message[digits_start..digits_start + digits_len].parse().ok()?;
    Some((start..digits_start + digits_len, offset))
}

/// 1-based line and column of a byte offset in `text` (clamped to the text).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// Splits `serde_yaml`'s `parameters[0].constraints: message` into path and message.
fn split_path(full: &str) -> (Vec<PathSegment>, &str) {
    if KNOWN_PREFIXES.iter().any(|p| full.starts_with(p)) {
        return (Vec::new(), full);
    }
    let mut search = 0;
    while let Some(i) = full[search..].find(": ").map(|i| i + search) {
        let rest = &full[i + 2..];
        if KNOWN_PREFIXES.iter().any(|p| rest.starts_with(p)) {
            return (parse_path(&full[..i]), rest);
        }
        search = i + 2;
    }
    (Vec::new(), full)
}

/// Parses `serde_yaml`'s path display (`a.b[0].c`, `.` for the root).
fn parse_path(text: &str) -> Vec<PathSegment> {
    let mut out = Vec::new();
    if text == "." {
        return out;
    }
    for part in text.split('.') {
        let (name, mut indexes) = part.split_once('[').map_or((part, ""), |(n, i)| (n, i));
        if !name.is_empty() {
            out.push(PathSegment::Key(name.to_owned()));
        }
        while let Some((index, rest)) = indexes.split_once(']') {
            match index.parse() {
                Ok(index) => out.push(PathSegment::Index(index)),
                Err(_) => out.push(PathSegment::Key(index.to_owned())),
            }
            indexes = rest.strip_prefix('[').unwrap_or(rest);
        }
    }
    out
}

/// Splits ``x`, expected one of `a`, `b`` into `x` and `[a, b]`.
fn split_expected(rest: &str) -> Option<(&str, Vec<&str>)> {
    let end = rest.rfind("`, expected ").or_else(|| rest.rfind("`, there are no "))?;
    let expected = rest[end + 1..].split('`').skip(1).step_by(2).collect();
    Some((&rest[..end], expected))
}

fn backticked(names: &[&str]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "`{name}`");
    }
    out
}

fn rewrite(at: &[PathSegment], msg: &str, name_node: &NameNode<'_>, hints: &dyn Hints) -> String {
    if let Some((field, expected)) = msg.strip_prefix("unknown field `").and_then(split_expected) {
        let phrase = node_phrase(at, name_node).unwrap_or_else(|| generic_phrase(at));
        let suggestion = hints
            .relocate(at, field)
            .or_else(|| did_you_mean(field, expected.iter().copied()).map(str::to_owned));
        return match suggestion {
            Some(s) => format!("unknown field `{field}` {phrase}; did you mean `{s}`?"),
            None if expected.is_empty() => {
                format!("unknown field `{field}` {phrase}; no fields are allowed here")
            }
            None => format!(
                "unknown field `{field}` {phrase}; expected one of {}",
                backticked(&expected)
            ),
        };
    }
    if msg.starts_with("missing field") || msg.starts_with("duplicate field") {
        return match node_phrase(at, name_node) {
            Some(phrase) => format!("{msg} {phrase}"),
            None if at.is_empty() => msg.to_owned(),
            None => format!("{msg} {}", generic_phrase(at)),
        };
    }
    if msg.starts_with("duplicate key") {
        let phrase = node_phrase(at, name_node).unwrap_or_else(|| generic_phrase(at));
        return format!("{msg} {phrase}");
    }
    if msg.starts_with(TOO_MANY_NODES) {
        // Where the budget ran out says nothing useful.
        return msg.to_owned();
    }
    let prefix = value_prefix(at, name_node);
    if let Some((variant, expected)) =
        msg.strip_prefix("unknown variant `").and_then(split_expected)
        && let Some(s) = did_you_mean(variant, expected.iter().copied())
    {
        return format!("{prefix}unknown variant `{variant}`; did you mean `{s}`?");
    }
    format!("{prefix}{msg}")
}

/// "at the top level" / "in `parameters[0]`".
fn generic_phrase(at: &[PathSegment]) -> String {
    if at.is_empty() { "at the top level".to_owned() } else { format!("in `{}`", DisplayPath(at)) }
}

/// The hinted phrase for the mapping at `at`, or for its nearest named ancestor
/// (``in `constraints` on parameter `x` ``).
fn node_phrase(at: &[PathSegment], name_node: &NameNode<'_>) -> Option<String> {
    (0..=at.len()).rev().find_map(|k| {
        let phrase = name_node(&at[..k])?;
        Some(if k == at.len() {
            phrase
        } else {
            format!("in `{}` {phrase}", DisplayPath(&at[k..]))
        })
    })
}

/// ``"`required` on parameter `x`: "`` for an error in a value.
fn value_prefix(at: &[PathSegment], name_node: &NameNode<'_>) -> String {
    if at.is_empty() {
        return String::new();
    }
    for k in (0..at.len()).rev() {
        if !matches!(at[k], PathSegment::Key(_)) {
            continue;
        }
        if let Some(phrase) = name_node(&at[..k]) {
            return format!("`{}` {phrase}: ", DisplayPath(&at[k..]));
        }
    }
    format!("`{}`: ", DisplayPath(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_serde_yaml_paths() {
        use PathSegment::{Index, Key};
        assert_eq!(parse_path("."), vec![]);
        assert_eq!(parse_path("name"), vec![Key("name".into())]);
        assert_eq!(
            parse_path("parameters[0].constraints"),
            vec![Key("parameters".into()), Index(0), Key("constraints".into())]
        );
        assert_eq!(parse_path("a[1][2]"), vec![Key("a".into()), Index(1), Index(2)]);
        assert_eq!(parse_path("[3]"), vec![Index(3)]);
        assert_eq!(parse_path("a[x]"), vec![Key("a".into()), Key("x".into())]);
    }

    #[test]
    fn splits_known_messages_only() {
        let (at, msg) = split_path("parameters[0]: unknown field `x`, expected `y`");
        assert_eq!(DisplayPath(&at).to_string(), "parameters[0]");
        assert_eq!(msg, "unknown field `x`, expected `y`");
        let (at, msg) = split_path("did not find expected key: while parsing");
        assert!(at.is_empty());
        assert_eq!(msg, "did not find expected key: while parsing");
        assert_eq!(split_expected("a`b`, there are no fields"), Some(("a`b", vec![])));
        assert_eq!(split_expected("x`, expected one of `a`, `b`"), Some(("x", vec!["a", "b"])));
        assert_eq!(split_expected("x`, expected `a` or `b`"), Some(("x", vec!["a", "b"])));
    }

    #[test]
    fn offsets_become_lines() {
        assert_eq!(line_column("ab\ncd\n", 4), (2, 2));
        assert_eq!(line_column("ab", 99), (1, 3));
        assert_eq!(find_offset("bad at position 12, x"), Some((3..18, 12)));
    }
}
