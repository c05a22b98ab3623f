//! `agent-safe check`: evaluate one request, record it, print the decision.

use std::path::PathBuf;

use agent_safe::{CheckRequest, Decision, DecisionResult, Params, RequestCaller};
use anyhow::Context as _;

use crate::output::{bold, line, result_label};
use crate::setup::{self, ConfigArgs};
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The action to check, e.g. restart-deployment.
    action: String,
    /// Target id from the inventory, e.g. prod/api-server.
    #[arg(short, long)]
    target: Option<String>,
    /// Caller: an agent id, or an identity token (verified with the signing key).
    #[arg(short, long)]
    caller: Option<String>,
    /// Parameters as a JSON object, e.g. '{"namespace": "dev"}'.
    #[arg(short, long, value_name = "JSON")]
    params: Option<String>,
    /// External change ticket (JIRA, ServiceNow…).
    #[arg(long)]
    ticket_id: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Signing key: verifies identity tokens and issues execution tickets.
    #[command(flatten)]
    key: crate::keys::KeyArgs,
    /// Approval store: a REQUIRE_APPROVAL creates a request in it [default: from
    /// agent-safe.yaml (approvals.store), else none]
    #[arg(long, value_name = "FILE")]
    approval_store: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, args: &Args) -> anyhow::Result<u8> {
    let params: Params =
        args.params.as_deref().map(setup::parse_params).transpose()?.unwrap_or_default();
    let mut overrides = args.config.overrides();
    overrides.audit_log.clone_from(&args.audit_log);
    overrides.approval_store.clone_from(&args.approval_store);
    let mut builder = setup::builder(setup::config_file(cli)?, &overrides);
    if let Some(key) = args.key.flag_key()? {
        builder = builder.signing_key(key);
    }
    let flush = crate::exit_flush::timeout(builder.config())?;
    let safe = builder.build().context("cannot load configuration")?;

    let mut request = CheckRequest::new(&args.action).params(params);
    request.target = args.target.clone();
    request.caller = args.caller.as_deref().and_then(RequestCaller::from_input);
    request.ticket_id = args.ticket_id.clone();
    let decision = safe.check(&request)?;

    if args.json_output {
        crate::output::json(&decision)?;
    } else {
        print_text(&decision);
    }
    // Notifications of a new approval request are sent in the background; give them a
    // bounded time to go out (with their retries) before the process exits.
    safe.flush_notifications(std::time::Duration::from_secs(30));
    crate::exit_flush::flush(&safe, flush);
    Ok(exit_code(decision.result))
}

/// The exit code for a decision.
pub(crate) fn exit_code(result: DecisionResult) -> u8 {
    match result {
        DecisionResult::Allow => exit::OK,
        DecisionResult::Deny => exit::DENY_OR_FAILED,
        DecisionResult::RequireApproval => exit::REQUIRE_APPROVAL,
    }
}

/// Prints a decision in the human form.
pub(crate) fn print_text(d: &Decision) {
    line(&format!("{} — {}", bold(&result_label(d.result)), d.reason));
    line(&format!("  action:    {}", d.action));
    line(&format!("  target:    {}", d.target));
    line(&format!("  caller:    {}", d.caller));
    line(&format!("  risk:      {} (effective: {})", d.risk_class, d.effective_risk));
    line(&format!("  audit id:  {}", d.audit_id));
    if let Some(id) = &d.ticket_id {
        line(&format!("  change:    {id}"));
    }
    if let Some(policy) = &d.policy_matched {
        line(&format!("  policy:    {policy}"));
    }
    if let Some(ticket) = &d.ticket {
        let shown: String = ticket.token.chars().take(40).collect();
        line(&format!("  ticket:    {shown}…"));
        line(&format!("  nonce:     {}", ticket.nonce));
        line(&format!("  expires:   {}", agent_safe_core::timefmt::format_utc(ticket.expires_at)));
    }
    if let Some(id) = &d.request_id {
        line(&format!("  request:   {id}"));
        line(&format!("  resolve:   agent-safe approval approve {id} --approver-token TOKEN"));
        line(&format!("             agent-safe approval deny {id} --approver-token TOKEN"));
        line(
            "             (TOKEN: the approver's, from `agent-safe identity issue NAME --role ROLE`)",
        );
    }
}
