//! Execution tickets (SPEC §7.2): signed, short-lived, single-use permissions to run one action
//! on one target with exact params; issuing and validating them.

use std::sync::Arc;

use agent_safe_core::{ActionName, AgentId, AuditId, Clock, ExecutionTicket, Params, TargetId};
use serde::Serialize;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::canonical::params_digest;
use crate::identity::TokenError;
use crate::jwt::{self, Audience, JwtError, Rules};
use crate::keys::{KeySet, SigningKey};
use crate::nonce::{NonceStore, NonceStoreError};

/// Default ticket lifetime (SPEC §7.2).
pub const DEFAULT_TICKET_TTL: Duration = Duration::minutes(5);

/// The audience tickets carry by default: the runner that executes them.
pub const DEFAULT_TICKET_AUDIENCE: &str = "agent-safe-runner";

/// The `type` claim of a ticket.
pub const TICKET_TYPE: &str = "execution-ticket";

/// Claims required in every ticket, checked in this order (as Python).
const REQUIRED: &[&str] =
    &["type", "action", "target", "caller", "audit_id", "nonce", "iss", "iat", "exp"];

/// Why a ticket was rejected. `Display` is the reason text of the Python version where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// `exp` has passed.
    #[error("Ticket has expired")]
    Expired,
    /// The ticket's `iss` differs from the validator's.
    #[error("Invalid ticket issuer")]
    InvalidIssuer {
        /// The issuer the ticket names.
        issuer: String,
    },
    /// Bad signature, wrong algorithm, malformed, missing or ill-typed claim, not yet valid, wrong
    /// audience, unknown key id, too large.
    #[error("Invalid ticket: {0}")]
    Invalid(String),
    /// A signed token of another kind (e.g. an identity token).
    #[error("Token is not an execution ticket")]
    NotATicket,
    /// The ticket is for another action.
    #[error("Action mismatch: ticket is for '{ticket}', expected '{expected}'")]
    ActionMismatch {
        /// The ticket's action.
        ticket: String,
        /// The action about to run.
        expected: String,
    },
    /// The ticket is for another target.
    #[error("Target mismatch: ticket is for '{ticket}', expected '{expected}'")]
    TargetMismatch {
        /// The ticket's target.
        ticket: String,
        /// The target about to be acted on.
        expected: String,
    },
    /// The params about to be used differ from those the ticket was issued for.
    #[error("Params mismatch: ticket params digest is '{ticket}', expected '{expected}'")]
    ParamsMismatch {
        /// Digest of the ticket's params.
        ticket: String,
        /// Digest of the params about to be used.
        expected: String,
    },
    /// The nonce was already consumed.
    #[error("Ticket has already been used (replay detected)")]
    Replayed,
    /// The nonce store failed; the ticket is not accepted (fail closed).
    #[error("Nonce store error: {0}")]
    NonceStore(#[from] NonceStoreError),
}

impl From<JwtError> for TicketError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Expired => Self::Expired,
            JwtError::InvalidIssuer(issuer) => Self::InvalidIssuer { issuer },
            JwtError::Invalid(detail) => Self::Invalid(detail),
        }
    }
}

/// The payload in the Python version's key order, plus `aud` and `params_digest`.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    action: &'a str,
    target: &'a str,
    caller: &'a str,
    params: &'a Params,
    audit_id: &'a str,
    nonce: &'a str,
    iss: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    params_digest: &'a str,
}

/// Issues execution tickets for ALLOW decisions.
#[derive(Debug, Clone)]
pub struct TicketIssuer {
    key: SigningKey,
    issuer: String,
    ttl: Duration,
    audience: Audience,
    clock: Arc<dyn Clock>,
}

