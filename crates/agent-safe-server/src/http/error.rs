//! API errors: `{"error": {"code": "...", "message": "..."}}` with a status code, and the mapping
//! of SDK errors onto them.

use agent_safe::approvals::{ApprovalError, ResolveError, StoreError};
use agent_safe::{Error, ExecuteError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (see docs/server.md).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn not_configured(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "not_configured", message)
    }

    /// 503 `unavailable`: the state backend (a database) cannot be reached now; nothing was
    /// decided, recorded or consumed. Retry after a second.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(1);
        e
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<agent_safe::CheckError> for ApiError {
    fn from(e: agent_safe::CheckError) -> Self {
        Self::from(Error::from(e))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        if e.is_unavailable() {
            return ApiError::unavailable(message);
        }
        match e {
            Error::Approval(a) | Error::Check(agent_safe::CheckError::Approval(a)) => {
                approval(a, message)
            }
            Error::Execute(ExecuteError::NoSigningKey)
            | Error::DelegationWithoutKey
            | Error::Credentials(_) => ApiError::not_configured(message),
            // The audit log could not be written: the decision is not returned.
            _ => ApiError::internal(message),
        }
    }
}

fn approval(e: ApprovalError, message: String) -> ApiError {
    match e {
        ApprovalError::NotConfigured | ApprovalError::NoSigningKey => {
            ApiError::not_configured(message)
        }
        ApprovalError::ApproverToken(_) => ApiError::unauthenticated(message),
        ApprovalError::NotFound(_) | ApprovalError::Store(StoreError::NotFound(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
        }
        ApprovalError::Refused(ResolveError::NotPending { .. }) => {
            ApiError::new(StatusCode::CONFLICT, "not_pending", message)
        }
        ApprovalError::Refused(_)
        | ApprovalError::PolicyDenies { .. }
        | ApprovalError::Unbound { .. } => ApiError::forbidden("approval_refused", message),
        _ => ApiError::internal(message),
    }
}
