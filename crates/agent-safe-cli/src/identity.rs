//! `agent-safe identity issue|inspect`: mint an identity token with the configured signing key
//! (for agents, approvers and the sidecar's callers), and show what a token carries.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::ConfigFile;
use agent_safe_core::timefmt::format_utc;
use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::IdentityManager;
use anyhow::{Context as _, bail};
use serde_json::json;
use time::Duration;

use crate::keys::KeyArgs;
use crate::output::line;
use crate::{Cli, exit};

/// The longest lifetime `identity issue` accepts: a leaked token is good until it expires.
const MAX_TTL: Duration = Duration::days(30);

const EXIT_CODES: &str = "\
Exit codes:
  0  the token was issued (issue) or is valid (inspect)
  1  the token is invalid or expired (inspect; same in JSON mode)
  2  usage or configuration error (e.g. no signing key, a bad --ttl)";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Issue an identity token for an agent or an approver, signed with the configured key
    /// (HS256 secret or Ed25519 key file). Prints the token alone, for `TOKEN=$(…)`.
    #[command(after_help = EXIT_CODES)]
    Issue(IssueArgs),
    /// Verify an identity token with the configured key and show its claims (the same report
    /// as `delegation verify`).
    #[command(after_help = EXIT_CODES)]
    Inspect(crate::delegation::VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// The agent's (or approver's) id.
    agent_id: String,
    /// Display name.
    #[arg(long, default_value = "")]
    name: String,
    /// A role (repeat for more), e.g. --role deployer --role approver.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// A group (repeat for more).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (at most 30d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Write the token to this file (mode 0600, replaced atomically) instead of printing it.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
    /// Token issuer [default: from agent-safe.yaml, else agent-safe]
    #[arg(long)]
    issuer: Option<String>,
    /// Print the token and its claims as JSON (without the token when --output is given).
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    let config = crate::setup::config_file(cli)?;
    match cmd {
        Command::Issue(args) => issue(config.as_ref(), args),
        Command::Inspect(args) => crate::delegation::verify(config.as_ref(), args),
    }
}

fn issue(config: Option<&ConfigFile>, args: &IssueArgs) -> anyhow::Result<u8> {
    if args.agent_id.trim().is_empty() {
        bail!("the agent id must not be empty");
    }
    let key = args.key.signing_key(config)?;
    let issuer = crate::delegation::issuer(args.issuer.as_ref(), config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let manager = IdentityManager::new(key, issuer.clone(), clock);
    let token =
        manager.create_token(&args.agent_id, &args.name, &args.roles, &args.groups, args.ttl)?;
    if let Some(path) = &args.output {
        write_private(path, &token)?;
    }
    if args.json_output {
        let mut report = json!({
            "agent_id": args.agent_id,
            "agent_name": args.name,
            "roles": args.roles,
            "groups": args.groups,
            "issuer": issuer,
            "expires_at": format_utc(now + args.ttl),
        });
        match &args.output {
            Some(path) => report["output"] = json!(path),
            None => report["token"] = json!(token),
        }
        crate::output::json(&report)?;
    } else if let Some(path) = &args.output {
        line(&format!(
            "Wrote an identity token for {} to {} (mode 0600; expires {})",
            args.agent_id,
            path.display(),
            format_utc(now + args.ttl)
        ));
    } else {
        line(&token);
    }
    Ok(exit::OK)
}

/// `--ttl`: `3600`, `90s`, `30m`, `1h`, `7d`; positive, at most [`MAX_TTL`].
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: use seconds or a number with s, m, h or d")),
    };
    let ttl = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per))
        .map(Duration::seconds)
        .ok_or_else(|| format!("`{text}`: use seconds or a number with s, m, h or d"))?;
    if ttl <= Duration::ZERO {
        return Err(format!("`{text}`: the lifetime must be positive"));
    }
    if ttl > MAX_TTL {
        return Err(format!("`{text}`: at most 30d (a leaked token is good until it expires)"));
    }
    Ok(ttl)
}

/// Writes `token` (and a newline) to a temporary file with mode 0600 beside `path`, then
/// renames it over `path`: readers see the old token or the new one, never a part.
fn write_private(path: &Path, token: &str) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // tempfile creates the file with mode 0600 on unix.
    let mut file = tempfile::Builder::new()
        .prefix(".agent-safe-token")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    writeln!(file, "{token}")
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_in_seconds_or_with_a_unit() {
        for (text, seconds) in [
            ("3600", 3600),
            ("90s", 90),
            ("30m", 1800),
            ("1h", 3600),
            ("7d", 604_800),
            ("30d", 2_592_000),
        ] {
            assert_eq!(parse_ttl(text), Ok(Duration::seconds(seconds)), "{text}");
        }
        for bad in ["", "0", "0h", "-5", "1w", "h", "1.5h", "31d", "99999999999999999999"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
