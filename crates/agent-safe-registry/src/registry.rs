//! The action registry: every action definition, loaded all-or-nothing from `actions/*.yaml`.

mod hints;
mod load;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{ActionDefinition, Parameter};
use crate::validate::Pattern;
use crate::yaml::YamlError;
use agent_safe_core::{ActionName, Params, RiskClass};
use serde_json::Value;

/// The loaded actions, keyed and iterated by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    actions: BTreeMap<ActionName, RegisteredAction>,
}

/// One loaded action: its definition, where it came from, and its compiled patterns.
#[derive(Debug, Clone)]
pub struct RegisteredAction {
    definition: ActionDefinition,
    sha256: String,
    source: PathBuf,
    /// `patterns[i]` is the checked `pattern` of `definition.parameters[i]`.
    pub(crate) patterns: Vec<Option<Pattern>>,
    /// The names of `definition.parameters` (unique: duplicates are a load error).
    declared: HashSet<String>,
}

/// The registry could not be loaded. Loading is all-or-nothing: the first error wins.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The actions directory does not exist or is not a directory.
    #[error("actions directory not found: `{}`", dir.display())]
    DirNotFound {
        /// The directory.
        dir: PathBuf,
    },
    /// The actions directory could not be listed.
    #[error("cannot list actions directory `{}`", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read, parsed or validated (names the file and, where known, line).
    #[error(transparent)]
    File(#[from] YamlError),
    /// Two files define the same action name.
    #[error(
        "{}: duplicate action name `{name}`; already defined in `{}`",
        Located(second, *line),
        first.display()
    )]
    DuplicateName {
        /// The action name.
        name: ActionName,
        /// The file that defined it first.
        first: PathBuf,
        /// The file that defined it again.
        second: PathBuf,
        /// The line of `name` in `second`.
        line: Option<usize>,
    },
}

impl LoadError {
    /// The file the error is in, if it is about one file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LoadError::DirNotFound { .. } | LoadError::ReadDir { .. } => None,
            LoadError::File(e) => Some(e.path()),
            LoadError::DuplicateName { second, .. } => Some(second),
        }
    }

    /// The 1-based line the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            LoadError::DirNotFound { .. } | LoadError::ReadDir { .. } => None,
            LoadError::File(e) => e.line(),
            LoadError::DuplicateName { line, .. } => *line,
        }
    }
}

/// `path` or `path:line`.
struct Located<'a>(&'a Path, Option<usize>);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(line) => write!(f, "{}:{line}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

impl Registry {
    /// Loads every `*.yaml` and `*.yml` file directly in `dir` (not recursing), in order of
    /// path. The directory must exist; an empty directory gives an empty registry.
    pub fn load_dir(dir: &Path) -> Result<Registry, LoadError> {
        load::load_dir(dir)
    }

    /// Same as [`load_dir`](Self::load_dir) but from in-memory sources (used to embed the
    /// example config in the binary). Sources are loaded in order of path; every source is
    /// loaded, whatever its extension.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (PathBuf, &'a [u8])>,
    ) -> Result<Registry, LoadError> {
        load::from_sources(sources)
    }

    /// The action called `name`.
    pub fn get(&self, name: &str) -> Option<&RegisteredAction> {
        self.actions.get(name)
    }

    /// `params` of the action `action` as they may be recorded or shown
    /// ([`RegisteredAction::redact_params`]); unchanged when no such action is registered.
    pub fn redact_params(&self, action: &str, params: &Params) -> Params {
        self.get(action).map_or_else(|| params.clone(), |a| a.redact_params(params))
    }

    /// Whether an action called `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.actions.contains_key(name)
    }

    /// The action names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(ActionName::as_str)
    }

    /// The actions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &RegisteredAction> {
        self.actions.values()
    }

    /// The actions carrying `tag`, sorted by name.
    pub fn list_by_tag(&self, tag: &str) -> Vec<&RegisteredAction> {
        self.iter().filter(|a| a.definition.tags.iter().any(|t| t == tag)).collect()
    }

    /// The actions of risk class `risk`, sorted by name.
    pub fn list_by_risk(&self, risk: RiskClass) -> Vec<&RegisteredAction> {
        self.iter().filter(|a| a.definition.risk_class == risk).collect()
    }

    /// The number of actions.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether there are no actions.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a RegisteredAction;
    type IntoIter = std::collections::btree_map::Values<'a, ActionName, RegisteredAction>;

    fn into_iter(self) -> Self::IntoIter {
        self.actions.values()
    }
}

