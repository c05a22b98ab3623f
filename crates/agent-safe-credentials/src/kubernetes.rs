//! The Kubernetes vault (feature `k8s`): a short-lived ServiceAccount token per execution,
//! from the TokenRequest API (`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`).
//!
//! The ServiceAccount is chosen per action: the scope's `service_account` field when the
//! action's `credentials` block names one, else the vault's `service_account` setting with
//! `{action}` replaced by the action's name (default `agent-safe-{action}`). It lives in the
//! vault's `namespace` when set, else in the one namespace of the scope's `namespaces`. What
//! the token may do is what RBAC grants that ServiceAccount: one ServiceAccount per action,
//! bound to a Role with exactly the action's verbs and resources, is what makes the scope
//! hold (`docs/credentials.md` shows the manifests). The token is bound to the requested
//! audiences (default: the API server's own) and expires after the scope's TTL, at least
//! [`TOKEN_MIN_DURATION`] (the API server's minimum).
//!
//! The payload is `{"token": …}`, which the `k8s` and `kubectl` executors use with their own
//! cluster settings; the vault connects with its own (`kubeconfig`, `context`, `in_cluster`),
//! as an identity that may create tokens for those ServiceAccounts and nothing else.

use std::fmt;
use std::sync::Arc;

use agent_safe_core::{BoxFuture, Clock, Credential, CredentialScope, ExecutionTicket, Params};
use agent_safe_executor_k8s::{K8sSettings, build_client, client_config};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::VaultConfigError;
use crate::vault::{CredentialVault, Issued, MAX_TTL, VaultError};

/// The shortest token lifetime the API server grants (`expirationSeconds` ≥ 600); the vault
/// asks for it when the scope's TTL is shorter.
pub const TOKEN_MIN_DURATION: u64 = 600;

/// The default ServiceAccount name; `{action}` is the action's name.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "agent-safe-{action}";

/// The credential type the vault issues.
const KIND: &str = "kubernetes";

/// Settings of a [`KubernetesVault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesVaultConfig {
    /// How the vault itself reaches the API server (kubeconfig, context, in-cluster).
    pub connection: K8sSettings,
    /// The namespace of every ServiceAccount (`None`: the scope's one namespace).
    pub namespace: Option<String>,
    /// The ServiceAccount name when the scope names none; `{action}` is replaced by the
    /// action's name.
    pub service_account: String,
    /// The audiences the token is bound to (empty: the API server's own).
    pub audiences: Vec<String>,
}

impl Default for KubernetesVaultConfig {
    fn default() -> Self {
        Self {
            connection: K8sSettings::default(),
            namespace: None,
            service_account: DEFAULT_SERVICE_ACCOUNT.to_owned(),
            audiences: Vec::new(),
        }
    }
}

/// Where a vault's client comes from.
enum Connection {
    /// Built per request from the settings' configuration, loaded once.
    Settings(Box<OnceCell<kube::Config>>),
    /// Given by the caller.
    Fixed(kube::Client),
}

/// A vault that issues one ServiceAccount token per credential through the TokenRequest API
/// (see the module documentation for which ServiceAccount, and why that enforces scope).
/// Tokens cannot be revoked one by one: `revoke` forgets the id and the token stays valid
/// until it expires.
///
/// ```
/// use std::sync::Arc;
/// use agent_safe_core::SystemClock;
/// use agent_safe_credentials::{CredentialVault, KubernetesVault, KubernetesVaultConfig};
///
/// let config = KubernetesVaultConfig { namespace: Some("agent-safe".into()), ..Default::default() };
/// let vault = KubernetesVault::new(config, Arc::new(SystemClock))?;
/// assert_eq!(vault.kind(), "kubernetes");
/// assert!(vault.enforces_scope());
/// # Ok::<(), agent_safe_credentials::VaultConfigError>(())
/// ```
pub struct KubernetesVault {
    config: KubernetesVaultConfig,
    connection: Connection,
    clock: Arc<dyn Clock>,
    issued: Issued,
}

