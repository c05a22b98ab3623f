//! The SDK's answer to a delegation request (SPEC §7.3 `DelegationResult`).

use std::fmt;

use agent_safe_core::Secret;
use agent_safe_tickets::VerifiedIdentity;
use serde::Serialize;

use crate::{Delegation, DelegationError};

/// The outcome of `AgentSafe::delegate`, in the Python version's shape: a refusal is a value
/// (`success: false` with the reason), not an error.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DelegationResult {
    /// Whether a token was created.
    pub success: bool,
    /// The child's token (a bearer credential: not shown by `Debug`).
    pub token: Option<String>,
    /// The child identity, as the new token verifies.
    pub child_identity: Option<VerifiedIdentity>,
    /// Why no token was created.
    pub error: Option<String>,
    /// The parent's agent id (`""` on failure, as Python).
    pub parent_agent_id: String,
    /// The requested child agent id.
    pub child_agent_id: String,
    /// The child's delegation depth (0 on failure).
    pub delegation_depth: u32,
}

impl DelegationResult {
    /// The result for the outcome of delegating to `child_agent_id`.
    pub fn from_outcome(
        child_agent_id: &str,
        outcome: Result<Delegation, DelegationError>,
    ) -> Self {
        match outcome {
            Ok(d) => Self {
                success: true,
                delegation_depth: d.child.delegation_depth,
                parent_agent_id: d.parent.agent_id.to_string(),
                child_agent_id: child_agent_id.to_owned(),
                token: Some(d.token),
                child_identity: Some(d.child),
                error: None,
            },
            Err(e) => Self {
                success: false,
                token: None,
                child_identity: None,
                error: Some(e.to_string()),
                parent_agent_id: String::new(),
                child_agent_id: child_agent_id.to_owned(),
                delegation_depth: 0,
            },
        }
    }
}

impl fmt::Debug for DelegationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationResult")
            .field("success", &self.success)
            .field("token", &self.token.as_ref().map(Secret::new))
            .field("child_identity", &self.child_identity)
            .field("error", &self.error)
            .field("parent_agent_id", &self.parent_agent_id)
            .field("child_agent_id", &self.child_agent_id)
            .field("delegation_depth", &self.delegation_depth)
            .finish()
    }
}
