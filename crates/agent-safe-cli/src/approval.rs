//! `agent-safe approval list|show|approve|deny`: inspect the approval store and resolve requests
//! as an authenticated approver (an identity token, never a free-text name).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::approvals::{
    ApprovalError, ApprovalRequest, ApprovalStatus, ApprovalStore, CorruptLine, StoreError, Verdict,
};
use agent_safe::settings::DEFAULT_APPROVAL_STORE;
use agent_safe::state::SharedState;
use agent_safe::{ConfigFile, Decision, Error, Overrides, Params};
use agent_safe_core::timefmt::format_utc;
use agent_safe_core::{Clock, SystemClock};
use agent_safe_registry::{REDACTED, Registry};
use anyhow::Context as _;
use serde_json::Value;

use crate::output::{bold, green, line, red, result_label, yellow};
use crate::setup::{self, ConfigArgs};
use crate::{Cli, exit};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (listed, shown, approval recorded, request approved or denied)
  1  the request was not found or the store has unreadable lines (list, show), or the
     resolution was refused (approver not allowed, request not pending, policy now denies,
     store edited) — the same in JSON mode
  2  usage or configuration error (no approver token, no signing key, bad configuration)";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List pending requests (expired ones are shown as such by `show`, never listed).
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Show one request: what it asks for, who approved, its ticket and notifications.
    #[command(after_help = EXIT_CODES)]
    Show(ShowArgs),
    /// Approve a request. The approver is the holder of the identity token: not the
    /// requester, not related to it by delegation, with a required role if the rule names
    /// any. The final approval re-checks the current policies and mints one ticket.
    #[command(after_help = EXIT_CODES)]
    Approve(ResolveArgs),
    /// Deny a request (same approver rules as approve).
    #[command(after_help = EXIT_CODES)]
    Deny(ResolveArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArg {
    /// Approval store [default: from agent-safe.yaml (approvals.store), else ./approvals.jsonl]
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Print the requests as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The request id (`apr-…`).
    request_id: String,
    #[command(flatten)]
    store: StoreArg,
    /// Actions directory, to tell sensitive params [default: from agent-safe.yaml, else ./actions]
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// Print the request as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResolveArgs {
    /// The request id (`apr-…`).
    request_id: String,
    /// The approver's identity token [default: the file named by approvals.approver_token_file
    /// in agent-safe.yaml]
    #[arg(long, env = "AGENT_SAFE_APPROVER_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    approver_token: Option<String>,
    /// Why (recorded with the request and in the audit log).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Signing key: verifies the approver's token and signs the ticket.
    #[command(flatten)]
    key: crate::keys::KeyArgs,
    /// Print the decision as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    let config = setup::config_file(cli)?;
    match cmd {
        Command::List(args) => list(config.as_ref(), args),
        Command::Show(args) => show(config.as_ref(), args),
        Command::Approve(args) => resolve(config.as_ref(), args, Verdict::Approve),
        Command::Deny(args) => resolve(config.as_ref(), args, Verdict::Deny),
    }
}

/// The store path: flag > `approvals.store` of the config > `./approvals.jsonl`.
pub(crate) fn store_path(flag: Option<&PathBuf>, config: Option<&ConfigFile>) -> PathBuf {
    let mut overrides = Overrides::default();
    overrides.approval_store = flag.cloned();
    setup::resolve(config, &overrides)
        .approval_store
        .unwrap_or_else(|| PathBuf::from(DEFAULT_APPROVAL_STORE))
}

/// The store of the configured state backend: the database with `state: {backend:
/// postgres}`, else the file [`store_path`] names.
fn open_store(
    flag: Option<&PathBuf>,
    config: Option<&ConfigFile>,
) -> anyhow::Result<ApprovalStore> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = SharedState::open(config.and_then(|c| c.state.as_ref()))?;
    state.approval_store(Some(store_path(flag, config)), &clock).context("no approval store")
}

fn report_corrupt(store: &ApprovalStore, corrupt: &[CorruptLine]) {
    for c in corrupt {
        crate::output::error(&store.corrupt_error(c).to_string());
    }
}

