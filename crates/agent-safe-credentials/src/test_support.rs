//! Test helpers: a manual clock, a one-poll executor, tickets that validated, a registry, and
//! vaults that fail or record what they were asked.

use std::future::{Future, ready};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use agent_safe_core::{
    ActionName, AgentId, AuditId, BoxFuture, Credential, CredentialScope, ExecutionTicket,
    ManualClock, Params, TargetId,
};
use agent_safe_registry::Registry;
use agent_safe_tickets::{
    Expected, MemoryNonceStore, SigningKey, TicketIssuer, TicketValidator, ValidatedTicket,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::vault::{CredentialVault, VaultError};

pub(crate) const T0: OffsetDateTime = datetime!(2026-02-24 12:00 UTC);

/// The secret every test vault hands out; no output may contain it.
pub(crate) const SECRET: &str = "s3cr3t-TOKEN-value-42";

pub(crate) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

/// Polls `f` once: the built-in vaults never wait.
pub(crate) fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the future was not ready"),
    }
}

pub(crate) fn params(v: Value) -> Params {
    v.as_object().cloned().expect("params must be an object")
}

/// A plain ticket (for vault tests, which take any ticket).
pub(crate) fn ticket(nonce: &str) -> ExecutionTicket {
    ExecutionTicket {
        token: "eyJ.test.token".to_owned(),
        action: ActionName::new("test"),
        target: TargetId::new("dev/app"),
        caller: AgentId::new("bot"),
        params: Params::new(),
        audit_id: AuditId::new("evt-000000000001"),
        nonce: nonce.to_owned(),
        issued_at: T0,
        expires_at: T0 + time::Duration::minutes(5),
    }
}

pub(crate) fn scope(kind: &str, ttl: u64) -> CredentialScope {
    CredentialScope { kind: kind.to_owned(), fields: Params::new(), ttl }
}

/// An action file with the given parameters and credentials block (YAML, indented by 0).
pub(crate) fn action_yaml(name: &str, parameters: &str, credentials: &str) -> String {
    format!(
        "name: {name}\nversion: 1.0.0\ndescription: Test\nrisk_class: medium\n\
         target_types: [k8s-deployment]\nparameters:\n{parameters}{credentials}"
    )
}

pub(crate) fn registry(files: &[String]) -> Arc<Registry> {
    let sources: Vec<(PathBuf, &[u8])> = files
        .iter()
        .enumerate()
        .map(|(i, text)| (PathBuf::from(format!("actions/{i}.yaml")), text.as_bytes()))
        .collect();
    Arc::new(Registry::from_sources(sources).expect("test registry loads"))
}

/// Issues and validates tickets with one key and a manual clock.
pub(crate) struct Tickets {
    issuer: TicketIssuer,
    validator: TicketValidator,
}

impl Tickets {
    pub(crate) fn new(clock: &Arc<ManualClock>) -> Self {
        let key = SigningKey::hs256_from_str("credentials-test-key-0123456789abcdef").unwrap();
        let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
        Self {
            validator: TicketValidator::new(&key, "agent-safe", clock.clone(), nonces),
            issuer: TicketIssuer::new(key, "agent-safe", clock.clone()),
        }
    }

    /// A ticket for `action` with `params`, validated (nonce consumed).
    pub(crate) fn validated(&self, action: &str, params: &Params) -> ValidatedTicket {
        let t = self.issuer.issue(action, "dev/app", "bot", params, "evt-000000000001").unwrap();
        self.validator.verify(&t.token, &Expected::default()).unwrap()
    }
}

/// A vault whose every call fails, recording revocations.
#[derive(Debug, Default)]
pub(crate) struct FailingVault {
    pub(crate) revoked: Mutex<Vec<String>>,
}

impl CredentialVault for FailingVault {
    fn kind(&self) -> &'static str {
        "failing"
    }

    fn get_credential<'a>(
        &'a self,
        _scope: &'a CredentialScope,
        _ticket: &'a ExecutionTicket,
        _ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(ready(Err(VaultError::Backend("backend unreachable".to_owned()))))
    }

    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        self.revoked.lock().unwrap().push(credential_id.to_owned());
        Box::pin(ready(Err(VaultError::Backend("revocation endpoint down".to_owned()))))
    }
}
