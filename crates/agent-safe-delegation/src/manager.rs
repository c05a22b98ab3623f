//! Creating and verifying delegation tokens (SPEC §7.3 plus the depth limit carried in the
//! token, cycle refusal and action/environment narrowing).

use std::fmt;

use agent_safe_core::pyrepr::str_repr;
use agent_safe_core::{AgentId, DelegationLink, DelegationScope, Environment, Secret};
use agent_safe_tickets::{IdentityClaims, IdentityManager, TokenError, VerifiedIdentity};
use time::Duration;

use crate::scope::{self, MAX_SCOPE_ACTIONS};

/// The depth limit of a token that carries none (every Python-minted token, and direct tokens
/// minted without one): the Python version's default `max_depth`.
pub const DEFAULT_MAX_DEPTH: u32 = 5;

/// What to delegate to whom. Built with [`DelegationRequest::new`] and the `with`-style methods.
///
/// Roles and groups not given are **not** inherited (the child gets none, as in Python); an
/// action or environment scope not given **is** inherited from the parent (a child can never
/// be wider than its parent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DelegationRequest {
    /// The delegate's agent id.
    pub child_agent_id: String,
    /// The delegate's display name.
    pub child_agent_name: String,
    /// Roles to grant; each must be held by the parent.
    pub roles: Vec<String>,
    /// Groups to grant; each must be held by the parent.
    pub groups: Vec<String>,
    /// Lifetime; capped by the parent's remaining lifetime. `None`: the parent's remaining
    /// lifetime.
    pub ttl: Option<Duration>,
    /// Depth limit for the chain below; capped by the parent's limit (it can only shrink).
    /// `None`: the parent's limit.
    pub max_depth: Option<u32>,
    /// Action patterns the delegate may request (policy `actions` glob syntax); each must be
    /// covered by the parent's scope. `None`: the parent's scope.
    pub actions: Option<Vec<String>>,
    /// Environments the delegate may act on; each must be in the parent's scope. `None`: the
    /// parent's scope.
    pub environments: Option<Vec<Environment>>,
}

impl DelegationRequest {
    /// A request to delegate to `child_agent_id`, with no roles, groups or extra narrowing.
    pub fn new(child_agent_id: impl Into<String>) -> Self {
        Self { child_agent_id: child_agent_id.into(), ..Self::default() }
    }

    /// Sets the delegate's display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.child_agent_name = name.into();
        self
    }

    /// Sets the roles to grant.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the groups to grant.
    pub fn groups<S: Into<String>>(mut self, groups: impl IntoIterator<Item = S>) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the depth limit for the chain below.
    pub fn max_depth(mut self, max_depth: u32) -> Self {
        self.max_depth = Some(max_depth);
        self
    }

    /// Narrows the actions the delegate may request.
    pub fn actions<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.actions = Some(patterns.into_iter().map(Into::into).collect());
        self
    }

    /// Narrows the environments the delegate may act on.
    pub fn environments(mut self, environments: impl IntoIterator<Item = Environment>) -> Self {
        self.environments = Some(environments.into_iter().collect());
        self
    }
}

/// Why a delegation token was not created. The first five messages are the Python version's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegationError {
    /// The parent token did not validate.
    #[error("Invalid parent token: {0}")]
    InvalidParent(TokenError),
    /// The child would be deeper than the limit (the parent's, or the smaller requested one).
    #[error("Delegation depth {depth} exceeds max depth {max}")]
    DepthExceeded {
        /// The child's depth.
        depth: u32,
        /// The limit in effect.
        max: u32,
    },
    /// Requested roles the parent does not hold (sorted, deduplicated).
    #[error("Cannot delegate roles not held by parent: {}", py_list(.0))]
    RolesNotHeld(Vec<String>),
    /// Requested groups the parent does not hold (sorted, deduplicated).
    #[error("Cannot delegate groups not held by parent: {}", py_list(.0))]
    GroupsNotHeld(Vec<String>),
    /// The parent validated but has no lifetime left (only reachable with a verification
    /// leeway).
    #[error("Parent token has expired")]
    ParentExpired,
    /// The child is the parent.
    #[error("cannot delegate from `{0}` to itself")]
    SelfDelegation(AgentId),
    /// The child already delegated earlier in the chain.
    #[error("cannot delegate to `{child}`: it is already in the delegation chain {}", arrows(.chain))]
    Cycle {
        /// The requested child.
        child: AgentId,
        /// The parent's chain, origin first, ending with the parent.
        chain: Vec<AgentId>,
    },
    /// Action patterns not covered by the parent's scope.
    #[error(
        "cannot delegate actions outside the parent's scope: {} (parent may request {})",
        ticks(.requested), ticks(.allowed)
    )]
    ActionsNotHeld {
        /// The uncovered patterns.
        requested: Vec<String>,
        /// The parent's patterns.
        allowed: Vec<String>,
    },
    /// Environments not in the parent's scope.
    #[error(
        "cannot delegate environments outside the parent's scope: {} (parent may act on {})",
        ticks(.requested), ticks(.allowed)
    )]
    EnvironmentsNotHeld {
        /// The environments outside the parent's scope.
        requested: Vec<Environment>,
        /// The parent's environments.
        allowed: Vec<Environment>,
    },
    /// An action pattern that is not a valid glob (or too long).
    #[error("invalid action pattern `{pattern}` in delegation scope: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Too many action patterns.
    #[error("delegation scope has {0} action patterns; at most {MAX_SCOPE_ACTIONS} are allowed")]
    TooManyPatterns(usize),
    /// The child's agent id is empty.
    #[error("the child agent id must not be empty")]
    EmptyChildId,
    /// The requested lifetime is under one second.
    #[error("delegation ttl must be at least one second, got `{0}`")]
    TtlTooShort(Duration),
    /// The child token could not be minted (no signing key, signing failure).
    #[error(transparent)]
    Mint(TokenError),
}

