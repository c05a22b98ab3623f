//! The STS vault (feature `aws`): scoped AWS credentials per execution. For each credential it
//! assumes one configured role with an inline session policy generated from the action's
//! `credentials` block (its IAM `actions` on its resolved `resources`), for 900 seconds, with
//! `SourceIdentity` set to the ticket's nonce, and returns the temporary keys as the payload the
//! AWS executor reads (`access_key_id`, `secret_access_key`, `session_token`).
//!
//! The session's permissions are the intersection of the role's policies and the session
//! policy, so the role bounds what any action can do and the session policy narrows it to one
//! action on one target. See `docs/credentials.md`.

use std::fmt;

use agent_safe_core::{BoxFuture, Clock, Credential, CredentialScope, ExecutionTicket, Params};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::config::VaultConfigError;
use crate::vault::{CredentialVault, Issued, VaultError};

use crate::config::{STS_MAX_DURATION, STS_MIN_DURATION};

/// The credential type the vault issues.
const KIND: &str = "aws";
/// Action prefixes that IAM authorizes only on `"*"` (no resource-level permissions): they get
/// a statement of their own on `"*"`, since a policy naming a resource would deny them.
const RESOURCE_STAR_ACTIONS: &[&str] = &["ec2:Describe"];

/// Settings of an [`StsVault`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StsVaultConfig {
    /// The role to assume, e.g. `arn:aws:iam::123456789012:role/agent-safe-runner`. Its trust
    /// policy must let the vault's own principal call `sts:AssumeRole` and
    /// `sts:SetSourceIdentity`.
    pub role_arn: String,
    /// Region of the STS endpoint (default: the SDK's region chain).
    pub region: Option<String>,
    /// Named profile for the vault's own credentials (default: the SDK's default chain).
    pub profile: Option<String>,
    /// Endpoint for STS, e.g. moto, LocalStack or a VPC endpoint.
    pub endpoint_url: Option<String>,
    /// The longest session to ask for, [`STS_MIN_DURATION`] to [`STS_MAX_DURATION`] seconds
    /// (keep it within the role's `MaxSessionDuration`, 3,600 s unless changed): a scope TTL
    /// above it is shortened to it. `None`: the scope's TTL.
    pub session_duration: Option<u64>,
}

/// A vault that mints one STS session per credential: `AssumeRole` of the configured role with
/// a session policy generated from the scope ([`session_policy`]), `DurationSeconds` = the
/// scope's TTL but at least [`STS_MIN_DURATION`] and at most the configured
/// `session_duration`, `SourceIdentity` = the ticket's nonce (so
/// CloudTrail ties every call to the ticket), `RoleSessionName` = `agent-safe-<nonce>`.
///
/// The payload is `{"access_key_id", "secret_access_key", "session_token"}`; the credential
/// expires when the session does. STS sessions cannot be revoked one by one: `revoke` forgets
/// the id and the keys stay valid until they expire.
///
/// ```no_run
/// use std::sync::Arc;
/// use agent_safe_core::SystemClock;
/// use agent_safe_credentials::{StsVault, StsVaultConfig};
///
/// let vault = StsVault::new(
///     StsVaultConfig {
///         role_arn: "arn:aws:iam::123456789012:role/agent-safe-runner".into(),
///         region: Some("eu-west-1".into()),
///         ..StsVaultConfig::default()
///     },
///     Arc::new(SystemClock),
/// )?;
/// assert_eq!(vault.role_arn(), "arn:aws:iam::123456789012:role/agent-safe-runner");
/// # Ok::<(), agent_safe_credentials::VaultConfigError>(())
/// ```
pub struct StsVault {
    role_arn: String,
    settings: StsVaultConfig,
    sdk: OnceCell<SdkConfig>,
    clock: Arc<dyn Clock>,
    issued: Issued,
}

