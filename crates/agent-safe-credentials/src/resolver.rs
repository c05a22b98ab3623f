//! The credential resolver (SPEC §9): turns a validated ticket into a credential scoped by the
//! action's `credentials` block, and revokes it afterwards.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use agent_safe_core::{BoxFuture, Credential, CredentialScope};
use agent_safe_registry::Registry;
use agent_safe_tickets::ValidatedTicket;

use crate::template::{TemplateError, render_scope};
use crate::vault::{CredentialVault, VaultError};

/// Why no credential was issued. The first three messages are the Python version's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The ticket's action is not in the registry.
    #[error("Action not found in registry: {0}")]
    ActionNotFound(String),
    /// The action declares no `credentials` block.
    #[error("Action '{0}' does not declare a credentials block")]
    NoCredentialsBlock(String),
    /// The vault refused or failed.
    #[error("Vault error: {0}")]
    Vault(#[source] VaultError),
    /// The scope could not be filled from the ticket's params (plain-token rule, missing param).
    #[error("invalid credential scope for action `{action}`: {source}")]
    Scope {
        /// The action.
        action: String,
        /// What is wrong.
        #[source]
        source: TemplateError,
    },
}

/// A revocation that failed. Revocation is best effort: the credential still expires at its
/// `expires_at`; the caller decides whether to report this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not revoke credential `{credential_id}`: {message}")]
pub struct RevokeWarning {
    /// The credential that may still be valid until it expires.
    pub credential_id: String,
    /// The vault's error message.
    pub message: String,
}

/// Resolves credentials for validated tickets: looks up the ticket's action, fills its scope
/// from the ticket's params, and asks the vault for a credential with the scope's TTL.
///
/// `R` is how the registry is held: an `Arc<Registry>` (the default) for a long-lived
/// resolver, or a `&Registry` for one built per call.
pub struct CredentialResolver<R = Arc<Registry>> {
    registry: R,
    vault: Arc<dyn CredentialVault>,
}

impl<R: Deref<Target = Registry>> CredentialResolver<R> {
    /// A resolver over `registry` and `vault`.
    pub fn new(registry: R, vault: Arc<dyn CredentialVault>) -> Self {
        Self { registry, vault }
    }

    /// The vault.
    pub fn vault(&self) -> &Arc<dyn CredentialVault> {
        &self.vault
    }

    /// The scope a credential for `ticket` would have, without asking the vault (for dry runs
    /// and for showing what would be requested).
    pub fn scope_for(&self, ticket: &ValidatedTicket) -> Result<CredentialScope, ResolveError> {
        let ticket = ticket.ticket();
        let action_name = ticket.action.as_str();
        let action = self
            .registry
            .get(action_name)
            .ok_or_else(|| ResolveError::ActionNotFound(action_name.to_owned()))?;
        let spec = action
            .definition()
            .credentials
            .as_ref()
            .ok_or_else(|| ResolveError::NoCredentialsBlock(action_name.to_owned()))?;
        render_scope(spec, action, &ticket.params)
            .map_err(|source| ResolveError::Scope { action: action_name.to_owned(), source })
    }

    /// Issues a credential for `ticket`: the resolved scope, with the scope's TTL. Only a
    /// ticket that passed [`TicketValidator`](agent_safe_tickets::TicketValidator) can be
    /// passed (the type has no other constructor).
    pub async fn resolve(&self, ticket: &ValidatedTicket) -> Result<Credential, ResolveError> {
        let scope = self.scope_for(ticket)?;
        self.vault
            .get_credential(&scope, ticket.ticket(), scope.ttl)
            .await
            .map_err(ResolveError::Vault)
    }

    /// Revokes `credential`; never fails: a vault error comes back as a warning, which names
    /// the credential id and the vault's message (never the payload).
    pub async fn revoke(&self, credential: &Credential) -> Option<RevokeWarning> {
        revoke(self.vault.as_ref(), credential).await
    }

    /// Resolves a credential for `ticket`, runs `use_it` with it, then revokes it — whatever
    /// `use_it` returned (a failed execution is still followed by revocation). Returns what
    /// `use_it` returned and the revocation warning, if any.
    pub async fn with_credential<T>(
        &self,
        ticket: &ValidatedTicket,
        use_it: impl for<'c> FnOnce(&'c Credential) -> BoxFuture<'c, T>,
    ) -> Result<(T, Option<RevokeWarning>), ResolveError> {
        let credential = self.resolve(ticket).await?;
        let output = use_it(&credential).await;
        let warning = self.revoke(&credential).await;
        Ok((output, warning))
    }
}

/// Revokes `credential` in `vault`, turning an error into a [`RevokeWarning`].
pub async fn revoke(vault: &dyn CredentialVault, credential: &Credential) -> Option<RevokeWarning> {
    match vault.revoke(&credential.credential_id).await {
        Ok(()) => None,
        Err(e) => Some(RevokeWarning {
            credential_id: credential.credential_id.clone(),
            message: e.to_string(),
        }),
    }
}

impl<R> fmt::Debug for CredentialResolver<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialResolver").field("vault", &self.vault).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
