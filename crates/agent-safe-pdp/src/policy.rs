//! Policy files (`policies/*.yaml`, SPEC §2): the document schema and loading.
//!
//! Files are read through `agent_safe_registry::yaml`, so unknown keys are errors with a
//! hint (`did you mean actions?`) instead of being ignored as in the Python version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agent_safe_core::{DecisionResult, Environment, RiskClass, Sensitivity};
use agent_safe_registry::yaml::{self, YamlError, lax};
use serde::{Deserialize, Serialize};

/// A policy file: a mapping with a `rules` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// One policy rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Reported as `policy_matched`. Names need not be unique.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Higher is evaluated first; ties keep load order. Default 0.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Int"))]
    #[serde(default, deserialize_with = "lax::i64")]
    pub priority: i64,
    /// Conditions, all of which must hold. `match: {}` matches everything.
    #[serde(rename = "match")]
    pub conditions: MatchConditions,
    /// The decision when this rule is the first to match.
    pub decision: DecisionResult,
    /// Copied into the decision.
    pub reason: String,
    /// For `require_approval` rules: how many distinct approvers are needed and which roles
    /// they must hold (an addition; the Python version takes one approver, anyone).
    #[serde(default)]
    pub approvals: Option<ApprovalSettings>,
}

/// A rule's `approvals:` block, e.g. `approvals: {required: 2, approver_roles: [sre]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// Distinct approvers needed (default 1; a two-person rule is 2).
    #[serde(default = "one_approver")]
    pub required: u32,
    /// When non-empty, an approver must hold at least one of these roles.
    #[serde(default)]
    pub approver_roles: Vec<String>,
}

fn one_approver() -> u32 {
    1
}

/// The `match` block of a rule. Absent conditions do not constrain; an empty list matches nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MatchConditions {
    /// Action name patterns (shell globs: `*`, `?`, `[seq]`, `[!seq]`). Default `["*"]`.
    #[serde(default = "default_actions")]
    pub actions: Vec<String>,
    /// Target selector. When present, a request without a resolved target never matches.
    #[serde(default)]
    pub targets: Option<TargetSelector>,
    /// Caller selector. When present, an anonymous request never matches.
    #[serde(default)]
    pub callers: Option<CallerSelector>,
    /// Effective risk classes (after the risk matrix).
    #[serde(default)]
    pub risk_classes: Option<Vec<RiskClass>>,
    /// Time windows; any one must match.
    #[serde(default)]
    pub time_windows: Option<Vec<TimeWindow>>,
    /// Tri-state on the external change-ticket id: true = required, false = forbidden.
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::Bool>"))]
    #[serde(default, deserialize_with = "lax::opt_bool")]
    pub require_ticket: Option<bool>,
    /// Regular expression the whole change-ticket id must match (an addition), e.g.
    /// `^CHG-[0-9]+$`. A request without a ticket id, or whose id does not match, does not
    /// match the rule. Compiled at load (`regex` crate syntax).
    #[serde(default)]
    pub ticket_pattern: Option<String>,
}

/// Which targets a rule applies to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetSelector {
    /// Allowed environments.
    #[serde(default)]
    pub environments: Option<Vec<Environment>>,
    /// Allowed sensitivities.
    #[serde(default)]
    pub sensitivities: Option<Vec<Sensitivity>>,
    /// Allowed target types (exact).
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Labels that must all be present with equal values. `{}` does not constrain.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Which callers a rule applies to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CallerSelector {
    /// Exact agent ids.
    #[serde(default)]
    pub agent_ids: Option<Vec<String>>,
    /// Any overlap with the caller's roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Any overlap with the caller's groups.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Any listed agent appears anywhere in the caller's delegation chain.
    #[serde(default)]
    pub delegated_from: Option<Vec<String>>,
    /// Matches when the caller's delegation depth is at most this.
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::Int>"))]
    #[serde(default, deserialize_with = "lax::opt_i64")]
    pub max_delegation_depth: Option<i64>,
    /// true: only delegated callers; false: only direct callers.
    #[cfg_attr(feature = "schema", schemars(with = "Option<lax::schema::Bool>"))]
    #[serde(default, deserialize_with = "lax::opt_bool")]
    pub require_delegation: Option<bool>,
}

/// A weekly time window. Hours are whole and inclusive (`9..17` covers 09:00–17:59); a
/// window with `start_hour > end_hour` wraps past midnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Weekdays, 0 = Monday … 6 = Sunday. Absent = every day.
    #[serde(default)]
    pub days: Option<Vec<i64>>,
    /// First hour, 0–23. Default 0.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Int"))]
    #[serde(default, deserialize_with = "lax::i64")]
    pub start_hour: i64,
    /// Last hour, 0–23. Default 23.
    #[cfg_attr(feature = "schema", schemars(with = "lax::schema::Int"))]
    #[serde(default = "default_end_hour", deserialize_with = "lax::i64")]
    pub end_hour: i64,
    /// IANA time zone the hours and days are read in (an addition; default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
}

fn default_actions() -> Vec<String> {
    vec!["*".to_owned()]
}

fn default_end_hour() -> i64 {
    23
}

/// A rule together with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedRule {
    /// The rule.
    pub rule: Rule,
    /// The file it was read from.
    pub source: PathBuf,
    /// Its index in that file's `rules` list.
    pub index: usize,
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyLoadError {
    /// The policies directory does not exist.
    #[error("policies directory not found: `{}`", .0.display())]
    DirNotFound(PathBuf),
    /// The directory could not be listed.
    #[error("cannot read policies directory `{}`: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid policy document.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// Rate-limit or cumulative-risk settings are out of range.
    #[error("{0}")]
    Settings(String),
    /// A rule is syntactically valid but semantically wrong.
    #[error("{}: rule #{index} `{name}`: {message}", path.display())]
    InvalidRule {
        /// The file.
        path: PathBuf,
        /// Index in the file's `rules` list.
        index: usize,
        /// Rule name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Lists the policy files of a directory: non-recursive `*.yaml` and `*.yml`, sorted by path.
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyLoadError> {
    if !dir.is_dir() {
        return Err(PolicyLoadError::DirNotFound(dir.to_path_buf()));
    }
    let io = |source| PolicyLoadError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads every policy file of `dir` (see [`policy_files`]) in path order.
pub fn load_dir(dir: &Path) -> Result<Vec<SourcedRule>, PolicyLoadError> {
    let mut rules = Vec::new();
    for path in policy_files(dir)? {
        let (file, _digest): (PolicyFile, _) = yaml::read(&path)?;
        push_rules(&mut rules, path, file);
    }
    Ok(rules)
}

/// Parses policy files from memory (path, contents), in the given order.
pub fn load_sources<'a>(
    sources: impl IntoIterator<Item = (PathBuf, &'a str)>,
) -> Result<Vec<SourcedRule>, PolicyLoadError> {
    let mut rules = Vec::new();
    for (path, text) in sources {
        let file: PolicyFile = yaml::from_str(&path, text)?;
        push_rules(&mut rules, path, file);
    }
    Ok(rules)
}

fn push_rules(out: &mut Vec<SourcedRule>, path: PathBuf, file: PolicyFile) {
    out.extend(file.rules.into_iter().enumerate().map(|(index, rule)| SourcedRule {
        rule,
        source: path.clone(),
        index,
    }));
}
