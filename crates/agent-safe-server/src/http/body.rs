//! The JSON body extractor: `Content-Type: application/json` required (415), the body limit
//! (413), malformed JSON (400 `malformed_json`) and unknown or mistyped fields (400
//! `invalid_request`, the field named) as API errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::ApiError;

/// A request body parsed as `T` (which denies unknown fields).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::bad_request(format!("cannot read the request body: {}", r.body_text()))
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// A request body parsed as `T`, or `T::default()` when there is no body at all (e.g.
/// `POST /v1/approvals/{id}/approve` without a reason).
#[derive(Debug)]
pub(crate) struct OptionalJson<T>(pub(crate) T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            let bytes = Bytes::from_request(req, state)
                .await
                .map_err(|r| ApiError::bad_request(r.body_text()))?;
            if bytes.is_empty() {
                return Ok(OptionalJson(T::default()));
            }
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON with `Content-Type: application/json`",
            ));
        }
        ApiJson::from_request(req, state).await.map(|ApiJson(t)| OptionalJson(t))
    }
}

/// Parses a body; errors name the problem and where it is.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(e.to_string()),
        _ => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("malformed JSON: {e}"))
        }
    })
}

/// An optional `u32` that also takes a JSON number with a zero fraction (`5.0`): JSON Schema
/// calls it an integer, so a client that writes it so is within the contract.
pub(crate) fn opt_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(u) = n.as_u64() {
        return u32::try_from(u)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is not a u32")));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) =>
        {
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "checked")]
            Ok(Some(f as u32))
        }
        _ => Err(D::Error::custom(format!("{n} is not a whole number from 0 to {}", u32::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        action: String,
        #[serde(default)]
        target: Option<String>,
    }

    #[track_caller]
    fn check(input: &str, expected: Result<Body, (&str, &str)>) {
        match (parse::<Body>(input.as_bytes()), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err((code, fragment))) => {
                assert_eq!(got.status, StatusCode::BAD_REQUEST);
                assert_eq!(got.code, code);
                assert!(got.message.contains(fragment), "{}", got.message);
            }
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn bodies() {
        check(r#"{"action": "a"}"#, Ok(Body { action: "a".into(), target: None }));
        check(
            r#"{"action": "a", "targt": "x"}"#,
            Err(("invalid_request", "unknown field `targt`")),
        );
        check(r#"{"action": 3}"#, Err(("invalid_request", "invalid type")));
        check(r#"{"target": "x"}"#, Err(("invalid_request", "missing field `action`")));
        check(r#"{"action": "a""#, Err(("malformed_json", "malformed JSON")));
        check("not json", Err(("malformed_json", "malformed JSON")));
    }
}
