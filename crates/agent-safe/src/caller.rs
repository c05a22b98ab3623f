//! Who a [`CheckRequest`](crate::CheckRequest) is made for: an explicit choice between a plain
//! agent id, an identity token, and an identity already verified; and the one rule that sorts a
//! caller string typed by a user (CLI `--caller`, HTTP body, MCP argument) into the first two.

use std::fmt;

use agent_safe_core::{AgentId, CallerIdentity};
use agent_safe_tickets::VerifiedIdentity;

/// The caller of a check.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestCaller {
    /// A plain, self-asserted agent id: no roles, no groups, never verified. An id shaped like
    /// an identity token (see [`looks_like_token`]) is checked as a token — verified, or a DENY
    /// with the reason — never used as a name.
    Agent(AgentId),
    /// An identity token, verified with the facade's signing key; one that does not verify is
    /// a DENY with the reason. Not shown by `Debug` (a bearer credential).
    Token(String),
    /// An identity the embedding program already verified (see
    /// [`AgentSafe::check_verified`](crate::AgentSafe::check_verified)).
    Verified(Box<VerifiedIdentity>),
}

impl RequestCaller {
    /// The caller a user meant by `input`, for every front that takes one string: `None` when
    /// empty, [`Token`](Self::Token) when it [looks like a token](looks_like_token), else
    /// [`Agent`](Self::Agent). The one place this choice is made.
    pub fn from_input(input: &str) -> Option<Self> {
        if input.is_empty() {
            None
        } else if looks_like_token(input) {
            Some(Self::Token(input.to_owned()))
        } else {
            Some(Self::Agent(AgentId::new(input)))
        }
    }

    /// The caller as it was given, for display: the agent id, the token text, or the verified
    /// agent id.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Agent(id) => id.as_str(),
            Self::Token(token) => token,
            Self::Verified(identity) => identity.agent_id.as_str(),
        }
    }

    /// The verified identity, when this caller is one.
    pub fn verified(&self) -> Option<&CallerIdentity> {
        match self {
            Self::Verified(identity) => Some(identity.identity()),
            Self::Agent(_) | Self::Token(_) => None,
        }
    }
}

impl fmt::Debug for RequestCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agent(id) => f.debug_tuple("Agent").field(id).finish(),
            Self::Token(_) => f.debug_tuple("Token").field(&format_args!("[redacted]")).finish(),
            Self::Verified(identity) => f.debug_tuple("Verified").field(identity).finish(),
        }
    }
}

/// Whether a caller string is shaped like an identity token (a JWT), and so must verify as one.
///
/// The rule: there is a `.`, and the text before the first `.` either starts with `eyJ` (the
/// base64url of `{"`) or decodes (base64url or base64, padding optional) to a JSON object —
/// a JWT header. The number and content of the other segments do not matter: an empty
/// signature (`alg: none`), a trailing or extra segment, or odd characters after the header
/// cannot turn a token into a plain agent id. A caller that matches and does not verify is a
/// DENY with the reason (issue #13).
pub fn looks_like_token(s: &str) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let Some((header, _)) = s.split_once('.') else { return false };
    if header.starts_with("eyJ") {
        return true;
    }
    let header = header.trim_end_matches('=');
    let decoded = URL_SAFE_NO_PAD.decode(header).or_else(|_| STANDARD_NO_PAD.decode(header));
    decoded.is_ok_and(|bytes| {
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_is_sorted_into_agent_or_token_in_one_place() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJhZ2VudF9pZCI6ImEifQ.c2ln";
        assert_eq!(RequestCaller::from_input(""), None);
        assert_eq!(
            RequestCaller::from_input("deploy-bot"),
            Some(RequestCaller::Agent(AgentId::new("deploy-bot")))
        );
        assert_eq!(RequestCaller::from_input(token), Some(RequestCaller::Token(token.to_owned())));
        let debug = format!("{:?}", RequestCaller::from_input(token));
        assert!(!debug.contains("eyJ") && debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn issue_13_every_jwt_shaped_caller_counts_as_a_token() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = b64(r#"{"alg":"none","typ":"JWT"}"#);
        let spaced = b64(r#" {"alg":"HS256"}"#);
        let claims = b64(r#"{"agent_id":"deploy-bot"}"#);
        for token in [
            format!("{none}.{claims}."),
            format!("{none}.{claims}"),
            format!("{none}.{claims}.sig.extra"),
            format!("{none}.."),
            format!("{none}.{claims}.!odd!"),
            format!("{spaced}.{claims}.sig"),
            format!("{spaced}=.{claims}"),
        ] {
            assert!(looks_like_token(&token), "{token}");
        }
        for id in ["deploy-bot", "team.bot", "a.b.c", "eyJ-no-dot", "v1.2.3", ""] {
            assert!(!looks_like_token(id), "{id}");
        }
    }
}
