//! The agent-safe action registry and target inventory: YAML loading with precise errors,
//! parameter validation with the Python version's messages, and per-file SHA-256 hashes.
//!
//! ```
//! use agent_safe_registry::{Inventory, Registry};
//! use std::path::{Path, PathBuf};
//!
//! let action = b"name: restart-deployment\nversion: 1.0.0\ndescription: Restart\n\
//!     risk_class: medium\ntarget_types: [k8s-deployment]\n\
//!     parameters:\n  - {name: namespace, type: string}\n  - {name: deployment, type: string}\n";
//! let registry = Registry::from_sources([(PathBuf::from("actions/restart.yaml"), &action[..])])?;
//! assert_eq!(registry.names().collect::<Vec<_>>(), ["restart-deployment"]);
//!
//! let inventory = b"targets:\n  - {id: dev/app, type: k8s-deployment, environment: dev, \
//!     sensitivity: public, params: {namespace: dev}}\n";
//! let inventory = Inventory::from_source(Path::new("inventory.yaml"), inventory)?;
//! assert_eq!(inventory.get("dev/app").map(|t| t.owner.as_str()), Some(""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors name the file and line: ``actions/scale.yaml:9: unknown field `min_value` on
//! parameter `replicas`; did you mean `constraints.min_value`?``. See `docs/writing-actions.md`
//! and `docs/inventory.md` for the formats and the differences from the Python version.

mod inventory;
mod model;
mod python_repr;
mod registry;
pub mod suggest;
#[cfg(test)]
mod test_support;
mod validate;
pub mod yaml;

#[cfg(all(test, feature = "schema"))]
mod schema_tests;

pub use inventory::{Inventory, InventoryError, check_bound_params};
pub use model::*;

/// The JSON Schema of an action file (feature `schema`): what [`Registry`] reads, no stricter
/// (the lax coercions of the Python version included).
#[cfg(feature = "schema")]
pub fn action_schema() -> schemars::Schema {
    yaml::lax::schema::yaml_document(schemars::schema_for!(ActionDefinition))
}

/// The JSON Schema of an inventory file (feature `schema`).
#[cfg(feature = "schema")]
pub fn inventory_schema() -> schemars::Schema {
    inventory::schema()
}
pub use registry::{LoadError, REDACTED, RegisteredAction, Registry};
