//! `agent-safe credential resolve|test-vault`: just-in-time credentials from the command line.
//! Payloads are never printed unless `--show-secret` is given.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::credentials::{CredentialResolver, CredentialView};
use agent_safe::{ConfigFile, default_nonce_store};
use agent_safe_core::{
    ActionName, AgentId, AuditId, Clock, CredentialScope, ExecutionTicket, Params, SystemClock,
    TargetId, timefmt,
};
use agent_safe_registry::Registry;
use agent_safe_tickets::{Expected, FileNonceStore, MemoryNonceStore, NonceStore, TicketValidator};
use anyhow::Context as _;
use serde_json::{Value, json};

use crate::keys::KeyArgs;
use crate::output::{green, line, red};
use crate::{Cli, exit};

const EXIT_CODES: &str = "\
Exit codes:
  0  the credential was issued (and, for test-vault, revoked)
  1  invalid ticket, or the vault or the scope refused (same in text and JSON modes)
  2  usage or configuration error";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Resolve the credential an execution ticket's action declares. The ticket is checked
    /// (signature, issuer, expiry, not already used) but not consumed.
    #[command(after_help = EXIT_CODES)]
    Resolve(ResolveArgs),
    /// Check that the vault issues and revokes a credential of one type.
    #[command(after_help = EXIT_CODES)]
    TestVault(TestVaultArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResolveArgs {
    /// The execution ticket (a JWT from `agent-safe check`).
    token: String,
    #[command(flatten)]
    key: KeyArgs,
    /// Actions directory [default: from agent-safe.yaml, else ./actions]
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// Nonce store: a ticket recorded there as used is refused; nothing is recorded
    /// [default: from agent-safe.yaml, else <audit log>.nonces if it exists]
    #[arg(long, value_name = "FILE")]
    nonce_store: Option<PathBuf>,
    #[command(flatten)]
    vault: crate::vault_args::VaultArgs,
    /// Print the result as JSON (the payload redacted unless --show-secret).
    #[arg(long)]
    json_output: bool,
    /// Also print the secret payload.
    #[arg(long)]
    show_secret: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TestVaultArgs {
    #[command(flatten)]
    vault: crate::vault_args::VaultArgs,
    /// The credential type to request.
    #[arg(long, default_value = "kubernetes", value_name = "TYPE")]
    cred_type: String,
    /// Print the result as JSON (the payload is never shown).
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Resolve(args) => resolve(cli, args),
        Command::TestVault(args) => test_vault(cli, args),
    }
}

fn resolve(cli: &Cli, args: &ResolveArgs) -> anyhow::Result<u8> {
    let config = crate::setup::config_file(cli)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let vault = args.vault.vault(config.as_ref(), &clock, crate::vault_args::NoVault::Env)?;
    let vault = vault.ok_or_else(|| anyhow::anyhow!("no credential vault"))?;
    let keys = args.key.verifying_keys(config.as_ref())?;
    let mut overrides = agent_safe::Overrides::default();
    overrides.registry.clone_from(&args.registry);
    let resolved = crate::setup::resolve(config.as_ref(), &overrides);
    let nonces = nonce_store(args, config.as_ref(), &clock)?;
    // The working-directory defaults always give a registry.
    let registry_dir = resolved.registry.unwrap_or_default();
    let registry = Registry::load_dir(&registry_dir).context("cannot load the action registry")?;

    let validator = TicketValidator::new(keys, resolved.issuer, clock, nonces)
        .with_audience(resolved.ticket_audience.audience());
    let ticket = match validator.verify_without_consuming(&args.token, &Expected::default()) {
        Ok(ticket) => ticket,
        Err(e) => {
            let error = format!("invalid ticket: {e}");
            if args.json_output {
                crate::output::json(&result(false, None, Some(&error), None))?;
            } else {
                line(&format!("{} — {e}", red("INVALID TICKET")));
            }
            return Ok(exit::DENY_OR_FAILED);
        }
    };
    let t = ticket.ticket();
    let resolver = CredentialResolver::new(&registry, vault);
    match block_on(resolver.resolve(&ticket))? {
        Ok(credential) => {
            let view = if args.show_secret {
                CredentialView::with_secret(&credential)
            } else {
                CredentialView::redacted(&credential)
            };
            if args.json_output {
                crate::output::json(&result(true, Some(json!(view)), None, Some(t)))?;
            } else {
                line(&format!(
                    "{} — credential for {} on {}",
                    green("RESOLVED"),
                    t.action,
                    t.target
                ));
                line(&format!("  credential: {}", credential.credential_id));
                line(&format!("  type:       {}", credential.kind));
                line(&format!("  expires:    {}", timefmt::format_utc(credential.expires_at)));
                line(&format!("  nonce:      {}", credential.ticket_nonce));
                line(&format!("  scope:      {}", Value::Object(credential.scope.fields.clone())));
                if args.show_secret {
                    line(&format!("  payload:    {}", json!(credential.payload.expose())));
                } else {
                    line("  payload:    [redacted] (--show-secret prints it)");
                }
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if args.json_output {
                crate::output::json(&result(false, None, Some(&e.to_string()), Some(t)))?;
            } else {
                line(&format!("{} — {e}", red("FAILED")));
            }
            Ok(exit::DENY_OR_FAILED)
        }
    }
}

/// The Python `CredentialResult` shape: `{success, credential, error, action, target,
/// ticket_nonce}`.
fn result(
    success: bool,
    credential: Option<Value>,
    error: Option<&str>,
    ticket: Option<&ExecutionTicket>,
) -> Value {
    json!({
        "success": success,
        "credential": credential,
        "error": error,
        "action": ticket.map(|t| t.action.as_str()),
        "target": ticket.map(|t| t.target.as_str()),
        "ticket_nonce": ticket.map(|t| t.nonce.as_str()),
    })
}

fn test_vault(cli: &Cli, args: &TestVaultArgs) -> anyhow::Result<u8> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = crate::setup::config_file(cli)?;
    let vault = args.vault.vault(config.as_ref(), &clock, crate::vault_args::NoVault::Env)?;
    let vault = vault.ok_or_else(|| anyhow::anyhow!("no credential vault"))?;
    let now = clock.now();
    let ticket = ExecutionTicket {
        token: String::new(),
        action: ActionName::new("test-vault"),
        target: TargetId::new("test-vault"),
        caller: AgentId::new("agent-safe-cli"),
        params: Params::new(),
        audit_id: AuditId::new("test-vault"),
        nonce: agent_safe_core::random::nonce(),
        issued_at: now,
        expires_at: now + time::Duration::seconds(60),
    };
    let scope = CredentialScope { kind: args.cred_type.clone(), fields: Params::new(), ttl: 60 };
    // One runtime for both calls: a network vault's client belongs to the runtime it
    // was first used on.
    let outcome = block_on(async {
        match vault.get_credential(&scope, &ticket, 60).await {
            Err(e) => Err(e.to_string()),
            Ok(credential) => {
                match agent_safe::credentials::revoke(vault.as_ref(), &credential).await {
                    None => Ok(credential),
                    Some(warning) => Err(warning.to_string()),
                }
            }
        }
    })?;
    if args.json_output {
        let (credential, error) = match &outcome {
            Ok(c) => (Some(json!(CredentialView::redacted(c))), None),
            Err(e) => (None, Some(e.as_str())),
        };
        crate::output::json(&json!({
            "success": outcome.is_ok(),
            "vault": vault.kind(),
            "credential": credential,
            "revoked": outcome.is_ok(),
            "error": error,
        }))?;
    } else {
        match &outcome {
            Ok(c) => {
                line(&format!(
                    "{} — the `{}` vault issued and revoked a `{}` credential",
                    green("OK"),
                    vault.kind(),
                    c.kind
                ));
                line(&format!("  credential: {}", c.credential_id));
                line(&format!("  type:       {}", c.kind));
                line(&format!("  expires:    {}", timefmt::format_utc(c.expires_at)));
            }
            Err(e) => line(&format!("{} — {e}", red("FAILED"))),
        }
    }
    Ok(if outcome.is_ok() { exit::OK } else { exit::DENY_OR_FAILED })
}

/// The nonce store consulted (never written): the database's with `state: {backend: postgres}`,
/// else `--nonce-store`, the config's, else the default `audit.jsonl.nonces` when it exists (an
/// in-memory store otherwise, which knows no use).
fn nonce_store(
    args: &ResolveArgs,
    config: Option<&ConfigFile>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn NonceStore>> {
    let state = agent_safe::state::SharedState::open(config.and_then(|c| c.state.as_ref()))?;
    if state.backend() == agent_safe::state::StateBackend::Postgres {
        let fsync = agent_safe_audit::Durability::Fsync;
        if let Some(store) = state.nonce_store(None, fsync, clock)? {
            return Ok(store);
        }
    }
    let mut overrides = agent_safe::Overrides::default();
    overrides.nonce_store.clone_from(&args.nonce_store);
    // Without the working-directory defaults: only an explicit or configured store counts here.
    let configured =
        agent_safe::settings::resolve(config, &overrides, agent_safe::Defaults::None).nonce_store;
    let path = match configured {
        Some(path) => path,
        None => {
            let default = default_nonce_store(Path::new("audit.jsonl"));
            if !default.exists() {
                return Ok(Arc::new(MemoryNonceStore::new(clock.clone())));
            }
            default
        }
    };
    let store = FileNonceStore::open(&path, clock.clone())
        .with_context(|| format!("cannot open nonce store `{}`", path.display()))?;
    Ok(Arc::new(store))
}

/// Runs a future to completion on a current-thread runtime: network vaults (STS, Kubernetes)
/// need tokio's reactor and timers; the built-in ones are ready at once.
fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(crate::runner::runtime()?.block_on(future))
}
