//! Policy tests (SPEC §15, extended): table-driven cases that run requests through a
//! [`Pdp`] and compare the outcome with what the author expects.
//!
//! Additions over the Python format, all optional: `caller_roles`, `caller_groups`
//! (the test harness builds a verified identity from them), `at` (evaluation time, so
//! time windows are testable), `expect_policy` (rule name, or `null` for none) and
//! `expect_reason` (exact reason).

use std::path::{Path, PathBuf};

use agent_safe_core::{CallerIdentity, DecisionResult, Params, timefmt};
use agent_safe_registry::yaml::{self, YamlError};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::{Caller, Pdp, Request};

/// A policy test file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The cases, in order.
    pub tests: Vec<TestCase>,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Case name, shown in reports.
    pub name: String,
    /// Action to check.
    pub action: String,
    /// Target id.
    #[serde(default)]
    pub target: Option<String>,
    /// Caller id (the harness treats it as verified, with the roles and groups below).
    #[serde(default)]
    pub caller: Option<String>,
    /// Caller roles.
    #[serde(default)]
    pub caller_roles: Vec<String>,
    /// Caller groups.
    #[serde(default)]
    pub caller_groups: Vec<String>,
    /// Request params.
    #[serde(default)]
    pub params: Params,
    /// External change-ticket id.
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// Evaluation time (RFC 3339); default: now.
    #[serde(default, with = "timefmt::serde_utc::option")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub at: Option<OffsetDateTime>,
    /// Expected result.
    pub expect: DecisionResult,
    /// Expected matched rule: absent = not checked, `null` = no rule.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub expect_policy: Option<Option<String>>,
    /// Expected exact reason.
    #[serde(default)]
    pub expect_reason: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Whether every expectation held.
    pub passed: bool,
    /// Expected result.
    pub expected: DecisionResult,
    /// Actual result.
    pub actual: DecisionResult,
    /// Actual matched rule.
    pub policy_matched: Option<String>,
    /// Actual reason.
    pub reason: String,
    /// One line per failed expectation.
    pub failures: Vec<String>,
}

/// The outcome of one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its cases.
    pub cases: Vec<CaseResult>,
}

impl FileReport {
    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| !c.passed).count()
    }
}

/// Why tests could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestLoadError {
    /// The path does not exist.
    #[error("test path not found: `{}`", .0.display())]
    NotFound(PathBuf),
    /// A directory without test files.
    #[error("no YAML test files found in `{}`", .0.display())]
    Empty(PathBuf),
    /// Listing a directory failed.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid test file.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A file has no cases.
    #[error("{}: `tests` is empty", .0.display())]
    NoCases(PathBuf),
}

/// The test files at `path`: the file itself, or the directory's `*.yaml`/`*.yml` files
/// (non-recursive, sorted).
pub fn test_files(path: &Path) -> Result<Vec<PathBuf>, TestLoadError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(TestLoadError::NotFound(path.to_path_buf()));
    }
    let io = |source| TestLoadError::Io { path: path.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(TestLoadError::Empty(path.to_path_buf()));
    }
    Ok(files)
}

/// Reads one test file.
pub fn load_file(path: &Path) -> Result<TestFile, TestLoadError> {
    let (file, _): (TestFile, _) = yaml::read(path)?;
    if file.tests.is_empty() {
        return Err(TestLoadError::NoCases(path.to_path_buf()));
    }
    Ok(file)
}

/// Runs every case of `file` against `pdp`; cases without `at` are evaluated at `now`.
pub fn run(pdp: &Pdp, path: &Path, file: &TestFile, now: OffsetDateTime) -> FileReport {
    let cases = file.tests.iter().map(|case| run_case(pdp, case, now)).collect();
    FileReport { path: path.to_path_buf(), cases }
}

/// Runs one case.
pub fn run_case(pdp: &Pdp, case: &TestCase, now: OffsetDateTime) -> CaseResult {
    let identity = case.caller.as_ref().map(|id| CallerIdentity {
        roles: case.caller_roles.clone(),
        groups: case.caller_groups.clone(),
        ..CallerIdentity::unverified(id.as_str())
    });
    // A test case's caller stands for a verified token with these roles and groups.
    let caller = identity.as_ref().map_or(Caller::Anonymous, Caller::Verified);
    let request = Request {
        action: &case.action,
        target: case.target.as_deref(),
        caller,
        params: &case.params,
        ticket_id: case.ticket_id.as_deref(),
    };
    let decision = pdp.evaluate(&request, case.at.unwrap_or(now)).decision;
    let mut failures = Vec::new();
    if decision.result != case.expect {
        failures.push(format!("expected {}, got {}", case.expect, decision.result));
    }
    if let Some(expected) = &case.expect_policy
        && *expected != decision.policy_matched
    {
        failures.push(format!(
            "expected policy {}, got {}",
            show(expected.as_deref()),
            show(decision.policy_matched.as_deref())
        ));
    }
    if let Some(expected) = &case.expect_reason
        && *expected != decision.reason
    {
        failures.push(format!("expected reason `{expected}`, got `{}`", decision.reason));
    }
    if case.caller.is_none() && !(case.caller_roles.is_empty() && case.caller_groups.is_empty()) {
        failures.push("`caller_roles`/`caller_groups` given without `caller`".to_owned());
    }
    CaseResult {
        name: case.name.clone(),
        passed: failures.is_empty(),
        expected: case.expect,
        actual: decision.result,
        policy_matched: decision.policy_matched,
        reason: decision.reason,
        failures,
    }
}

fn show(name: Option<&str>) -> String {
    name.map_or_else(|| "none".to_owned(), |n| format!("`{n}`"))
}
