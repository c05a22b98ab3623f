//! `GET /v1/approvals`, `GET /v1/approvals/{id}` and `POST /v1/approvals/{id}/approve|deny`:
//! the approval store through the SDK; resolving needs the approver's bearer token and follows
//! the SDK's approval rules (concurrent resolutions: exactly one sees the request pending).

use agent_safe::Params;
use agent_safe::approvals::{ApprovalError, StoreError, Verdict};
use agent_safe_registry::Registry;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::auth::Authed;
use super::body::OptionalJson;
use super::check::{blocking, with_revision};

pub(crate) async fn list(auth: Authed) -> Result<Response, ApiError> {
    let loaded = auth.loaded.clone();
    let listing = blocking(&auth.loaded, move || loaded.safe.list_pending_approvals()).await??;
    let registry = auth.loaded.safe.registry();
    let requests: Vec<_> = listing
        .requests
        .into_iter()
        .map(|mut r| {
            r.params = shown_params(registry, r.action.as_str(), &r.params);
            r
        })
        .collect();
    let unreadable: Vec<String> = listing
        .corrupt
        .iter()
        .map(|c| match c.request_id.as_deref() {
            Some(id) => format!("line {} (request `{id}`): {}", c.line, c.detail),
            None => format!("line {}: {}", c.line, c.detail),
        })
        .collect();
    Ok(with_revision(&auth.loaded, &json!({"requests": requests, "unreadable_lines": unreadable})))
}

pub(crate) async fn show(auth: Authed, Path(id): Path<String>) -> Result<Response, ApiError> {
    let loaded = auth.loaded.clone();
    let lookup = id.clone();
    let mut request = blocking(&auth.loaded, move || loaded.safe.approval_status(&lookup))
        .await?
        .map_err(|e| match e {
        agent_safe::Error::Approval(ApprovalError::Store(StoreError::NotFound(_))) => {
            not_found(&id)
        }
        e => e.into(),
    })?;
    request.params =
        shown_params(auth.loaded.safe.registry(), request.action.as_str(), &request.params);
    Ok(with_revision(&auth.loaded, &request))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("approval request `{id}` not found"))
}

/// Params as they may be shown: values of parameters declared `sensitive` are `[redacted]`.
fn shown_params(registry: &Registry, action: &str, params: &Params) -> Params {
    registry.redact_params(action, params)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn approve(
    auth: Authed,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ResolveBody>,
) -> Result<Response, ApiError> {
    resolve(auth, id, body, Verdict::Approve).await
}

pub(crate) async fn deny(
    auth: Authed,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ResolveBody>,
) -> Result<Response, ApiError> {
    resolve(auth, id, body, Verdict::Deny).await
}

async fn resolve(
    auth: Authed,
    id: String,
    body: ResolveBody,
    verdict: Verdict,
) -> Result<Response, ApiError> {
    let (token, _) = auth.required()?;
    let token = token.to_owned();
    let loaded = auth.loaded.clone();
    let decision = blocking(&auth.loaded, move || {
        loaded.safe.resolve_approval(&id, verdict, &token, body.reason.as_deref())
    })
    .await??;
    Ok(with_revision(&auth.loaded, &decision))
}
