//! Agent identity tokens (SPEC §7.1): mint and validate signed JWTs carrying an agent's id,
//! roles, groups and delegation chain.

use std::sync::Arc;

use agent_safe_core::{
    AgentId, CallerIdentity, Clock, DelegationLink, DelegationScope, RecordedCaller,
};
use serde::Serialize;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::jwt::{self, Audience, JwtError, Rules};
use crate::keys::{KeySet, SigningKey};

/// The issuer both the Python and this implementation use by default.
pub const DEFAULT_ISSUER: &str = "agent-safe";

/// Default lifetime of an identity token (SPEC §7.1).
pub const DEFAULT_IDENTITY_TTL: Duration = Duration::hours(1);

/// Claims required in every identity token, checked in this order.
const REQUIRED: &[&str] = &["agent_id", "iss", "iat", "exp"];

/// Why an identity token could not be minted or was rejected. `Display` is the reason text of
/// the Python version (`Token has expired`, `Invalid token issuer: …`, `Invalid token: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `exp` has passed.
    #[error("Token has expired")]
    Expired,
    /// The token's `iss` is not this manager's issuer; carries the token's issuer.
    #[error("Invalid token issuer: {0}")]
    InvalidIssuer(String),
    /// Bad signature, wrong algorithm, malformed token, missing or ill-typed claim, not yet
    /// valid, wrong audience, unknown key id, too large.
    #[error("Invalid token: {0}")]
    Invalid(String),
    /// The manager was built to verify only.
    #[error("cannot sign token: no signing key is configured")]
    NoSigningKey,
    /// `now + ttl` is not a representable time.
    #[error("cannot sign token: ttl `{0}` is out of range")]
    InvalidTtl(Duration),
    /// The JWT library failed to sign.
    #[error("cannot sign token: {0}")]
    Signing(String),
}

impl From<JwtError> for TokenError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Expired => Self::Expired,
            JwtError::InvalidIssuer(iss) => Self::InvalidIssuer(iss),
            JwtError::Invalid(detail) => Self::Invalid(detail),
        }
    }
}

/// A caller identity that came from an identity token whose signature and claims were verified:
/// proof, carried in the type, that [`IdentityManager::validate`] checked it. Only the verifier
/// can create one (the field is private, there is no public constructor and no `Deserialize`),
/// so code that takes a `VerifiedIdentity` — the SDK's `check_verified`, an approver — can only
/// be handed an identity whose token verified. As [`ValidatedTicket`](crate::ValidatedTicket)
/// is for tickets.
///
/// ```compile_fail,E0451
/// use agent_safe_tickets::VerifiedIdentity;
/// # fn forge(identity: agent_safe_core::CallerIdentity) {
/// let forged = VerifiedIdentity { identity };
/// # }
/// ```
///
/// It dereferences to the [`CallerIdentity`] it carries, and serializes as it (with
/// `"verified": true` after `delegation_depth`, the layout of a stored requester).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    identity: CallerIdentity,
}

impl VerifiedIdentity {
    /// The identity the token carried.
    pub fn identity(&self) -> &CallerIdentity {
        &self.identity
    }

    /// The identity, giving up the proof of verification.
    pub fn into_identity(self) -> CallerIdentity {
        self.identity
    }

    /// The identity as a record that says it was verified (for a store).
    pub fn to_record(&self) -> RecordedCaller {
        RecordedCaller { identity: self.identity.clone(), verified: true }
    }
}

impl std::ops::Deref for VerifiedIdentity {
    type Target = CallerIdentity;

    fn deref(&self) -> &CallerIdentity {
        &self.identity
    }
}

impl Serialize for VerifiedIdentity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        agent_safe_core::recorded_caller_json(&self.identity, true)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// The agent-facing claims of an identity token. `iss`, `iat`, `exp` (and `aud`, if configured)
/// are added by the [`IdentityManager`].
///
/// The three delegation claims are written only for a delegated token (`delegation_depth > 0`
/// or a non-empty chain), as the Python version does. `max_delegation_depth` and
/// `delegation_scope` (additions, ignored by Python) are written whenever they are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityClaims {
    /// The agent's id.
    pub agent_id: String,
    /// Display name (`""` by default).
    pub agent_name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// The agents that delegated to this one, origin first.
    pub delegation_chain: Vec<DelegationLink>,
    /// Roles granted by delegation.
    pub delegated_roles: Vec<String>,
    /// Number of delegation hops (0 = a direct token).
    pub delegation_depth: u32,
    /// The deepest delegation allowed below this token (claim `max_delegation_depth`).
    pub max_delegation_depth: Option<u32>,
    /// Actions and environments the holder is limited to (claim `delegation_scope`).
    pub delegation_scope: Option<DelegationScope>,
}

