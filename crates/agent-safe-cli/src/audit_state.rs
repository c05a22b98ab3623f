//! `agent-safe audit show-state` and `agent-safe audit state-coverage`: the state captured
//! around a decision's execution, and how many decisions have one.

use std::path::{Path, PathBuf};

use agent_safe_audit::state::{self, StateCapture};
use agent_safe_audit::{AuditError, AuditIndex};
use serde_json::{Value, json};

use crate::output::line;
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct ShowStateArgs {
    /// The decision's audit id (`evt-…`).
    audit_id: String,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE", visible_alias = "audit-log")]
    log_file: Option<PathBuf>,
    /// Print the capture as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CoverageArgs {
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    log: Option<PathBuf>,
    /// Print the counts as JSON.
    #[arg(long)]
    json_output: bool,
}

fn log_not_found(path: &Path, json_output: bool) -> anyhow::Result<u8> {
    if json_output {
        crate::output::json(&json!({"path": path, "error": "not found"}))?;
    } else {
        crate::output::error(&format!("audit log not found: `{}`", path.display()));
    }
    Ok(exit::DENY_OR_FAILED)
}

/// `audit show-state AUDIT_ID`: the latest capture of a decision.
pub(crate) fn show_state(cli: &Cli, args: &ShowStateArgs) -> anyhow::Result<u8> {
    let source = crate::audit_path::log_source(cli, args.log_file.as_ref())?;
    let path = std::path::PathBuf::from(source.name());
    let found = match &source {
        crate::audit_path::LogSource::File(file) => {
            state::latest_capture(&mut AuditIndex::new(file), &args.audit_id)
        }
        #[cfg(feature = "postgres")]
        crate::audit_path::LogSource::Database(log) => {
            agent_safe_audit::AuditStore::linked(log.as_ref(), &args.audit_id)
                .map(|linked| state::captures_of(&linked, &args.audit_id).pop())
        }
    };
    let capture = match found {
        Ok(c) => c,
        Err(AuditError::NotFound { .. }) => return log_not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    let Some(c) = capture else {
        if args.json_output {
            crate::output::json(&json!({"audit_id": args.audit_id, "error": "not found"}))?;
        } else {
            crate::output::error(&format!(
                "no state capture found for audit id `{}` in `{}`",
                args.audit_id,
                path.display()
            ));
        }
        return Ok(exit::DENY_OR_FAILED);
    };
    if args.json_output {
        crate::output::json(&capture_json(&c))?;
    } else {
        print_capture(&c);
    }
    Ok(exit::OK)
}

/// SPEC §14's keys, then the additions.
fn capture_json(c: &StateCapture) -> Value {
    json!({
        "audit_id": c.audit_id,
        "action": c.action,
        "target": c.target,
        "caller": c.caller,
        "before_state": c.before_state,
        "after_state": c.after_state,
        "diff": c.diff,
        "capture_duration_ms": c.capture_duration_ms,
        "state_fields_declared": c.state_fields_declared,
        "state_fields_captured": c.state_fields_captured,
        "timestamp": agent_safe_core::timefmt::format_utc(c.captured_at),
        "event_id": c.event_id,
        "source": c.source,
        "executor_type": c.executor_type,
    })
}

fn print_capture(c: &StateCapture) {
    line(&format!("State capture for {}", c.audit_id));
    line(&format!("  action:    {}", c.action));
    line(&format!("  target:    {}", c.target));
    line(&format!("  caller:    {}", c.caller));
    line(&format!("  captured:  {}", agent_safe_core::timefmt::format_utc(c.captured_at)));
    line(&format!("  duration:  {} ms", c.capture_duration_ms));
    if let Some(executor) = &c.executor_type {
        line(&format!("  executor:  {executor}"));
    }
    line(&format!("  event:     {}", c.event_id));
    line(&format!("  declared:  {}", list(&c.state_fields_declared)));
    line(&format!("  captured:  {}", list(&c.state_fields_captured)));
    let part =
        |name: &str| c.diff.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
    for (k, v) in part("changed") {
        line(&format!("  changed:   {k}: {} → {}", v["old"], v["new"]));
    }
    for (k, v) in part("added") {
        line(&format!("  added:     {k}: {v}"));
    }
    for (k, v) in part("removed") {
        line(&format!("  removed:   {k}: {v}"));
    }
    let unchanged: Vec<String> = c
        .diff
        .get("unchanged")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    line(&format!("  unchanged: {}", list(&unchanged)));
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "-".to_owned() } else { items.join(", ") }
}

/// `audit state-coverage [LOG]`.
pub(crate) fn state_coverage(cli: &Cli, args: &CoverageArgs) -> anyhow::Result<u8> {
    let path =
        crate::audit_path::log_source(cli, args.log.as_ref())?.file_only("audit state-coverage")?;
    let coverage = match state::state_coverage(&path) {
        Ok(c) => c,
        Err(AuditError::NotFound { .. }) => return log_not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    if args.json_output {
        crate::output::json(&coverage)?;
        return Ok(exit::OK);
    }
    line(&format!("Decisions:             {}", coverage.total_decisions));
    line(&format!("With state capture:    {}", coverage.with_state_capture));
    line(&format!("Without state capture: {}", coverage.without_state_capture));
    line(&format!("Coverage:              {:.1}%", coverage.coverage_percent));
    line(&format!(
        "Allowed decisions:     {} ({} with a state capture)",
        coverage.allowed_decisions, coverage.allowed_with_state_capture
    ));
    Ok(exit::OK)
}