fn py_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| str_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn ticks<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "nothing".to_owned();
    }
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn arrows(chain: &[AgentId]) -> String {
    chain.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(" → ")
}

/// A delegation token just minted, with the verified parent and child identities.
#[derive(Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The child's token (a bearer credential: not shown by `Debug`).
    pub token: String,
    /// The parent, as its token verified.
    pub parent: VerifiedIdentity,
    /// The child, as its new token verifies.
    pub child: VerifiedIdentity,
}

impl fmt::Debug for Delegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delegation")
            .field("token", &Secret::new(&self.token))
            .field("parent", &self.parent)
            .field("child", &self.child)
            .finish()
    }
}

/// Creates and verifies delegation tokens with one [`IdentityManager`] (its key, issuer and
/// clock). Stateless: everything is in the tokens.
///
/// ```
/// # use std::sync::Arc;
/// # use agent_safe_core::{Environment, ManualClock};
/// # use agent_safe_delegation::{DelegationManager, DelegationRequest};
/// # use agent_safe_tickets::{IdentityManager, SigningKey};
/// # use time::{macros::datetime, Duration};
/// let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 09:00 UTC)));
/// let key = SigningKey::hs256_from_str("doc-example-key-0123456789abcdef0123456789")?;
/// let ids = IdentityManager::new(key, "agent-safe", clock);
/// let root = ids.create_token("orchestrator", "", &["deployer".into()], &[], Duration::hours(1))?;
///
/// let delegations = DelegationManager::new(ids);
/// let request = DelegationRequest::new("worker-1")
///     .roles(["deployer"])
///     .actions(["get-*", "restart-deployment"])
///     .environments([Environment::Dev]);
/// let made = delegations.delegate(&root, &request)?;
/// let worker = delegations.verify(&made.token)?;
/// assert_eq!(worker.delegation_depth, 1);
/// assert_eq!(worker.delegation_chain[0].agent_id, "orchestrator");
///
/// // The worker cannot hand out more than it holds.
/// let wider = DelegationRequest::new("worker-2").actions(["*"]);
/// assert_eq!(
///     delegations.delegate(&made.token, &wider).unwrap_err().to_string(),
///     "cannot delegate actions outside the parent's scope: `*` \
///      (parent may request `get-*`, `restart-deployment`)"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DelegationManager {
    identity: IdentityManager,
}

impl DelegationManager {
    /// A manager minting and verifying with `identity`.
    pub fn new(identity: IdentityManager) -> Self {
        Self { identity }
    }

    /// The identity manager in use.
    pub fn identity(&self) -> &IdentityManager {
        &self.identity
    }

    /// Verifies any identity token (delegated or direct) and returns the caller with its chain,
    /// scope and depth limit. Delegation claims that contradict each other (chain length ≠
    /// depth, an agent twice in the chain, depth over the token's own limit) are rejected;
    /// a chain edited after signing fails the signature.
    pub fn verify(&self, token: &str) -> Result<VerifiedIdentity, TokenError> {
        self.identity.validate(token)
    }

