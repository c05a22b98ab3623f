//! `agent-safe test PATH`: run policy test files against the configuration.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe::{Clock, SystemClock};
use agent_safe_pdp::testing::{self, FileReport};
use agent_safe_pdp::{Pdp, PdpConfig};
use agent_safe_registry::{Inventory, Registry};
use anyhow::Context as _;
use serde::Serialize;

use crate::output::{green, line, red};
use crate::setup::{self, ConfigArgs};
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A policy test file, or a directory of them (*.yaml, *.yml; not recursive).
    path: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the results as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    passed: usize,
    failed: usize,
    total: usize,
    files: Vec<FileReport>,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let config = setup::config_file(cli)?;
    let paths = setup::paths(config.as_ref(), &args.config);
    let registry = Registry::load_dir(&paths.registry)?;
    let inventory = match &paths.inventory {
        Some(p) => Inventory::load(p)?,
        None => Inventory::empty(),
    };
    let rules = agent_safe_pdp::policy::load_dir(&paths.policies)?;
    let pdp = Pdp::new(Arc::new(registry), Arc::new(inventory), rules, PdpConfig::default())
        .context("cannot load policies")?;

    let files = match testing::test_files(&args.path) {
        Ok(files) => files,
        Err(e) => {
            crate::output::error(&e.to_string());
            return Ok(exit::DENY_OR_FAILED);
        }
    };
    let now = SystemClock.now();
    let mut reports = Vec::new();
    for path in files {
        match testing::load_file(&path) {
            Ok(file) => reports.push(testing::run(&pdp, &path, &file, now)),
            Err(e) => {
                crate::output::error(&e.to_string());
                return Ok(exit::DENY_OR_FAILED);
            }
        }
    }
    let total: usize = reports.iter().map(|r| r.cases.len()).sum();
    let failed: usize = reports.iter().map(FileReport::failed).sum();
    let summary = Summary { passed: total - failed, failed, total, files: reports };

    if args.json_output {
        crate::output::json(&summary)?;
    } else {
        print_text(&summary);
    }
    Ok(if failed == 0 && total > 0 { exit::OK } else { exit::DENY_OR_FAILED })
}

fn print_text(summary: &Summary) {
    for report in &summary.files {
        line(&format!("{}", report.path.display()));
        for case in &report.cases {
            if case.passed {
                line(&format!("  {}  {}", green("PASS"), case.name));
            } else {
                line(&format!(
                    "  {}  {}  (expected {}, got {})",
                    red("FAIL"),
                    case.name,
                    case.expected,
                    case.actual
                ));
                line(&format!("        reason: {}", case.reason));
                // The result mismatch is in the FAIL line already.
                let result_line = format!("expected {}, got {}", case.expected, case.actual);
                for failure in case.failures.iter().filter(|f| **f != result_line) {
                    line(&format!("        {failure}"));
                }
            }
        }
    }
    line("");
    if summary.failed == 0 {
        line(&format!("All {} test(s) passed.", summary.total));
    } else {
        line(&format!(
            "{} failed, {} passed, {} total.",
            summary.failed, summary.passed, summary.total
        ));
    }
}