impl TicketIssuer {
    /// An issuer with the default TTL (5 minutes) and audience (`agent-safe-runner`).
    pub fn new(key: SigningKey, issuer: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            ttl: DEFAULT_TICKET_TTL,
            audience: Audience::IfPresent(DEFAULT_TICKET_AUDIENCE.to_owned()),
            clock,
        }
    }

    /// Sets the lifetime of issued tickets.
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
    }

    /// Sets the audience written into tickets. [`Audience::Absent`] mints tickets the Python
    /// `TicketValidator` accepts (PyJWT rejects a token with an `aud` it was not told to expect).
    pub fn with_audience(self, audience: Audience) -> Self {
        Self { audience, ..self }
    }

    /// The default lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a ticket valid for the configured TTL. Claims (SPEC §7.2): `type`, `action`,
    /// `target`, `caller`, `params`, `audit_id`, `nonce`, `iss`, `iat`, `exp`, plus `aud` (if
    /// configured) and `params_digest` (hex SHA-256 of the canonical JSON of params).
    pub fn issue(
        &self,
        action: &str,
        target: &str,
        caller: &str,
        params: &Params,
        audit_id: &str,
    ) -> Result<ExecutionTicket, TokenError> {
        self.issue_with_ttl(action, target, caller, params, audit_id, self.ttl)
    }

    /// Issues a ticket valid for `ttl` instead of the default.
    pub fn issue_with_ttl(
        &self,
        action: &str,
        target: &str,
        caller: &str,
        params: &Params,
        audit_id: &str,
        ttl: Duration,
    ) -> Result<ExecutionTicket, TokenError> {
        let now = self.clock.now();
        let expires_at = now.checked_add(ttl).ok_or(TokenError::InvalidTtl(ttl))?;
        let nonce = agent_safe_core::random::nonce();
        let digest = params_digest(params);
        let payload = Payload {
            kind: TICKET_TYPE,
            action,
            target,
            caller,
            params,
            audit_id,
            nonce: &nonce,
            iss: &self.issuer,
            iat: jwt::unix_seconds(now),
            exp: jwt::unix_seconds(expires_at),
            aud: self.audience.minted(),
            params_digest: &digest,
        };
        let token = jwt::sign(&self.key, &payload).map_err(TokenError::Signing)?;
        Ok(ExecutionTicket {
            token,
            action: ActionName::new(action),
            target: TargetId::new(target),
            caller: AgentId::new(caller),
            params: params.clone(),
            audit_id: AuditId::new(audit_id),
            nonce,
            issued_at: now,
            expires_at,
        })
    }
}

/// What the ticket must be for; `None` fields are not checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The action about to run.
    pub action: Option<&'a str>,
    /// The target about to be acted on.
    pub target: Option<&'a str>,
    /// The params about to be used: their digest must equal the ticket's.
    pub params: Option<&'a Params>,
}

/// A ticket that passed validation: proof, carried in the type, that [`TicketValidator`] checked
/// it. Only the validator can create one (the fields are private and there is no public
/// constructor), so code that takes a `&ValidatedTicket` — such as the credential resolver — can
/// only be handed a ticket that validated.
///
/// ```compile_fail,E0451
/// use agent_safe_tickets::ValidatedTicket;
/// # fn forge(ticket: agent_safe_core::ExecutionTicket) {
/// let forged = ValidatedTicket { ticket, params_digest: None };
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedTicket {
    ticket: ExecutionTicket,
    params_digest: Option<String>,
}

impl ValidatedTicket {
    /// The ticket, rebuilt from its claims (times in whole seconds).
    pub fn ticket(&self) -> &ExecutionTicket {
        &self.ticket
    }

    /// The `params_digest` claim; `None` for a Python-minted ticket.
    pub fn params_digest(&self) -> Option<&str> {
        self.params_digest.as_deref()
    }

    /// The ticket, giving up the proof of validation.
    pub fn into_ticket(self) -> ExecutionTicket {
        self.ticket
    }
}

/// The outcome of [`TicketValidator::validate`], shaped like Python's `TicketValidationResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketValidation {
    /// Whether the ticket may be executed.
    pub valid: bool,
    /// `Ticket is valid` or why not.
    pub reason: String,
    /// The ticket, when valid.
    pub ticket: Option<ExecutionTicket>,
}

impl From<Result<ValidatedTicket, TicketError>> for TicketValidation {
    fn from(result: Result<ValidatedTicket, TicketError>) -> Self {
        match result {
            Ok(v) => {
                Self { valid: true, reason: "Ticket is valid".to_owned(), ticket: Some(v.ticket) }
            }
            Err(e) => Self { valid: false, reason: e.to_string(), ticket: None },
        }
    }
}

/// Validates tickets before execution: signature (algorithm pinned by the key), issuer,
/// audience, type, expiry, action, target, params digest, then single use via the nonce store.
#[derive(Debug, Clone)]
pub struct TicketValidator {
    keys: KeySet,
    issuer: String,
    audience: Audience,
    leeway: Duration,
    clock: Arc<dyn Clock>,
    nonces: Arc<dyn NonceStore>,
}

impl TicketValidator {
    /// A validator accepting tickets signed by `keys` for `issuer`, consuming nonces in `nonces`.
    /// Audience `IfPresent("agent-safe-runner")` (Python tickets have none), no leeway.
    pub fn new(
        keys: impl Into<KeySet>,
        issuer: impl Into<String>,
        clock: Arc<dyn Clock>,
        nonces: Arc<dyn NonceStore>,
    ) -> Self {
        Self {
            keys: keys.into(),
            issuer: issuer.into(),
            audience: Audience::IfPresent(DEFAULT_TICKET_AUDIENCE.to_owned()),
            leeway: Duration::ZERO,
            clock,
            nonces,
        }
    }

    /// Sets the audience required (e.g. `Audience::Required("agent-safe-runner")` to refuse
    /// tickets without `aud`).
    pub fn with_audience(self, audience: Audience) -> Self {
        Self { audience, ..self }
    }

