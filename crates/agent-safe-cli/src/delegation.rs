//! `agent-safe delegation create|verify`: hand a narrower identity token to another agent, and
//! show what an identity token carries (chain, depth limit, scope).

use std::sync::Arc;

use agent_safe::ConfigFile;
use agent_safe::delegation::{
    DEFAULT_MAX_DEPTH, DelegationError, DelegationManager, DelegationRequest,
};
use agent_safe::report::{DelegationReport, DelegationVerifyReport};
use agent_safe_core::pyrepr::str_repr;
use agent_safe_core::timefmt::format_utc;
use agent_safe_core::{CallerIdentity, Clock, Environment, SystemClock};
use agent_safe_tickets::IdentityManager;
use serde_json::json;
use time::Duration;

use crate::keys::KeyArgs;
use crate::output::{green, line, red, yellow};
use crate::{Cli, exit};

const EXIT_CODES: &str = "\
Exit codes:
  0  the token was created (create) or is valid (verify)
  1  the delegation was refused, or the token is invalid or expired (same in JSON mode)
  2  usage or configuration error (e.g. no signing key)";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a delegation token for a sub-agent from a parent identity token. The child gets
    /// only the roles and groups given (each held by the parent), lives no longer than the
    /// parent, and can be limited to actions and environments within the parent's scope.
    #[command(after_help = EXIT_CODES)]
    Create(CreateArgs),
    /// Verify an identity token and show its delegation chain, depth limit and scope.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The parent's identity token (direct or itself delegated).
    parent_token: String,
    /// The child agent's id.
    #[arg(long)]
    child_id: String,
    /// The child agent's display name.
    #[arg(long, default_value = "")]
    child_name: String,
    /// Comma-separated roles to delegate (each held by the parent) [default: none]
    #[arg(long, value_name = "ROLES")]
    roles: Option<String>,
    /// Comma-separated groups to delegate (each held by the parent) [default: none]
    #[arg(long, value_name = "GROUPS")]
    groups: Option<String>,
    /// Lifetime in seconds, capped by the parent's remaining lifetime [default: the parent's]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    ttl: Option<u32>,
    /// Deepest delegation allowed below the parent, capped by the parent's own limit
    /// [default: the parent's limit, 5 for tokens without one]
    #[arg(long, value_name = "N")]
    max_depth: Option<u32>,
    /// Comma-separated action patterns the child may request, within the parent's (policy
    /// glob syntax, e.g. 'get-*,restart-deployment') [default: the parent's scope]
    #[arg(long, value_name = "PATTERNS")]
    actions: Option<String>,
    /// Comma-separated environments the child may act on, within the parent's (dev, staging,
    /// prod) [default: the parent's scope]
    #[arg(long, value_name = "ENVS")]
    environments: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// Token issuer [default: from agent-safe.yaml, else agent-safe]
    #[arg(long)]
    issuer: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The identity token.
    token: String,
    #[command(flatten)]
    key: KeyArgs,
    /// Expected issuer [default: from agent-safe.yaml, else agent-safe]
    #[arg(long)]
    issuer: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    let config = crate::setup::config_file(cli)?;
    match cmd {
        Command::Create(args) => create(config.as_ref(), args),
        Command::Verify(args) => verify(config.as_ref(), args),
    }
}

pub(crate) fn issuer(flag: Option<&String>, config: Option<&ConfigFile>) -> String {
    let mut overrides = agent_safe::Overrides::default();
    overrides.issuer = flag.cloned();
    crate::setup::resolve(config, &overrides).issuer
}