impl RegisteredAction {
    /// The definition as written in the file.
    pub fn definition(&self) -> &ActionDefinition {
        &self.definition
    }

    /// The action's name.
    pub fn name(&self) -> &ActionName {
        &self.definition.name
    }

    /// Whether a target of inventory type `kind` is one of the action's `target_types`.
    pub fn accepts_target_type(&self, kind: &str) -> bool {
        self.definition().target_types.iter().any(|t| t == kind)
    }

    /// The action's intrinsic risk.
    pub fn risk_class(&self) -> RiskClass {
        self.definition.risk_class
    }

    /// `name@version`, as the Python `versioned_name`.
    pub fn versioned_name(&self) -> String {
        format!("{}@{}", self.definition.name, self.definition.version)
    }

    /// The declared parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.definition.parameters.iter().find(|p| p.name == name)
    }

    /// Whether `value` matches the whole `pattern` constraint of the parameter called `param`
    /// (the same compiled pattern [`validate_params`](Self::validate_params) uses); `None` when
    /// no such parameter is declared or it declares no pattern.
    pub fn pattern_matches(&self, param: &str, value: &str) -> Option<bool> {
        let index = self.definition.parameters.iter().position(|p| p.name == param)?;
        let pattern = self.patterns.get(index)?.as_ref()?;
        Some(pattern.is_match(value))
    }

    /// Lowercase hex SHA-256 of the source file's raw bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file the action was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// SPEC §1.3 steps 2–5, exact Python messages, in Python order. Empty vec = valid.
    ///
    /// Unlike Python this is also called with empty params (required params are always
    /// enforced).
    ///
    /// ```
    /// use agent_safe_registry::Registry;
    /// use std::path::PathBuf;
    ///
    /// let yaml = b"name: scale\nversion: 1.0.0\ndescription: Scale\nrisk_class: medium\n\
    ///     target_types: [k8s-deployment]\n\
    ///     parameters: [{name: replicas, type: integer, constraints: {min_value: 0, max_value: 100}}]\n";
    /// let registry = Registry::from_sources([(PathBuf::from("scale.yaml"), &yaml[..])]).unwrap();
    /// let scale = registry.get("scale").unwrap();
    /// let params = serde_json::json!({"replicas": 101, "force": true});
    /// assert_eq!(
    ///     scale.validate_params(params.as_object().unwrap()),
    ///     ["Unknown parameter: force", "Parameter 'replicas': value 101 exceeds maximum 100.0"]
    /// );
    /// assert_eq!(
    ///     scale.validate_params(&Default::default()),
    ///     ["Missing required parameter: replicas"]
    /// );
    /// ```
    pub fn validate_params(&self, params: &Params) -> Vec<String> {
        crate::validate::validate_params(&self.definition, &self.patterns, &self.declared, params)
    }

    /// `params` as they may be recorded or shown: the values of parameters declared
    /// `sensitive: true` are replaced by the string `[redacted]` (key order kept). The one
    /// place params are redacted: the SDK's decision events, the runner's execution events,
    /// approval listings (CLI, HTTP, MCP) all call it, directly or through
    /// [`Registry::redact_params`].
    pub fn redact_params(&self, params: &Params) -> Params {
        let sensitive =
            |name: &str| self.definition.parameters.iter().any(|p| p.sensitive && p.name == name);
        params
            .iter()
            .map(|(k, v)| {
                let v = if sensitive(k) { Value::String(REDACTED.to_owned()) } else { v.clone() };
                (k.clone(), v)
            })
            .collect()
    }
}

/// What [`RegisteredAction::redact_params`] puts in place of a sensitive value.
pub use agent_safe_core::REDACTED;

#[cfg(test)]
mod tests;
