//! `agent-safe audit verify|show|repair|export|import` (and `ship`, `show-state`,
//! `state-coverage`, `checkpoint`, `prove`, `verify-proof` in their modules).

use std::path::PathBuf;

use agent_safe_audit::{self as audit, AuditError};
use agent_safe_core::EventType;
use anyhow::Context as _;
use serde_json::json;

use crate::audit_path::{LogSource, log_source};
use crate::output::{green, line, red, result_label};
use crate::{Cli, exit};

mod ship;
mod tlog;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Verify the hash chain; reports every broken line. With `--checkpoint`, also that the
    /// log still holds the tree a signed checkpoint names (not cut short, not rewritten).
    Verify(VerifyArgs),
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
    /// Write the chain as a JSON Lines file (the file log's format, byte for byte).
    Export(ExportArgs),
    /// Move a file log into the database of `state: {backend: postgres}`, which must hold no
    /// entries yet, keeping its chain (verified before and after).
    Import(ImportArgs),
    /// Sign the log's Merkle tree head (a C2SP checkpoint), keep it in `<log>.checkpoints`
    /// and print it.
    Checkpoint(tlog::CheckpointArgs),
    /// Prove that an entry is in the log: its inclusion proof against a signed checkpoint, as
    /// JSON an auditor checks with `audit verify-proof`.
    Prove(tlog::ProveArgs),
    /// Check a proof written by `audit prove` with the log's public key alone (offline).
    VerifyProof(tlog::VerifyProofArgs),
    /// Check that an older signed checkpoint's tree is a prefix of a newer one's, with a
    /// consistency proof made from the log.
    Consistency(tlog::ConsistencyArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// Where to write the file (replaced atomically when it exists).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,
    /// Start at this entry (1 = the first).
    #[arg(long, value_name = "N", default_value_t = 1)]
    from_seq: u64,
    /// Audit log file to export [default: the database with `state: {backend: postgres}`, else
    /// `audit_log` from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The file log to import.
    file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// A signed checkpoint (`agent-safe audit checkpoint`) the log must still hold.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    checkpoint: Option<PathBuf>,
    /// The log's public checkpoint key (with `--checkpoint`).
    #[arg(long, value_name = "FILE", requires = "checkpoint")]
    public_key: Option<PathBuf>,
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
        Command::Export(args) => export(cli, args),
        Command::Import(args) => import(cli, args),
        Command::Checkpoint(args) => tlog::checkpoint(cli, args),
        Command::Prove(args) => tlog::prove(cli, args),
        Command::VerifyProof(args) => tlog::verify_proof(args),
        Command::Consistency(args) => tlog::consistency(cli, args),
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

fn verify(cli: &Cli, verify_args: &VerifyArgs) -> anyhow::Result<u8> {
    let args = &verify_args.log;
    let source = log_source(cli, args.log.as_ref())?;
    let checked = match (&verify_args.checkpoint, &verify_args.public_key) {
        (Some(checkpoint), Some(key)) => Some(tlog::against_checkpoint(&source, checkpoint, key)?),
        _ => None,
    };
    let path = source.name();
    let verified = match &source {
        LogSource::File(file) => audit::verify(file),
        #[cfg(feature = "postgres")]
        LogSource::Database(log) => audit::AuditStore::verify(log.as_ref()),
    };
    let report = match verified {
        Ok(r) => r,
        Err(AuditError::NotFound { path }) => return not_found(&path, args.json_output),
        Err(e) => return Err(e.into()),
    };
    let valid = report.errors.is_empty() && checked.as_ref().is_none_or(|c| c.consistent);
    if args.json_output {
        let errors: Vec<_> =
            report.errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect();
        let mut out = json!({
            "valid": valid, "path": path, "entries": report.entries, "errors": errors,
        });
        if let Some(c) = &checked {
            out["checkpoint"] = c.json();
        }
        crate::output::json(&out)?;
    } else if let Some(c) = checked.as_ref().filter(|c| !c.consistent) {
        line(&format!("{} — {}", red("INCONSISTENT"), c.message));
        for e in &report.errors {
            line(&format!("  - {}", e.message));
        }
    } else if valid {
        line(&format!(
            "{} — audit log chain is intact ({}, {} entries)",
            green("VALID"),
            path,
            report.entries
        ));
        if let Some(c) = &checked {
            line(&format!("{} — {}", green("CONSISTENT"), c.message));
        }
    } else {
        line(&format!("{} — {} error(s) found:", red("INVALID"), report.errors.len()));
        for e in &report.errors {
            line(&format!("  - {}", e.message));
        }
    }
    Ok(if valid { exit::OK } else { exit::DENY_OR_FAILED })
}

fn show(cli: &Cli, args: &ShowArgs) -> anyhow::Result<u8> {
    let read = match log_source(cli, args.log.as_ref())? {
        LogSource::File(path) => audit::read_events(&path),
        #[cfg(feature = "postgres")]
        LogSource::Database(log) => database_events(&log),
    };
    let events = match read {
        Ok(events) => events,
        Err(AuditError::NotFound { path }) => return not_found(&path, args.json_output),
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
    let path = log_source(cli, args.log.as_ref())?.file_only("audit repair")?;
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

/// Every entry of the database's log, in order.
#[cfg(feature = "postgres")]
fn database_events(
    log: &agent_safe::postgres::PgAuditLog,
) -> Result<Vec<audit::StoredEvent>, AuditError> {
    use std::io::BufRead as _;
    let mut events = Vec::new();
    for (i, line) in log.reader(1).lines().enumerate() {
        let line = line.map_err(|e| AuditError::Unavailable(e.to_string()))?;
        let event = audit::StoredEvent::parse(line.as_bytes(), i + 1).ok_or_else(|| {
            AuditError::Backend(format!(
                "{}: audit log row {} is not an entry",
                audit::AuditStore::location(log),
                i + 1
            ))
        })?;
        events.push(event);
    }
    Ok(events)
}

/// `audit export`: the chain from `--from-seq` on, to a temporary file renamed over `--output`
/// once complete, so a failed export leaves nothing half-written.
fn export(cli: &Cli, args: &ExportArgs) -> anyhow::Result<u8> {
    if args.from_seq == 0 {
        anyhow::bail!("`--from-seq` counts from 1");
    }
    let source = log_source(cli, args.log.as_ref())?;
    let dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot write in `{}`", dir.display()))?;
    let written = match &source {
        LogSource::File(path) => copy_file_from(path, args.from_seq, tmp.as_file_mut()),
        #[cfg(feature = "postgres")]
        LogSource::Database(log) => {
            use std::io::Write as _;
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            std::io::copy(&mut log.reader(args.from_seq), &mut out)
                .and_then(|_| out.flush())
                .map_err(|e| AuditError::Unavailable(e.to_string()))
                .map(|()| 0)
        }
    };
    match written {
        Ok(_) => {}
        Err(AuditError::NotFound { path }) => return not_found(&path, false),
        Err(e) => return Err(e.into()),
    }
    tmp.as_file().sync_all().context("cannot sync the export")?;
    tmp.persist(&args.output)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write `{}`", args.output.display()))?;
    let entries = audit::verify(&args.output)?.entries;
    line(&format!(
        "Exported {entries} entries from {} to `{}`.",
        source.name(),
        args.output.display()
    ));
    Ok(exit::OK)
}

/// The lines of the file log at `path` from entry `from` on (blank lines are not entries).
fn copy_file_from(
    path: &std::path::Path,
    from: u64,
    out: &mut std::fs::File,
) -> Result<u64, AuditError> {
    use std::io::{BufRead as _, Write as _};
    let io = |source| AuditError::Io { path: path.to_owned(), source };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::NotFound { path: path.to_owned() });
        }
        Err(e) => return Err(io(e)),
    };
    let mut out = std::io::BufWriter::new(out);
    let mut n = 0;
    for raw in std::io::BufReader::new(file).split(b'\n') {
        let raw = raw.map_err(io)?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        n += 1;
        if n >= from {
            out.write_all(&raw).and_then(|()| out.write_all(b"\n")).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    Ok(n)
}

/// `audit import FILE`: the file must verify; the database must hold no entries.
fn import(cli: &Cli, args: &ImportArgs) -> anyhow::Result<u8> {
    let source = log_source(cli, None)?;
    #[cfg(feature = "postgres")]
    if let LogSource::Database(log) = source {
        return import_into(&log, &args.file);
    }
    anyhow::bail!(
        "cannot import `{}`: `audit import` moves a file log into the database of `state: \
         {{backend: postgres}}`, and agent-safe.yaml keeps state in files (the log is `{}`)",
        args.file.display(),
        source.name()
    )
}

#[cfg(feature = "postgres")]
fn import_into(
    log: &agent_safe::postgres::PgAuditLog,
    file: &std::path::Path,
) -> anyhow::Result<u8> {
    let report = match audit::verify(file) {
        Ok(r) => r,
        Err(AuditError::NotFound { path }) => return not_found(&path, false),
        Err(e) => return Err(e.into()),
    };
    if !report.is_valid() {
        line(&format!(
            "{} — `{}` does not verify ({} error(s)); nothing was imported:",
            red("REFUSED"),
            file.display(),
            report.errors.len()
        ));
        for e in &report.errors {
            line(&format!("  - {}", e.message));
        }
        return Ok(exit::DENY_OR_FAILED);
    }
    let reader = std::fs::File::open(file)
        .map(std::io::BufReader::new)
        .with_context(|| format!("cannot read `{}`", file.display()))?;
    let head = log.import(std::io::BufRead::lines(reader))?;
    let after = audit::AuditStore::verify(log)?;
    if !after.is_valid() || after.entries != report.entries {
        anyhow::bail!(
            "the imported chain does not verify ({} entries, {} error(s)): check the database",
            after.entries,
            after.errors.len()
        );
    }
    line(&format!(
        "{} — imported {} entries from `{}` into {}; chain head {} (seq {}).",
        green("IMPORTED"),
        after.entries,
        file.display(),
        audit::AuditStore::location(log),
        head.entry_hash,
        head.seq
    ));
    Ok(exit::OK)
}
