//! `agent-safe rollback show|check`: plan the rollback of an executed decision, and check the
//! rollback through the policies as the original caller (linked to the decision in the audit
//! log).

use std::path::PathBuf;

use agent_safe::{AgentSafe, Error, RollbackPlan};
use anyhow::Context as _;

use crate::output::{bold, line};
use crate::setup::{self, ConfigArgs};
use crate::{Cli, exit};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Show the rollback plan of a decision (exit 1 when none can be made).
    Show(ShowArgs),
    /// Check the planned rollback against the policies (exit codes as for `check`).
    #[command(after_help = crate::EXIT_CODES)]
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The decision's audit id (`evt-…`).
    audit_id: String,
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Signing key: the key of the digests of sensitive state fields [default: from
    /// agent-safe.yaml]
    #[command(flatten)]
    key: crate::keys::KeyArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    show: ShowArgs,
    /// The original caller's identity token (its roles count); without it, the original
    /// caller's plain id (no roles).
    #[arg(short, long)]
    caller: Option<String>,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Show(args) => show(cli, args),
        Command::Check(args) => check(cli, args),
    }
}

/// The SDK, and how long to wait for audit shipping before exiting.
fn load(cli: &Cli, args: &ShowArgs) -> anyhow::Result<(AgentSafe, std::time::Duration)> {
    let mut overrides = args.config.overrides();
    overrides.audit_log.clone_from(&args.audit_log);
    let mut builder = setup::builder(setup::config_file(cli)?, &overrides);
    let audit_log = builder.resolved().audit_log.unwrap_or_default();
    if !audit_log.exists() {
        anyhow::bail!("audit log not found: `{}`", audit_log.display());
    }
    if let Some(key) = args.key.flag_key()? {
        builder = builder.signing_key(key);
    }
    let flush = crate::exit_flush::timeout(builder.config())?;
    Ok((builder.build().context("cannot load configuration")?, flush))
}

/// A plan error (not a configuration error): printed, exit 1.
fn refused(e: &Error, json_output: bool) -> anyhow::Result<u8> {
    if json_output {
        crate::output::json(&serde_json::json!({"error": e.to_string()}))?;
    } else {
        crate::output::error(&e.to_string());
    }
    Ok(exit::DENY_OR_FAILED)
}

fn show(cli: &Cli, args: &ShowArgs) -> anyhow::Result<u8> {
    // Nothing is appended: no shipping to wait for.
    let (safe, _) = load(cli, args)?;
    let plan = match safe.generate_rollback(&args.audit_id) {
        Ok(plan) => plan,
        Err(e @ Error::Change(_)) => return refused(&e, args.json_output),
        Err(e) => return Err(e.into()),
    };
    if args.json_output {
        crate::output::json(&plan)?;
    } else {
        print_plan(&plan);
    }
    Ok(exit::OK)
}

fn check(cli: &Cli, args: &CheckArgs) -> anyhow::Result<u8> {
    let (safe, flush) = load(cli, &args.show)?;
    let checked = safe.check_rollback(&args.show.audit_id, args.caller.as_deref());
    crate::exit_flush::flush(&safe, flush);
    let checked = match checked {
        Ok(c) => c,
        Err(e @ Error::Change(_)) => return refused(&e, args.show.json_output),
        Err(e) => return Err(e.into()),
    };
    if args.show.json_output {
        crate::output::json(&checked)?;
    } else {
        print_plan(&checked.plan);
        line("");
        crate::check::print_text(&checked.decision);
    }
    Ok(crate::check::exit_code(checked.decision.result))
}

fn print_plan(p: &RollbackPlan) {
    line(&format!("{} for {}", bold("ROLLBACK PLAN"), p.original_audit_id));
    line(&format!(
        "  original:  {} on {} by {}",
        p.original_action, p.original_target, p.original_caller
    ));
    line(&format!("  rollback:  {} on {}", p.rollback_action, p.rollback_target));
    line(&format!("  caller:    {}", p.rollback_caller));
    line(&format!("  params:    {}", serde_json::Value::Object(p.rollback_params.clone())));
    line(&format!("  before:    {}", serde_json::Value::Object(p.before_state.clone())));
    for w in &p.warnings {
        line(&format!("  warning:   {w}"));
    }
}
