//! Test tables shared by the schema tests of registry and pdp (feature `test-util`): every
//! path into a JSON document, and the value at one, to mutate generated documents.

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
}
