//! `agent-safe db migrate|status`: the PostgreSQL schema of `state: {backend: postgres}`.

use agent_safe::state::StateConfig;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Apply the schema migrations this release ships (safe to run from several replicas at
    /// once; a database migrated by a newer release is refused and left as it is).
    Migrate(Args),
    /// Show the database's schema version, the applied migrations and the pending ones; exit 1
    /// when it is not the version this release needs.
    Status(Args),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &crate::Cli, cmd: &Command) -> anyhow::Result<u8> {
    let config = crate::setup::config_file(cli)?;
    let state = config.as_ref().and_then(|c| c.state.as_ref());
    run_with(state, cmd)
}

#[cfg(not(feature = "postgres"))]
fn run_with(_: Option<&StateConfig>, _: &Command) -> anyhow::Result<u8> {
    Err(agent_safe::state::StateError::NotBuilt.into())
}

#[cfg(feature = "postgres")]
fn run_with(state: Option<&StateConfig>, cmd: &Command) -> anyhow::Result<u8> {
    use crate::exit;
    use crate::output::line;

    let db = StateConfig::database(state)?;
    match cmd {
        Command::Migrate(args) => {
            let applied = db.migrate()?;
            let status = db.status()?;
            if args.json_output {
                crate::output::json(&serde_json::json!({
                    "database": status.url, "applied": applied, "version": status.current,
                }))?;
            } else if applied.is_empty() {
                line(&format!("{}: schema version {}, up to date", status.url, status.current));
            } else {
                let names: Vec<String> = applied.iter().map(|v| format!("{v}")).collect();
                line(&format!(
                    "{}: applied migration(s) {}; schema version {}",
                    status.url,
                    names.join(", "),
                    status.current
                ));
            }
            Ok(exit::OK)
        }
        Command::Status(args) => {
            let status = db.status()?;
            let current = status.current == status.latest;
            if args.json_output {
                let applied: Vec<serde_json::Value> = status
                    .applied
                    .iter()
                    .map(|(v, name, at)| {
                        serde_json::json!({"version": v, "name": name,
                            "applied_at": agent_safe_core::timefmt::format_utc(*at)})
                    })
                    .collect();
                let pending: Vec<serde_json::Value> = status
                    .pending
                    .iter()
                    .map(|m| serde_json::json!({"version": m.version, "name": m.name}))
                    .collect();
                crate::output::json(&serde_json::json!({
                    "database": status.url, "version": status.current, "needed": status.latest,
                    "up_to_date": current, "applied": applied, "pending": pending,
                }))?;
            } else {
                line(&format!("database: {}", status.url));
                line(&format!(
                    "schema version: {} (this release needs {})",
                    status.current, status.latest
                ));
                for (v, name, at) in &status.applied {
                    line(&format!(
                        "  applied  {v:>3} {name} ({})",
                        agent_safe_core::timefmt::format_utc(*at)
                    ));
                }
                for m in &status.pending {
                    line(&format!("  pending  {:>3} {}", m.version, m.name));
                }
                if status.current > status.latest {
                    line("this database was migrated by a newer release: upgrade agent-safe");
                } else if !current {
                    line("run `agent-safe db migrate`");
                }
            }
            Ok(if current { exit::OK } else { exit::DENY_OR_FAILED })
        }
    }
}
