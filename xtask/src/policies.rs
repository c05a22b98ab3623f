//! `cargo xtask test-policies`: validate the shipped catalog and every example config, run
//! every policy test directory, print expected vs actual, fail on any mismatch.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{cargo_cmd, run_cmd};

/// Config files to check: `catalog/agent-safe.yaml` and `examples/*/agent-safe.yaml`.
fn configs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![root.join("catalog/agent-safe.yaml")];
    let examples = root.join("examples");
    if examples.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&examples)?
            .filter_map(|e| e.ok().map(|e| e.path().join("agent-safe.yaml")))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Directories named `policy-tests` under `dir`, recursively, skipping `target/` and dot dirs.
fn test_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        if !path.is_dir() || name == "target" || name.starts_with('.') {
            continue;
        }
        if name == "policy-tests" {
            out.push(path);
        } else {
            test_dirs(&path, out)?;
        }
    }
    Ok(())
}

/// The nearest `agent-safe.yaml` at or above `dir`.
fn config_for(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().map(|d| d.join("agent-safe.yaml")).find(|p| p.is_file())
}

/// Whether `test_policies` builds the CLI first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// Build `agent-safe` (a standalone `cargo xtask test-policies`).
    Yes,
    /// Use the binary the test step just built with the workspace's features (in `ci`), instead
    /// of rebuilding the dependency graph for a different feature set.
    AlreadyBuilt,
}

pub(crate) fn test_policies(root: &Path, build: Build) -> anyhow::Result<()> {
    if build == Build::Yes {
        run_cmd(cargo_cmd().args(["build", "-q", "-p", "agent-safe-cli"]))?;
    }
    let bin = crate::target_dir(root).join("debug").join("agent-safe");

    for config in configs(root)? {
        run_cmd(Command::new(&bin).arg("--config").arg(&config).arg("validate"))
            .with_context(|| format!("`{}` is not valid", config.display()))?;
    }

    let mut dirs = Vec::new();
    test_dirs(root, &mut dirs)?;
    dirs.sort();
    if dirs.is_empty() {
        bail!("no `policy-tests` directories found");
    }
    let (mut total, mut failed) = (0usize, 0usize);
    println!("{:<58} {:<17} {:<17} ", "case", "expected", "actual");
    for dir in &dirs {
        let config = config_for(dir)
            .with_context(|| format!("no agent-safe.yaml at or above `{}`", dir.display()))?;
        let out = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("test")
            .arg(dir)
            .arg("--json-output")
            .output()
            .context("cannot run agent-safe test")?;
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`agent-safe test {}` did not print a report:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        for file in report["files"].as_array().into_iter().flatten() {
            for case in file["cases"].as_array().into_iter().flatten() {
                total += 1;
                let passed = case["passed"].as_bool() == Some(true);
                if !passed {
                    failed += 1;
                }
                let name = case["name"].as_str().unwrap_or("?");
                let name: String = name.chars().take(56).collect();
                println!(
                    "{:<58} {:<17} {:<17} {}",
                    name,
                    case["expected"].as_str().unwrap_or("?"),
                    case["actual"].as_str().unwrap_or("?"),
                    if passed { "ok".to_owned() } else { format!("MISMATCH {}", case["failures"]) }
                );
            }
        }
    }
    println!("\n{} passed, {failed} failed", total - failed);
    if failed > 0 {
        bail!("{failed} policy test case(s) failed");
    }
    Ok(())
}