fn list(config: Option<&ConfigFile>, args: &ListArgs) -> anyhow::Result<u8> {
    let store = open_store(args.store.store.as_ref(), config)?;
    if !store.exists() {
        if args.json_output {
            crate::output::json(&Vec::<Value>::new())?;
        } else {
            line("No approval store found (no pending requests).");
        }
        return Ok(exit::OK);
    }
    let listing = store.list_pending()?;
    if args.json_output {
        crate::output::json(&listing.requests)?;
    } else if listing.requests.is_empty() {
        line("No pending approval requests.");
    } else {
        for r in &listing.requests {
            line(&format!(
                "{}  {:<25} {:<22} caller={}  risk={}  approvals {}/{}  expires {}",
                bold(&r.request_id),
                r.action,
                r.target,
                r.caller,
                r.effective_risk,
                r.approvals.len(),
                r.required_approvals,
                format_utc(r.expires_at)
            ));
        }
        line(&format!("{} pending request(s).", listing.requests.len()));
    }
    report_corrupt(&store, &listing.corrupt);
    Ok(if listing.corrupt.is_empty() { exit::OK } else { exit::DENY_OR_FAILED })
}

fn show(config: Option<&ConfigFile>, args: &ShowArgs) -> anyhow::Result<u8> {
    let store = open_store(args.store.store.as_ref(), config)?;
    if !store.exists() {
        crate::output::error(&format!("approval store not found: `{}`", store.location()));
        return Ok(exit::DENY_OR_FAILED);
    }
    let mut request = match store.get(&args.request_id) {
        Ok(r) => r,
        Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt { .. })) => {
            crate::output::error(&e.to_string());
            return Ok(exit::DENY_OR_FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    let mut overrides = Overrides::default();
    overrides.registry.clone_from(&args.registry);
    let registry_dir = setup::resolve(config, &overrides).registry.unwrap_or_default();
    request.params = shown_params(&registry_dir, request.action.as_str(), &request.params);
    if args.json_output {
        crate::output::json(&request)?;
    } else {
        print_request(&request);
    }
    Ok(exit::OK)
}

/// The params as they may be shown: values of parameters declared `sensitive` are replaced by
/// `[redacted]`; when the registry cannot be read to tell which those are, every value is.
fn shown_params(registry_dir: &Path, action: &str, params: &Params) -> Params {
    match Registry::load_dir(registry_dir) {
        Ok(registry) => registry.redact_params(action, params),
        Err(_) => params.keys().map(|k| (k.clone(), Value::String(REDACTED.to_owned()))).collect(),
    }
}

fn status_label(status: ApprovalStatus) -> String {
    match status {
        ApprovalStatus::Pending => yellow("PENDING"),
        ApprovalStatus::Approved => green("APPROVED"),
        ApprovalStatus::Denied => red("DENIED"),
        ApprovalStatus::Expired => red("EXPIRED"),
    }
}

fn print_request(r: &ApprovalRequest) {
    line(&format!("{} — {}", bold(&status_label(r.status)), r.request_id));
    line(&format!("  action:    {}", r.action));
    line(&format!("  target:    {}", r.target));
    line(&format!("  caller:    {}", r.caller));
    line(&format!("  params:    {}", Value::Object(r.params.clone())));
    line(&format!("  risk:      {} (effective: {})", r.risk_class, r.effective_risk));
    if let Some(policy) = &r.policy_matched {
        line(&format!("  policy:    {policy}"));
    }
    line(&format!("  reason:    {}", r.reason));
    line(&format!("  audit id:  {}", r.audit_id));
    line(&format!("  created:   {}", format_utc(r.created_at)));
    line(&format!("  expires:   {}", format_utc(r.expires_at)));
    let roles = if r.approver_roles.is_empty() {
        String::new()
    } else {
        format!(" (roles: {})", r.approver_roles.join(", "))
    };
    line(&format!("  approvals: {} of {}{roles}", r.approvals.len(), r.required_approvals));
    for a in &r.approvals {
        let why = a.reason.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
        line(&format!("    - {} at {}{why}", a.by, format_utc(a.at)));
    }
    if let (Some(at), Some(by)) = (r.resolved_at, &r.resolved_by) {
        let why = r.resolution_reason.as_deref().map(|w| format!(": {w}")).unwrap_or_default();
        line(&format!("  resolved:  {} by {by}{why}", format_utc(at)));
    }
    if let Some(ticket) = &r.ticket {
        let shown: String = ticket.token.chars().take(40).collect();
        line(&format!("  ticket:    {shown}…"));
        line(&format!("  nonce:     {}", ticket.nonce));
    }
    for n in &r.notifications {
        let outcome = match &n.error {
            None => format!("delivered after {} attempt(s)", n.attempts),
            Some(e) => format!("failed after {} attempt(s): {e}", n.attempts),
        };
        line(&format!("  notified:  {} {outcome}", n.notifier));
    }
}

/// The approver's token: `--approver-token` (or its environment variable), else the file
/// named by `approvals.approver_token_file`.
fn approver_token(args: &ResolveArgs, config: Option<&ConfigFile>) -> anyhow::Result<String> {
    if let Some(token) = args.approver_token.as_deref().filter(|t| !t.is_empty()) {
        return identity_token(token, "--approver-token");
    }
    let file =
        config.and_then(|c| c.approvals.as_ref()).and_then(|a| a.approver_token_file.as_ref());
    let Some(file) = file else {
        anyhow::bail!(
            "an approver identity is needed: pass --approver-token (or set \
             AGENT_SAFE_APPROVER_TOKEN), or set approvals.approver_token_file in agent-safe.yaml"
        );
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the approver token file `{}`", file.display()))?;
    identity_token(text.trim(), &format!("approver token file `{}`", file.display()))
}

/// `token` when it has the shape of a signed token (three dot-separated parts); a name such as
/// `alice` is refused with what to do instead. The value is never echoed (it may be a secret).
fn identity_token(token: &str, origin: &str) -> anyhow::Result<String> {
    if token.split('.').count() == 3 {
        return Ok(token.to_owned());
    }
    anyhow::bail!(
        "{origin}: not an identity token, so not an authenticated identity (a name is never \
         enough to approve): pass a token signed with the project's key, e.g. from `agent-safe \
         identity issue NAME --role ROLE`"
    )
}

fn resolve(
    config: Option<&ConfigFile>,
    args: &ResolveArgs,
    verdict: Verdict,
) -> anyhow::Result<u8> {
    let token = approver_token(args, config)?;
    let mut overrides = args.config.overrides();
    overrides.audit_log.clone_from(&args.audit_log);
    overrides.approval_store = Some(store_path(args.store.store.as_ref(), config));
    let mut builder = setup::builder(config.cloned(), &overrides);
    if let Some(key) = args.key.flag_key()? {
        builder = builder.signing_key(key);
    }
    let flush = crate::exit_flush::timeout(config)?;
    let safe = builder.build().context("cannot load configuration")?;
    if !safe.approval_store().is_some_and(ApprovalStore::exists) {
        let path = store_path(args.store.store.as_ref(), config);
        let shown = safe
            .approval_store()
            .map_or_else(|| path.display().to_string(), ApprovalStore::location);
        crate::output::error(&format!("approval store not found: `{shown}`"));
        return Ok(exit::DENY_OR_FAILED);
    }
    let resolved = safe.resolve_approval(&args.request_id, verdict, &token, args.reason.as_deref());
    crate::exit_flush::flush(&safe, flush);
    match resolved {
        Ok(decision) => {
            if args.json_output {
                crate::output::json(&decision)?;
            } else {
                print_decision(&decision);
            }
            Ok(exit::OK)
        }
        Err(Error::Approval(
            e @ (ApprovalError::NoSigningKey
            | ApprovalError::NotConfigured
            | ApprovalError::InvalidTtl(_)
            | ApprovalError::Notifier(_)
            | ApprovalError::NotifiersWithoutStore),
        )) => Err(e.into()),
        Err(e) => {
            crate::output::error(&e.to_string());
            Ok(exit::DENY_OR_FAILED)
        }
    }
}

fn print_decision(d: &Decision) {
    line(&format!("{} — {}", bold(&result_label(d.result)), d.reason));
    if let Some(id) = &d.request_id {
        line(&format!("  request:   {id}"));
    }
    line(&format!("  action:    {}", d.action));
    line(&format!("  target:    {}", d.target));
    line(&format!("  caller:    {}", d.caller));
    line(&format!("  audit id:  {}", d.audit_id));
    if let Some(ticket) = &d.ticket {
        let shown: String = ticket.token.chars().take(40).collect();
        line(&format!("  ticket:    {shown}…"));
        line(&format!("  nonce:     {}", ticket.nonce));
        line(&format!("  expires:   {}", format_utc(ticket.expires_at)));
    }
}
