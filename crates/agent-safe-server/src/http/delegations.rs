//! `POST /v1/delegations`: the bearer delegates a narrower identity token to a sub-agent (the
//! `delegation create --json-output` object).

use agent_safe::delegation::{DelegationError, DelegationRequest};
use agent_safe::report::DelegationReport;
use agent_safe_core::Environment;
use axum::response::Response;
use serde::Deserialize;

use super::ApiError;
use super::auth::Authed;
use super::body::ApiJson;
use super::check::with_revision;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegateBody {
    child_agent_id: String,
    #[serde(default)]
    child_name: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, deserialize_with = "super::body::opt_u32")]
    ttl_seconds: Option<u32>,
    #[serde(default, deserialize_with = "super::body::opt_u32")]
    max_depth: Option<u32>,
    #[serde(default)]
    actions: Option<Vec<String>>,
    #[serde(default)]
    environments: Option<Vec<String>>,
}

pub(crate) async fn delegate(
    auth: Authed,
    ApiJson(body): ApiJson<DelegateBody>,
) -> Result<Response, ApiError> {
    let (parent, _) = auth.required()?;
    let mut request =
        DelegationRequest::new(&body.child_agent_id).name(body.child_name.unwrap_or_default());
    request.roles = body.roles;
    request.groups = body.groups;
    request.ttl = body.ttl_seconds.map(|s| time::Duration::seconds(i64::from(s)));
    request.max_depth = body.max_depth;
    request.actions = body.actions;
    request.environments = body
        .environments
        .map(|envs| {
            envs.iter()
                .map(|e| e.parse::<Environment>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::bad_request(format!("environments: {e}")))
        })
        .transpose()?;
    let manager = auth.loaded.safe.delegations()?;
    let made = manager.delegate(parent, &request).map_err(|e| match e {
        DelegationError::InvalidPattern { .. }
        | DelegationError::TooManyPatterns(_)
        | DelegationError::EmptyChildId
        | DelegationError::TtlTooShort(_) => ApiError::bad_request(e.to_string()),
        e => ApiError::forbidden("delegation_refused", e.to_string()),
    })?;
    Ok(with_revision(&auth.loaded, &DelegationReport::new(&made)))
}
