//! Locations inside a YAML document: [`PathSegment`] and its display (`parameters[0].x`).

use std::fmt;

/// One step of a location inside a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key (non-string keys are compared by their text).
    Key(String),
    /// A 0-based sequence index.
    Index(usize),
}

impl From<&str> for PathSegment {
    fn from(key: &str) -> Self {
        PathSegment::Key(key.to_owned())
    }
}

impl From<String> for PathSegment {
    fn from(key: String) -> Self {
        PathSegment::Key(key)
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        PathSegment::Index(index)
    }
}

/// Displays a path as `parameters[0].constraints` (empty for the top level).
pub(crate) struct DisplayPath<'a>(pub(crate) &'a [PathSegment]);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if i == 0 => f.write_str(key)?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_and_indexes() {
        let at = [PathSegment::from("parameters"), PathSegment::from(0), "constraints".into()];
        assert_eq!(DisplayPath(&at).to_string(), "parameters[0].constraints");
        assert_eq!(DisplayPath(&[]).to_string(), "");
    }
}
