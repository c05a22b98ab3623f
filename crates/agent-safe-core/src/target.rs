//! Inventory targets: the things agents act on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Environment, Sensitivity, TargetId};

/// One entry of the inventory (`inventory.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Unique id, by convention `env/name`.
    pub id: TargetId,
    /// Free-form type, e.g. `k8s-deployment` or `aws-ec2-instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The environment the target lives in.
    pub environment: Environment,
    /// How sensitive the target is; feeds the risk matrix.
    pub sensitivity: Sensitivity,
    /// Owning team or person.
    #[serde(default)]
    pub owner: String,
    /// Labels matched by policy target selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Parameters bound to this target (an addition over the Python version): a request
    /// whose params contradict a bound value is denied, so an ALLOW for a dev target
    /// cannot act on a production namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
}
