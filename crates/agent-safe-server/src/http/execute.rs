//! `POST /v1/tickets/verify` (the `ticket verify --json-output` object) and `POST /v1/execute`
//! (the `runner execute --json-output` object; the ticket runs once, through the runner, with
//! the server's executor, and only for the agent it was issued to).

use std::sync::Arc;
use std::time::Duration;

use agent_safe::report::RunReport;
use agent_safe::{Error, ExecuteError, ExecuteOptions, NonceUse, Params};
use agent_safe_runner::RunnerError;
use agent_safe_tickets::Expected;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::auth::Authed;
use super::body::ApiJson;
use super::check::{blocking, with_revision};
use crate::state::Shared;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    token: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    params: Option<Params>,
    /// Use the ticket up (default, like the CLI); `false` is `--no-consume`.
    #[serde(default = "yes")]
    consume: bool,
}

fn yes() -> bool {
    true
}

pub(crate) async fn verify_ticket(
    auth: Authed,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, ApiError> {
    let loaded = auth.loaded.clone();
    let consume = body.consume;
    let result = blocking(&auth.loaded, move || {
        let expected = Expected {
            action: body.action.as_deref(),
            target: body.target.as_deref(),
            params: body.params.as_ref(),
        };
        let nonce = if consume { NonceUse::Consume } else { NonceUse::Keep };
        loaded.safe.verify_ticket(&body.token, &expected, nonce)
    })
    .await??;
    Ok(with_revision(
        &auth.loaded,
        &json!({
            "valid": result.valid,
            "reason": result.reason,
            "ticket": result.ticket,
            "consumed": result.valid && consume,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteBody {
    ticket: String,
    /// Report what would be done without consuming the ticket or executing.
    #[serde(default)]
    dry_run: bool,
    /// A shorter executor timeout than the server's.
    #[serde(default)]
    timeout_seconds: Option<f64>,
}

pub(crate) async fn execute(
    State(shared): State<Arc<Shared>>,
    auth: Authed,
    ApiJson(body): ApiJson<ExecuteBody>,
) -> Result<Response, ApiError> {
    let safe = auth.loaded.safe.clone();
    if let Some(identity) = &auth.identity {
        let ticket = body.ticket.clone();
        let s = safe.clone();
        let inspected = blocking(&auth.loaded, move || {
            s.verify_ticket(&ticket, &Expected::default(), NonceUse::Keep)
        })
        .await??;
        if let Some(t) = inspected.ticket
            && t.caller.as_str() != identity.agent_id.as_str()
        {
            return Err(ApiError::forbidden(
                "forbidden",
                format!(
                    "the ticket was issued to `{}`, not to the caller `{}`",
                    t.caller, identity.agent_id
                ),
            ));
        }
    }
    let mut options: ExecuteOptions = shared.config.execute;
    if let Some(secs) = body.timeout_seconds {
        if !(secs.is_finite() && secs > 0.0) {
            return Err(ApiError::bad_request(format!(
                "`timeout_seconds` must be a positive number, got `{secs}`"
            )));
        }
        let asked = Duration::from_secs_f64(secs.min(86_400.0));
        let limit = options.timeout.unwrap_or(Duration::from_secs(300));
        options.timeout = Some(asked.min(limit));
    }
    let outcome = if body.dry_run {
        safe.dry_run(&body.ticket, options).await
    } else {
        safe.execute(&body.ticket, shared.executor.clone(), options).await
    };
    match outcome {
        Ok(outcome) => Ok(with_revision(&auth.loaded, &RunReport::new(&outcome))),
        Err(Error::Execute(ExecuteError::Runner(RunnerError::Audit { outcome, source }))) => {
            Err(ApiError::internal(format!(
                "the outcome ({}) could not be written to the audit log (the action may have \
                 been executed): {source}",
                outcome.result.status.as_str()
            )))
        }
        Err(e) => Err(e.into()),
    }
}
