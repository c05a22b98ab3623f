//! Tests for the resolver: SPEC §9 messages, scope and TTL, vault failures, revocation.

use std::sync::Arc;

use agent_safe_core::{Credential, Secret};
use serde_json::json;
use time::Duration;

use super::*;
use crate::env::EnvVarVault;
use crate::test_support::{
    FailingVault, SECRET, T0, Tickets, action_yaml, clock, now, params, registry,
};

const SCALE_PARAMS: &str =
    "  - {name: namespace, type: string, constraints: {pattern: '^[a-z0-9-]+$'}}
  - {name: deployment, type: string}
";
const SCALE_CREDENTIALS: &str = "credentials:
  type: kubernetes
  fields:
    verbs: [get, patch]
    resource_names: ['{{ params.deployment }}']
    namespaces: ['{{ params.namespace }}']
  ttl: 120
";

struct Setup {
    clock: Arc<agent_safe_core::ManualClock>,
    tickets: Tickets,
    vault: Arc<EnvVarVault>,
    resolver: CredentialResolver,
}

fn setup() -> Setup {
    let clock = clock();
    let registry = registry(&[
        action_yaml("scale", SCALE_PARAMS, SCALE_CREDENTIALS),
        action_yaml("plain", "  - {name: x, type: string}\n", ""),
        action_yaml("other", "  - {name: x, type: string}\n", "credentials: {type: gcp}\n"),
    ]);
    let vault = Arc::new(
        EnvVarVault::new(clock.clone())
            .with_env_lookup(|_| None)
            .with_static_token("kubernetes", Secret::new(SECRET.to_owned())),
    );
    let resolver = CredentialResolver::new(registry, vault.clone());
    Setup { tickets: Tickets::new(&clock), clock, vault, resolver }
}

/// Resolves a ticket for `action` with `p`; `Ok(())` or `Err(message)`.
#[track_caller]
fn check(s: &Setup, action: &str, p: serde_json::Value, expected: Result<(), &str>) {
    let ticket = s.tickets.validated(action, &params(p));
    match (now(s.resolver.resolve(&ticket)), expected) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(message)) => {
            assert_eq!(e.to_string(), message, "{action}");
            assert!(!format!("{e:?}").contains(SECRET));
        }
        (got, expected) => panic!("{action}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn resolves_the_scope_with_its_ttl_from_the_ticket_params() {
    let s = setup();
    let ticket =
        s.tickets.validated("scale", &params(json!({"namespace": "dev", "deployment": "web"})));
    let credential = now(s.resolver.resolve(&ticket)).unwrap();
    assert_eq!(credential.kind, "kubernetes");
    assert_eq!(credential.ticket_nonce, ticket.ticket().nonce);
    assert_eq!(credential.expires_at, T0 + Duration::seconds(120));
    assert_eq!(
        json!(credential.scope),
        json!({"type": "kubernetes", "ttl": 120, "fields": {
            "namespaces": ["dev"], "resource_names": ["web"], "verbs": ["get", "patch"]}})
    );
    assert_eq!(json!(credential.payload.expose()), json!({"token": SECRET}));
    assert_eq!(s.resolver.scope_for(&ticket).unwrap(), credential.scope);
    assert!(s.vault.is_issued(&credential.credential_id));

    assert_eq!(now(s.resolver.revoke(&credential)), None);
    assert!(!s.vault.is_issued(&credential.credential_id));
    s.clock.advance(Duration::seconds(1));
}

#[test]
fn errors_have_the_python_messages_and_issue_nothing() {
    let s = setup();
    let ok = json!({"namespace": "dev", "deployment": "web"});
    check(&s, "scale", ok.clone(), Ok(()));
    check(&s, "ghost", ok, Err("Action not found in registry: ghost"));
    check(
        &s,
        "plain",
        json!({"x": "y"}),
        Err("Action 'plain' does not declare a credentials block"),
    );
    check(
        &s,
        "other",
        json!({"x": "y"}),
        Err("Vault error: no credential configured for type `gcp`: set the environment variable \
             `AGENT_SAFE_CRED_GCP` or configure a static credential for `gcp`"),
    );
    check(
        &s,
        "scale",
        json!({"namespace": "dev", "deployment": "*"}),
        Err("invalid credential scope for action `scale`: scope field `resource_names[0]`: the \
             value of `params.deployment` contains `*`, which a plain token may not contain, and \
             parameter `deployment` declares no pattern that allows it"),
    );
    check(
        &s,
        "scale",
        json!({"namespace": "kube-system,default", "deployment": "web"}),
        Err("invalid credential scope for action `scale`: scope field `namespaces[0]`: the \
             value of `params.namespace` is not a plain token (it contains `,`) and does not \
             match the pattern of parameter `namespace`"),
    );
    check(
        &s,
        "scale",
        json!({"namespace": "dev"}),
        Err("invalid credential scope for action `scale`: scope field `resource_names[0]` \
             refers to `params.deployment`, which the ticket does not carry"),
    );
    assert_eq!(s.vault.issued_count(), 1, "only the valid request reached the vault");
}

#[test]
fn vault_failures_are_reported_and_revocation_never_fails() {
    let s = setup();
    let failing = Arc::new(FailingVault::default());
    let registry = registry(&[action_yaml("scale", SCALE_PARAMS, SCALE_CREDENTIALS)]);
    // A resolver may also borrow its registry.
    let resolver = CredentialResolver::new(&*registry, failing.clone());
    let ticket =
        s.tickets.validated("scale", &params(json!({"namespace": "dev", "deployment": "web"})));
    let err = now(resolver.resolve(&ticket)).unwrap_err();
    assert_eq!(err.to_string(), "Vault error: backend unreachable");

    let credential = now(s.resolver.resolve(&ticket)).unwrap();
    let warning = now(resolver.revoke(&credential)).unwrap();
    assert_eq!(
        warning.to_string(),
        format!(
            "could not revoke credential `{}`: revocation endpoint down",
            credential.credential_id
        )
    );
    assert_eq!(*failing.revoked.lock().unwrap(), std::slice::from_ref(&credential.credential_id));
    assert!(!format!("{warning:?} {resolver:?}").contains(SECRET));
}

#[test]
fn with_credential_always_revokes() {
    let s = setup();
    let ticket =
        s.tickets.validated("scale", &params(json!({"namespace": "dev", "deployment": "web"})));
    let mut seen = None;
    let (outcome, warning) = now(s.resolver.with_credential(&ticket, |c: &Credential| {
        seen = Some(c.credential_id.clone());
        assert!(s.vault.is_issued(&c.credential_id), "usable while the closure runs");
        Box::pin(std::future::ready(Err::<(), _>("executor failed")))
    }))
    .unwrap();
    assert_eq!(outcome, Err("executor failed"));
    assert_eq!(warning, None);
    assert!(!s.vault.is_issued(&seen.unwrap()), "revoked after a failed execution too");
    assert_eq!(s.vault.issued_count(), 0);

    // No credential, nothing to run or revoke.
    let bad = s.tickets.validated("scale", &params(json!({"namespace": "*", "deployment": "web"})));
    let mut ran = false;
    let result = now(s.resolver.with_credential(&bad, |_| {
        ran = true;
        Box::pin(std::future::ready(()))
    }));
    assert!(result.is_err() && !ran);
}
