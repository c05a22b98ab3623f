//! A parsed YAML document: syntax-checked, bounded, with a lookup tree and node locations.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};
use serde_json::{Map, Value};

use super::path::PathSegment;
use super::{Hints, YamlError, message};

/// Nodes a document may expand to beyond one per input byte (aliases included).
const NODE_ALLOWANCE: usize = 10_000;

/// The most `[` / `{` that may be open at once. `serde_yaml` stops at 128 levels anyway, but
/// only after libyaml has scanned the whole text, and libyaml's scanner takes time quadratic
/// in the flow depth (100 000 nested `[` take about 20 s). Brackets inside quoted strings and
/// comments are counted too, which can only make this check stricter than the real nesting.
const MAX_FLOW_DEPTH: usize = 128;

/// Marks the error the location probe raises on purpose.
const PROBE: &str = "\u{0}probe";

/// A syntactically valid YAML document whose top level is a mapping, or empty.
///
/// An empty document (no content, only comments, or `~`) deserializes only into types that
/// accept it (an `Option`, a struct whose fields all have defaults); for any other type it is
/// the error "the file is empty; expected a YAML mapping". Keeps the source text (to locate nodes and to deserialize with precise errors) and a
/// JSON copy of the tree (to look values up for messages).
#[derive(Debug, Clone)]
pub struct Document<'a> {
    path: &'a Path,
    text: &'a str,
    tree: Value,
}

impl<'a> Document<'a> {
    /// Parses `text` (from file `path`): YAML syntax, single document, top-level mapping (or
    /// nothing), no duplicate keys, nesting and alias-expansion limits.
    pub fn parse(path: &'a Path, text: &'a str) -> Result<Self, YamlError> {
        check_flow_depth(path, text)?;
        let budget = Cell::new(text.len().saturating_add(NODE_ALLOWANCE));
        let tree = TreeSeed { budget: &budget }
            .deserialize(serde_yaml::Deserializer::from_str(text))
            .map_err(|e| message::convert(path, text, &e, &|_| None, &super::NoHints))?;
        let found = match &tree {
            Value::Object(_) | Value::Null => return Ok(Self { path, text, tree }),
            Value::Array(_) => "a sequence",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
        };
        Err(YamlError::new(
            path,
            Some(1),
            format!("expected a YAML mapping at the top level, found {found}"),
        ))
    }

    /// The file the document came from.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The source text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The document as JSON (keys stringified, tags dropped, non-finite floats as null).
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// The value at `at`, if present.
    pub fn get(&self, at: &[PathSegment]) -> Option<&Value> {
        at.iter().try_fold(&self.tree, |node, segment| match (node, segment) {
            (Value::Object(map), PathSegment::Key(key)) => map.get(key),
            (Value::Array(items), PathSegment::Index(index)) => items.get(*index),
            _ => None,
        })
    }

    /// The string at `at`, if present and a string.
    pub fn get_str(&self, at: &[PathSegment]) -> Option<&str> {
        self.get(at).and_then(Value::as_str)
    }

    /// The 1-based (line, column) where the node at `at` starts (for a mapping: its first key).
    pub fn locate(&self, at: &[PathSegment]) -> Option<(usize, usize)> {
        let probe = Probe { at };
        match probe.deserialize(serde_yaml::Deserializer::from_str(self.text)) {
            Err(e) if e.to_string().contains(PROBE) => e.location().map(|l| (l.line(), l.column())),
            _ => None,
        }
    }

    /// The 1-based line where the node at `at` starts.
    pub fn line_of(&self, at: &[PathSegment]) -> Option<usize> {
        self.locate(at).map(|(line, _)| line)
    }

    /// Whether the document has no content (empty, only comments, or `~`).
    pub fn is_empty(&self) -> bool {
        self.tree.is_null()
    }

    /// Deserializes the document into `T`, with `hints` for the wording of errors.
    pub fn deserialize<T: DeserializeOwned>(&self, hints: &dyn Hints) -> Result<T, YamlError> {
        // An empty document (even `~`) is read as no content at all.
        let text = if self.is_empty() { "" } else { self.text };
        let de = serde_yaml::Deserializer::from_str(text);
        T::deserialize(super::tracked::Tracked::new(de, &self.tree)).map_err(|e| {
            if self.is_empty() {
                YamlError::new(self.path, None, "the file is empty; expected a YAML mapping")
            } else {
                message::convert(self.path, self.text, &e, &|at| hints.name_node(self, at), hints)
            }
        })
    }
}

