//! JSON views of a credential: metadata with the payload redacted, or — only when asked for by
//! name — with the payload. [`Credential`] itself is not `Serialize`, so nothing prints a
//! payload by accident.

use agent_safe_core::timefmt::serde_utc;
use agent_safe_core::{Credential, CredentialScope, Params};
use serde::Serialize;
use time::OffsetDateTime;

/// What a credential looks like in JSON output; the Python field order.
///
/// ```
/// use agent_safe_core::{Credential, CredentialScope, Secret};
/// use agent_safe_credentials::CredentialView;
///
/// let credential = Credential {
///     credential_id: "cred-0123456789ab".into(),
///     kind: "kubernetes".into(),
///     payload: Secret::new([("token".to_owned(), "s3cr3t".into())].into_iter().collect()),
///     expires_at: time::macros::datetime!(2026-02-24 12:05 UTC),
///     scope: CredentialScope { kind: "kubernetes".into(), fields: Default::default(), ttl: 300 },
///     ticket_nonce: "n1".into(),
/// };
/// let json = serde_json::to_string(&CredentialView::redacted(&credential))?;
/// assert!(json.contains(r#""payload":"[redacted]""#) && !json.contains("s3cr3t"));
/// let json = serde_json::to_string(&CredentialView::with_secret(&credential))?;
/// assert!(json.contains(r#""payload":{"token":"s3cr3t"}"#));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Serialize)]
pub struct CredentialView<'a> {
    credential_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    payload: Payload<'a>,
    #[serde(with = "serde_utc")]
    expires_at: OffsetDateTime,
    scope: &'a CredentialScope,
    ticket_nonce: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Redacted(&'static str),
    Shown(&'a Params),
}

impl<'a> CredentialView<'a> {
    /// Metadata only: the payload shows as `"[redacted]"`.
    pub fn redacted(credential: &'a Credential) -> Self {
        Self::build(credential, Payload::Redacted(agent_safe_core::REDACTED))
    }

    /// Metadata and the secret payload. Only for an explicit request such as
    /// `credential resolve --show-secret`.
    pub fn with_secret(credential: &'a Credential) -> Self {
        Self::build(credential, Payload::Shown(credential.payload.expose()))
    }

    fn build(c: &'a Credential, payload: Payload<'a>) -> Self {
        Self {
            credential_id: &c.credential_id,
            kind: &c.kind,
            payload,
            expires_at: c.expires_at,
            scope: &c.scope,
            ticket_nonce: &c.ticket_nonce,
        }
    }
}
