//! The `agent-safe` command-line tool.

mod approval;
mod audit_cmd;
mod audit_path;
mod audit_state;
mod check;
mod credential;
mod db;
mod delegation;
mod demo;
mod executor_args;
mod exit_flush;
mod identity;
mod init;
mod keys;
mod mcp;
mod output;
mod rollback;
mod runner;
mod schema;
mod serve;
mod setup;
mod shell;
mod sidecar;
mod test_cmd;
mod ticket;
mod validate;
mod vault_args;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, fixed and documented in `--help`.
pub(crate) mod exit {
    /// Allow, or the command succeeded.
    pub const OK: u8 = 0;
    /// Deny, or a check failed (verify, validate, test).
    pub const DENY_OR_FAILED: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// The decision requires approval.
    pub const REQUIRE_APPROVAL: u8 = 3;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  allow, or the command succeeded
  1  deny, or a check failed (audit verify, validate, test)
  2  usage or configuration error
  3  require approval";

/// `agent-safe --version`: the version and the backends compiled in (cargo features `k8s`,
/// `aws`; see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AGENT_SAFE_BACKENDS"), ")");

/// Governance for AI agents acting on infrastructure: policy decisions, execution tickets
/// and a tamper-evident audit log.
#[derive(Debug, Parser)]
#[command(name = "agent-safe", version = VERSION, after_help = EXIT_CODES, disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// Use this agent-safe.yaml instead of discovering one from the current directory.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Disable colours (also: the NO_COLOR environment variable).
    #[arg(long, global = true)]
    no_color: bool,
    /// The `aud` of execution tickets, issued and validated: a name, or `none` for tickets the
    /// Python runner accepts [default: from agent-safe.yaml, else agent-safe-runner]
    #[arg(long, global = true, env = "AGENT_SAFE_TICKET_AUDIENCE", value_name = "NAME|none")]
    ticket_audience: Option<agent_safe::TicketAudience>,
    /// Seconds a command that appends to the audit log waits, before it exits, for the entries
    /// to reach the audit_shipping destinations (0: do not wait) [default: from agent-safe.yaml,
    /// else 5]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    exit_flush_timeout: Option<std::time::Duration>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scaffold a project: actions, policies, inventory and agent-safe.yaml.
    Init(init::Args),
    /// Evaluate whether an action is allowed (and record the decision in the audit log).
    #[command(after_help = EXIT_CODES)]
    Check(check::Args),
    /// List the registered actions.
    ListActions(validate::ListArgs),
    /// Validate the configuration files and their cross-references.
    #[command(after_help = EXIT_CODES)]
    Validate(validate::Args),
    /// Run policy test cases (a YAML file or a directory of them).
    #[command(after_help = EXIT_CODES)]
    Test(test_cmd::Args),
    /// Inspect, verify and repair the audit log.
    #[command(subcommand)]
    Audit(audit_cmd::Command),
    /// A short guided tour on the bundled example configuration.
    Demo(demo::Args),
    /// Verify execution tickets.
    #[command(subcommand)]
    Ticket(ticket::Command),
    /// Generate signing keys.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Resolve just-in-time credentials for a ticket, or test the vault.
    #[command(subcommand)]
    Credential(credential::Command),
    /// Issue and inspect identity tokens (agents, approvers, sidecar callers).
    #[command(subcommand)]
    Identity(identity::Command),
    /// Delegate to sub-agents: create and verify delegation tokens.
    #[command(subcommand)]
    Delegation(delegation::Command),
    /// List, show, approve and deny approval requests.
    #[command(subcommand)]
    Approval(approval::Command),
    /// Plan the rollback of an executed decision and check it through the policies.
    #[command(subcommand)]
    Rollback(rollback::Command),
    /// Execute an execution ticket (once, audited), or dry-run it.
    #[command(subcommand)]
    Runner(runner::Command),
    /// Run as a sidecar: the HTTP/JSON API for agents in any language (docs/server.md).
    Serve(serve::Args),
    /// The MCP tool server on stdin/stdout, for MCP-capable agent clients (docs/mcp.md).
    Mcp(mcp::Args),
    /// The PostgreSQL schema of `state: {backend: postgres}`: migrate, status (docs/state.md).
    #[command(subcommand)]
    Db(db::Command),
    /// Print the JSON Schema of an action, policy, inventory or policy-test file.
    Schema(schema::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(shell::CompletionsArgs),
    /// Write the man pages into a directory (used by `cargo xtask man`).
    #[command(hide = true)]
    ManPages(shell::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_color(cli.no_color);
    setup::init_globals(&cli);
    let result = match &cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(&cli, args),
        Command::ListActions(args) => validate::list_actions(&cli, args),
        Command::Validate(args) => validate::run(&cli, args),
        Command::Test(args) => test_cmd::run(&cli, args),
        Command::Audit(cmd) => audit_cmd::run(&cli, cmd),
        Command::Demo(args) => demo::run(args),
        Command::Ticket(cmd) => ticket::run(&cli, cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Credential(cmd) => credential::run(&cli, cmd),
        Command::Identity(cmd) => identity::run(&cli, cmd),
        Command::Delegation(cmd) => delegation::run(&cli, cmd),
        Command::Approval(cmd) => approval::run(&cli, cmd),
        Command::Rollback(cmd) => rollback::run(&cli, cmd),
        Command::Runner(cmd) => runner::run(&cli, cmd),
        Command::Serve(args) => serve::run(&cli, args),
        Command::Mcp(args) => mcp::run(&cli, args),
        Command::Db(cmd) => db::run(&cli, cmd),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => shell::completions(args),
        Command::ManPages(args) => shell::man_pages(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            output::error(&error_chain(&err));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// An error and its causes joined by `: `, each cause once: a library error that already
/// quotes its cause in its message (`path: No such file or directory`) and also returns it as
/// its `source()` would otherwise print the cause twice.
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// A number of seconds, zero allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}`: a number of seconds, 0 or more"))
}
