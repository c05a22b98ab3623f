//! The SDK's errors: one type per operation a caller would match on ([`BuildError`] for
//! [`Builder::build`](crate::Builder::build), [`CheckError`] for
//! [`AgentSafe::check`](crate::AgentSafe::check)) and [`Error`] for the rest, which both
//! convert into with `?`.

use crate::{ConfigError, approvals, change, credentials, execute, shipping};

/// Why [`Builder::build`](crate::Builder::build) (or reading `agent-safe.yaml` for it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `agent-safe.yaml` could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither an explicit path nor the config names the registry or the policies.
    #[error(
        "registry and policies are required: pass them explicitly or create an agent-safe.yaml"
    )]
    MissingPaths,
    /// The action registry could not be loaded.
    #[error(transparent)]
    Registry(#[from] agent_safe_registry::LoadError),
    /// The inventory could not be loaded.
    #[error(transparent)]
    Inventory(#[from] agent_safe_registry::InventoryError),
    /// The policies could not be loaded.
    #[error(transparent)]
    Policy(#[from] agent_safe_pdp::PolicyLoadError),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] agent_safe_audit::AuditError),
    /// The signing key could not be used.
    #[error(transparent)]
    Key(#[from] agent_safe_tickets::KeyError),
    /// The nonce store could not be opened.
    #[error("cannot open the nonce store: {0}")]
    NonceStore(#[from] agent_safe_tickets::NonceStoreError),
    /// The `state:` backend of agent-safe.yaml cannot be used.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The approval store or its notifiers could not be set up.
    #[error(transparent)]
    Approval(#[from] approvals::ApprovalError),
    /// Audit shipping could not be set up.
    #[error(transparent)]
    Shipping(#[from] shipping::ShippingError),
    /// The `credentials.vault` of agent-safe.yaml cannot be used.
    #[error("credentials.vault: {0}")]
    Vault(#[from] agent_safe_credentials::VaultConfigError),
}

/// Why [`AgentSafe::check`](crate::AgentSafe::check) returned no decision. A denial is never an
/// error: it is a [`Decision`](crate::Decision).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The decision could not be recorded in the audit log, so it is not returned.
    #[error(transparent)]
    Audit(#[from] agent_safe_audit::AuditError),
    /// An execution ticket could not be issued for an ALLOW. Nothing was recorded in the audit
    /// log: the ticket is issued before the decision is appended.
    #[error("cannot issue execution ticket: {0}")]
    Ticket(agent_safe_tickets::TokenError),
    /// The approval request a REQUIRE_APPROVAL opens could not be created or recorded.
    #[error(transparent)]
    Approval(#[from] approvals::ApprovalError),
    /// The rate-limit or cumulative-risk windows shared by the replicas could not be used, so
    /// no decision could be made (nothing was recorded).
    #[error("no decision: the shared rate-limit and cumulative-risk state is unavailable: {0}")]
    Limits(agent_safe_pdp::WindowStoreError),
}

/// Every error of the SDK: what the operations without an error type of their own return, and
/// what [`BuildError`] and [`CheckError`] convert into with `?`. A denial is never an error: it
/// is a [`Decision`](crate::Decision).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SDK could not be built (see [`BuildError`]).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A request could not be checked (see [`CheckError`]).
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The audit log could not be read or written.
    #[error(transparent)]
    Audit(#[from] agent_safe_audit::AuditError),
    /// An approval request could not be created, resolved or waited for.
    #[error(transparent)]
    Approval(#[from] approvals::ApprovalError),
    /// A credential could not be resolved or revoked.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    /// An execution ticket could not be run (see [`AgentSafe::execute`](crate::AgentSafe::execute)).
    #[error(transparent)]
    Execute(#[from] execute::ExecuteError),
    /// A state capture or a rollback could not be made.
    #[error(transparent)]
    Change(#[from] change::ChangeError),
    /// Delegation was asked for, but no signing key is configured.
    #[error(
        "delegation needs a signing key: pass one to the builder or set `signing_key` in agent-safe.yaml"
    )]
    DelegationWithoutKey,
}

impl CheckError {
    /// Whether the state backend (a database) could not be reached or answered too slowly. No
    /// decision was returned and none is recorded as returned; retrying later may succeed (the
    /// sidecar answers 503 `unavailable`).
    pub fn is_unavailable(&self) -> bool {
        match self {
            CheckError::Audit(e) => audit_unavailable(e),
            CheckError::Approval(e) => approval_unavailable(e),
            CheckError::Ticket(_) => false,
            CheckError::Limits(_) => true,
        }
    }
}

impl Error {
    /// Whether the state backend (a database) could not be reached or answered too slowly:
    /// nothing was decided, recorded or consumed; retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Check(e) => e.is_unavailable(),
            Error::Audit(e) => audit_unavailable(e),
            Error::Approval(e) => approval_unavailable(e),
            Error::Execute(execute::ExecuteError::NonceStore(e)) => {
                matches!(e, agent_safe_tickets::NonceStoreError::Unavailable { .. })
            }
            Error::Build(BuildError::State(e)) => e.is_unavailable(),
            _ => false,
        }
    }
}

fn audit_unavailable(e: &agent_safe_audit::AuditError) -> bool {
    matches!(e, agent_safe_audit::AuditError::Unavailable(_))
}

fn approval_unavailable(e: &approvals::ApprovalError) -> bool {
    match e {
        approvals::ApprovalError::Store(e) => {
            matches!(e, agent_safe_approvals::StoreError::Unavailable(_))
        }
        approvals::ApprovalError::Audit(e) => audit_unavailable(e),
        _ => false,
    }
}
