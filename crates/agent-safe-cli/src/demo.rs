//! `agent-safe demo`: a scripted tour of decisions on the bundled example configuration,
//! ending with the audit chain verifying and a tampered copy failing verification.

use std::sync::Arc;

use agent_safe::{AgentSafe, CheckRequest, Clock, RequestCaller, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use anyhow::Context as _;
use serde_json::json;

use crate::output::{bold, line};
use crate::{check, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Keep the generated demo directory and print its path.
    #[arg(long)]
    keep: bool,
    /// Print the decisions and audit results as JSON instead of the guided tour.
    #[arg(long)]
    json_output: bool,
}

struct Step {
    title: &'static str,
    request: CheckRequest,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<u8> {
    let dir = tempfile::Builder::new().prefix("agent-safe-demo-").tempdir()?;
    let key_text = agent_safe_core::random::hex(32);
    for (rel, text) in crate::init::scaffold_files(&key_text)? {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    let config = dir.path().join("agent-safe.yaml");
    let safe = AgentSafe::builder().config_file(&config)?.build().context("demo configuration")?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let identity =
        IdentityManager::new(SigningKey::hs256_from_str(&key_text)?, "agent-safe", clock);
    let hour = time::Duration::hours(1);
    let deployer =
        identity.create_token("deploy-bot", "Deploy bot", &["deployer".to_owned()], &[], hour)?;
    let forged = {
        let other = IdentityManager::new(
            SigningKey::hs256_from_str(&agent_safe_core::random::hex(32))?,
            "agent-safe",
            Arc::new(SystemClock),
        );
        other.create_token("deploy-bot", "", &["admin".to_owned()], &[], hour)?
    };

    let steps = [
        Step {
            title: "Development is unrestricted: restart a deployment in dev",
            request: CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller("deploy-bot")
                .param("namespace", "dev")
                .param("deployment", "test-app"),
        },
        Step {
            title: "Staging needs the deployer role, which only a signed identity token carries",
            request: CheckRequest::new("scale-deployment")
                .target("staging/api-server")
                .caller(deployer.clone())
                .param("namespace", "staging")
                .param("deployment", "api-server")
                .param("replicas", 3),
        },
        Step {
            title: "The same request with a plain caller id has no roles: default deny",
            request: CheckRequest::new("scale-deployment")
                .target("staging/api-server")
                .caller("deploy-bot")
                .param("namespace", "staging")
                .param("deployment", "api-server")
                .param("replicas", 3),
        },
        Step {
            title: "A token signed with another key is rejected, not trusted as a name",
            request: CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller(forged)
                .param("namespace", "dev")
                .param("deployment", "test-app"),
        },
        Step {
            title: "Production changes need a human",
            request: CheckRequest::new("restart-deployment")
                .target("prod/api-server")
                .caller(deployer)
                .param("namespace", "prod")
                .param("deployment", "api-server"),
        },
        Step {
            title: "An ALLOW for a dev target cannot be aimed at a production namespace",
            request: CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller("deploy-bot")
                .param("namespace", "prod")
                .param("deployment", "test-app"),
        },
        Step {
            title: "Parameters are validated against the action definition",
            request: CheckRequest::new("scale-deployment")
                .target("dev/test-app")
                .caller("deploy-bot")
                .param("namespace", "dev")
                .param("deployment", "test-app")
                .param("replicas", 500),
        },
        Step {
            title: "Unknown actions are denied",
            request: CheckRequest::new("drop-database")
                .target("prod/api-server")
                .caller("deploy-bot"),
        },
    ];

    let text = !args.json_output;
    let say = |s: &str| {
        if text {
            line(s);
        }
    };
    say(&bold("agent-safe demo — decisions on the bundled example configuration"));
    let mut decisions = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        say("");
        say(&bold(&format!("{}. {}", i + 1, step.title)));
        let params = serde_json::Value::Object(step.request.params.clone());
        let caller = step.request.caller.as_ref().map_or("-", RequestCaller::as_str);
        let caller =
            if caller.len() > 24 { format!("{}…", &caller[..20]) } else { caller.to_owned() };
        say(&format!(
            "   $ agent-safe check {} --target {} --caller {caller} --params '{}'",
            step.request.action,
            step.request.target.as_deref().unwrap_or("-"),
            params
        ));
        let decision = safe.check(&step.request)?;
        if text {
            check::print_text(&decision);
        }
        decisions.push(json!({"step": step.title, "decision": decision}));
    }

    say("");
    say(&bold("Every decision above is in the hash-chained audit log:"));
    let log = dir.path().join("audit.jsonl");
    let report = agent_safe_audit::verify(&log)?;
    say(&format!(
        "   VALID={} — {} entries, {} error(s)",
        report.errors.is_empty(),
        report.entries,
        report.errors.len()
    ));

    say("");
    say(&bold("Tampering with one entry is detected:"));
    let original = std::fs::read_to_string(&log)?;
    let tampered = original.replacen("\"decision\": \"deny\"", "\"decision\": \"allow\"", 1);
    let tampered_path = dir.path().join("audit-tampered.jsonl");
    std::fs::write(&tampered_path, tampered)?;
    let tampered_report = agent_safe_audit::verify(&tampered_path)?;
    for e in &tampered_report.errors {
        say(&format!("   - {}", e.message));
    }
    say(&format!("   {}", json!({"tampered_entries_detected": tampered_report.errors.len()})));

    let kept = args.keep.then(|| dir.keep());
    if let Some(kept) = &kept {
        say(&format!("\nDemo files kept in `{}`.", kept.display()));
    }
    if !text {
        let errors: Vec<&str> = tampered_report.errors.iter().map(|e| e.message.as_str()).collect();
        crate::output::json(&json!({
            "decisions": decisions,
            "audit": {"valid": report.errors.is_empty(), "entries": report.entries},
            "tampered_copy_errors": errors,
            "kept_directory": kept,
        }))?;
    }
    Ok(exit::OK)
}