/// Refuses text with more than [`MAX_FLOW_DEPTH`] unclosed `[` / `{`, before libyaml sees it.
fn check_flow_depth(path: &Path, text: &str) -> Result<(), YamlError> {
    let mut depth = 0usize;
    let mut line = 1;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(YamlError::new(
                        path,
                        Some(line),
                        format!(
                            "the document is nested too deeply (more than {MAX_FLOW_DEPTH} \
                             unclosed `[` or `{{`)"
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tree: a JSON copy of the document, built under a node budget.

struct TreeSeed<'b> {
    budget: &'b Cell<usize>,
}

impl TreeSeed<'_> {
    fn charge<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(message::TOO_MANY_NODES)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for TreeSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TreeSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(TreeSeed { budget: self.budget })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed { budget: self.budget, seen: &out })? {
            let value = map.next_value_seed(TreeSeed { budget: self.budget })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A tagged value (`!tag value`): keep the value, drop the tag.
        let (_tag, variant): (IgnoredAny, _) = data.variant()?;
        variant.newtype_variant_seed(self)
    }
}

/// Reads a mapping key as text and rejects duplicates. The check runs inside the key's own
/// `deserialize_any`, so that `serde_yaml` reports the duplicate key's position.
struct KeySeed<'b, 'm> {
    budget: &'b Cell<usize>,
    seen: &'m Map<String, Value>,
}

impl KeySeed<'_, '_> {
    fn check<E: de::Error>(&self, key: Value) -> Result<String, E> {
        let text = match key {
            Value::String(s) => s,
            Value::Null => "null".to_owned(),
            other => other.to_string(),
        };
        if self.seen.contains_key(&text) {
            return Err(E::custom(format_args!("duplicate key `{text}`")));
        }
        Ok(text)
    }

    fn tree(&self) -> TreeSeed<'_> {
        TreeSeed { budget: self.budget }
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        let key = self.tree().visit_bool(v)?;
        self.check(key)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        let key = self.tree().visit_i64(v)?;
        self.check(key)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        let key = self.tree().visit_u64(v)?;
        self.check(key)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        let key = self.tree().visit_f64(v)?;
        self.check(key)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        let key = self.tree().visit_str(v)?;
        self.check(key)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        let key = self.tree().visit_string(v)?;
        self.check(key)
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        let key = self.tree().visit_unit()?;
        self.check(key)
    }

    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
        let key = self.tree().visit_seq(seq)?;
        self.check(key)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
        let key = self.tree().visit_map(map)?;
        self.check(key)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<String, A::Error> {
        let key = self.tree().visit_enum(data)?;
        self.check(key)
    }
}

// ---------------------------------------------------------------------------------------------
// The location probe: walks to a node and fails there, so that serde_yaml reports its mark.

struct Probe<'p> {
    at: &'p [PathSegment],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.at.is_empty() {
            deserializer.deserialize_any(Found)
        } else {
            deserializer.deserialize_any(Walk { at: self.at })
        }
    }
}

/// At the target node: fail with [`PROBE`], whatever the node is.
struct Found;

impl<'de> Visitor<'de> for Found {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(PROBE))
    }

    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::custom(PROBE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(PROBE))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(PROBE))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(PROBE))
    }
}

/// On the way to the target (`at` is not empty): descend into the matching key or index,
/// skip everything else.
struct Walk<'p> {
    at: &'p [PathSegment],
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (target, rest) = match self.at.split_first() {
            Some((PathSegment::Index(index), rest)) => (Some(*index), rest),
            _ => (None, &[][..]),
        };
        let mut index = 0;
        loop {
            let more = if Some(index) == target {
                seq.next_element_seed(Probe { at: rest })?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (target, rest) = match self.at.split_first() {
            Some((PathSegment::Key(key), rest)) => (Some(key.as_str()), rest),
            _ => (None, &[][..]),
        };
        let seen = Map::new();
        let budget = Cell::new(usize::MAX);
        while let Some(key) = map.next_key_seed(KeySeed { budget: &budget, seen: &seen })? {
            if Some(key.as_str()) == target {
                map.next_value_seed(Probe { at: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (_tag, variant): (IgnoredAny, _) = data.variant()?;
        variant.newtype_variant_seed(Probe { at: self.at })
    }
}