    /// Creates a delegation token for `request.child_agent_id` from `parent_token`.
    ///
    /// Checks, in order: the request itself (child id, ttl, scope patterns), the parent token,
    /// the depth limit, roles, groups, self-delegation and cycles, the action and environment
    /// scope; then the chain is the parent's plus a link for the parent, and the lifetime is
    /// capped by the parent's.
    pub fn delegate(
        &self,
        parent_token: &str,
        request: &DelegationRequest,
    ) -> Result<Delegation, DelegationError> {
        check_request(request)?;
        let parent =
            self.identity.validate(parent_token).map_err(DelegationError::InvalidParent)?;

        let parent_limit = parent.max_delegation_depth.unwrap_or(DEFAULT_MAX_DEPTH);
        let limit = request.max_depth.map_or(parent_limit, |m| m.min(parent_limit));
        let depth = parent.delegation_depth.saturating_add(1);
        if depth > limit {
            return Err(DelegationError::DepthExceeded { depth, max: limit });
        }
        let extra_roles = not_held(&request.roles, &parent.roles);
        if !extra_roles.is_empty() {
            return Err(DelegationError::RolesNotHeld(extra_roles));
        }
        let extra_groups = not_held(&request.groups, &parent.groups);
        if !extra_groups.is_empty() {
            return Err(DelegationError::GroupsNotHeld(extra_groups));
        }
        let child_id = AgentId::new(request.child_agent_id.as_str());
        if child_id == parent.agent_id {
            return Err(DelegationError::SelfDelegation(child_id));
        }
        if parent.delegation_chain.iter().any(|l| l.agent_id == child_id) {
            let chain = parent
                .delegation_chain
                .iter()
                .map(|l| l.agent_id.clone())
                .chain(std::iter::once(parent.agent_id.clone()))
                .collect();
            return Err(DelegationError::Cycle { child: child_id, chain });
        }
        let scope = narrow(parent.delegation_scope.as_ref(), request)?;

        let now = self.identity.clock().now();
        let remaining = parent.expires_at.map_or(Duration::ZERO, |exp| exp - now);
        if remaining <= Duration::ZERO {
            return Err(DelegationError::ParentExpired);
        }
        let ttl = request.ttl.map_or(remaining, |t| t.min(remaining));

        let mut chain = parent.delegation_chain.clone();
        chain.push(DelegationLink {
            agent_id: parent.agent_id.clone(),
            agent_name: parent.agent_name.clone(),
            roles: parent.roles.clone(),
            groups: parent.groups.clone(),
            delegated_at: Some(now),
        });
        let claims = IdentityClaims {
            agent_id: request.child_agent_id.clone(),
            agent_name: request.child_agent_name.clone(),
            roles: request.roles.clone(),
            groups: request.groups.clone(),
            delegation_chain: chain,
            delegated_roles: request.roles.clone(),
            delegation_depth: depth,
            max_delegation_depth: Some(limit),
            delegation_scope: scope,
        };
        let token =
            self.identity.create_token_with_claims(&claims, ttl).map_err(DelegationError::Mint)?;
        let child = self.identity.validate(&token).map_err(DelegationError::Mint)?;
        Ok(Delegation { token, parent, child })
    }
}

/// Checks that do not need the parent.
fn check_request(request: &DelegationRequest) -> Result<(), DelegationError> {
    if request.child_agent_id.is_empty() {
        return Err(DelegationError::EmptyChildId);
    }
    if let Some(ttl) = request.ttl
        && ttl < Duration::SECOND
    {
        return Err(DelegationError::TtlTooShort(ttl));
    }
    if let Some(actions) = &request.actions {
        if actions.len() > MAX_SCOPE_ACTIONS {
            return Err(DelegationError::TooManyPatterns(actions.len()));
        }
        for pattern in actions {
            scope::check_pattern(pattern).map_err(|reason| DelegationError::InvalidPattern {
                pattern: pattern.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

/// Requested items the parent does not hold, sorted and deduplicated (Python's
/// `sorted(set(requested) - set(held))`).
fn not_held(requested: &[String], held: &[String]) -> Vec<String> {
    let mut extra: Vec<String> = requested.iter().filter(|r| !held.contains(r)).cloned().collect();
    extra.sort_unstable();
    extra.dedup();
    extra
}

/// The child's scope: the requested narrowing where given (checked against the parent's),
/// the parent's otherwise.
fn narrow(
    parent: Option<&DelegationScope>,
    request: &DelegationRequest,
) -> Result<Option<DelegationScope>, DelegationError> {
    let parent_actions = parent.and_then(|s| s.actions.as_ref());
    let actions = match (parent_actions, &request.actions) {
        (None, requested) => requested.clone(),
        (Some(allowed), None) => Some(allowed.clone()),
        (Some(allowed), Some(requested)) => {
            let outside = scope::uncovered_actions(allowed, requested);
            if !outside.is_empty() {
                return Err(DelegationError::ActionsNotHeld {
                    requested: outside.into_iter().map(str::to_owned).collect(),
                    allowed: allowed.clone(),
                });
            }
            Some(requested.clone())
        }
    };
    let parent_envs = parent.and_then(|s| s.environments.as_ref());
    let environments = match (parent_envs, &request.environments) {
        (None, requested) => requested.clone(),
        (Some(allowed), None) => Some(allowed.clone()),
        (Some(allowed), Some(requested)) => {
            let outside = scope::uncovered_environments(allowed, requested);
            if !outside.is_empty() {
                return Err(DelegationError::EnvironmentsNotHeld {
                    requested: outside,
                    allowed: allowed.clone(),
                });
            }
            Some(requested.clone())
        }
    };
    Ok((actions.is_some() || environments.is_some())
        .then_some(DelegationScope { actions, environments }))
}