impl IdentityClaims {
    fn is_delegated(&self) -> bool {
        self.delegation_depth > 0 || !self.delegation_chain.is_empty()
    }
}

/// The payload in the Python version's key order.
#[derive(Serialize)]
struct Payload<'a> {
    agent_id: &'a str,
    agent_name: &'a str,
    roles: &'a [String],
    groups: &'a [String],
    iss: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_chain: Option<&'a [DelegationLink]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegated_roles: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_depth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_delegation_depth: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_scope: Option<&'a DelegationScope>,
}

/// Mints and validates identity tokens with one signing key and issuer; time comes from the clock.
///
/// ```
/// # use std::sync::Arc;
/// # use agent_safe_core::ManualClock;
/// # use agent_safe_tickets::{IdentityManager, SigningKey};
/// # use time::{macros::datetime, Duration};
/// let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 09:00 UTC)));
/// let key = SigningKey::hs256_from_str("interop-fixture-key-0123456789abcdef0123456789")?;
/// let ids = IdentityManager::new(key, "agent-safe", clock.clone());
/// let token = ids.create_token("deploy-bot", "Deployer", &["deployer".into()], &[], Duration::hours(1))?;
/// let caller = ids.validate(&token)?; // a `VerifiedIdentity`
/// assert_eq!(caller.agent_id, "deploy-bot");
/// clock.advance(Duration::hours(1));
/// assert_eq!(ids.validate(&token).unwrap_err().to_string(), "Token has expired");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct IdentityManager {
    key: Option<SigningKey>,
    keys: KeySet,
    issuer: String,
    audience: Audience,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl IdentityManager {
    /// A manager that signs with `key` and accepts tokens signed by it. No audience (as Python),
    /// no leeway.
    pub fn new(key: SigningKey, issuer: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        let keys = KeySet::from(&key);
        Self {
            key: Some(key),
            keys,
            issuer: issuer.into(),
            audience: Audience::Absent,
            leeway: Duration::ZERO,
            clock,
        }
    }

    /// A manager that only validates (e.g. with an Ed25519 public key); minting fails with
    /// [`TokenError::NoSigningKey`].
    pub fn verify_only(
        keys: impl Into<KeySet>,
        issuer: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            key: None,
            keys: keys.into(),
            issuer: issuer.into(),
            audience: Audience::Absent,
            leeway: Duration::ZERO,
            clock,
        }
    }

    /// Replaces the keys accepted on validation (e.g. the current and the previous key during a
    /// rotation). Minting still uses the signing key.
    pub fn with_verifying_keys(self, keys: impl Into<KeySet>) -> Self {
        Self { keys: keys.into(), ..self }
    }

    /// Sets the audience minted and required (default [`Audience::Absent`], as Python).
    pub fn with_audience(self, audience: Audience) -> Self {
        Self { audience, ..self }
    }

    /// Tolerance for clock skew on `iat`, `nbf` and `exp` (default none).
    pub fn with_leeway(self, leeway: Duration) -> Self {
        Self { leeway, ..self }
    }

    /// The issuer minted and required.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The clock deciding `iat`, `exp` and expiry.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Mints a direct (non-delegated) identity token valid for `ttl` from now.
    pub fn create_token(
        &self,
        agent_id: &str,
        agent_name: &str,
        roles: &[String],
        groups: &[String],
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let claims = IdentityClaims {
            agent_id: agent_id.to_owned(),
            agent_name: agent_name.to_owned(),
            roles: roles.to_vec(),
            groups: groups.to_vec(),
            ..IdentityClaims::default()
        };
        self.create_token_with_claims(&claims, ttl)
    }

    /// Mints a token with arbitrary identity claims (used for delegation tokens), valid for `ttl`.
    pub fn create_token_with_claims(
        &self,
        claims: &IdentityClaims,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let key = self.key.as_ref().ok_or(TokenError::NoSigningKey)?;
        let now = self.clock.now();
        let exp = now.checked_add(ttl).ok_or(TokenError::InvalidTtl(ttl))?;
        let delegated = claims.is_delegated();
        let payload = Payload {
            agent_id: &claims.agent_id,
            agent_name: &claims.agent_name,
            roles: &claims.roles,
            groups: &claims.groups,
            iss: &self.issuer,
            iat: jwt::unix_seconds(now),
            exp: jwt::unix_seconds(exp),
            aud: self.audience.minted(),
            delegation_chain: delegated.then_some(claims.delegation_chain.as_slice()),
            delegated_roles: delegated.then_some(claims.delegated_roles.as_slice()),
            delegation_depth: delegated.then_some(claims.delegation_depth),
            max_delegation_depth: claims.max_delegation_depth,
            delegation_scope: claims.delegation_scope.as_ref(),
        };
        jwt::sign(key, &payload).map_err(TokenError::Signing)
    }

    /// Validates a token (SPEC §7.1): algorithm pinned by the key (`alg: none` and HS256/EdDSA
    /// confusion rejected), issuer must match, required claims `agent_id`, `iss`, `iat`, `exp`,
    /// `iat`/`nbf`/`exp` checked against the clock, audience per configuration, and the delegation
    /// claims consistent (one chain link per hop, no agent twice in the chain, depth within
    /// `max_delegation_depth`). The only way to a [`VerifiedIdentity`].
    pub fn validate(&self, token: &str) -> Result<VerifiedIdentity, TokenError> {
        let verified = jwt::verify(token, &self.rules(self.clock.now()))?;
        caller_from_claims(&verified.claims, verified.issued_at, verified.expires_at)
            .map(|identity| VerifiedIdentity { identity })
            .map_err(TokenError::Invalid)
    }

    fn rules(&self, now: OffsetDateTime) -> Rules<'_> {
        Rules {
            keys: &self.keys,
            issuer: &self.issuer,
            audience: &self.audience,
            leeway: self.leeway,
            required: REQUIRED,
            now,
        }
    }
}

