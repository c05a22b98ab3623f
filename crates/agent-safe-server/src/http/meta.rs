//! The other endpoints: actions, audit verification, admin reload, health, readiness, metrics,
//! the OpenAPI document, and the JSON answers for unknown paths and methods.

use std::sync::Arc;

use agent_safe_core::RiskClass;
use agent_safe_core::timefmt::format_utc;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::Authed;
use super::check::with_revision;
use super::{ApiError, OPENAPI};
use crate::state::Shared;

/// The role that may ask for a reload over HTTP.
pub const ADMIN_ROLE: &str = "agent-safe-admin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionsQuery {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    risk: Option<String>,
}

pub(crate) async fn actions(
    auth: Authed,
    query: Result<Query<ActionsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let risk: Option<RiskClass> = query
        .risk
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("risk: {e}")))?;
    let registry = auth.loaded.safe.registry();
    let defs: Vec<_> = registry
        .iter()
        .filter(|a| query.tag.as_ref().is_none_or(|t| a.definition().tags.contains(t)))
        .filter(|a| risk.is_none_or(|r| a.risk_class() == r))
        .map(|a| a.definition())
        .collect();
    Ok(with_revision(&auth.loaded, &defs))
}

pub(crate) async fn audit_verify(auth: Authed) -> Result<Response, ApiError> {
    let loaded = auth.loaded.clone();
    let report = blocking_always(move || loaded.safe.verify_audit()).await?;
    let Some(report) = report else {
        return Err(ApiError::not_configured("no audit log is configured"));
    };
    let report = report?;
    let errors: Vec<_> =
        report.errors.iter().map(|e| json!({"line": e.line, "message": e.message})).collect();
    Ok(axum::Json(json!({
        "valid": report.errors.is_empty(),
        "entries": report.entries,
        "errors": errors,
    }))
    .into_response())
}

/// `audit_checkpoints:` of this server, or 409 `not_configured`.
fn checkpoints(shared: &Shared) -> Result<Arc<crate::checkpoints::Checkpoints>, ApiError> {
    shared.checkpoints.clone().ok_or_else(|| {
        ApiError::not_configured(
            "this server signs no checkpoints: configure `audit_checkpoints:` in agent-safe.yaml",
        )
    })
}

/// The newest signed checkpoint, as the C2SP signed note (text).
pub(crate) async fn audit_checkpoint(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
) -> Result<Response, ApiError> {
    let Some(note) = checkpoints(&shared)?.latest() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_checkpoint",
            "no checkpoint is signed yet: the audit log has no entries",
        ));
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note.to_string()).into_response())
}

/// The inclusion proof of one entry against the newest checkpoint (`agent-safe audit prove`).
pub(crate) async fn audit_proof(
    State(shared): State<Arc<Shared>>,
    _auth: Authed,
    axum::extract::Path(event_id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let signer = checkpoints(&shared)?;
    match blocking_always(move || signer.prove(&event_id)).await? {
        Ok(bundle) => Ok(axum::Json(bundle).into_response()),
        Err(crate::checkpoints::ProveError::NotFound(message)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", message))
        }
        Err(crate::checkpoints::ProveError::Failed(message)) => Err(ApiError::internal(message)),
    }
}

/// Verification reads the whole log: never on a worker thread.
async fn blocking_always<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))
}

pub(crate) async fn reload(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
) -> Result<Response, ApiError> {
    let (_, identity) = auth.required()?;
    if !identity.roles.iter().any(|r| r == ADMIN_ROLE) {
        return Err(ApiError::forbidden(
            "forbidden",
            format!("reloading needs the `{ADMIN_ROLE}` role"),
        ));
    }
    let s = shared.clone();
    match blocking_always(move || s.reload()).await? {
        Ok(revision) => {
            Ok(axum::Json(json!({"reloaded": true, "policy_revision": revision})).into_response())
        }
        Err(e) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", e.to_string()))
        }
    }
}

pub(crate) async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when a configuration is loaded and the state backend answers (with `state: {backend:
/// postgres}`, a `SELECT 1`); else 503 with the reason, so a load balancer stops sending
/// requests this replica could not record.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.current();
    let safe = loaded.safe.clone();
    let state = match tokio::task::spawn_blocking(move || safe.state_ready()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the readiness check failed: {e}")),
    };
    let mut body = json!({
        "ready": state.is_ok(),
        "policy_revision": loaded.revision,
        "loaded_at": format_utc(loaded.loaded_at),
        "last_reload": shared.last_reload(),
    });
    match state {
        Ok(()) => axum::Json(body).into_response(),
        Err(reason) => {
            body["reason"] = json!(reason);
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let backlog = shared.shipping.as_ref().map(|w| w.lag());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.render(backlog, shared.current().safe.notifications_dropped()),
    )
        .into_response()
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint (see /v1/openapi.json)")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (see /v1/openapi.json)",
    )
}
