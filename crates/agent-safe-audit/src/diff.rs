//! The shallow before/after state diff recorded in state-capture events (SPEC §11).

use serde_json::{Map, Number, Value};

/// Python's `compute_state_diff(before, after)`:
/// `{"added": {k: after[k]}, "removed": {k: before[k]}, "changed": {k: {"old": b, "new": a}},
/// "unchanged": [k, ...]}`, keys sorted in each part (and the parts in that order).
///
/// Only top-level keys are compared; values compare with Python's `==`, so `1`, `1.0` and
/// `true` are equal, and nested objects and arrays compare deeply.
///
/// ```
/// use serde_json::json;
/// let before = json!({"replicas": 2, "image": "v1", "gone": true});
/// let after = json!({"replicas": 2.0, "image": "v2", "new": null});
/// let diff = agent_safe_audit::diff::compute(
///     before.as_object().unwrap(),
///     after.as_object().unwrap(),
/// );
/// assert_eq!(diff, json!({
///     "added": {"new": null},
///     "removed": {"gone": true},
///     "changed": {"image": {"old": "v1", "new": "v2"}},
///     "unchanged": ["replicas"],
/// }));
/// ```
pub fn compute(before: &Map<String, Value>, after: &Map<String, Value>) -> Value {
    let mut added: Vec<(&String, &Value)> =
        after.iter().filter(|(k, _)| !before.contains_key(*k)).collect();
    let mut removed: Vec<(&String, &Value)> =
        before.iter().filter(|(k, _)| !after.contains_key(*k)).collect();
    let mut common: Vec<(&String, &Value, &Value)> =
        before.iter().filter_map(|(k, b)| after.get(k).map(|a| (k, b, a))).collect();
    added.sort_by(|x, y| x.0.cmp(y.0));
    removed.sort_by(|x, y| x.0.cmp(y.0));
    common.sort_by(|x, y| x.0.cmp(y.0));

    let mut changed = Map::new();
    let mut unchanged = Vec::new();
    for (k, b, a) in common {
        if py_eq(b, a) {
            unchanged.push(Value::String(k.clone()));
        } else {
            let mut pair = Map::new();
            pair.insert("old".to_owned(), b.clone());
            pair.insert("new".to_owned(), a.clone());
            changed.insert(k.clone(), Value::Object(pair));
        }
    }
    let collect = |items: Vec<(&String, &Value)>| -> Value {
        Value::Object(items.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    let mut out = Map::new();
    out.insert("added".to_owned(), collect(added));
    out.insert("removed".to_owned(), collect(removed));
    out.insert("changed".to_owned(), Value::Object(changed));
    out.insert("unchanged".to_owned(), Value::Array(unchanged));
    Value::Object(out)
}

/// Python's `==` on values as `json.loads` would produce them.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        // bool is a subclass of int in Python: True == 1 == 1.0.
        (Value::Bool(_) | Value::Number(_), Value::Bool(_) | Value::Number(_)) => {
            match (numeric(a), numeric(b)) {
                (Some(x), Some(y)) => num_eq(&x, &y),
                _ => false,
            }
        }
        _ => false,
    }
}

enum Num {
    Int(i128),
    Float(f64),
}

fn numeric(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::Int(i128::from(*b))),
        Value::Number(n) => number(n),
        _ => None,
    }
}

fn number(n: &Number) -> Option<Num> {
    if let Some(i) = n.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        n.as_f64().map(Num::Float)
    }
}

/// Exact comparison, as Python compares an int with a float (no rounding of the int).
fn num_eq(a: &Num, b: &Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Float(x), Num::Float(y)) => x == y,
        (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => {
            // Integral floats of magnitude below 2^127 convert to i128 exactly.
            f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 && (*f as i128) == *i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(before: Value, after: Value, expected: Value) {
        let (Value::Object(b), Value::Object(a)) = (before, after) else { panic!("objects") };
        let got = compute(&b, &a);
        assert_eq!(got, expected);
        // Part order and key order match Python's dict order (checked on the text).
        assert_eq!(got.to_string(), expected.to_string());
    }

    // Expected values: Python `compute_state_diff` (agent_safe.audit.differ).
    #[test]
    fn matches_python() {
        check(
            json!({}),
            json!({}),
            json!({"added": {}, "removed": {}, "changed": {}, "unchanged": []}),
        );
        check(
            json!({"replicas": 2, "nested": {"k": "v"}}),
            json!({"replicas": 3, "added": "é"}),
            json!({"added": {"added": "é"}, "removed": {"nested": {"k": "v"}},
                   "changed": {"replicas": {"old": 2, "new": 3}}, "unchanged": []}),
        );
        check(
            json!({"b": 1, "a": true, "c": 0, "d": [1, {"x": 1.0}], "e": null, "f": "1"}),
            json!({"f": 1, "e": null, "d": [1.0, {"x": true}], "c": false, "a": 1.0, "b": 1}),
            json!({"added": {}, "removed": {}, "changed": {"f": {"old": "1", "new": 1}},
                   "unchanged": ["a", "b", "c", "d", "e"]}),
        );
        check(
            json!({"z": 1, "y": 9007199254740993_u64, "x": {"a": 1}}),
            json!({"z": 2, "y": 9007199254740992.0, "x": {"a": 1, "b": 2}}),
            json!({"added": {}, "removed": {},
                   "changed": {"x": {"old": {"a": 1}, "new": {"a": 1, "b": 2}},
                               "y": {"old": 9007199254740993_u64, "new": 9007199254740992.0},
                               "z": {"old": 1, "new": 2}},
                   "unchanged": []}),
        );
    }
}
