//! The env-var vault (SPEC §9): static credentials by type, else an environment variable.
//! For development, CI and simple deployments: it issues the same full-access secret for every
//! scope (the scope is recorded in the credential but not enforced).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::future::ready;
use std::sync::Arc;

use agent_safe_core::{
    BoxFuture, Clock, Credential, CredentialScope, ExecutionTicket, Params, Secret,
};
use serde_json::Value;

use crate::vault::{CredentialVault, Issued, VaultError, check_type};

/// The default prefix of the environment variables: `AGENT_SAFE_CRED_KUBERNETES` holds the
/// `kubernetes` credential.
pub const DEFAULT_ENV_PREFIX: &str = "AGENT_SAFE_CRED_";

/// Reads one environment variable.
type EnvLookup = Arc<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// A vault backed by static credentials and environment variables (SPEC §9).
///
/// For a scope of type `T`: the static payload configured for `T` if there is one, else the
/// environment variable `<prefix><T upper-cased, '-' → '_'>` as the payload `{"token": value}`.
/// The environment is only read, never written.
///
/// ```
/// use std::sync::Arc;
/// use agent_safe_core::{CredentialScope, SystemClock};
/// use agent_safe_credentials::{CredentialVault, EnvVarVault};
///
/// let vault = EnvVarVault::new(Arc::new(SystemClock))
///     .with_static("kubernetes", [("token".to_owned(), "s3cr3t".into())].into_iter().collect());
/// assert_eq!(vault.env_var("aws-sts"), "AGENT_SAFE_CRED_AWS_STS");
/// assert_eq!(format!("{vault:?}"), r#"EnvVarVault { prefix: "AGENT_SAFE_CRED_", static_types: ["kubernetes"], issued: 0 }"#);
/// ```
pub struct EnvVarVault {
    credentials: BTreeMap<String, Secret<Params>>,
    prefix: String,
    lookup: EnvLookup,
    clock: Arc<dyn Clock>,
    issued: Issued,
}

impl EnvVarVault {
    /// A vault with no static credentials, the default prefix and the process environment.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            credentials: BTreeMap::new(),
            prefix: DEFAULT_ENV_PREFIX.to_owned(),
            lookup: Arc::new(|name| std::env::var_os(name)),
            clock,
            issued: Issued::default(),
        }
    }

    /// Adds a static credential: the payload issued for scopes of type `kind`.
    pub fn with_static(mut self, kind: impl Into<String>, payload: Params) -> Self {
        self.credentials.insert(kind.into(), Secret::new(payload));
        self
    }

    /// Adds a static credential that is a single token: the payload `{"token": token}`.
    pub fn with_static_token(self, kind: impl Into<String>, token: Secret<String>) -> Self {
        let payload = [("token".to_owned(), Value::String(token.into_inner()))];
        self.with_static(kind, payload.into_iter().collect())
    }

    /// Sets the prefix of the environment variables (default [`DEFAULT_ENV_PREFIX`]).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reads variables through `lookup` instead of the process environment (for tests and
    /// embedding).
    pub fn with_env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// The environment variable consulted for credentials of type `kind`.
    pub fn env_var(&self, kind: &str) -> String {
        format!("{}{}", self.prefix, kind.to_uppercase().replace('-', "_"))
    }

    /// How many issued credentials are tracked (issued, not revoked, not yet pruned).
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    /// Whether the credential `id` was issued here and not revoked.
    pub fn is_issued(&self, id: &str) -> bool {
        self.issued.contains(id)
    }

    fn payload(&self, kind: &str) -> Result<Params, VaultError> {
        if let Some(payload) = self.credentials.get(kind) {
            return Ok(payload.expose().clone());
        }
        check_type(kind)?;
        let env_var = self.env_var(kind);
        let Some(value) = (self.lookup)(&env_var) else {
            return Err(VaultError::NotConfigured { kind: kind.to_owned(), env_var });
        };
        let value = value
            .into_string()
            .map_err(|_| VaultError::EnvVarNotUnicode { env_var: env_var.clone() })?;
        if value.is_empty() {
            return Err(VaultError::EmptyEnvVar { env_var });
        }
        Ok([("token".to_owned(), Value::String(value))].into_iter().collect())
    }

    fn get(
        &self,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
        ttl: u64,
    ) -> Result<Credential, VaultError> {
        let payload = self.payload(&scope.kind)?;
        self.issued.issue(self.clock.as_ref(), scope, ticket, ttl, payload)
    }
}

impl fmt::Debug for EnvVarVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVarVault")
            .field("prefix", &self.prefix)
            .field("static_types", &self.credentials.keys().collect::<Vec<_>>())
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl CredentialVault for EnvVarVault {
    fn kind(&self) -> &'static str {
        "env"
    }

    fn get_credential<'a>(
        &'a self,
        scope: &'a CredentialScope,
        ticket: &'a ExecutionTicket,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(ready(self.get(scope, ticket, ttl)))
    }

    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        self.issued.revoke(credential_id);
        Box::pin(ready(Ok(())))
    }
}

#[cfg(test)]
mod tests;
