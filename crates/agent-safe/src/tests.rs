//! SDK behaviour: building from paths and config files, caller resolution, audit-before-return,
//! tickets, redaction and concurrent use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::{DecisionResult, ManualClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::json;
use time::macros::datetime;

use crate::{AgentSafe, BuildError, CheckError, CheckRequest, DurabilityMode, IdentityMode};

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

const KEY: &str = "sdk-test-key-0123456789abcdef0123456789abcdef";

fn key() -> SigningKey {
    SigningKey::hs256_from_str(KEY).unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC)))
}

fn safe_in(dir: &Path) -> AgentSafe {
    AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.join("audit.jsonl"))
        .signing_key(key())
        .durability(DurabilityMode::Buffered)
        .clock(clock())
        .build()
        .unwrap()
}

fn restart_dev() -> CheckRequest {
    CheckRequest::new("restart-deployment")
        .target("dev/test-app")
        .caller("deploy-bot")
        .param("namespace", "dev")
        .param("deployment", "test-app")
}

#[test]
fn decisions_are_audited_before_they_are_returned() {
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let allow = safe.check(&restart_dev()).unwrap();
    assert_eq!(allow.result, DecisionResult::Allow);
    let deny = safe.check(&CheckRequest::new("drop-database")).unwrap();
    assert_eq!(
        (deny.result, deny.reason.as_str()),
        (DecisionResult::Deny, "Unknown action: drop-database")
    );

    let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.event_id, allow.audit_id);
    assert_eq!(events[0].event.timestamp, datetime!(2026-02-24 12:00 UTC));
    assert_eq!(events[0].event.params, restart_dev().params);
    assert_eq!(events[1].event.event_id, deny.audit_id);
    assert_eq!(events[1].event.target, "unknown");
    let report = safe.verify_audit().unwrap().unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.entries, 2);
}

#[test]
fn tickets_only_for_allow() {
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let allow = safe.check(&restart_dev()).unwrap();
    let ticket = allow.ticket.expect("an ALLOW with a signing key carries a ticket");
    assert_eq!(ticket.action.as_str(), "restart-deployment");
    assert_eq!(ticket.target.as_str(), "dev/test-app");
    assert_eq!(ticket.audit_id, allow.audit_id);
    assert_eq!(ticket.params, restart_dev().params);
    let prod = safe
        .check(
            &CheckRequest::new("restart-deployment")
                .target("prod/api-server")
                .param("namespace", "prod")
                .param("deployment", "api-server"),
        )
        .unwrap();
    assert_eq!(prod.result, DecisionResult::RequireApproval);
    assert!(prod.ticket.is_none());
}

#[test]
fn callers_resolve_from_tokens_only_when_verified() {
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let identity = IdentityManager::new(key(), "agent-safe", clock());
    let hour = time::Duration::hours(1);
    let token =
        identity.create_token("deploy-bot", "", &["deployer".to_owned()], &[], hour).unwrap();
    let scale = |caller: &str| {
        safe.check(
            &CheckRequest::new("scale-deployment")
                .target("staging/api-server")
                .caller(caller)
                .param("namespace", "staging")
                .param("deployment", "api-server")
                .param("replicas", 2),
        )
        .unwrap()
    };
    let with_token = scale(&token);
    assert_eq!(
        (with_token.result, with_token.caller.as_str()),
        (DecisionResult::Allow, "deploy-bot")
    );
    // A plain id carries no roles.
    assert_eq!(scale("deploy-bot").result, DecisionResult::Deny);
    // A token signed with another key is rejected, not used as a name.
    let other = IdentityManager::new(
        SigningKey::hs256_from_str("another-key-0123456789abcdef0123456789abcdef").unwrap(),
        "agent-safe",
        clock(),
    );
    let forged = other.create_token("deploy-bot", "", &["deployer".to_owned()], &[], hour).unwrap();
    let d = scale(&forged);
    assert_eq!(d.result, DecisionResult::Deny);
    assert_eq!(d.caller.as_str(), "anonymous");
    assert!(d.reason.starts_with("Invalid caller identity: "), "{}", d.reason);
    // An expired token is rejected with the reason.
    let expired =
        identity.create_token("deploy-bot", "", &[], &[], time::Duration::seconds(-10)).unwrap();
    assert!(scale(&expired).reason.contains("expired"), "{}", scale(&expired).reason);
}

#[test]
fn a_token_without_a_signing_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .audit_log(dir.path().join("audit.jsonl"))
        .build()
        .unwrap();
    let identity = IdentityManager::new(key(), "agent-safe", clock());
    let token = identity.create_token("bot", "", &[], &[], time::Duration::hours(1)).unwrap();
    let d = safe.check(&CheckRequest::new("get-pod-logs").caller(token)).unwrap();
    assert_eq!(d.result, DecisionResult::Deny);
    assert!(d.reason.contains("no signing key is configured"), "{}", d.reason);
}

