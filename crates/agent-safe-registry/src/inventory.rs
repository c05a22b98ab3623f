//! The target inventory (`inventory.yaml`, SPEC §4) and target ↔ parameter binding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agent_safe_core::{Params, Target};
use serde::Deserialize;
use serde_json::Value;

use crate::yaml::{self, Document, Hints, PathSegment, YamlError};

/// The targets agents may act on, in file order, looked up by id.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    targets: Vec<Target>,
    by_id: HashMap<String, usize>,
}

/// The inventory could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The inventory file does not exist.
    #[error("inventory file not found: `{}`", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read, parsed or validated (names the file and, where known, line).
    #[error(transparent)]
    File(#[from] YamlError),
}

/// The file's shape: only `targets` at the top level.
#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    targets: Vec<Target>,
}

#[cfg(feature = "schema")]
pub(crate) fn schema() -> schemars::Schema {
    crate::yaml::lax::schema::yaml_document(schemars::schema_for!(InventoryFile))
}

impl Inventory {
    /// Loads `inventory.yaml`.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let bytes = yaml::read_bytes(path).map_err(|e| {
            if e.is_not_found() {
                InventoryError::NotFound { path: path.to_owned() }
            } else {
                InventoryError::File(e)
            }
        })?;
        Self::from_source(path, &bytes)
    }

    /// Loads an inventory from in-memory bytes; `path` is used in messages.
    pub fn from_source(path: &Path, bytes: &[u8]) -> Result<Inventory, InventoryError> {
        let text = yaml::decode(path, bytes)?;
        let doc = Document::parse(path, text)?;
        let file: InventoryFile = doc.deserialize(&InventoryHints)?;
        let mut by_id = HashMap::with_capacity(file.targets.len());
        for (index, target) in file.targets.iter().enumerate() {
            let id = target.id.as_str();
            if let Some(first) = by_id.insert(id.to_owned(), index) {
                return Err(YamlError::at(
                    &doc,
                    &["targets".into(), index.into(), "id".into()],
                    format!(
                        "duplicate target id `{id}` at index {index}; already used at index {first}"
                    ),
                )
                .into());
            }
            for (key, value) in &target.params {
                if matches!(value, Value::Null | Value::Array(_) | Value::Object(_)) {
                    return Err(YamlError::at(
                        &doc,
                        &["targets".into(), index.into(), "params".into(), key.as_str().into()],
                        format!(
                            "bound parameter `{key}` of target `{id}` must be a string, number \
                             or boolean, got {}",
                            json_kind(value)
                        ),
                    )
                    .into());
                }
            }
        }
        Ok(Inventory { targets: file.targets, by_id })
    }

    /// An inventory with no targets.
    pub fn empty() -> Inventory {
        Inventory::default()
    }

    /// The target with id `id` (exact match).
    pub fn get(&self, id: &str) -> Option<&Target> {
        self.by_id.get(id).and_then(|&i| self.targets.get(i))
    }

    /// The targets, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter()
    }

    /// The number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are no targets.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

impl<'a> IntoIterator for &'a Inventory {
    type Item = &'a Target;
    type IntoIter = std::slice::Iter<'a, Target>;

    fn into_iter(self) -> Self::IntoIter {
        self.targets.iter()
    }
}

/// A target may bind params (`params: {namespace: prod}` in inventory.yaml, see
/// [`Target::params`]). Returns a deny reason when the request contradicts a bound value, e.g.
/// "parameter `namespace` is bound to `prod` by target `prod/api-server`, but the request has
/// `dev`".
///
/// A bound param that is absent from the request is *not* an error here (the request's params
/// are what the executor uses; absence is handled by required-param validation). Values are
/// compared as JSON values, exactly: `3` is not `3.0` and `"3"` is not `3`. Bound params are
/// checked in key order and the first contradiction is reported.
///
/// ```
/// use agent_safe_core::Target;
/// use agent_safe_registry::check_bound_params;
///
/// let target: Target = serde_json::from_value(serde_json::json!({
///     "id": "prod/api-server", "type": "k8s-deployment", "environment": "prod",
///     "sensitivity": "critical", "params": {"namespace": "prod"}
/// })).unwrap();
/// let params = serde_json::json!({"namespace": "dev"});
/// assert_eq!(
///     check_bound_params(&target, params.as_object().unwrap()).as_deref(),
///     Some("parameter `namespace` is bound to `prod` by target `prod/api-server`, but the request has `dev`")
/// );
/// assert_eq!(check_bound_params(&target, &Default::default()), None);
/// ```
pub fn check_bound_params(target: &Target, params: &Params) -> Option<String> {
    target.params.iter().find_map(|(key, bound)| {
        let requested = params.get(key)?;
        (requested != bound).then(|| {
            format!(
                "parameter `{key}` is bound to `{}` by target `{}`, but the request has `{}`",
                show(bound),
                target.id,
                show(requested)
            )
        })
    })
}

/// Strings bare, everything else as JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Wording for inventory errors: targets are named by id.
struct InventoryHints;

impl Hints for InventoryHints {
    fn name_node(&self, doc: &Document<'_>, at: &[PathSegment]) -> Option<String> {
        use PathSegment::{Index, Key};
        let target = |i: usize| {
            let id = doc.get_str(&["targets".into(), i.into(), "id".into()]);
            match id {
                Some(id) => format!("target `{id}` (index {i})"),
                None => format!("the target at index {i}"),
            }
        };
        match at {
            [Key(t), Index(i)] if t == "targets" => Some(format!("in {}", target(*i))),
            [Key(t), Index(i), Key(m)] if t == "targets" && (m == "labels" || m == "params") => {
                Some(format!("in the {m} of {}", target(*i)))
            }
            _ => None,
        }
    }

    fn relocate(&self, at: &[PathSegment], field: &str) -> Option<String> {
        use PathSegment::{Index, Key};
        match at {
            [Key(t), Index(_)] if t == "targets" => match field {
                "name" => Some("id".to_owned()),
                "kind" => Some("type".to_owned()),
                "env" => Some("environment".to_owned()),
                "tags" => Some("labels".to_owned()),
                "namespace" | "cluster" | "region" | "deployment" | "instance_id" | "bucket" => {
                    Some(format!("params.{field}"))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
