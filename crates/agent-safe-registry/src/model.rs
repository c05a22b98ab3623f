//! The action definition schema (SPEC §1.1–1.2), exactly as read from `actions/*.yaml`.
//!
//! Every struct denies unknown fields: a misplaced or misspelled key is a load error with a
//! hint, never silently ignored (a deliberate difference from the Python version).

use std::collections::BTreeMap;

use agent_safe_core::{ActionName, RiskClass};
use serde::{Deserialize, Serialize};

use crate::yaml::lax;

/// One action: what an agent may ask to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionDefinition {
    /// Registry key, `^[a-z][a-z0-9-]*$`, unique across files.
    pub name: ActionName,
    /// `MAJOR.MINOR.PATCH`; informational.
    pub version: String,
    /// Human description.
    pub description: String,
    /// Declared parameters, in declaration order.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// The action's intrinsic risk.
    pub risk_class: RiskClass,
    /// Target types this action applies to (at least one).
    pub target_types: Vec<String>,
    /// Advisory prechecks run by executors.
    #[serde(default)]
    pub prechecks: Vec<Precheck>,
    /// Whether a rollback plan can be generated.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default, deserialize_with = "lax::bool")]
    pub reversible: bool,
    /// The compensating action; must exist in the registry.
    #[serde(default)]
    pub rollback_action: Option<ActionName>,
    /// Informational.
    #[serde(default)]
    pub required_privileges: Vec<String>,
    /// Free tags, used by `list-actions --tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Credentials the runner fetches just in time.
    #[serde(default)]
    pub credentials: Option<CredentialSpec>,
    /// State keys executors capture before and after.
    #[serde(default)]
    pub state_fields: Vec<StateFieldSpec>,
    /// How to derive rollback params: rollback-param name → source.
    #[serde(default)]
    pub rollback_params: BTreeMap<String, RollbackParamSource>,
}

/// The type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A string.
    String,
    /// An integer (booleans are not integers).
    Integer,
    /// An integer or float (booleans are not numbers).
    Number,
    /// A boolean.
    Boolean,
    /// A list; elements are not checked.
    Array,
}

impl ParamType {
    /// The name used in YAML and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
        }
    }
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Parameter name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// Whether the parameter must be present.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default = "default_true", deserialize_with = "lax::bool")]
    pub required: bool,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Documentation only: never applied to requests (as in the Python version).
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Value constraints.
    #[serde(default)]
    pub constraints: Option<Constraints>,
    /// Marks a parameter whose value is a secret: redacted in the audit log and outputs.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default, deserialize_with = "lax::bool", skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// Value constraints on a parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// Inclusive lower bound for numbers.
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::Float>"))]
    #[serde(default, deserialize_with = "lax::opt_f64")]
    pub min_value: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::Float>"))]
    #[serde(default, deserialize_with = "lax::opt_f64")]
    pub max_value: Option<f64>,
    /// Minimum string length (in characters).
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::UInt>"))]
    #[serde(default, deserialize_with = "lax::opt_u64")]
    pub min_length: Option<u64>,
    /// Maximum string length (in characters).
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::UInt>"))]
    #[serde(default, deserialize_with = "lax::opt_u64")]
    pub max_length: Option<u64>,
    /// Whole-string regular expression for strings; compiled once at load.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Allowed values, compared as strings. YAML numbers or booleans in the list are a load
    /// error (as in Python, whose schema is `list[str]`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::StrictStrings>"))]
    #[serde(default, rename = "enum", deserialize_with = "lax::opt_strict_strings")]
    pub allowed: Option<Vec<String>>,
}

/// A precheck the executor runs before executing: advisory by default (a failure is
/// recorded), blocking with `blocking: true` (a failure stops the execution as `skipped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Precheck {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether a failure stops the execution (the runner reports it as `skipped`).
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default, deserialize_with = "lax::bool", skip_serializing_if = "std::ops::Not::not")]
    pub blocking: bool,
}

/// The `credentials` block: the scope of the credential the runner fetches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    /// Credential type, e.g. `kubernetes` or `aws`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Scope fields; string values may contain `{{ params.x }}` templates.
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Lifetime in seconds (≥ 1).
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::UInt"))]
    #[serde(default = "default_ttl", deserialize_with = "lax::u64")]
    pub ttl: u64,
}

/// A declared state field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StateFieldSpec {
    /// State key.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Free-form type name; never checked.
    #[serde(rename = "type", default = "default_any")]
    pub kind: String,
    /// Whether executors should always capture it.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default, deserialize_with = "lax::bool")]
    pub required: bool,
    /// Marks a state field whose value is a secret: redacted in the audit log.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Bool"))]
    #[serde(default, deserialize_with = "lax::bool", skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// Where a rollback parameter comes from: `params.<name>` or `before_state.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackParamSource {
    /// Dot path, e.g. `before_state.replicas`.
    pub source: String,
}

fn default_true() -> bool {
    true
}

fn default_ttl() -> u64 {
    300
}

fn default_any() -> String {
    "any".to_owned()
}