/// Issue #13: an unsigned (`alg: none`) token with an empty signature was decided as a plain
/// caller named by the token text (ALLOW on a dev target). Any JWT-shaped caller that does not
/// verify is a DENY with the reason, however it is passed.
#[test]
fn issue_13_alg_none_caller_is_denied() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let header = b64(r#"{"alg":"none","typ":"JWT"}"#);
    let claims = b64(
        r#"{"agent_id":"deploy-bot","roles":["deployer"],"iss":"agent-safe","iat":1771934400,"exp":4102444800}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let restart_dev = || {
        CheckRequest::new("restart-deployment")
            .target("dev/test-app")
            .param("namespace", "dev")
            .param("deployment", "test-app")
    };
    for token in [
        format!("{header}.{claims}."),
        format!("{header}.{claims}"),
        format!("{header}.{claims}.."),
        format!("{header}.{claims}.c2ln.extra"),
    ] {
        for req in [
            restart_dev().caller(token.clone()),
            restart_dev().caller_token(token.clone()),
            restart_dev().caller_input(&token),
        ] {
            let d = safe.check(&req).unwrap();
            assert_eq!(d.result, DecisionResult::Deny, "{token}: {}", d.reason);
            assert_eq!(d.caller.as_str(), "anonymous", "{token}");
            assert!(d.reason.starts_with("Invalid caller identity: "), "{}", d.reason);
            assert!(d.ticket.is_none());
        }
    }
    // Recorded as a denial of an anonymous caller, never under the token text.
    let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(events.len(), 12);
    assert!(
        events
            .iter()
            .all(|e| e.event.caller == "anonymous" && e.event.decision == DecisionResult::Deny)
    );
    // A plain id on the same request is still allowed (the dev rule needs no roles).
    assert_eq!(
        safe.check(&restart_dev().caller("deploy-bot")).unwrap().result,
        DecisionResult::Allow
    );
}

#[test]
fn identity_required_denies_plain_ids() {
    let dir = tempfile::tempdir().unwrap();
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.path().join("audit.jsonl"))
        .signing_key(key())
        .identity(IdentityMode::Required)
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(safe.check(&restart_dev()).unwrap().result, DecisionResult::Deny);
    let identity = IdentityManager::new(key(), "agent-safe", clock());
    let token =
        identity.create_token("deploy-bot", "", &[], &[], time::Duration::hours(1)).unwrap();
    let req = restart_dev().caller_token(token);
    assert_eq!(safe.check(&req).unwrap().result, DecisionResult::Allow);
}

#[test]
fn sensitive_params_are_redacted_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let secret = "{\"DB_PASSWORD\": \"hunter2\"}";
    let d = safe
        .check(
            &CheckRequest::new("lambda-update-function-config")
                .target("dev/thumbnailer")
                .param("region", "us-east-1")
                .param("function_name", "thumbnailer")
                .param("environment_variables", secret),
        )
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(!log.contains("hunter2"), "secret leaked into the audit log: {log}");
    assert!(log.contains("[redacted]"), "{log}; decision {:?}", d.reason);
}

#[test]
fn config_discovery_and_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        dir.path().join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\nsigning_key: {KEY}\n",
            catalog().join("actions").display(),
            catalog().join("policies").display(),
            catalog().join("inventory.yaml").display(),
        ),
    )
    .unwrap();
    let safe = AgentSafe::builder().discover(&nested).unwrap().clock(clock()).build().unwrap();
    let d = safe.check(&restart_dev()).unwrap();
    assert!(d.ticket.is_some(), "signing key comes from the config");
    assert!(dir.path().join("audit.jsonl").is_file(), "audit path is relative to the config file");

    // Explicit settings win over the file.
    let other_log = dir.path().join("explicit.jsonl");
    let safe =
        AgentSafe::builder().discover(&nested).unwrap().audit_log(&other_log).build().unwrap();
    safe.check(&restart_dev()).unwrap();
    assert!(other_log.is_file());

    // No config, no paths.
    let empty = tempfile::tempdir().unwrap();
    let err = AgentSafe::builder().discover(empty.path()).unwrap().build().unwrap_err();
    assert!(matches!(err, BuildError::MissingPaths), "{err}");
}

#[test]
fn config_errors_are_precise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-safe.yaml");
    std::fs::write(&path, "registry: actions\npolicys: policies\n").unwrap();
    let err = AgentSafe::builder().config_file(&path).unwrap_err().to_string();
    assert!(err.contains("unknown field `policys`") && err.contains("policies"), "{err}");
    assert!(err.contains(":2"), "names the line: {err}");

    let missing = AgentSafe::builder().config_file(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(missing.to_string().contains("config file not found"), "{missing}");

    // A configured inventory that does not exist is an error, not silently skipped.
    let err = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(dir.path().join("missing-inventory.yaml"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Inventory(_)), "{err}");
}