    /// Tolerance for clock skew on `iat`, `nbf` and `exp` (default none).
    pub fn with_leeway(self, leeway: Duration) -> Self {
        Self { leeway, ..self }
    }

    /// SPEC §7.2 validation with Python's order and messages, plus the params digest; the nonce
    /// is consumed only after every other check passed.
    pub fn validate(
        &self,
        token: &str,
        expected_action: Option<&str>,
        expected_target: Option<&str>,
        expected_params: Option<&Params>,
    ) -> TicketValidation {
        let expected =
            Expected { action: expected_action, target: expected_target, params: expected_params };
        self.verify(token, &expected).into()
    }

    /// Checks everything but does NOT consume the nonce (for `ticket verify --no-consume` and dry
    /// runs); an already used nonce is still reported.
    pub fn inspect(&self, token: &str) -> TicketValidation {
        self.verify_without_consuming(token, &Expected::default()).into()
    }

    /// [`validate`](Self::validate) with a typed error: on success the nonce is consumed.
    pub fn verify(
        &self,
        token: &str,
        expected: &Expected<'_>,
    ) -> Result<ValidatedTicket, TicketError> {
        let (validated, expires_at) = self.check(token, expected)?;
        if self.nonces.check_and_set(&validated.ticket.nonce, expires_at)? {
            Ok(validated)
        } else {
            Err(TicketError::Replayed)
        }
    }

    /// Every check of [`verify`](Self::verify), without consuming the nonce.
    pub fn verify_without_consuming(
        &self,
        token: &str,
        expected: &Expected<'_>,
    ) -> Result<ValidatedTicket, TicketError> {
        let (validated, _) = self.check(token, expected)?;
        if self.nonces.contains(&validated.ticket.nonce)? {
            return Err(TicketError::Replayed);
        }
        Ok(validated)
    }

    fn check(
        &self,
        token: &str,
        expected: &Expected<'_>,
    ) -> Result<(ValidatedTicket, OffsetDateTime), TicketError> {
        let rules = Rules {
            keys: &self.keys,
            issuer: &self.issuer,
            audience: &self.audience,
            leeway: self.leeway,
            required: REQUIRED,
            now: self.clock.now(),
        };
        let verified = jwt::verify(token, &rules)?;
        let claims = &verified.claims;
        if claims.get("type").and_then(Value::as_str) != Some(TICKET_TYPE) {
            return Err(TicketError::NotATicket);
        }
        let field = |name| jwt::req_str(claims, name).map_err(TicketError::Invalid);
        let action = field("action")?;
        let target = field("target")?;
        let caller = field("caller")?;
        let audit_id = field("audit_id")?;
        let nonce = field("nonce")?;
        crate::nonce::check_nonce(nonce).map_err(|_| {
            TicketError::Invalid(
                "Claim `nonce` must be 1 to 128 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`"
                    .to_owned(),
            )
        })?;
        let params = match claims.get("params") {
            None | Some(Value::Null) => Params::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => {
                return Err(TicketError::Invalid("Claim `params` must be an object".to_owned()));
            }
        };
        let digest = jwt::opt_str(claims, "params_digest").map_err(TicketError::Invalid)?;
        let actual_digest = digest.map(|d| (d, params_digest(&params)));
        if let Some((claimed, actual)) = &actual_digest
            && claimed != actual
        {
            return Err(TicketError::Invalid(
                "Claim `params_digest` does not match the `params` claim".to_owned(),
            ));
        }

        if let Some(want) = expected.action
            && action != want
        {
            return Err(TicketError::ActionMismatch {
                ticket: action.to_owned(),
                expected: want.to_owned(),
            });
        }
        if let Some(want) = expected.target
            && target != want
        {
            return Err(TicketError::TargetMismatch {
                ticket: target.to_owned(),
                expected: want.to_owned(),
            });
        }
        if let Some(want) = expected.params {
            let ticket_digest = match actual_digest {
                Some((_, d)) => d,
                // A Python ticket has no digest: its params must equal the expected ones exactly
                // (same canonical JSON, so key order does not matter but 3 and 3.0 differ).
                None => params_digest(&params),
            };
            let want_digest = params_digest(want);
            if ticket_digest != want_digest {
                return Err(TicketError::ParamsMismatch {
                    ticket: ticket_digest,
                    expected: want_digest,
                });
            }
        }

        let ticket = ExecutionTicket {
            token: token.to_owned(),
            action: ActionName::new(action),
            target: TargetId::new(target),
            caller: AgentId::new(caller),
            params,
            audit_id: AuditId::new(audit_id),
            nonce: nonce.to_owned(),
            issued_at: verified.issued_at,
            expires_at: verified.expires_at,
        };
        let validated = ValidatedTicket { ticket, params_digest: digest.map(str::to_owned) };
        Ok((validated, verified.expires_at))
    }
}

#[cfg(test)]
mod tests;
