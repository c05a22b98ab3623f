//! Hooks for long-running hosts of the SDK (`agent-safe serve`): the policy revision recorded in
//! every decision's audit event, an observer of audit-append latency, and ticket verification
//! on the facade's key and persistent nonce store.
//!
//! The revision is written into the decision event's `context` as `policy_revision` (an
//! additive key: verifiers, the Python one included, hash events as stored).

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_safe_tickets::{Expected, TicketValidation};
use serde_json::Value;

use crate::{AgentSafe, Builder, Error, ExecuteError};

/// Told how long each decision's audit append took (e.g. for a latency histogram).
pub trait AppendObserver: Send + Sync + std::fmt::Debug {
    /// One decision event was appended in `elapsed`.
    fn appended(&self, elapsed: Duration);
}

/// Whether [`AgentSafe::verify_ticket`] uses up the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// Record the nonce in the persistent store: the ticket cannot be used again (what an
    /// executor does).
    Consume,
    /// Check everything, an already used nonce included, but record nothing.
    Keep,
}

/// The observation settings of one facade.
#[derive(Debug, Default, Clone)]
pub(crate) struct Settings {
    revision: Option<String>,
    observer: Option<Arc<dyn AppendObserver>>,
}

impl Builder {
    /// Records `revision` (e.g. a digest of the loaded policy files) in the `context` of every
    /// decision's audit event, as `policy_revision`.
    pub fn policy_revision(mut self, revision: impl Into<String>) -> Self {
        self.observe.revision = Some(revision.into());
        self
    }

    /// Tells `observer` how long each decision's audit append took.
    pub fn append_observer(mut self, observer: Arc<dyn AppendObserver>) -> Self {
        self.observe.observer = Some(observer);
        self
    }
}

impl AgentSafe {
    /// The revision given to [`Builder::policy_revision`], if any.
    pub fn policy_revision(&self) -> Option<&str> {
        self.inner.observe.revision.as_deref()
    }

    /// Verifies an execution ticket the way an executor would (signature, issuer, type, expiry,
    /// single use, and the action, target and params in `expected`), with the facade's key and
    /// nonce store; `nonce` says whether it is used up. Errors only without a signing key.
    pub fn verify_ticket(
        &self,
        token: &str,
        expected: &Expected<'_>,
        nonce: NonceUse,
    ) -> Result<TicketValidation, Error> {
        let validator = self.inner.ticket_validator.as_ref().ok_or(ExecuteError::NoSigningKey)?;
        Ok(match nonce {
            NonceUse::Consume => validator.verify(token, expected).into(),
            NonceUse::Keep => validator.verify_without_consuming(token, expected).into(),
        })
    }

    /// The decision event's context with the policy revision added (when one is set).
    pub(crate) fn with_policy_revision(&self, context: Option<Value>) -> Option<Value> {
        let Some(revision) = &self.inner.observe.revision else { return context };
        let mut map = match context {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        map.insert("policy_revision".into(), Value::String(revision.clone()));
        Some(Value::Object(map))
    }

    /// Reports an append that started at `started` to the observer (when one is set).
    pub(crate) fn observe_append(&self, started: Instant) {
        if let Some(observer) = &self.inner.observe.observer {
            observer.appended(started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use agent_safe_audit::read_events;

    use super::*;
    use crate::CheckRequest;

    #[derive(Debug, Default)]
    struct Count(Mutex<u32>);

    impl AppendObserver for Count {
        fn appended(&self, _elapsed: Duration) {
            *self.0.lock().unwrap() += 1;
        }
    }

    fn catalog() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
    }

    #[track_caller]
    fn check(revision: Option<&str>, expected_context: Option<Value>) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let count = Arc::new(Count::default());
        let mut builder = AgentSafe::builder()
            .registry(catalog().join("actions"))
            .policies(catalog().join("policies"))
            .inventory(catalog().join("inventory.yaml"))
            .audit_log(&log)
            .append_observer(count.clone());
        if let Some(r) = revision {
            builder = builder.policy_revision(r);
        }
        let safe = builder.build().unwrap();
        assert_eq!(safe.policy_revision(), revision);
        safe.check(
            &CheckRequest::new("restart-deployment")
                .target("dev/test-app")
                .caller("bot")
                .param("namespace", "dev")
                .param("deployment", "test-app"),
        )
        .unwrap();
        let events = read_events(&log).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.context, expected_context);
        assert_eq!(*count.0.lock().unwrap(), 1);
        assert!(agent_safe_audit::verify(&log).unwrap().errors.is_empty());
    }

    #[test]
    fn revision_goes_into_the_decision_context() {
        check(None, None);
        check(Some("sha256:abc"), Some(serde_json::json!({"policy_revision": "sha256:abc"})));
    }

    #[test]
    fn verify_ticket_needs_a_key() {
        let safe = AgentSafe::builder()
            .registry(catalog().join("actions"))
            .policies(catalog().join("policies"))
            .build()
            .unwrap();
        let err = safe.verify_ticket("x.y.z", &Expected::default(), NonceUse::Keep).unwrap_err();
        assert!(err.to_string().contains("no signing key"), "{err}");
    }
}
