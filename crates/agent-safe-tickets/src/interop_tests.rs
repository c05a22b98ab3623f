//! Interop with the Python implementation: tokens it minted verify here, and the tokens minted
//! here (verified by Python, see `tests/data/tickets/README.md`) still verify here.

use std::sync::Arc;

use agent_safe_core::{Clock, DelegationLink, ManualClock, Params};
use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

use crate::test_support::T0;
use crate::{
    Expected, IdentityManager, MemoryNonceStore, SigningKey, TicketValidator, params_digest,
};

const PYTHON: &str = include_str!("../../../tests/data/tickets/python-fixtures.json");
const RUST: &str = include_str!("../../../tests/data/tickets/rust-minted.json");

fn load(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn tools(
    data: &Value,
    now: time::OffsetDateTime,
) -> (IdentityManager, TicketValidator, Arc<ManualClock>) {
    let key = SigningKey::hs256_from_str(data["signing_key"].as_str().unwrap()).unwrap();
    let issuer = data["issuer"].as_str().unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let ids = IdentityManager::new(key.clone(), issuer, clock.clone());
    let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
    let tickets = TicketValidator::new(key.verifying_key(), issuer, clock.clone(), nonces);
    (ids, tickets, clock)
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap_or_else(|| panic!("{path:?}"))
}

#[test]
fn python_identity_and_delegation_tokens_verify() {
    let data = load(PYTHON);
    let (ids, _, clock) = tools(&data, T0);

    let deployer = ids.validate(str_of(&data, &["identity_tokens", "deployer"])).unwrap();
    assert_eq!(deployer.agent_id, "deploy-bot");
    assert_eq!(deployer.agent_name, "Déploiement ✓");
    assert_eq!(deployer.roles, ["deployer"]);
    assert_eq!(deployer.groups, ["platform"]);
    assert_eq!(deployer.issued_at, Some(T0));
    assert_eq!(deployer.expires_at, Some(datetime!(2036-11-23 09:27:07 UTC)));
    assert_eq!(deployer.delegation_depth, 0);

    let orchestrator = ids.validate(str_of(&data, &["identity_tokens", "orchestrator"])).unwrap();
    assert_eq!(orchestrator.agent_id, "orchestrator");
    assert_eq!(orchestrator.agent_name, "");
    assert_eq!(orchestrator.roles, ["deployer", "reader"]);

    let worker =
        ids.validate(str_of(&data, &["delegation_tokens", "worker-1 from orchestrator"])).unwrap();
    assert_eq!(worker.agent_id, "worker-1");
    assert_eq!(worker.agent_name, "worker");
    assert_eq!(worker.roles, ["deployer"]);
    assert!(worker.groups.is_empty());
    assert_eq!(worker.delegation_depth, 1);
    assert_eq!(worker.delegated_roles, ["deployer"]);
    assert_eq!(
        worker.delegation_chain,
        [DelegationLink {
            agent_id: "orchestrator".into(),
            agent_name: String::new(),
            roles: vec!["deployer".into(), "reader".into()],
            groups: vec!["platform".into()],
            delegated_at: Some(datetime!(2026-11-26 09:27:07.420436 UTC)),
        }]
    );

    // The Python tokens obey our clock: one second before their iat they are not yet valid.
    clock.set(T0 - Duration::seconds(1));
    assert_eq!(
        ids.validate(str_of(&data, &["identity_tokens", "deployer"])).unwrap_err().to_string(),
        "Invalid token: The token is not yet valid (iat)"
    );
    // With another key they fail the signature.
    let other = IdentityManager::new(SigningKey::generate_hs256(), "agent-safe", clock);
    assert_eq!(
        other.validate(str_of(&data, &["identity_tokens", "deployer"])).unwrap_err().to_string(),
        "Invalid token: Signature verification failed"
    );
}

#[test]
fn python_execution_tickets_verify_once() {
    let data = load(PYTHON);
    let (_, tickets, _) = tools(&data, T0 + Duration::minutes(1));
    let token = str_of(&data, &["execution_tickets", "scale-deployment dev/test-app"]);
    let expected_params: Params =
        serde_json::from_value(data["ticket_claims"]["params"].clone()).unwrap();
    let claims = &data["ticket_claims"];
    let expected = Expected {
        action: Some("scale-deployment"),
        target: Some("dev/test-app"),
        params: Some(&expected_params),
    };
    let v = tickets.verify(token, &expected).unwrap();
    assert_eq!(v.params_digest(), None, "Python tickets carry no digest");
    assert_eq!(v.ticket().action, str_of(claims, &["action"]));
    assert_eq!(v.ticket().target, str_of(claims, &["target"]));
    assert_eq!(v.ticket().caller, str_of(claims, &["caller"]));
    assert_eq!(v.ticket().audit_id, str_of(claims, &["audit_id"]));
    assert_eq!(v.ticket().nonce, str_of(claims, &["nonce"]));
    assert_eq!(json!(v.ticket().params), claims["params"]);
    assert_eq!(v.ticket().issued_at, T0);
    assert_eq!(v.ticket().token, token);
    assert_eq!(
        tickets.validate(token, None, None, None).reason,
        "Ticket has already been used (replay detected)"
    );
}

#[test]
fn python_decision_tickets_bind_their_params_exactly() {
    let data = load(PYTHON);
    let (_, tickets, clock) = tools(&data, T0 + Duration::minutes(1));
    for ticket in data["decision_tickets"].as_array().unwrap() {
        let token = str_of(ticket, &["token"]);
        let params: Params = serde_json::from_value(ticket["params"].clone()).unwrap();
        let mut changed = params.clone();
        changed.insert("namespace".into(), json!("production"));
        let action = str_of(ticket, &["action"]);
        let target = str_of(ticket, &["target"]);
        // No digest in a Python ticket: the params claim itself must equal the expected params.
        let mismatch = tickets.validate(token, Some(action), Some(target), Some(&changed));
        assert_eq!(
            mismatch.reason,
            format!(
                "Params mismatch: ticket params digest is '{}', expected '{}'",
                params_digest(&params),
                params_digest(&changed)
            )
        );
        let ok = tickets.validate(token, Some(action), Some(target), Some(&params));
        assert!(ok.valid, "{ok:?}");
        let t = ok.ticket.unwrap();
        assert_eq!(t.nonce, str_of(ticket, &["nonce"]));
        assert_eq!(t.caller, str_of(ticket, &["caller"]));
        assert_eq!(t.expires_at - t.issued_at, Duration::minutes(5));
    }
    // Five minutes after issue, a decision ticket has expired.
    clock.set(T0 + Duration::minutes(5));
    let first = str_of(&data["decision_tickets"][0], &["token"]);
    assert_eq!(tickets.inspect(first).reason, "Ticket has expired");
}

#[test]
fn rust_minted_tokens_still_verify_here() {
    let data = load(RUST);
    let minted = datetime!(2026-11-26 10:00 UTC);
    let (ids, tickets, clock) = tools(&data, minted + Duration::minutes(1));
    let deployer = ids.validate(str_of(&data, &["identity_tokens", "deployer"])).unwrap();
    assert_eq!(deployer.agent_id, "deploy-bot");
    assert_eq!(deployer.agent_name, "Déploiement ✓");
    assert_eq!(deployer.expires_at, Some(minted + Duration::days(3652)));
    let worker =
        ids.validate(str_of(&data, &["delegation_tokens", "worker-1 from orchestrator"])).unwrap();
    assert_eq!(worker.delegation_depth, 1);
    assert_eq!(worker.delegation_chain[0].agent_id, "orchestrator");
    assert_eq!(
        worker.delegation_chain[0].delegated_at,
        Some(minted + Duration::microseconds(123_456))
    );

    let params: Params = serde_json::from_value(data["ticket_params"].clone()).unwrap();
    let digest = str_of(&data, &["ticket_params_digest"]);
    assert_eq!(params_digest(&params), digest, "digest is stable");
    for name in ["no-aud", "aud-agent-safe-runner"] {
        let token = str_of(&data, &["execution_tickets", name, "token"]);
        let expected = Expected {
            action: Some("scale-deployment"),
            target: Some("dev/test-app"),
            params: Some(&params),
        };
        let v = tickets.verify(token, &expected).unwrap();
        assert_eq!(v.params_digest(), Some(digest), "{name}");
        assert_eq!(v.ticket().nonce, str_of(&data, &["execution_tickets", name, "nonce"]));
    }
    assert!(clock.now() > minted);
}
