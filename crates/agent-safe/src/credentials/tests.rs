//! SDK credentials: resolving without consuming the ticket, refusals, revocation, redaction.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use agent_safe_core::{ManualClock, Secret};
use agent_safe_tickets::{MemoryNonceStore, NonceStore, SigningKey, TicketIssuer};
use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::{CheckRequest, DurabilityMode};

const KEY: &str = "sdk-test-key-0123456789abcdef0123456789abcdef";
const SECRET: &str = "sdk-s3cr3t-kube-token";

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

/// Polls once: the env vault never waits.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("not ready"),
    }
}

struct Setup {
    safe: AgentSafe,
    clock: Arc<ManualClock>,
    nonces: Arc<MemoryNonceStore>,
    _dir: tempfile::TempDir,
}

fn setup(vault: bool, key: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC)));
    let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
    let mut builder = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.path().join("audit.jsonl"))
        .durability(DurabilityMode::Buffered)
        .clock(clock.clone())
        .nonce_store(nonces.clone());
    if key {
        builder = builder.signing_key(SigningKey::hs256_from_str(KEY).unwrap());
    }
    if vault {
        let vault = EnvVarVault::new(clock.clone())
            .with_env_lookup(|_| None)
            .with_static_token("kubernetes", Secret::new(SECRET.to_owned()));
        builder = builder.credential_vault(Arc::new(vault));
    }
    Setup { safe: builder.build().unwrap(), clock, nonces, _dir: dir }
}

/// An ALLOW ticket for restarting `dev/test-app`.
fn allowed_ticket(s: &Setup) -> agent_safe_core::ExecutionTicket {
    let request = CheckRequest::new("restart-deployment")
        .target("dev/test-app")
        .param("namespace", "dev")
        .param("deployment", "test-app");
    s.safe.check(&request).unwrap().ticket.expect("ALLOW with a ticket")
}

#[track_caller]
fn check_err(s: &Setup, token: &str, expected: &str) {
    let err = now(s.safe.resolve_credentials(token)).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert!(!format!("{err:?}").contains(SECRET));
}

#[test]
fn resolves_scoped_credentials_without_consuming_the_ticket() {
    let s = setup(true, true);
    let ticket = allowed_ticket(&s);
    let first = now(s.safe.resolve_credentials(&ticket.token)).unwrap();
    assert_eq!(first.kind, "kubernetes");
    assert_eq!(first.ticket_nonce, ticket.nonce);
    assert_eq!(first.scope.fields["namespaces"], json!(["dev"]));
    assert_eq!(first.scope.fields["resource_names"], json!(["test-app"]));
    assert_eq!(first.expires_at, datetime!(2026-02-24 12:05 UTC));
    assert_eq!(first.payload.expose()["token"], SECRET);
    // Not consumed: resolvable again, and still executable once.
    let second = now(s.safe.resolve_credentials(&ticket.token)).unwrap();
    assert_ne!(first.credential_id, second.credential_id);
    assert!(!s.nonces.contains(&ticket.nonce).unwrap());

    assert_eq!(now(s.safe.revoke_credential(&first)).unwrap(), None);
    for text in [format!("{first:?}"), format!("{:?}", s.safe)] {
        assert!(!text.contains(SECRET), "{text}");
    }

    // Once the runner consumed the ticket (same nonce store), it yields no more credentials.
    s.nonces.check_and_set(&ticket.nonce, ticket.expires_at).unwrap();
    check_err(&s, &ticket.token, "invalid ticket: Ticket has already been used (replay detected)");
}

#[test]
fn refusals() {
    let s = setup(true, true);
    let ticket = allowed_ticket(&s);
    check_err(&s, "not-a-token", "invalid ticket: Invalid ticket: Not enough segments");
    s.clock.advance(time::Duration::minutes(6));
    check_err(&s, &ticket.token, "invalid ticket: Ticket has expired");

    // A ticket signed with the key but for params the plain-token rule refuses (e.g. minted
    // before a pattern was relaxed) gets no credential.
    let issuer =
        TicketIssuer::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", s.clock.clone());
    let params = json!({"namespace": "dev,kube-system", "deployment": "test-app"});
    let wide = issuer
        .issue("restart-deployment", "dev/test-app", "bot", params.as_object().unwrap(), "evt-1")
        .unwrap();
    check_err(
        &s,
        &wide.token,
        "invalid credential scope for action `restart-deployment`: scope field `namespaces[0]`: \
         the value of `params.namespace` is not a plain token (it contains `,`) and does not \
         match the pattern of parameter `namespace`",
    );
    let unknown = issuer.issue("drop-database", "x", "bot", &Default::default(), "evt-2").unwrap();
    check_err(&s, &unknown.token, "Action not found in registry: drop-database");

    let no_vault = setup(false, true);
    let t = allowed_ticket(&no_vault);
    check_err(
        &no_vault,
        &t.token,
        "no credential vault configured: set one with `Builder::credential_vault`",
    );

    let no_key = setup(true, false);
    check_err(
        &no_key,
        "eyJ.x.y",
        "no signing key configured: execution tickets cannot be validated",
    );
}
