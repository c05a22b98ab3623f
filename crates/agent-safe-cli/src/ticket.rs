//! `agent-safe ticket verify`: check an execution ticket the way an executor would, consuming
//! its single-use nonce in the persistent nonce store (unless `--no-consume`).

use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

use agent_safe::{Clock, SystemClock};
use agent_safe_core::Params;
use agent_safe_core::timefmt::format_utc;
use agent_safe_tickets::TicketValidator;
use serde_json::json;

use crate::keys::KeyArgs;
use crate::output::{green, line, red};
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The execution ticket (compact JWT).
    token: String,
    #[command(flatten)]
    key: KeyArgs,
    /// The action about to be executed: must match the ticket.
    #[arg(long)]
    action: Option<String>,
    /// The target about to be acted on: must match the ticket.
    #[arg(long)]
    target: Option<String>,
    /// The params about to be used (JSON object): must match the ticket's params digest.
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// Expected issuer [default: from agent-safe.yaml, else agent-safe]
    #[arg(long)]
    issuer: Option<String>,
    /// Persistent nonce store [default: from agent-safe.yaml, else <audit log>.nonces]
    #[arg(long, value_name = "FILE")]
    nonce_store: Option<PathBuf>,
    /// Check everything but do not use up the ticket.
    #[arg(long)]
    no_consume: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Verify an execution ticket: signature, issuer, type, expiry, action/target/params, and
    /// single use (the nonce is recorded in the persistent store).
    Verify(VerifyArgs),
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    let Command::Verify(args) = cmd;
    let config = crate::setup::config_file(cli)?;
    let key = args.key.verifying_keys(config.as_ref())?;
    let mut overrides = agent_safe::Overrides::default();
    overrides.issuer.clone_from(&args.issuer);
    overrides.nonce_store.clone_from(&args.nonce_store);
    let resolved = crate::setup::resolve(config.as_ref(), &overrides);
    let issuer = resolved.issuer;
    let audience = resolved.ticket_audience.audience();
    // The working-directory defaults always give a nonce store (next to `./audit.jsonl`).
    let nonce_path = resolved.nonce_store.unwrap_or_default();
    let params: Option<Params> =
        args.params.as_deref().map(crate::setup::parse_params).transpose()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store =
        agent_safe::state::SharedState::open(config.as_ref().and_then(|c| c.state.as_ref()))?
            .nonce_store(Some(&nonce_path), agent_safe_audit::Durability::Fsync, &clock)?
            .context("no nonce store")?;
    let validator = TicketValidator::new(key, issuer, clock, store).with_audience(audience);
    let result = if args.no_consume {
        validator.inspect(&args.token)
    } else {
        validator.validate(
            &args.token,
            args.action.as_deref(),
            args.target.as_deref(),
            params.as_ref(),
        )
    };
    // `inspect` does not compare action/target/params; do it here for --no-consume.
    let result = match (&result.ticket, args.no_consume) {
        (Some(t), true) if args.action.as_deref().is_some_and(|a| a != t.action.as_str()) => {
            agent_safe_tickets::TicketValidation {
                valid: false,
                reason: format!(
                    "Action mismatch: ticket is for '{}', expected '{}'",
                    t.action,
                    args.action.as_deref().unwrap_or_default()
                ),
                ticket: result.ticket.clone(),
            }
        }
        (Some(t), true) if args.target.as_deref().is_some_and(|a| a != t.target.as_str()) => {
            agent_safe_tickets::TicketValidation {
                valid: false,
                reason: format!(
                    "Target mismatch: ticket is for '{}', expected '{}'",
                    t.target,
                    args.target.as_deref().unwrap_or_default()
                ),
                ticket: result.ticket.clone(),
            }
        }
        _ => result,
    };

    if args.json_output {
        crate::output::json(&json!({
            "valid": result.valid,
            "reason": result.reason,
            "ticket": result.ticket,
            "consumed": result.valid && !args.no_consume,
            "nonce_store": nonce_path,
        }))?;
    } else if result.valid {
        line(&format!("{} — {}", green("VALID"), result.reason));
        if let Some(t) = &result.ticket {
            line(&format!("  action:    {}", t.action));
            line(&format!("  target:    {}", t.target));
            line(&format!("  caller:    {}", t.caller));
            line(&format!("  params:    {}", serde_json::Value::Object(t.params.clone())));
            line(&format!("  audit id:  {}", t.audit_id));
            line(&format!("  nonce:     {}", t.nonce));
            line(&format!("  expires:   {}", format_utc(t.expires_at)));
        }
        if args.no_consume {
            line("  (not consumed: --no-consume)");
        }
    } else {
        line(&format!("{} — {}", red("INVALID"), result.reason));
    }
    Ok(if result.valid { exit::OK } else { exit::DENY_OR_FAILED })
}