impl StsVault {
    /// A vault that calls STS with the SDK's default configuration (credentials from the
    /// default chain or `profile`; region, endpoint from `config`), loaded on first use.
    pub fn new(config: StsVaultConfig, clock: Arc<dyn Clock>) -> Result<Self, VaultConfigError> {
        check_role_arn(&config.role_arn)?;
        if config.profile.as_deref().is_some_and(str::is_empty) {
            return Err(wrong("profile", "a non-empty profile name"));
        }
        if let Some(url) = &config.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(wrong("endpoint_url", "an `http://` or `https://` URL"));
        }
        if let Some(seconds) = config.session_duration {
            check_session_duration(seconds)?;
        }
        Ok(Self {
            role_arn: config.role_arn.clone(),
            settings: config,
            sdk: OnceCell::new(),
            clock,
            issued: Issued::default(),
        })
    }

    /// A vault that calls STS with `sdk` (its credentials, region, endpoint and HTTP client).
    pub fn with_sdk_config(
        sdk: SdkConfig,
        role_arn: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultConfigError> {
        let role_arn = role_arn.into();
        check_role_arn(&role_arn)?;
        Ok(Self {
            settings: StsVaultConfig { role_arn: role_arn.clone(), ..StsVaultConfig::default() },
            role_arn,
            sdk: OnceCell::new_with(Some(sdk)),
            clock,
            issued: Issued::default(),
        })
    }

    /// Sessions of at most `seconds` ([`StsVaultConfig::session_duration`]).
    pub fn with_session_duration(mut self, seconds: u64) -> Result<Self, VaultConfigError> {
        check_session_duration(seconds)?;
        self.settings.session_duration = Some(seconds);
        Ok(self)
    }

    /// The role the vault assumes.
    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    /// How many issued credentials are tracked (issued, not revoked, not yet pruned).
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let s = &self.settings;
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
                if let Some(profile) = &s.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(region) = &s.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(url) = &s.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                loader.load().await
            })
            .await
    }

    async fn get(
        &self,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
        ttl: u64,
    ) -> Result<Credential, VaultError> {
        if scope.kind != KIND {
            return Err(VaultError::UnsupportedType {
                vault: "sts",
                kind: scope.kind.clone(),
                supported: KIND,
            });
        }
        let policy = session_policy(scope)?;
        let duration = session_duration(ttl, self.settings.session_duration)?;
        let seconds = i32::try_from(duration)
            .map_err(|_| VaultError::InvalidTtl { ttl, max: STS_MAX_DURATION })?;
        let client = aws_sdk_sts::Client::new(self.sdk().await);
        let answer = client
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session_name(&ticket.nonce))
            .policy(policy)
            .duration_seconds(seconds)
            .source_identity(&ticket.nonce)
            .send()
            .await
            .map_err(|e| self.failed(&e))?;
        let keys = answer.credentials().ok_or_else(|| {
            VaultError::Backend(format!(
                "STS AssumeRole of `{}` answered without credentials",
                self.role_arn
            ))
        })?;
        let mut payload = Params::new();
        payload.insert("access_key_id".into(), Value::String(keys.access_key_id().to_owned()));
        payload
            .insert("secret_access_key".into(), Value::String(keys.secret_access_key().to_owned()));
        payload.insert("session_token".into(), Value::String(keys.session_token().to_owned()));
        self.issued.issue(self.clock.as_ref(), scope, ticket, duration, payload)
    }

    /// An STS failure in words: the AWS error code and message when STS answered, else what
    /// kept the request from being answered. Never secret (STS errors carry no keys).
    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static, R: fmt::Debug>(
        &self,
        err: &SdkError<E, R>,
    ) -> VaultError {
        let why = match err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().unwrap_or("unknown error");
                match ctx.err().message() {
                    Some(message) => format!("{code}: {message}"),
                    None => code.to_owned(),
                }
            }
            other => DisplayErrorContext(other).to_string(),
        };
        VaultError::Backend(format!("STS AssumeRole of `{}` failed: {why}", self.role_arn))
    }
}

impl fmt::Debug for StsVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsVault")
            .field("role_arn", &self.role_arn)
            .field("region", &self.settings.region)
            .field("profile", &self.settings.profile)
            .field("endpoint_url", &self.settings.endpoint_url)
            .field("session_duration", &self.settings.session_duration)
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl CredentialVault for StsVault {
    fn kind(&self) -> &'static str {
        "sts"
    }

    fn enforces_scope(&self) -> bool {
        true
    }

    fn get_credential<'a>(
        &'a self,
        scope: &'a CredentialScope,
        ticket: &'a ExecutionTicket,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(self.get(scope, ticket, ttl))
    }

    /// STS has no per-session revocation: the id is forgotten, the keys expire on their own.
    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        self.issued.revoke(credential_id);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The session policy for an `aws` scope: one statement allowing the scope's `actions` on its
