//! Governed execution in the SDK: `AgentSafe::execute` runs an execution ticket through the
//! runner (`agent-safe-runner`) with the SDK's registry, audit log, signing key, persistent
//! nonce store and credential vault; `AgentSafe::dry_run` checks one without consuming it.
//!
//! The nonce store is the one the builder was given ([`Builder::nonce_store`]), else the file
//! named by [`Builder::nonce_store_path`] or `nonce_store:` in `agent-safe.yaml`, else
//! `<audit log>.nonces` next to the audit log, else (no audit log) an in-memory store that
//! knows only this process's tickets. Without a signing key no store is opened (tickets cannot
//! be validated anyway).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_safe_audit::AuditError;
use agent_safe_core::{AuditEvent, Clock, Executor, Secret};
use agent_safe_registry::Registry;
use agent_safe_runner::{AuditSink, RunOutcome, Runner, RunnerConfig, RunnerError};
use agent_safe_tickets::{NonceStore, NonceStoreError};

use crate::{AgentSafe, Builder, Error};

/// Options of one [`AgentSafe::execute`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecuteOptions {
    /// Limit for the executor's `execute` call (default 300 s), enforced by the runner.
    pub timeout: Option<Duration>,
    /// Limit for each other step: credential resolution, prechecks, each state read
    /// (default 30 s).
    pub step_timeout: Option<Duration>,
    /// Run actions that declare credentials with the executor's own credentials when no
    /// vault is configured (recorded in the audit event) instead of refusing them.
    pub ambient_credentials: bool,
}

impl ExecuteOptions {
    fn config(self) -> RunnerConfig {
        let d = RunnerConfig::default();
        RunnerConfig {
            timeout: self.timeout.unwrap_or(d.timeout),
            step_timeout: self.step_timeout.unwrap_or(d.step_timeout),
            ambient_credentials: self.ambient_credentials,
        }
    }
}

/// Why the SDK could not run a ticket (anything about the ticket itself is an outcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// No signing key, so tickets cannot be validated.
    #[error("no signing key configured: execution tickets cannot be validated")]
    NoSigningKey,
    /// The outcome could not be recorded in the audit log.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The persistent nonce store could not be opened.
    #[error("cannot open the nonce store: {0}")]
    NonceStore(#[source] NonceStoreError),
    /// Ambient credentials were asked for, but `credentials.require_scoped` is set.
    #[error(
        "credentials.require_scoped is set: ambient credentials (the executor's own) are refused; \
         configure a vault that enforces scope (sts)"
    )]
    AmbientNotScoped,
}

impl Builder {
    /// The file of the persistent single-use nonce store `execute` uses (default:
    /// `nonce_store:` in `agent-safe.yaml`, else `<audit log>.nonces`). Ignored when a store
    /// is given with [`Builder::nonce_store`].
    pub fn nonce_store_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.overrides.nonce_store = Some(path.into());
        self
    }
}

/// The nonce store the SDK uses: the explicit one, else the database's with `state: {backend:
/// postgres}`, else a file store at `path`, else at `<audit_log>.nonces`, else none (the
/// validator then keeps nonces in memory). See [`crate::state::SharedState::nonce_store`].
pub(crate) fn nonce_store(
    explicit: Option<Arc<dyn NonceStore>>,
    state: &crate::state::SharedState,
    path: Option<PathBuf>,
    audit_log: Option<&Path>,
    durability: agent_safe_audit::Durability,
    clock: &Arc<dyn Clock>,
) -> Result<Option<Arc<dyn NonceStore>>, crate::state::StateError> {
    if explicit.is_some() {
        return Ok(explicit);
    }
    let path = path.or_else(|| audit_log.map(crate::default_nonce_store));
    state.nonce_store(path.as_deref(), durability, clock)
}

/// The key for the digests of sensitive state values, derived from the signing key.
pub(crate) fn state_key(key: Option<&agent_safe_tickets::SigningKey>) -> Option<Secret<[u8; 32]>> {
    key.map(|k| k.derive_secret(agent_safe_runner::STATE_KEY_CONTEXT))
}

/// The SDK as the runner's registry and audit sink.
#[derive(Debug, Clone)]
struct Handle(AgentSafe);

impl Deref for Handle {
    type Target = Registry;

    fn deref(&self) -> &Registry {
        self.0.registry()
    }
}

impl AuditSink for Handle {
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        match self.0.audit_log() {
            Some(log) => log.append(event).map(|_| ()),
            None => Ok(()),
        }
    }
}

impl AgentSafe {
    fn runner(
        &self,
        executor: Arc<dyn Executor>,
        options: ExecuteOptions,
    ) -> Result<Runner<Handle>, Error> {
        let validator = self.inner.ticket_validator.clone().ok_or(ExecuteError::NoSigningKey)?;
        if self.inner.require_scoped && options.ambient_credentials {
            return Err(ExecuteError::AmbientNotScoped.into());
        }
        let mut runner =
            Runner::new(executor, Handle(self.clone()), validator, self.inner.clock.clone())
                .with_config(options.config());
        if self.audit_log().is_some() {
            runner = runner.with_audit(Arc::new(Handle(self.clone())));
        }
        if let Some(vault) = &self.inner.credential_vault {
            runner = runner.with_vault(vault.clone());
        }
        if let Some(key) = &self.inner.state_key {
            runner = runner.with_state_key(key);
        }
        Ok(runner)
    }

    /// Runs the action `ticket_token` permits through `executor`, once: the ticket is
    /// validated and consumed in the persistent nonce store, the declared credential comes
    /// from the configured vault (and is revoked afterwards), prechecks, state capture and the
    /// runner's timeout apply, and the outcome (also a rejected ticket) is in the audit log
    /// before this returns. See `docs/runner.md`. Needs a tokio runtime.
    ///
    /// Use [`DryRunExecutor`](agent_safe_runner::DryRunExecutor) to exercise the lifecycle
    /// without side effects (the ticket is still consumed).
    pub async fn execute(
        &self,
        ticket_token: &str,
        executor: Arc<dyn Executor>,
        options: ExecuteOptions,
    ) -> Result<RunOutcome, Error> {
        let runner = self.runner(executor, options)?;
        Ok(runner.run(ticket_token).await.map_err(ExecuteError::from)?)
    }

    /// Reports what [`execute`](Self::execute) would do with `ticket_token` without consuming
    /// it, issuing a credential, executing or auditing anything.
    pub async fn dry_run(
        &self,
        ticket_token: &str,
        options: ExecuteOptions,
    ) -> Result<RunOutcome, Error> {
        let runner = self.runner(Arc::new(agent_safe_runner::DryRunExecutor), options)?;
        Ok(runner.dry_run(ticket_token).await)
    }
}

#[cfg(test)]
mod tests;