fn caller_from_claims(
    claims: &Map<String, Value>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<CallerIdentity, String> {
    let delegation_chain = match claims.get("delegation_chain") {
        None | Some(Value::Null) => Vec::new(),
        Some(chain) => <Vec<DelegationLink> as serde::Deserialize>::deserialize(chain)
            .map_err(|e| format!("Claim `delegation_chain` is malformed: {e}"))?,
    };
    let delegation_depth = opt_u32(claims, "delegation_depth")?.unwrap_or(0);
    let max_delegation_depth = opt_u32(claims, "max_delegation_depth")?;
    let delegation_scope = match claims.get("delegation_scope") {
        None | Some(Value::Null) => None,
        Some(scope) => Some(
            <DelegationScope as serde::Deserialize>::deserialize(scope)
                .map_err(|e| format!("Claim `delegation_scope` is malformed: {e}"))?,
        ),
    };
    let agent_id = AgentId::new(jwt::req_str(claims, "agent_id")?);
    check_delegation_claims(&agent_id, &delegation_chain, delegation_depth, max_delegation_depth)?;
    Ok(CallerIdentity {
        agent_id,
        agent_name: jwt::opt_str(claims, "agent_name")?.unwrap_or_default().to_owned(),
        roles: jwt::str_list(claims, "roles")?,
        groups: jwt::str_list(claims, "groups")?,
        issued_at: Some(issued_at),
        expires_at: Some(expires_at),
        delegation_chain,
        delegated_roles: jwt::str_list(claims, "delegated_roles")?,
        delegation_depth,
        delegation_scope,
        max_delegation_depth,
    })
}

fn opt_u32(claims: &Map<String, Value>, name: &str) -> Result<Option<u32>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .map(Some)
            .ok_or_else(|| format!("Claim `{name}` must be a non-negative integer")),
    }
}

/// The delegation claims must agree with each other: a signed token whose claims contradict
/// themselves was minted by a broken or hostile issuer and is rejected whole.
fn check_delegation_claims(
    agent_id: &AgentId,
    chain: &[DelegationLink],
    depth: u32,
    max_depth: Option<u32>,
) -> Result<(), String> {
    if usize::try_from(depth).ok() != Some(chain.len()) {
        return Err(format!(
            "Claim `delegation_depth` is {depth} but `delegation_chain` has {} link(s)",
            chain.len()
        ));
    }
    if let Some(max) = max_depth
        && depth > max
    {
        return Err(format!(
            "Claim `delegation_depth` ({depth}) exceeds `max_delegation_depth` ({max})"
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(chain.len() + 1);
    for id in chain.iter().map(|l| &l.agent_id).chain(std::iter::once(agent_id)) {
        if !seen.insert(id) {
            return Err(format!("Agent `{id}` appears twice in the delegation chain"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
