//! Delegation through the SDK (SPEC §7.3): [`AgentSafe::delegate`] and
//! [`AgentSafe::verify_delegation`], on the facade's signing key, issuer and clock.
//!
//! A delegated token is used like any identity token: pass it as the caller of
//! [`AgentSafe::check`]. Policies see its chain (`delegated_from`, `max_delegation_depth`,
//! `require_delegation`), the PDP denies anything outside its action/environment scope before
//! any rule, and the audit event records the chain.

pub use agent_safe_delegation::{
    DEFAULT_MAX_DEPTH, Delegation, DelegationError, DelegationManager, DelegationRequest,
    DelegationResult, scope,
};

use agent_safe_tickets::VerifiedIdentity;

use crate::{AgentSafe, Error};

impl AgentSafe {
    /// Creates a delegation token for `request.child_agent_id` from `parent_token`. A refusal
    /// (invalid or expired parent, depth, roles, groups, cycle, scope) is a result with
    /// `success: false` and the reason; only a missing signing key is an error.
    pub fn delegate(
        &self,
        parent_token: &str,
        request: &DelegationRequest,
    ) -> Result<DelegationResult, Error> {
        let outcome = self.delegations()?.delegate(parent_token, request);
        Ok(DelegationResult::from_outcome(&request.child_agent_id, outcome))
    }

    /// Verifies an identity token (delegated or direct) and returns the identity with its chain,
    /// or `None` when it is invalid or expired. Errors only without a signing key.
    pub fn verify_delegation(&self, token: &str) -> Result<Option<VerifiedIdentity>, Error> {
        Ok(self.delegations()?.verify(token).ok())
    }

    /// The delegation manager on this facade's key, issuer and clock (for the reason a token
    /// is invalid, or the minted [`Delegation`] with both identities).
    pub fn delegations(&self) -> Result<DelegationManager, Error> {
        self.inner.identity.clone().map(DelegationManager::new).ok_or(Error::DelegationWithoutKey)
    }
}

#[cfg(test)]
mod tests;