/// A comma-separated list, items trimmed, empty items dropped (`""` is the empty list).
fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn create(config: Option<&ConfigFile>, args: &CreateArgs) -> anyhow::Result<u8> {
    let mut request = DelegationRequest::new(&args.child_id).name(&args.child_name);
    request.roles = args.roles.as_deref().map(list).unwrap_or_default();
    request.groups = args.groups.as_deref().map(list).unwrap_or_default();
    request.ttl = args.ttl.map(|s| Duration::seconds(i64::from(s)));
    request.max_depth = args.max_depth;
    request.actions = args.actions.as_deref().map(list);
    request.environments = match args.environments.as_deref() {
        None => None,
        Some(text) => Some(
            list(text)
                .iter()
                .map(|e| e.parse::<Environment>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("--environments: {e}"))?,
        ),
    };
    let key = args.key.signing_key(config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let manager = DelegationManager::new(IdentityManager::new(
        key,
        issuer(args.issuer.as_ref(), config),
        clock,
    ));

    let made = match manager.delegate(&args.parent_token, &request) {
        Ok(made) => made,
        // A malformed request is a usage error (exit 2), not a refusal.
        Err(
            e @ (DelegationError::InvalidPattern { .. }
            | DelegationError::TooManyPatterns(_)
            | DelegationError::EmptyChildId
            | DelegationError::TtlTooShort(_)),
        ) => return Err(e.into()),
        Err(e) => {
            if args.json_output {
                crate::output::json(&json!({
                    "error": e.to_string(),
                    "child_agent_id": args.child_id,
                }))?;
            } else {
                line(&format!("{} — {e}", red("ERROR")));
            }
            return Ok(exit::DENY_OR_FAILED);
        }
    };
    let child = &made.child;
    if args.json_output {
        crate::output::json(&DelegationReport::new(&made))?;
    } else {
        line(&format!("{} — delegation token created for {}", green("OK"), child.agent_id));
        line(&format!("  depth:  {} (max {})", child.delegation_depth, max_depth(child)));
        line(&format!("  roles:  {}", py_list(&child.delegated_roles)));
        let chain: Vec<String> =
            child.delegation_chain.iter().map(|l| l.agent_id.to_string()).collect();
        line(&format!("  chain:  {}", py_list(&chain)));
        scope_lines(child);
        if let Some(exp) = child.expires_at {
            line(&format!("  expires: {}", format_utc(exp)));
        }
        line(&format!("  token:  {}", made.token));
    }
    Ok(exit::OK)
}

pub(crate) fn verify(config: Option<&ConfigFile>, args: &VerifyArgs) -> anyhow::Result<u8> {
    let keys = args.key.verifying_keys(config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let manager = DelegationManager::new(IdentityManager::verify_only(
        keys,
        issuer(args.issuer.as_ref(), config),
        clock,
    ));
    let identity = match manager.verify(&args.token) {
        Ok(identity) => identity,
        Err(e) => {
            if args.json_output {
                crate::output::json(&DelegationVerifyReport::invalid(e.to_string()))?;
            } else {
                line(&format!("{} — {e}", red("INVALID")));
            }
            return Ok(exit::DENY_OR_FAILED);
        }
    };
    if args.json_output {
        crate::output::json(&DelegationVerifyReport::valid(&identity))?;
        return Ok(exit::OK);
    }
    let delegated = identity.delegation_depth > 0;
    let label = if delegated { yellow("DELEGATED") } else { green("DIRECT") };
    line(&format!("{label} — {}", identity.agent_id));
    line(&format!("  name:   {}", identity.agent_name));
    line(&format!("  roles:  {}", py_list(&identity.roles)));
    line(&format!("  groups: {}", py_list(&identity.groups)));
    line(&format!("  depth:  {} (max {})", identity.delegation_depth, max_depth(&identity)));
    if delegated {
        line(&format!("  delegated_roles: {}", py_list(&identity.delegated_roles)));
        line("  chain:");
        for (i, link) in identity.delegation_chain.iter().enumerate() {
            let name = if link.agent_name.is_empty() {
                String::new()
            } else {
                format!(" ({})", link.agent_name)
            };
            let at = link.delegated_at.map(format_utc).unwrap_or_default();
            line(&format!(
                "    [{i}] {}{name}  roles={}  at={}",
                link.agent_id,
                py_list(&link.roles),
                at.get(..19).unwrap_or(&at)
            ));
        }
    }
    scope_lines(&identity);
    if let Some(exp) = identity.expires_at {
        line(&format!("  expires: {}", format_utc(exp)));
    }
    Ok(exit::OK)
}

fn max_depth(c: &CallerIdentity) -> String {
    match c.max_delegation_depth {
        Some(max) => max.to_string(),
        None => format!("{DEFAULT_MAX_DEPTH}, the default"),
    }
}

/// `scope:` lines, when the token narrows actions or environments.
fn scope_lines(c: &CallerIdentity) {
    let Some(scope) = &c.delegation_scope else { return };
    if let Some(actions) = &scope.actions {
        line(&format!("  actions: {}", py_list(actions)));
    }
    if let Some(envs) = &scope.environments {
        let envs: Vec<String> = envs.iter().map(ToString::to_string).collect();
        line(&format!("  environments: {}", py_list(&envs)));
    }
}

/// Python's `repr` of a list of strings, as the Python CLI prints roles and chains.
fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| str_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}
