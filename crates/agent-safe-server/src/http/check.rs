//! `POST /v1/check` and `POST /v1/check-plan`: decisions, recorded in the audit log (with the
//! policy revision) before they are answered, as the Decision JSON of `check --json-output`.

use std::sync::Arc;
use std::time::Instant;

use agent_safe::{CheckRequest, Params, RequestCaller};
use agent_safe_audit::Durability;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::auth::Authed;
use super::body::ApiJson;
use crate::source::Loaded;
use crate::state::Shared;

/// The response header naming the policy revision that decided.
pub(crate) const REVISION_HEADER: &str = "x-agent-safe-policy-revision";

/// One request to check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckBody {
    action: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    params: Option<Params>,
    #[serde(default)]
    ticket_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

impl CheckBody {
    fn into_request(self, auth: &Authed) -> Result<CheckRequest, ApiError> {
        let mut request = CheckRequest::new(self.action).params(self.params.unwrap_or_default());
        request.target = self.target;
        request.caller = auth.caller(self.caller)?.as_deref().and_then(RequestCaller::from_input);
        request.ticket_id = self.ticket_id;
        request.correlation_id = self.correlation_id;
        Ok(request)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanBody {
    steps: Vec<CheckBody>,
}

/// Runs `f` where blocking is fine: inline when appends are buffered (fast), on tokio's blocking
/// pool when they wait for an fsync.
pub(crate) async fn blocking<T: Send + 'static>(
    loaded: &Loaded,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let buffered =
        loaded.safe.audit_log().is_some_and(|log| log.durability() == Durability::Buffered);
    if buffered {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))
}

/// A JSON response carrying the revision header.
pub(crate) fn with_revision(loaded: &Loaded, body: &impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&loaded.revision) {
        response.headers_mut().insert(REVISION_HEADER, v);
    }
    response
}

pub(crate) async fn check(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    ApiJson(body): ApiJson<CheckBody>,
) -> Result<Response, ApiError> {
    let request = body.into_request(&auth)?;
    let started = Instant::now();
    let loaded = auth.loaded.clone();
    // The bearer token was verified by `Authed` with this very configuration: the SDK takes
    // the identity instead of verifying the token a second time.
    let identity = auth.identity.clone();
    let decision = blocking(&auth.loaded, move || match identity {
        Some(identity) => loaded.safe.check_verified(&request, identity),
        None => loaded.safe.check(&request),
    })
    .await??;
    shared.metrics.check_latency.observe(started.elapsed());
    shared.metrics.decision(decision.result);
    shared.notify_shipping();
    Ok(with_revision(&auth.loaded, &decision))
}

pub(crate) async fn check_plan(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Response, ApiError> {
    let max = shared.config.max_plan_steps;
    if body.steps.is_empty() || body.steps.len() > max {
        return Err(ApiError::bad_request(format!(
            "a plan has 1 to {max} steps, got {}",
            body.steps.len()
        )));
    }
    let requests =
        body.steps.into_iter().map(|s| s.into_request(&auth)).collect::<Result<Vec<_>, _>>()?;
    let loaded = auth.loaded.clone();
    let identity = auth.identity.clone();
    let decisions = blocking(&auth.loaded, move || match identity {
        Some(identity) => loaded.safe.check_plan_verified(&requests, &identity),
        None => loaded.safe.check_plan(&requests),
    })
    .await??;
    for d in &decisions {
        shared.metrics.decision(d.result);
    }
    shared.notify_shipping();
    Ok(with_revision(&auth.loaded, &serde_json::json!({ "decisions": decisions })))
}
