//! YAML reading for every agent-safe file: the only place in the workspace that calls `serde_yaml`.
//!
//! `serde_yaml` is deprecated upstream; keeping it behind this module means a maintained fork
//! can be swapped in here alone. Everything that reads YAML goes through [`from_str`],
//! [`from_slice`], [`read`] or a [`Document`], and gets a [`YamlError`] that names the file and,
//! where known, the line: ``actions/scale.yaml:9: unknown field `min_value` on parameter
//! `replicas`; did you mean `constraints.min_value`?``
//!
//! Guarantees, for any input bytes: no panic, no unbounded memory.
//! - Files larger than [`MAX_FILE_BYTES`] are refused before parsing.
//! - Non-UTF-8 input is an error naming the line of the first bad byte.
//! - Nesting deeper than `serde_yaml`'s recursion limit (128) is an error; more than 128
//!   unclosed `[`/`{` are refused before libyaml scans them (its scanner is quadratic in the
//!   flow depth: 100 000 nested `[` took 21 s).
//! - Alias expansion is bounded: a document may expand to at most about one node per input
//!   byte (plus a small allowance), so a "billion laughs" alias bomb is an error, not an OOM.
//! - Duplicate keys in a mapping are an error (PyYAML silently keeps the last one).
//! - The top level must be a mapping (every agent-safe file is one) or empty; an empty file
//!   deserializes only into a type that accepts no content (an `Option`, or a struct whose
//!   fields all have defaults), else it is the error "the file is empty".

pub mod lax;

mod document;
mod message;
mod path;
mod tracked;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use document::Document;
pub use path::PathSegment;

/// The largest YAML file accepted, in bytes (8 MiB). Larger files are an error.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A YAML file could not be read, parsed or deserialized.
///
/// Displays as `<path>:<line>: <message>`, or `<path>: <message>` when no line is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    path: PathBuf,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
    not_found: bool,
}

impl YamlError {
    /// An error at `path` (and `line`, 1-based, if known). Other crates use this for
    /// semantic errors found after deserializing, so that all messages look alike.
    pub fn new(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self { path: path.into(), line, column: None, message: message.into(), not_found: false }
    }

    /// An error at the position of the node at `at` in `doc` (file and line when found).
    pub fn at(doc: &Document<'_>, at: &[PathSegment], message: impl Into<String>) -> Self {
        let (line, column) = doc.locate(at).map_or((None, None), |(l, c)| (Some(l), Some(c)));
        Self {
            path: doc.path().to_owned(),
            line,
            column,
            message: message.into(),
            not_found: false,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The 1-based column, when known.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The message without the file and line.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the file does not exist (as opposed to existing and being unreadable or invalid).
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for YamlError {}

/// Document-specific wording for deserialization errors (see [`from_str_with`]).
///
/// Both methods get the location inside the document as a list of segments, e.g.
/// `parameters[0].constraints` is `[Key("parameters"), Index(0), Key("constraints")]`.
pub trait Hints {
    /// A phrase, including its preposition, naming the mapping at `at`, e.g.
    /// ``on parameter `replicas` `` or ``in rule `deny-prod` ``. `None` gives the generic
    /// ``in `parameters[0]` `` (or `at the top level`).
    fn name_node(&self, doc: &Document<'_>, at: &[PathSegment]) -> Option<String> {
        let _ = (doc, at);
        None
    }

    /// Where an unknown `field` found in the mapping at `at` probably belongs, as a path
    /// relative to that mapping (e.g. `constraints.min_value`). `None` falls back to the
    /// closest expected field name by edit distance.
    fn relocate(&self, at: &[PathSegment], field: &str) -> Option<String> {
        let _ = (at, field);
        None
    }
}

/// No document-specific hints: generic wording and edit-distance suggestions only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHints;

impl Hints for NoHints {}

/// Deserializes a YAML document (whose top level must be a mapping, or empty).
pub fn from_str<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, YamlError> {
    from_str_with(path, text, &NoHints)
}

/// Like [`from_str`], with document-specific wording for errors.
pub fn from_str_with<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    hints: &dyn Hints,
) -> Result<T, YamlError> {
    Document::parse(path, text)?.deserialize(hints)
}

/// Deserializes raw file bytes: checks the size limit and UTF-8 first.
pub fn from_slice<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, YamlError> {
    from_str(path, decode(path, bytes)?)
}

/// Reads and deserializes a file; also returns the SHA-256 of its raw bytes.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<(T, [u8; 32]), YamlError> {
    let bytes = read_bytes(path)?;
    let value = from_slice(path, &bytes)?;
    Ok((value, sha256(&bytes)))
}

/// Reads a file's raw bytes, refusing files larger than [`MAX_FILE_BYTES`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, YamlError> {
    let io_error = |e: std::io::Error| {
        let mut err = YamlError::new(path, None, format!("cannot read file: {e}"));
        err.not_found = e.kind() == std::io::ErrorKind::NotFound;
        err
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit so that a file that grows while we read is still caught.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io_error)?;
    check_size(path, bytes.len())?;
    Ok(bytes)
}

/// Checks the size limit and decodes UTF-8 (a leading byte-order mark is allowed).
pub fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, YamlError> {
    check_size(path, bytes.len())?;
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + good.iter().rev().take_while(|&&b| b != b'\n').count();
        YamlError {
            path: path.to_owned(),
            line: Some(line),
            column: Some(column),
            message: format!(
                "the file is not valid UTF-8 (invalid byte 0x{:02x} at offset {})",
                bytes.get(e.valid_up_to()).copied().unwrap_or(0),
                e.valid_up_to()
            ),
            not_found: false,
        }
    })
}

/// SHA-256 of raw bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn check_size(path: &Path, len: usize) -> Result<(), YamlError> {
    if u64::try_from(len).map_or(true, |len| len > MAX_FILE_BYTES) {
        return Err(YamlError::new(
            path,
            None,
            format!("the file is larger than the limit of {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
