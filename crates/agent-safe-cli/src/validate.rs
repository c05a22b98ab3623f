//! `agent-safe validate` and `agent-safe list-actions`.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::RiskClass;
use agent_safe_pdp::{Pdp, PdpConfig};
use agent_safe_registry::{Inventory, Registry};
use serde::Serialize;

use crate::output::{green, line, red, yellow};
use crate::setup::{self, ConfigArgs};
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Actions directory [default: from agent-safe.yaml, else ./actions]
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// Only actions with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only actions of this risk class.
    #[arg(long, value_parser = ["low", "medium", "high", "critical"])]
    risk: Option<String>,
    /// Print the full definitions as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn list_actions(cli: &Cli, args: &ListArgs) -> anyhow::Result<u8> {
    let config = setup::config_file(cli)?;
    let mut overrides = agent_safe::Overrides::default();
    overrides.registry.clone_from(&args.registry);
    let dir = setup::resolve(config.as_ref(), &overrides).registry.unwrap_or_default();
    let registry = Registry::load_dir(&dir)?;
    let risk: Option<RiskClass> = args.risk.as_deref().map(str::parse).transpose()?;
    let actions: Vec<_> = registry
        .iter()
        .filter(|a| args.tag.as_ref().is_none_or(|t| a.definition().tags.contains(t)))
        .filter(|a| risk.is_none_or(|r| a.risk_class() == r))
        .collect();
    if args.json_output {
        let defs: Vec<_> = actions.iter().map(|a| a.definition()).collect();
        crate::output::json(&defs)?;
        return Ok(exit::OK);
    }
    if actions.is_empty() {
        line("No actions found.");
        return Ok(exit::OK);
    }
    for a in &actions {
        let d = a.definition();
        line(&format!("{:<30} [{}]  v{}", d.name.as_str(), d.risk_class, d.version));
    }
    line(&format!("\n{} action(s) registered.", actions.len()));
    Ok(exit::OK)
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the results as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    checks: Vec<Check>,
    warnings: Vec<String>,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let config = setup::config_file(cli)?;
    let paths = setup::paths(config.as_ref(), &args.config);
    let mut checks = Vec::new();
    let mut warnings = Vec::new();

    let registry = match Registry::load_dir(&paths.registry) {
        Ok(r) => {
            checks.push(Check {
                name: "registry",
                ok: true,
                detail: format!("{} action(s) loaded from `{}`", r.len(), paths.registry.display()),
            });
            Some(r)
        }
        Err(e) => {
            checks.push(Check { name: "registry", ok: false, detail: e.to_string() });
            None
        }
    };
    let inventory = match &paths.inventory {
        None => Some(Inventory::empty()),
        Some(path) => match Inventory::load(path) {
            Ok(inv) => {
                checks.push(Check {
                    name: "inventory",
                    ok: true,
                    detail: format!("{} target(s) loaded from `{}`", inv.len(), path.display()),
                });
                Some(inv)
            }
            Err(e) => {
                checks.push(Check { name: "inventory", ok: false, detail: e.to_string() });
                None
            }
        },
    };
    match agent_safe_pdp::policy::load_dir(&paths.policies) {
        Err(e) => checks.push(Check { name: "policies", ok: false, detail: e.to_string() }),
        Ok(rules) if registry.is_none() || inventory.is_none() => checks.push(Check {
            name: "policies",
            ok: true,
            detail: format!(
                "{} rule(s) loaded from `{}` (cross-checks skipped: fix the errors above first)",
                rules.len(),
                paths.policies.display()
            ),
        }),
        Ok(rules) => {
            let count = rules.len();
            let registry = Arc::new(registry.unwrap_or_default());
            let inventory = Arc::new(inventory.unwrap_or_else(Inventory::empty));
            match Pdp::new(registry, inventory, rules, PdpConfig::default()) {
                Ok(pdp) => {
                    checks.push(Check {
                        name: "policies",
                        ok: true,
                        detail: format!(
                            "{count} rule(s) loaded from `{}`",
                            paths.policies.display()
                        ),
                    });
                    warnings.extend(pdp.analyse().iter().map(ToString::to_string));
                }
                Err(e) => checks.push(Check { name: "policies", ok: false, detail: e.to_string() }),
            }
        }
    }

    let errors = checks.iter().filter(|c| !c.ok).count();
    let report = Report { valid: errors == 0, checks, warnings };
    if args.json_output {
        crate::output::json(&report)?;
    } else {
        for c in &report.checks {
            let label = if c.ok { green("OK  ") } else { red("FAIL") };
            line(&format!("{label}  {}: {}", c.name, c.detail));
        }
        for w in &report.warnings {
            line(&format!("{}  {w}", yellow("WARN")));
        }
        if errors > 0 {
            line(&format!("\n{errors} error(s) found."));
        } else {
            line(&format!(
                "\nAll {} config(s) valid, {} warning(s).",
                report.checks.len(),
                report.warnings.len()
            ));
        }
    }
    Ok(if errors > 0 { exit::DENY_OR_FAILED } else { exit::OK })
}