#[test]
fn many_threads_share_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    std::thread::scope(|s| {
        for t in 0..8 {
            let safe = safe.clone();
            s.spawn(move || {
                for i in 0..50 {
                    let req = restart_dev().param("deployment", json!(format!("t{t}-{i}")));
                    // The target binds `deployment`, so these are denied: still audited.
                    assert_eq!(safe.check(&req).unwrap().result, DecisionResult::Deny);
                }
            });
        }
    });
    let report = safe.verify_audit().unwrap().unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.entries, 400);
}

#[test]
fn rate_limit_and_cumulative_risk_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\n\
             rate_limit: {{max_requests: 2, window_seconds: 60}}\n\
             cumulative_risk: {{escalation_threshold: 2, deny_threshold: 100}}\n",
            catalog().join("actions").display(),
            catalog().join("policies").display(),
            catalog().join("inventory.yaml").display(),
        ),
    )
    .unwrap();
    let safe = AgentSafe::builder().discover(dir.path()).unwrap().clock(clock()).build().unwrap();
    let first = safe.check(&restart_dev()).unwrap();
    // restart-deployment on a public dev target is low risk: 1 point, below 2.
    assert_eq!((first.result, first.cumulative_risk_score), (DecisionResult::Allow, Some(1)));
    let second = safe.check(&restart_dev()).unwrap();
    assert_eq!(second.result, DecisionResult::RequireApproval);
    assert_eq!(second.escalated_from, Some(DecisionResult::Allow));
    let third = safe.check(&restart_dev()).unwrap();
    assert_eq!(
        third.reason,
        "Rate limit exceeded for caller 'deploy-bot': 2 requests per 60s window."
    );

    std::fs::write(
        dir.path().join("agent-safe.yaml"),
        "registry: a\npolicies: p\nrate_limit: {max_request: 2}\n",
    )
    .unwrap();
    let err = AgentSafe::builder().discover(dir.path()).unwrap_err().to_string();
    assert!(err.contains("max_request") && err.contains("max_requests"), "{err}");
}

#[test]
fn cumulative_risk_reaches_the_audit_context() {
    let dir = tempfile::tempdir().unwrap();
    let safe = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.path().join("audit.jsonl"))
        .durability(DurabilityMode::Buffered)
        .cumulative_risk(crate::CumulativeRiskConfig::default())
        .clock(clock())
        .build()
        .unwrap();
    let d = safe.check(&restart_dev()).unwrap();
    assert_eq!(d.cumulative_risk_score, Some(1));
    let events = agent_safe_audit::read_events(&dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(
        events[0].event.context,
        Some(json!({
            "cumulative_risk_score": 1, "cumulative_risk_class": "low",
            "cumulative_entry_count": 1, "cumulative_window_seconds": 3600.0,
        }))
    );
}

/// Issue #13 §7: the decision and its ticket are one unit. A ticket that cannot be issued
/// leaves nothing in the audit log; a decision that cannot be appended returns no ticket.
#[test]
fn an_allow_and_its_ticket_are_recorded_and_returned_together_or_not_at_all() {
    let restart_dev = || {
        CheckRequest::new("restart-deployment")
            .target("dev/test-app")
            .caller("deploy-bot")
            .param("namespace", "dev")
            .param("deployment", "test-app")
    };
    let log = |dir: &Path| dir.join("audit.jsonl");

    // Issuing fails (a ticket lifetime out of range): an error, and nothing is appended.
    let dir = tempfile::tempdir().unwrap();
    let mut safe = safe_in(dir.path());
    let failing = agent_safe_tickets::TicketIssuer::new(key(), "agent-safe", clock())
        .with_ttl(time::Duration::MAX);
    Arc::get_mut(&mut safe.inner).unwrap().tickets = Some(failing);
    let err = safe.check(&restart_dev()).unwrap_err();
    assert!(matches!(err, CheckError::Ticket(_)), "{err:?}");
    assert!(agent_safe_audit::read_events(&log(dir.path())).unwrap().is_empty());
    // A DENY needs no ticket and is still recorded.
    let deny = safe.check(&CheckRequest::new("drop-database").target("prod/api-server")).unwrap();
    assert_eq!(deny.result, DecisionResult::Deny);
    assert_eq!(agent_safe_audit::read_events(&log(dir.path())).unwrap().len(), 1);

    // Appending fails (the log was damaged behind the writer's back): an error, so the ticket
    // that was issued is never returned.
    let dir = tempfile::tempdir().unwrap();
    let safe = safe_in(dir.path());
    let first = safe.check(&restart_dev()).unwrap();
    assert!(first.ticket.is_some());
    let mut damaged = std::fs::OpenOptions::new().append(true).open(log(dir.path())).unwrap();
    std::io::Write::write_all(&mut damaged, b"not an audit entry\n").unwrap();
    let err = safe.check(&restart_dev()).unwrap_err();
    assert!(matches!(err, CheckError::Audit(_)), "{err:?}");
}