impl KubernetesVault {
    /// A vault that connects as `config.connection` says: the configuration is loaded on
    /// first use, and each request gets a client of its own (so the vault works from any
    /// async runtime, as the Kubernetes executor does).
    pub fn new(
        config: KubernetesVaultConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultConfigError> {
        check_config(&config)?;
        Ok(Self {
            config,
            connection: Connection::Settings(Box::default()),
            clock,
            issued: Issued::default(),
        })
    }

    /// A vault that talks to the API server through `client` (`config.connection` unused;
    /// the client's own runtime rules apply).
    pub fn with_client(
        config: KubernetesVaultConfig,
        client: kube::Client,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultConfigError> {
        check_config(&config)?;
        Ok(Self { config, connection: Connection::Fixed(client), clock, issued: Issued::default() })
    }

    /// How many issued credentials are tracked (issued, not revoked, not yet pruned).
    pub fn issued_count(&self) -> usize {
        self.issued.len()
    }

    async fn client(&self) -> Result<kube::Client, VaultError> {
        let failed = |e: agent_safe_executor_k8s::ClientError| {
            VaultError::Backend(format!("kubernetes vault: {e}"))
        };
        match &self.connection {
            Connection::Fixed(client) => Ok(client.clone()),
            Connection::Settings(config) => {
                let config = config
                    .get_or_try_init(|| client_config(None, &self.config.connection))
                    .await
                    .map_err(failed)?;
                build_client(config.clone()).map_err(failed)
            }
        }
    }

    /// The ServiceAccount (namespace, name) a credential for `scope` and `ticket` comes from.
    fn service_account(
        &self,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
    ) -> Result<(String, String), VaultError> {
        let namespace = match &self.config.namespace {
            Some(namespace) => namespace.clone(),
            None => match scope.fields.get("namespaces") {
                Some(Value::Array(list)) => match list.as_slice() {
                    [Value::String(one)] => one.clone(),
                    [] => return Err(no_namespace()),
                    _ => {
                        return Err(invalid_scope(format!(
                            "`namespaces` lists {} namespaces; a ServiceAccount lives in one: \
                             set `namespace` in the kubernetes vault config",
                            list.len()
                        )));
                    }
                },
                Some(Value::String(one)) => one.clone(),
                None | Some(Value::Null) => return Err(no_namespace()),
                Some(_) => {
                    return Err(invalid_scope("`namespaces` must be a list of names".to_owned()));
                }
            },
        };
        if !is_dns_label(&namespace) {
            return Err(invalid_scope(format!("`{namespace}` is not a namespace name")));
        }
        let name = match scope.fields.get("service_account") {
            None | Some(Value::Null) => {
                self.config.service_account.replace("{action}", ticket.action.as_str())
            }
            Some(Value::String(name)) => name.clone(),
            Some(_) => {
                return Err(invalid_scope("`service_account` must be a string".to_owned()));
            }
        };
        if !is_dns_subdomain(&name) {
            return Err(invalid_scope(format!(
                "`{name}` is not a ServiceAccount name (lowercase letters, digits, `-` and `.`, \
                 at most 253 characters)"
            )));
        }
        Ok((namespace, name))
    }

    async fn get(
        &self,
        scope: &CredentialScope,
        ticket: &ExecutionTicket,
        ttl: u64,
    ) -> Result<Credential, VaultError> {
        if scope.kind != KIND {
            return Err(VaultError::UnsupportedType {
                vault: KIND,
                kind: scope.kind.clone(),
                supported: KIND,
            });
        }
        if ttl == 0 || ttl > MAX_TTL {
            return Err(VaultError::InvalidTtl { ttl, max: MAX_TTL });
        }
        let duration = ttl.max(TOKEN_MIN_DURATION);
        let (namespace, name) = self.service_account(scope, ticket)?;
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: self.config.audiences.clone(),
                expiration_seconds: i64::try_from(duration).ok(),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client().await?, &namespace);
        let failed = |why: String| {
            VaultError::Backend(format!(
                "TokenRequest for ServiceAccount `{namespace}/{name}` failed: {why}"
            ))
        };
        let answer = api
            .create_token_request(&name, &PostParams::default(), &request)
            .await
            .map_err(|e| failed(describe(&e)))?;
        let token = answer.status.map(|s| s.token).unwrap_or_default();
        if token.is_empty() {
            return Err(failed("the API server answered without a token".to_owned()));
        }
        let mut payload = Params::new();
        payload.insert("token".into(), Value::String(token));
        self.issued.issue(self.clock.as_ref(), scope, ticket, duration, payload)
    }
}

impl fmt::Debug for KubernetesVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubernetesVault")
            .field("config", &self.config)
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl CredentialVault for KubernetesVault {
    fn kind(&self) -> &'static str {
        KIND
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

    /// ServiceAccount tokens have no per-token revocation: the id is forgotten, the token
    /// expires on its own.
    fn revoke<'a>(&'a self, credential_id: &'a str) -> BoxFuture<'a, Result<(), VaultError>> {
        self.issued.revoke(credential_id);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A kube error in words: the API server's status and message when it answered. Never
/// secret (the API server does not echo tokens).
fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

fn no_namespace() -> VaultError {
    invalid_scope(
        "no namespace for the ServiceAccount: the scope has no `namespaces` (a cluster-scoped \
         action); set `namespace` in the kubernetes vault config"
            .to_owned(),
    )
}

fn invalid_scope(detail: String) -> VaultError {
    VaultError::InvalidScope { kind: KIND.to_owned(), detail }
}

/// An RFC 1123 label (namespace names): 1–63 of `a-z0-9-`, alphanumeric at both ends.
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain (ServiceAccount names): labels joined by `.`, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn check_config(config: &KubernetesVaultConfig) -> Result<(), VaultConfigError> {
    let wrong = |key: &str, expected| VaultConfigError::WrongType { key: key.to_owned(), expected };
    if let Some(namespace) = &config.namespace
        && !is_dns_label(namespace)
    {
        return Err(wrong("namespace", "a namespace name"));
    }
    // The template with a sample action name must make a valid name.
    if !is_dns_subdomain(&config.service_account.replace("{action}", "a")) {
        return Err(wrong(
            "service_account",
            "a ServiceAccount name, optionally with `{action}` (e.g. `agent-safe-{action}`)",
        ));
    }
    if config.audiences.iter().any(String::is_empty) {
        return Err(wrong("audiences", "a list of non-empty audience names"));
    }
    if config.connection.context.as_deref().is_some_and(str::is_empty) {
        return Err(wrong("context", "a non-empty context name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
