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

/// Who a caller says it is: its id, and the roles, groups and delegation chain of its token.
///
/// This is data, not proof: anyone can build or deserialize one. Whether it was verified is
/// carried by the type that holds it — `agent_safe_tickets::VerifiedIdentity`, which only the
/// identity token verifier can produce — never by a flag here. A plain id
/// ([`CallerIdentity::unverified`]) carries no roles, groups or delegation.
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
    /// Actions and environments this caller is limited to (from its token), if narrowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_scope: Option<DelegationScope>,
    /// The deepest delegation depth allowed below this caller's token (from its token); `None`
    /// for tokens without the claim (Python-minted), which get the default limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delegation_depth: Option<u32>,
}

impl CallerIdentity {
    /// A caller known only by a self-asserted id: no roles, no groups, no delegation.
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
            delegation_scope: None,
            max_delegation_depth: None,
        }
    }
}

/// A caller as a decision recorded it (the approval store keeps the requester this way): the
/// identity and whether it had been verified from a signed token at the time.
///
/// A record, not proof: it deserializes from whatever the store holds. Code that must know a
/// caller is verified *now* takes `agent_safe_tickets::VerifiedIdentity`. A stored record is
/// trusted only as far as what holds it is checked (the approval store binds it to the audit
/// event of its decision).
///
/// Serialized as the identity's fields with `verified` after `delegation_depth`, the layout
/// the approval store has always used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCaller {
    /// The caller's identity.
    pub identity: CallerIdentity,
    /// Whether it was verified from a signed token when recorded.
    pub verified: bool,
}

impl std::ops::Deref for RecordedCaller {
    type Target = CallerIdentity;

    fn deref(&self) -> &CallerIdentity {
        &self.identity
    }
}

/// The recorded layout of `identity`: its fields, with `verified` after `delegation_depth`.
///
/// # Errors
/// When `identity` does not serialize to a JSON object (it always does).
pub fn recorded_caller_json(
    identity: &CallerIdentity,
    verified: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    let serde_json::Value::Object(fields) = serde_json::to_value(identity)? else {
        return Err(serde::ser::Error::custom("a caller identity serializes to an object"));
    };
    let mut out = serde_json::Map::with_capacity(fields.len() + 1);
    for (name, value) in fields {
        let last = name == "delegation_depth";
        out.insert(name, value);
        if last {
            out.insert("verified".to_owned(), verified.into());
        }
    }
    Ok(out)
}

impl Serialize for RecordedCaller {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        recorded_caller_json(&self.identity, self.verified)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecordedCaller {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let verified = match fields.remove("verified") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(other) => {
                return Err(serde::de::Error::custom(format!(
                    "`verified` must be a boolean, not `{other}`"
                )));
            }
        };
        let identity = CallerIdentity::deserialize(serde_json::Value::Object(fields))
            .map_err(serde::de::Error::custom)?;
        Ok(Self { identity, verified })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_caller_keeps_the_stored_layout_and_round_trips() {
        let stored = r#"{"agent_id":"deploy-bot","agent_name":"","roles":["deployer"],"groups":[],"issued_at":null,"expires_at":null,"delegation_chain":[],"delegated_roles":[],"delegation_depth":0,"verified":true,"max_delegation_depth":2}"#;
        let recorded: RecordedCaller = serde_json::from_str(stored).unwrap();
        assert!(recorded.verified);
        assert_eq!(recorded.agent_id, "deploy-bot");
        assert_eq!(recorded.max_delegation_depth, Some(2));
        assert_eq!(serde_json::to_string(&recorded).unwrap(), stored);
        // Absent means not verified (the field's old default).
        let plain: RecordedCaller = serde_json::from_str(r#"{"agent_id":"bot"}"#).unwrap();
        assert_eq!(
            plain,
            RecordedCaller { identity: CallerIdentity::unverified("bot"), verified: false }
        );
        assert!(
            serde_json::from_str::<RecordedCaller>(r#"{"agent_id":"bot","verified":"yes"}"#)
                .is_err()
        );
    }
}
