//! Test tables shared by the schema tests of registry, pdp and the SDK (feature `test-util`):
//! every path into a JSON document, the value at one, and mutations of generated documents.

use serde_json::{Value, json};

/// Every path to a value in `doc` (object keys as strings, array indexes as numbers), parents
/// before children.
pub fn paths(doc: &Value) -> Vec<Vec<Value>> {
    fn walk(doc: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        let children: Vec<(Value, &Value)> = match doc {
            Value::Object(map) => map.iter().map(|(k, v)| (json!(k), v)).collect(),
            Value::Array(list) => list.iter().enumerate().map(|(i, v)| (json!(i), v)).collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            prefix.push(step);
            out.push(prefix.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

/// The value at `path` in `doc`, if there is one.
pub fn slot<'a>(doc: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let mut at = doc;
    for step in path {
        at = match step {
            Value::String(k) => at.get_mut(k.as_str())?,
            Value::Number(i) => at.get_mut(usize::try_from(i.as_u64()?).ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// A mutation of a document; each picks its path as `index % paths(doc).len()`.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Replace the value at the path.
    Set(usize, Value),
    /// Remove the key at the path (nothing if the path ends in an index).
    Drop(usize),
    /// Add the key `unknown_key` to the mapping holding the path.
    Unknown(usize),
}

/// One to three edits, mostly [`Edit::Set`] to one of `values`.
#[cfg(feature = "test-util")]
pub fn edits(
    values: impl proptest::strategy::Strategy<Value = Value> + Clone + 'static,
) -> impl proptest::strategy::Strategy<Value = Vec<Edit>> {
    use proptest::prelude::*;
    let edit = prop_oneof![
        6 => (any::<usize>(), values).prop_map(|(i, v)| Edit::Set(i, v)),
        1 => any::<usize>().prop_map(Edit::Drop),
        1 => any::<usize>().prop_map(Edit::Unknown),
    ];
    prop::collection::vec(edit, 1..4)
}

/// `doc` with `edits` applied in order.
pub fn mutate(mut doc: Value, edits: &[Edit]) -> Value {
    for edit in edits {
        let all = paths(&doc);
        if all.is_empty() {
            break;
        }
        let path = match edit {
            Edit::Set(i, _) | Edit::Drop(i) | Edit::Unknown(i) => &all[*i % all.len()],
        };
        match edit {
            Edit::Set(_, v) => {
                if let Some(at) = slot(&mut doc, path) {
                    *at = v.clone();
                }
            }
            Edit::Drop(_) | Edit::Unknown(_) => {
                let (last, parent) = path.split_last().unwrap_or((&Value::Null, &[]));
                if let (Some(Value::Object(map)), Value::String(k)) = (slot(&mut doc, parent), last)
                {
                    if matches!(edit, Edit::Drop(_)) {
                        map.remove(k);
                    } else {
                        map.insert("unknown_key".to_owned(), json!(1));
                    }
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_slots() {
        let mut doc = json!({"a": [1, {"b": 2}]});
        assert_eq!(
            paths(&doc),
            [
                vec![json!("a")],
                vec![json!("a"), json!(0)],
                vec![json!("a"), json!(1)],
                vec![json!("a"), json!(1), json!("b")]
            ]
        );
        *slot(&mut doc, &[json!("a"), json!(1), json!("b")]).unwrap() = json!(3);
        assert_eq!(doc, json!({"a": [1, {"b": 3}]}));
        assert!(slot(&mut doc, &[json!("x")]).is_none());
    }

    #[test]
    fn edits_set_drop_and_add_keys() {
        let doc = json!({"a": [1, {"b": 2}]});
        // Paths: a, a[0], a[1], a[1].b.
        assert_eq!(mutate(doc.clone(), &[Edit::Set(1, json!("x"))]), json!({"a": ["x", {"b": 2}]}));
        assert_eq!(mutate(doc.clone(), &[Edit::Drop(3)]), json!({"a": [1, {}]}));
        assert_eq!(mutate(doc.clone(), &[Edit::Drop(1)]), doc, "an index is not dropped");
        assert_eq!(
            mutate(doc.clone(), &[Edit::Unknown(4)]),
            json!({"a": [1, {"b": 2}], "unknown_key": 1})
        );
    }
}
