//! Who is asking: the caller identity and its delegation chain.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timefmt::serde_utc;
use crate::{AgentId, Environment};

/// One hop of a delegation chain: the agent that delegated, with what it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationLink {
    /// The delegating agent.
    pub agent_id: AgentId,
    /// Its display name.
    #[serde(default)]
    pub agent_name: String,
    /// Roles it held.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups it held.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When it delegated.
    #[serde(with = "serde_utc::option", default)]
    pub delegated_at: Option<OffsetDateTime>,
}

/// What a caller may request, carried in its signed token (an addition over the Python version).
///
/// Set by a delegation that narrows the actions or environments of the delegate; each further
/// delegation can only narrow it more. The PDP denies a request outside the scope before any
/// rule is evaluated. `None` in a field means "not narrowed".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationScope {
    /// Action name patterns (policy `actions` glob syntax) the caller may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    /// Target environments the caller may act on; a request without a known target is outside
    /// any environment scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<Environment>>,
}

/// The caller of a check.
///
/// Roles, groups and delegation only ever come from a verified token; a plain id
/// (`CallerIdentity::unverified`) carries none of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// The agent's id.
    pub agent_id: AgentId,
    /// Display name.
    #[serde(default)]
    pub agent_name: String,
    /// Roles, matched by `callers.roles` selectors.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Groups, matched by `callers.groups` selectors.
    #[serde(default)]
    pub groups: Vec<String>,
    /// When the token was issued.
    #[serde(with = "serde_utc::option", default)]
    pub issued_at: Option<OffsetDateTime>,
    /// When the token expires.
    #[serde(with = "serde_utc::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    /// The agents that delegated to this one, origin first.
    #[serde(default)]
    pub delegation_chain: Vec<DelegationLink>,
    /// Roles granted by delegation.
    #[serde(default)]
    pub delegated_roles: Vec<String>,
    /// Number of delegation hops (0 = direct).
    #[serde(default)]
    pub delegation_depth: u32,
    /// Whether this identity came from a token whose signature was verified.
    #[serde(default)]
    pub verified: bool,
    /// Actions and environments this caller is limited to (from its token), if narrowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_scope: Option<DelegationScope>,
    /// The deepest delegation depth allowed below this caller's token (from its token); `None`
    /// for tokens without the claim (Python-minted), which get the default limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delegation_depth: Option<u32>,
}

impl CallerIdentity {
    /// A caller known only by a self-asserted id: no roles, no groups, not verified.
    pub fn unverified(agent_id: impl Into<AgentId>) -> Self {
        Self {
            agent_id: agent_id.into(),
            agent_name: String::new(),
            roles: Vec::new(),
            groups: Vec::new(),
            issued_at: None,
            expires_at: None,
            delegation_chain: Vec::new(),
            delegated_roles: Vec::new(),
            delegation_depth: 0,
            verified: false,
            delegation_scope: None,
            max_delegation_depth: None,
        }
    }
}
