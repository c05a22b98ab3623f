//! Just-in-time credentials in the SDK: the credential vault option, `resolve_credentials` and
//! `revoke_credential` (SPEC §9), and the `agent-safe-credentials` crate re-exported.
//!
//! Resolving checks the ticket (signature, issuer, type, expiry, not already used) **without
//! consuming it**: the ticket is still to be executed, and the runner consumes it then. A
//! ticket whose nonce was already used is refused: the SDK uses the runner's persistent store
//! (by default `<audit log>.nonces`, see [`Builder::nonce_store`](crate::Builder::nonce_store)
//! and [`Builder::nonce_store_path`](crate::Builder::nonce_store_path)); without an audit log
//! or a configured store, an in-memory store knows only this process's uses.

use std::sync::Arc;

use agent_safe_core::{Clock, Credential};
use agent_safe_tickets::{
    Expected, KeySet, MemoryNonceStore, NonceStore, SigningKey, TicketError, TicketValidator,
};

pub use agent_safe_credentials::*;

use crate::{AgentSafe, Builder, Error};

/// Why the SDK could not resolve or revoke a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// No vault was configured.
    #[error("no credential vault configured: set one with `Builder::credential_vault`")]
    NoVault,
    /// No signing key, so tickets cannot be validated.
    #[error("no signing key configured: execution tickets cannot be validated")]
    NoSigningKey,
    /// The ticket did not validate.
    #[error("invalid ticket: {0}")]
    InvalidTicket(#[source] TicketError),
    /// The credential could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

impl Builder {
    /// The vault `resolve_credentials` gets credentials from (e.g. an [`EnvVarVault`], a
    /// [`FileVault`], or one from [`build_vault`]).
    pub fn credential_vault(mut self, vault: Arc<dyn CredentialVault>) -> Self {
        self.credential_vault = Some(vault);
        self
    }

    /// The nonce store `execute` consumes tickets in and `resolve_credentials` consults
    /// (default: the file store of [`Builder::nonce_store_path`], else `<audit log>.nonces`,
    /// else an in-memory store, which knows only this process's tickets).
    pub fn nonce_store(mut self, store: Arc<dyn NonceStore>) -> Self {
        self.nonce_store = Some(store);
        self
    }
}

/// The validator `resolve_credentials` uses: the signing key's verifying half, the issuer, the
/// clock, and the configured nonce store (or an in-memory one).
pub(crate) fn ticket_validator(
    key: Option<&SigningKey>,
    issuer: &str,
    clock: &Arc<dyn Clock>,
    nonces: Option<Arc<dyn NonceStore>>,
    audience: agent_safe_tickets::Audience,
) -> Option<TicketValidator> {
    let key = key?;
    let nonces = nonces.unwrap_or_else(|| Arc::new(MemoryNonceStore::new(clock.clone())));
    Some(
        TicketValidator::new(KeySet::from(key), issuer, clock.clone(), nonces)
            .with_audience(audience),
    )
}

impl AgentSafe {
    /// What a long-running front should warn about when it starts: the credentialed actions
    /// that `executor` would run on credentials not limited to their scope (the executor's
    /// own with `ambient`, or a vault that cannot enforce scope). `None` when there are none.
    pub fn credential_warning(
        &self,
        executor: &crate::ExecutorChoice,
        ambient: bool,
    ) -> Option<String> {
        if !executor.uses_credentials() {
            return None;
        }
        let actions: Vec<&str> = self
            .registry()
            .iter()
            .filter(|a| a.definition().credentials.is_some())
            .map(|a| a.name().as_str())
            .collect();
        if actions.is_empty() {
            return None;
        }
        let how = match self.credential_vault() {
            Some(vault) if vault.enforces_scope() => return None,
            Some(vault) => {
                format!("credentials the `{}` vault does not limit to their scope", vault.kind())
            }
            None if ambient => "the executor's own (ambient) credentials".to_owned(),
            None => return None,
        };
        Some(format!(
            "{} credentialed action(s) ({}) will run on {how}; configure `credentials.vault: \
             {{type: sts | kubernetes, …}}` (scoped), or set `credentials.require_scoped: true` to refuse them",
            actions.len(),
            actions.join(", ")
        ))
    }

    /// The credential vault, when configured.
    pub fn credential_vault(&self) -> Option<&Arc<dyn CredentialVault>> {
        self.inner.credential_vault.as_ref()
    }

    /// Validates `ticket_token` without consuming it, then resolves the credential its action
    /// declares: the `credentials` scope filled from the ticket's params (plain-token rule),
    /// from the configured vault, with the scope's TTL.
    pub async fn resolve_credentials(&self, ticket_token: &str) -> Result<Credential, Error> {
        let vault = self.inner.credential_vault.clone().ok_or(CredentialError::NoVault)?;
        let validator =
            self.inner.ticket_validator.as_ref().ok_or(CredentialError::NoSigningKey)?;
        let ticket = validator
            .verify_without_consuming(ticket_token, &Expected::default())
            .map_err(CredentialError::InvalidTicket)?;
        let resolver = CredentialResolver::new(self.registry(), vault);
        let credential = resolver.resolve(&ticket).await.map_err(CredentialError::from)?;
        Ok(credential)
    }

    /// Revokes `credential` in the configured vault. A vault failure is not an error: it
    /// comes back as `Ok(Some(warning))` (the credential still expires at `expires_at`).
    pub async fn revoke_credential(
        &self,
        credential: &Credential,
    ) -> Result<Option<RevokeWarning>, Error> {
        let vault = self.inner.credential_vault.as_ref().ok_or(CredentialError::NoVault)?;
        Ok(revoke(vault.as_ref(), credential).await)
    }
}

#[cfg(test)]
mod tests;
