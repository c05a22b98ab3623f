//! Classifies SDK errors: an answer from the service (access denied, not found, invalid
//! request…) is a FAILURE with the AWS error code and message; anything that kept the
//! request from being answered (credentials, DNS, TLS, timeouts, configuration) is an ERROR.

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What went wrong in one AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The service answered with an error.
    Service {
        /// AWS error code, e.g. `InvalidInstanceID.NotFound`; `HTTP 403` when the response
        /// had none (S3 HEAD requests have no body).
        code: String,
        /// The service's message (may be empty).
        message: String,
    },
    /// The request was not answered: configuration, credentials, network.
    Transport(String),
    /// The call was answered but is not what the action needs (e.g. the resource is gone).
    NotFound(String),
    /// The executor refused to send the request (e.g. a malformed policy document).
    Refused(String),
}

impl CallError {
    /// Whether the service said the resource does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        match self {
            CallError::NotFound(_) => true,
            CallError::Service { code, .. } => {
                code.contains("NotFound")
                    || code.starts_with("NoSuch")
                    || code == "ResourceNotFoundException"
                    || code == "HTTP 404"
            }
            CallError::Transport(_) | CallError::Refused(_) => false,
        }
    }

    /// Whether the service answered with `code`.
    pub(crate) fn has_code(&self, wanted: &str) -> bool {
        matches!(self, CallError::Service { code, .. } if code == wanted)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Service { code, message } if message.is_empty() => {
                write!(f, "AWS API error: {code}")
            }
            CallError::Service { code, message } => write!(f, "AWS API error: {code}: {message}"),
            CallError::Transport(msg) => write!(f, "AWS executor error: {msg}"),
            CallError::NotFound(msg) => write!(f, "AWS API error: {msg}"),
            CallError::Refused(msg) => f.write_str(msg),
        }
    }
}

impl<E> From<SdkError<E, HttpResponse>> for CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        match &err {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().map_or_else(|| format!("HTTP {status}"), str::to_owned);
                let message = ctx.err().message().unwrap_or_default().to_owned();
                CallError::Service { code, message }
            }
            _ => CallError::Transport(DisplayErrorContext(&err).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallError;

    #[track_caller]
    fn check(err: CallError, shown: &str, not_found: bool) {
        assert_eq!(err.to_string(), shown);
        assert_eq!(err.is_not_found(), not_found, "{err:?}");
    }

    #[test]
    fn messages_and_not_found() {
        let service = |code: &str, message: &str| CallError::Service {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        check(
            service("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"),
            "AWS API error: InvalidInstanceID.NotFound: The instance ID 'i-1' does not exist",
            true,
        );
        check(service("HTTP 404", ""), "AWS API error: HTTP 404", true);
        check(service("NoSuchBucketPolicy", "x"), "AWS API error: NoSuchBucketPolicy: x", true);
        check(
            service("AccessDenied", "Access Denied"),
            "AWS API error: AccessDenied: Access Denied",
            false,
        );
        check(
            CallError::Transport("dispatch failure: connection refused".into()),
            "AWS executor error: dispatch failure: connection refused",
            false,
        );
        check(
            CallError::NotFound("ECS task `t` not found in cluster `c`".into()),
            "AWS API error: ECS task `t` not found in cluster `c`",
            true,
        );
        assert!(service("NoSuchBucket", "").has_code("NoSuchBucket"));
        assert!(!service("NoSuchBucketPolicy", "").has_code("NoSuchBucket"));
    }
}
