//! The typed pass over a document, refusing a YAML null where a string is expected.
//!
//! `serde_yaml` hands a string field the text of any scalar, so `id: ~`, `id: null` and `id:`
//! became the strings `~`, `null` and `` (pydantic refuses `None` for a `str`). A scalar's
//! text alone cannot tell `~` from `'~'`, but the document's tree can: [`Tracked`] wraps the
//! deserializer, follows the same path through [`Document`](super::Document)'s tree, and
//! refuses a string read where the tree holds a null. Where the two cannot be matched (a key
//! the tree spells differently), it checks nothing, which is the plain `serde_yaml` behaviour.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use serde_json::Value;

/// The texts of a plain YAML null (YAML 1.1 and 1.2 core schema).
const NULL_TEXTS: &[&str] = &["", "~", "null", "Null", "NULL"];

/// Where a key's value is in the tree, set when the key is read.
type Slot<'a, 't> = &'a Cell<Option<&'t Value>>;

/// A deserializer over the node `node` of the tree (`None`: not matched, nothing checked).
pub(super) struct Tracked<'a, 't, D> {
    de: D,
    node: Option<&'t Value>,
    /// Set when this deserializer reads a mapping key: the value's node.
    key_of: Option<(Slot<'a, 't>, &'t Value)>,
}

impl<'t, D> Tracked<'_, 't, D> {
    /// A deserializer over the document whose tree is `tree`.
    pub(super) fn new(de: D, tree: &'t Value) -> Self {
        Self { de, node: Some(tree), key_of: None }
    }
}

fn is_null(node: Option<&Value>) -> bool {
    matches!(node, Some(Value::Null))
}

fn child<'t>(node: Option<&'t Value>, key: &str) -> Option<&'t Value> {
    match node {
        Some(Value::Object(map)) => map.get(key),
        _ => None,
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            let visitor = Wrap { visitor, node: self.node, key_of: self.key_of, strings: false };
            self.de.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de, 'a, 't, D: Deserializer<'de>> Deserializer<'de> for Tracked<'a, 't, D> {
    type Error = D::Error;

    forward! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_bytes(),
        deserialize_byte_buf(), deserialize_option(), deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str), deserialize_seq(),
        deserialize_tuple(len: usize), deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(), deserialize_ignored_any(),
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.de.deserialize_str(Wrap {
            visitor,
            node: self.node,
            key_of: self.key_of,
            strings: true,
        })
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = Wrap { visitor, node: self.node, key_of: self.key_of, strings: true };
        self.de.deserialize_string(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// A visitor that wraps what it is handed (sequences, mappings, enums, options) so the
/// tracking goes on below, records a key's node, and (`strings`) refuses a null read as text.
struct Wrap<'a, 't, V> {
    visitor: V,
    node: Option<&'t Value>,
    key_of: Option<(Slot<'a, 't>, &'t Value)>,
    strings: bool,
}

impl<'t, V> Wrap<'_, 't, V> {
    fn saw_key(&self, key: &str) {
        if let Some((slot, map)) = self.key_of {
            slot.set(child(Some(map), key));
        }
    }
}

macro_rules! scalar {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            if self.key_of.is_some() {
                self.saw_key(&v.to_string());
            }
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, 'a, 't, V: Visitor<'de>> Visitor<'de> for Wrap<'a, 't, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    scalar! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char),
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.check(v)?;
        self.saw_key(v);
        self.visitor.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.check(v)?;
        self.saw_key(v);
        self.visitor.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.check(&v)?;
        self.saw_key(&v);
        self.visitor.visit_string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        self.visitor.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<V::Value, E> {
        self.visitor.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        self.visitor.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, de: D2) -> Result<V::Value, D2::Error> {
        self.visitor.visit_some(Tracked { de, node: self.node, key_of: self.key_of })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, de: D2) -> Result<V::Value, D2::Error> {
        self.visitor.visit_newtype_struct(Tracked { de, node: self.node, key_of: self.key_of })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_seq(Seq { seq, node: self.node, index: 0 })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Map { map, node: self.node, value: Cell::new(None) })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Enum { data, node: self.node })
    }
}

impl<'de, V: Visitor<'de>> Wrap<'_, '_, V> {
    fn check<E: de::Error>(&self, text: &str) -> Result<(), E> {
        if self.strings && is_null(self.node) && NULL_TEXTS.contains(&text) {
            return Err(E::invalid_type(Unexpected::Other("null"), self));
        }
        Ok(())
    }
}

/// A seed whose deserializer is tracked at `node`.
struct Seed<'a, 't, S> {
    seed: S,
    node: Option<&'t Value>,
    key_of: Option<(Slot<'a, 't>, &'t Value)>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, '_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Tracked { de, node: self.node, key_of: self.key_of })
    }
}

struct Seq<'t, A> {
    seq: A,
    node: Option<&'t Value>,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let node = match self.node {
            Some(Value::Array(items)) => items.get(self.index),
            _ => None,
        };
        self.index += 1;
        self.seq.next_element_seed(Seed { seed, node, key_of: None })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct Map<'t, A> {
    map: A,
    node: Option<&'t Value>,
    /// The node of the value of the key read last.
    value: Cell<Option<&'t Value>>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.value.set(None);
        let key_of = self.node.map(|map| (&self.value, map));
        self.map.next_key_seed(Seed { seed, node: None, key_of })
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let node = self.value.take();
        self.map.next_value_seed(Seed { seed, node, key_of: None })
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct Enum<'t, A> {
    data: A,
    node: Option<&'t Value>,
}

impl<'de, 't, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'t, A> {
    type Error = A::Error;
    type Variant = Variant<'t, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        // serde_yaml writes a variant as a tag (`!name value`), which the tree drops: the
        // value is this node.
        let (value, variant) = self.data.variant_seed(Seed { seed, node: None, key_of: None })?;
        Ok((value, Variant { variant, node: self.node }))
    }
}

struct Variant<'t, A> {
    variant: A,
    node: Option<&'t Value>,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.variant.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.variant.newtype_variant_seed(Seed { seed, node: self.node, key_of: None })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = Wrap { visitor, node: self.node, key_of: None, strings: false };
        self.variant.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = Wrap { visitor, node: self.node, key_of: None, strings: false };
        self.variant.struct_variant(fields, visitor)
    }
}
