//! Authentication and the per-caller rate limit, as an extractor that runs before the body is
//! read: the bearer identity token is verified with the configuration in force (the same
//! verification as `agent-safe check --caller <token>`), and that configuration is the one the
//! whole request then uses.

use std::sync::Arc;

use agent_safe_tickets::VerifiedIdentity;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::{ApiError, Peer};
use crate::CallerAuth;
use crate::source::Loaded;
use crate::state::Shared;

/// An authenticated (or, with `--allow-anonymous`, anonymous) request.
#[derive(Debug)]
pub(crate) struct Authed {
    /// The configuration this request is decided by.
    pub(crate) loaded: Arc<Loaded>,
    /// The bearer token, verified.
    pub(crate) token: Option<String>,
    /// Its identity.
    pub(crate) identity: Option<VerifiedIdentity>,
}

impl FromRequestParts<Arc<Shared>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        let loaded = shared.current();
        let header = parts.headers.get(header::AUTHORIZATION);
        let (token, identity) = match header {
            None if shared.config.auth == CallerAuth::AllowAnonymous => (None, None),
            None => {
                return Err(ApiError::unauthenticated(
                    "missing identity token: send `Authorization: Bearer <identity token>`",
                ));
            }
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ApiError::unauthenticated(
                            "malformed `Authorization` header: expected `Bearer <identity token>`",
                        )
                    })?;
                let manager = loaded.safe.delegations().map_err(|_| {
                    ApiError::unauthenticated(
                        "identity tokens cannot be verified: no signing key is configured",
                    )
                })?;
                let identity = manager.verify(token).map_err(|e| {
                    ApiError::unauthenticated(format!("invalid identity token: {e}"))
                })?;
                (Some(token.to_owned()), Some(identity))
            }
        };
        if let Some(limiter) = &shared.limiter {
            let key = match (&identity, parts.extensions.get::<Peer>()) {
                (Some(id), _) => format!("agent:{}", id.agent_id),
                (None, Some(peer)) => format!("peer:{}", peer.0.ip()),
                (None, None) => "anonymous".to_owned(),
            };
            if let Err(wait) = limiter.take(&key) {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests from this caller; retry later",
                );
                e.retry_after = Some(wait.as_secs().max(1));
                return Err(e);
            }
        }
        Ok(Authed { loaded, token, identity })
    }
}

impl Authed {
    /// The verified token and identity; 401 when the request has none (approvals, delegation).
    pub(crate) fn required(&self) -> Result<(&str, &VerifiedIdentity), ApiError> {
        match (&self.token, &self.identity) {
            (Some(t), Some(i)) => Ok((t, i)),
            _ => Err(ApiError::unauthenticated(
                "this endpoint needs an identity token: send `Authorization: Bearer <identity token>`",
            )),
        }
    }

    /// The caller to check as: the bearer token when there is one (the body's `caller` must
    /// then be absent, the token itself or its agent id), else the body's `caller`.
    pub(crate) fn caller(&self, body_caller: Option<String>) -> Result<Option<String>, ApiError> {
        let (Some(token), Some(identity)) = (&self.token, &self.identity) else {
            return Ok(body_caller);
        };
        match body_caller {
            Some(c) if c != *token && c != identity.agent_id.as_str() => Err(ApiError::forbidden(
                "caller_mismatch",
                format!(
                    "the body's caller `{c}` contradicts the bearer token, which is for `{}`",
                    identity.agent_id
                ),
            )),
            _ => Ok(Some(token.clone())),
        }
    }
}
