//! The vault interface (SPEC §9): where credentials come from, and the bookkeeping the built-in
//! vaults share (ids, expiry from the injected clock, the set of issued ids).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use agent_safe_core::{
    BoxFuture, Clock, Credential, CredentialScope, ExecutionTicket, Params, Secret,
};
use time::{Duration, OffsetDateTime};

/// A source of just-in-time credentials. Object-safe (`Arc<dyn CredentialVault>`) and async
/// through boxed futures, so backends that talk to a network service fit, while the built-in
/// ones need no async runtime.
///
/// Implementations must keep payloads in [`Secret`] and must not put them in errors.
pub trait CredentialVault: Send + Sync + fmt::Debug {
    /// The backend's name in messages and configuration (`env`, `file`, …).
    fn kind(&self) -> &'static str;

    /// Issues a credential of `scope.kind` for `scope`, valid for `ttl` seconds, for the
    /// execution `ticket` permits.
    fn get_credential<'a>(
        &'a self,
        scope: &'a CredentialScope,
        ticket: &'a ExecutionTicket,
        ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>>;

    /// Revokes a credential this vault issued. Revoking an unknown or already revoked id
    /// succeeds (revocation is idempotent).
    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>>;

    /// Whether the credentials this vault issues are limited to the scope they were asked for
    /// (the STS vault's session policy, the Kubernetes vault's per-action ServiceAccount).
    /// The env and file vaults hand out one stored secret
    /// whatever the scope: `false`.
    fn enforces_scope(&self) -> bool {
        false
    }
}

/// `vault` when it enforces scope; otherwise a vault that refuses every request, saying why
/// (`credentials: {require_scoped: true}` in agent-safe.yaml).
pub fn require_scoped(vault: Arc<dyn CredentialVault>) -> Arc<dyn CredentialVault> {
    if vault.enforces_scope() { vault } else { Arc::new(Unscoped(vault.kind())) }
}

/// What [`require_scoped`] puts in place of a vault that cannot enforce scope.
#[derive(Debug)]
struct Unscoped(&'static str);

impl CredentialVault for Unscoped {
    fn kind(&self) -> &'static str {
        self.0
    }

    fn get_credential<'a>(
        &'a self,
        _scope: &'a CredentialScope,
        _ticket: &'a ExecutionTicket,
        _ttl: u64,
    ) -> BoxFuture<'a, Result<Credential, VaultError>> {
        Box::pin(std::future::ready(Err(VaultError::Unscoped { vault: self.0 })))
    }

    fn revoke<'a>(&'a self, _credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Why a vault could not issue or revoke a credential. No variant carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The env-var vault has neither a static credential nor an environment variable for the type.
    #[error(
        "no credential configured for type `{kind}`: set the environment variable `{env_var}` \
         or configure a static credential for `{kind}`"
    )]
    NotConfigured {
        /// The credential type.
        kind: String,
        /// The environment variable that was looked up.
        env_var: String,
    },
    /// The environment variable exists but is empty.
    #[error("environment variable `{env_var}` is set but empty")]
    EmptyEnvVar {
        /// The variable.
        env_var: String,
    },
    /// The environment variable is not valid UTF-8.
    #[error("environment variable `{env_var}` is not valid UTF-8")]
    EnvVarNotUnicode {
        /// The variable.
        env_var: String,
    },
    /// The credential type cannot name an environment variable or a file.
    #[error(
        "invalid credential type `{kind}`: a type is 1 to 64 characters from `A-Z`, `a-z`, \
         `0-9`, `-` and `_`"
    )]
    InvalidType {
        /// The credential type.
        kind: String,
    },
    /// The file vault has no file for the type.
    #[error("no credential file for type `{kind}`: `{}` does not exist", path.display())]
    FileNotFound {
        /// The credential type.
        kind: String,
        /// The file that was looked for.
        path: PathBuf,
    },
    /// A credential file that users other than its owner can read or write.
    #[error(
        "`{}` is accessible by group or others (mode {mode:04o}); credential files must be \
         private: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A credential file could not be opened or read.
    #[error("`{}`: cannot {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`open`, `read`).
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A credential file that is not a JSON object of the right size. The detail never
    /// quotes the file's content.
    #[error("`{}`: {detail}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A lifetime that is zero or too large.
    #[error("invalid credential ttl {ttl}: expected 1 to {max} seconds")]
    InvalidTtl {
        /// The requested lifetime in seconds.
        ttl: u64,
        /// The largest accepted lifetime.
        max: u64,
    },
    /// The vault does not issue credentials of this type.
    #[error("the `{vault}` vault issues `{supported}` credentials only, not `{kind}`")]
    UnsupportedType {
        /// The vault.
        vault: &'static str,
        /// The requested credential type.
        kind: String,
        /// The type it issues.
        supported: &'static str,
    },
    /// The scope lacks what the vault needs to scope the credential.
    #[error("invalid `{kind}` credential scope: {detail}")]
    InvalidScope {
        /// The credential type.
        kind: String,
        /// What is wrong.
        detail: String,
    },
    /// A failure reported by another backend, in its own words (never secret).
    #[error("{0}")]
    Backend(String),
    /// `require_scoped` is set and this vault cannot limit a credential to its scope.
    #[error(
        "credentials.require_scoped: the `{vault}` vault cannot limit a credential to the \
         action's scope; configure a vault that can (`sts`, `kubernetes`), or unset require_scoped"
    )]
    Unscoped {
        /// The vault's kind.
        vault: &'static str,
    },
}

/// The longest credential lifetime the built-in vaults issue: one day.
pub const MAX_TTL: u64 = 24 * 60 * 60;

/// Checks a credential type used to build an environment variable or file name.
pub(crate) fn check_type(kind: &str) -> Result<(), VaultError> {
    let ok = (1..=64).contains(&kind.len())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(VaultError::InvalidType { kind: kind.to_owned() }) }
}

/// The ids a vault issued and not yet revoked, with their expiry; expired ids are dropped
/// when new ones are issued.
#[derive(Debug, Default)]
pub(crate) struct Issued {
    ids: Mutex<HashMap<String, OffsetDateTime>>,
}

impl Issued {
    /// Mints a credential: `cred-` + 12 hex digits, expiry now + `ttl`, the ticket's nonce.
    pub(crate) fn issue(
        &self,
        clock: &dyn Clock,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
        ttl: u64,
        payload: Params,
    ) -> Result<Credential, VaultError> {
        let invalid = || VaultError::InvalidTtl { ttl, max: MAX_TTL };
        if ttl == 0 || ttl > MAX_TTL {
            return Err(invalid());
        }
        let seconds = i64::try_from(ttl).map_err(|_| invalid())?;
        let now = clock.now();
        let expires_at = now.checked_add(Duration::seconds(seconds)).ok_or_else(invalid)?;
        let credential_id = format!("cred-{}", agent_safe_core::random::hex(6));
        let mut ids = self.ids.lock().unwrap_or_else(PoisonError::into_inner);
        ids.retain(|_, expiry| *expiry > now);
        ids.insert(credential_id.clone(), expires_at);
        Ok(Credential {
            credential_id,
            kind: scope.kind.clone(),
            payload: Secret::new(payload),
            expires_at,
            scope: scope.clone(),
            ticket_nonce: ticket.nonce.clone(),
        })
    }

    /// Forgets `id`; unknown ids are ignored.
    pub(crate) fn revoke(&self, id: &str) {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// How many issued ids are tracked (including expired ones not yet dropped).
    pub(crate) fn len(&self) -> usize {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether `id` is tracked.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).contains_key(id)
    }
}