/// resolved `resources`, and, for actions IAM authorizes only on `"*"` (EC2 `Describe*`), a
/// second statement allowing those on `"*"`. Compact JSON, statements and lists in the
/// scope's order.
///
/// ```
/// use agent_safe_core::CredentialScope;
/// use agent_safe_credentials::session_policy;
///
/// let fields = serde_json::json!({
///     "actions": ["ec2:StopInstances", "ec2:DescribeInstances"],
///     "resources": ["arn:aws:ec2:us-east-1:*:instance/i-0123456789abcdef0"],
/// });
/// let scope = CredentialScope {
///     kind: "aws".into(),
///     fields: fields.as_object().unwrap().clone(),
///     ttl: 300,
/// };
/// assert_eq!(
///     session_policy(&scope)?,
///     r#"{"Version":"2012-10-17","Statement":[{"Sid":"AgentSafeAction","Effect":"Allow","Action":["ec2:StopInstances"],"Resource":["arn:aws:ec2:us-east-1:*:instance/i-0123456789abcdef0"]},{"Sid":"AgentSafeDescribe","Effect":"Allow","Action":["ec2:DescribeInstances"],"Resource":"*"}]}"#
/// );
/// # Ok::<(), agent_safe_credentials::VaultError>(())
/// ```
pub fn session_policy(scope: &CredentialScope) -> Result<String, VaultError> {
    let actions = strings(scope, "actions")?;
    let resources = strings(scope, "resources")?;
    for action in &actions {
        let valid = action.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && !name.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
        });
        if !valid {
            return Err(invalid_scope(format!(
                "`{action}` in `actions` is not an IAM action such as `ec2:StopInstances`"
            )));
        }
    }
    let (star, scoped): (Vec<&str>, Vec<&str>) = actions
        .iter()
        .map(String::as_str)
        .partition(|a| RESOURCE_STAR_ACTIONS.iter().any(|p| a.starts_with(p)));
    let mut statements = Vec::new();
    if !scoped.is_empty() {
        statements.push(json!({"Sid": "AgentSafeAction", "Effect": "Allow", "Action": scoped,
                               "Resource": resources}));
    }
    if !star.is_empty() {
        statements.push(json!({"Sid": "AgentSafeDescribe", "Effect": "Allow", "Action": star,
                               "Resource": "*"}));
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

/// The session length for a scope TTL: at least [`STS_MIN_DURATION`], at most `cap` (the
/// configured `session_duration`); a TTL above [`STS_MAX_DURATION`] is refused.
fn session_duration(ttl: u64, cap: Option<u64>) -> Result<u64, VaultError> {
    if ttl == 0 || ttl > STS_MAX_DURATION {
        return Err(VaultError::InvalidTtl { ttl, max: STS_MAX_DURATION });
    }
    Ok(ttl.min(cap.unwrap_or(STS_MAX_DURATION)).max(STS_MIN_DURATION))
}

/// `agent-safe-<nonce>`, cut to the 64 characters STS allows.
fn session_name(nonce: &str) -> String {
    let mut name = format!("agent-safe-{nonce}");
    if let Some((i, _)) = name.char_indices().nth(64) {
        name.truncate(i);
    }
    name
}

/// A non-empty list of non-empty strings under `key`.
fn strings(scope: &CredentialScope, key: &str) -> Result<Vec<String>, VaultError> {
    let list = match scope.fields.get(key) {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::String(s)) if !s.is_empty() => return Ok(vec![s.clone()]),
        None | Some(Value::Null) => {
            return Err(invalid_scope(format!("no `{key}`; the session policy needs them")));
        }
        Some(_) => return Err(invalid_scope(format!("`{key}` must be a non-empty list"))),
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            other => {
                Err(invalid_scope(format!("`{key}` must hold non-empty strings, found `{other}`")))
            }
        })
        .collect()
}

fn invalid_scope(detail: String) -> VaultError {
    VaultError::InvalidScope { kind: KIND.to_owned(), detail }
}

fn wrong(key: &str, expected: &'static str) -> VaultConfigError {
    VaultConfigError::WrongType { key: key.to_owned(), expected }
}

fn check_session_duration(seconds: u64) -> Result<(), VaultConfigError> {
    if (STS_MIN_DURATION..=STS_MAX_DURATION).contains(&seconds) {
        Ok(())
    } else {
        Err(wrong("session_duration", "900 to 43200 seconds"))
    }
}

fn check_role_arn(arn: &str) -> Result<(), VaultConfigError> {
    let valid = arn.split_once(":iam::").is_some_and(|(partition, rest)| {
        partition.starts_with("arn:aws")
            && rest.split_once(":role/").is_some_and(|(account, name)| {
                account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && !name.is_empty()
            })
    });
    if valid {
        Ok(())
    } else {
        Err(wrong(
            "role_arn",
            "an IAM role ARN such as `arn:aws:iam::123456789012:role/agent-safe`",
        ))
    }
}

/// HTTPS on rustls with the `ring` provider, as the AWS executor uses.
fn https_client() -> aws_sdk_sts::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[cfg(test)]
mod tests;
