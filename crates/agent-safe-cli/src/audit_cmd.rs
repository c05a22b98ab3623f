//! `agent-safe audit verify|show|repair`.

use std::path::PathBuf;

use agent_safe_audit::{self as audit, AuditError};
use agent_safe_core::EventType;
use serde_json::json;

use crate::audit_path::log_path;
use crate::output::{green, line, red, result_label};
use crate::{Cli, exit};

mod ship;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Verify the hash chain; reports every broken line.
    Verify(LogArgs),
    /// Show the most recent entries.
    Show(ShowArgs),
    /// Remove a torn final line left by a crash (kept in a backup file); never drops a
    /// complete entry.
    Repair(LogArgs),
    /// Ship the log's events to a file, a webhook or S3, resuming where the last run stopped.
    Ship(ship::Args),
    /// Show the state captured before and after a decision's action ran.
    ShowState(crate::audit_state::ShowStateArgs),
    /// Count the decisions that have a state capture.
    StateCoverage(crate::audit_state::CoverageArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    log: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    log: Option<PathBuf>,
    /// How many entries (after filtering).
    #[arg(long, default_value_t = 20)]
    last: usize,
    /// Only events of this type.
    #[arg(long, value_parser = ["decision", "state_capture", "execution"])]
    event_type: Option<String>,
    /// Print the entries as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Verify(args) => verify(cli, args),
        Command::Show(args) => show(cli, args),
        Command::Repair(args) => repair(cli, args),
        Command::Ship(args) => ship::run(cli, args),
        Command::ShowState(args) => crate::audit_state::show_state(cli, args),
        Command::StateCoverage(args) => crate::audit_state::state_coverage(cli, args),
    }
}

fn not_found(path: &std::path::Path, json_output: bool) -> anyhow::Result<u8> {
    if json_output {
        crate::output::json(&json!({"valid": false, "path": path, "error": "not found"}))?;
    } else {
        crate::output::error(&format!("audit log not found: `{}`", path.display()));
    }
    Ok(exit::DENY_OR_FAILED)
}

fn verify(cli: &Cli, args: &LogArgs) -> anyhow::Result<u8> {
    let path = log_path(cli, args.log.as_ref())?;
    let report = match audit::verify(&path) {
        Ok(r) => r,
        Err(AuditError::NotFound { .. }) => return not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    let valid = report.errors.is_empty();
    if args.json_output {
        let errors: Vec<_> =
            report.errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect();
        crate::output::json(&json!({
            "valid": valid, "path": path, "entries": report.entries, "errors": errors,
        }))?;
    } else if valid {
        line(&format!(
            "{} — audit log chain is intact ({}, {} entries)",
            green("VALID"),
            path.display(),
            report.entries
        ));
    } else {
        line(&format!("{} — {} error(s) found:", red("INVALID"), report.errors.len()));
        for e in &report.errors {
            line(&format!("  - {}", e.message));
        }
    }
    Ok(if valid { exit::OK } else { exit::DENY_OR_FAILED })
}

fn show(cli: &Cli, args: &ShowArgs) -> anyhow::Result<u8> {
    let path = log_path(cli, args.log.as_ref())?;
    let events = match audit::read_events(&path) {
        Ok(events) => events,
        Err(AuditError::NotFound { .. }) => return not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    let wanted: Option<EventType> = args.event_type.as_deref().map(|t| match t {
        "state_capture" => EventType::StateCapture,
        "execution" => EventType::Execution,
        _ => EventType::Decision,
    });
    let selected: Vec<_> =
        events.iter().filter(|e| wanted.is_none_or(|w| e.event.event_type == w)).collect();
    let shown = &selected[selected.len().saturating_sub(args.last)..];
    if args.json_output {
        let rows: Vec<_> = shown.iter().map(|e| &e.event).collect();
        crate::output::json(&rows)?;
        return Ok(exit::OK);
    }
    if shown.is_empty() {
        line("No audit entries found.");
        return Ok(exit::OK);
    }
    for stored in shown {
        let e = &stored.event;
        let ts = agent_safe_core::timefmt::format_utc(e.timestamp);
        let ts: String = ts.chars().take(19).collect();
        match e.event_type {
            EventType::StateCapture => line(&format!(
                "{ts}  {:<17} {:<25} original={}",
                "STATE_CAPTURE",
                e.action,
                e.correlation_id.as_deref().unwrap_or("-")
            )),
            EventType::Decision | EventType::Execution => {
                let label = if e.event_type == EventType::Execution {
                    format!("EXEC:{}", result_label(e.decision))
                } else {
                    result_label(e.decision)
                };
                line(&format!(
                    "{ts}  {label:<17} {:<25} target={} caller={}",
                    e.action, e.target, e.caller
                ));
            }
        }
    }
    line(&format!("\n{} event(s) shown.", shown.len()));
    Ok(exit::OK)
}

fn repair(cli: &Cli, args: &LogArgs) -> anyhow::Result<u8> {
    let path = log_path(cli, args.log.as_ref())?;
    let report = match audit::repair(&path) {
        Ok(r) => r,
        Err(AuditError::NotFound { .. }) => return not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    if args.json_output {
        crate::output::json(&json!({
            "path": path,
            "kept_entries": report.kept_entries,
            "removed_bytes": report.removed_bytes,
            "backup": report.backup,
        }))?;
    } else if report.removed_bytes == 0 {
        line(&format!(
            "Nothing to repair: `{}` ends with a complete entry ({} entries).",
            path.display(),
            report.kept_entries
        ));
    } else {
        line(&format!(
            "Removed a torn final line ({} bytes) from `{}`; {} complete entries kept.",
            report.removed_bytes,
            path.display(),
            report.kept_entries
        ));
        if let Some(backup) = &report.backup {
            line(&format!("The removed bytes are saved in `{}`.", backup.display()));
        }
    }
    Ok(exit::OK)
}
