//! agent-safe just-in-time credentials (SPEC §9): agents never hold target credentials; the
//! runner fetches one per execution, scoped by the action's `credentials` block, after the
//! ticket validated, and revokes it afterwards.
//!
//! - [`CredentialVault`]: where credentials come from (async, object-safe). Built in:
//!   [`EnvVarVault`] (static map, else `AGENT_SAFE_CRED_<TYPE>`) and [`FileVault`] (a
//!   directory of private per-type JSON files); [`build_vault`] builds one from a config map.
//!   With the `aws` feature, `StsVault`: one STS session per credential, scoped by a session
//!   policy generated from the action's `credentials` block. With the `k8s` feature,
//!   `KubernetesVault`: one ServiceAccount token per credential from the TokenRequest API,
//!   for the action's own ServiceAccount.
//! - [`render_scope`]: fills `{{ params.x }}` templates in a scope under the plain-token rule
//!   (see [`template`]), so a param can never widen an ARN or a namespace list.
//! - [`CredentialResolver`]: takes only a [`ValidatedTicket`](agent_safe_tickets::ValidatedTicket),
//!   resolves the scope, gets a credential with the scope's TTL, and revokes it.
//! - Payloads stay in [`Secret`](agent_safe_core::Secret): `Debug` prints `[redacted]`, and
//!   [`CredentialView`] is the only JSON form (payload redacted unless asked for by name).
//!
//! ```
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use agent_safe_core::{ManualClock, Secret};
//! use agent_safe_credentials::{CredentialResolver, EnvVarVault};
//! use agent_safe_registry::Registry;
//! use agent_safe_tickets::{Expected, MemoryNonceStore, SigningKey, TicketIssuer, TicketValidator};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! let yaml = b"name: scale\nversion: 1.0.0\ndescription: Scale\nrisk_class: medium\n\
//!     target_types: [k8s-deployment]\nparameters:\n  - {name: namespace, type: string}\n\
//!     credentials:\n  type: kubernetes\n  fields: {namespaces: ['{{ params.namespace }}']}\n  ttl: 60\n";
//! let registry = Arc::new(Registry::from_sources([(PathBuf::from("scale.yaml"), &yaml[..])])?);
//! let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-02-24 12:00 UTC)));
//! let key = SigningKey::hs256_from_str("an example key of at least thirty-two bytes")?;
//! let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
//! let validator = TicketValidator::new(&key, "agent-safe", clock.clone(), nonces);
//! let issuer = TicketIssuer::new(key, "agent-safe", clock.clone());
//!
//! let params = serde_json::json!({"namespace": "dev"});
//! let ticket = issuer.issue("scale", "dev/app", "bot", params.as_object().unwrap(), "evt-1")?;
//! let validated = validator.verify(&ticket.token, &Expected::default())?;
//!
//! let vault = EnvVarVault::new(clock.clone())
//!     .with_static_token("kubernetes", Secret::new("s3cr3t".to_owned()));
//! let resolver = CredentialResolver::new(registry, Arc::new(vault));
//! let credential = block_on(resolver.resolve(&validated))?;
//! assert_eq!(credential.scope.fields["namespaces"][0], "dev");
//! assert_eq!(credential.expires_at, time::macros::datetime!(2026-02-24 12:01 UTC));
//! assert!(!format!("{credential:?}").contains("s3cr3t"));
//! assert!(block_on(resolver.revoke(&credential)).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/credentials.md` for the model, the vault formats, the threats and the
//! differences from the Python version.

mod config;
mod env;
mod file;
#[cfg(feature = "k8s")]
mod kubernetes;
mod resolver;
#[cfg(feature = "aws")]
mod sts;
pub mod template;
mod vault;
mod view;

#[cfg(feature = "schema")]
pub use config::vault_schema;
pub use config::{STS_MAX_DURATION, STS_MIN_DURATION, VAULT_TYPES, VaultConfigError, build_vault};
pub use env::{DEFAULT_ENV_PREFIX, EnvVarVault};
pub use file::{FileVault, MAX_CREDENTIAL_FILE_BYTES};
#[cfg(feature = "k8s")]
pub use kubernetes::{
    DEFAULT_SERVICE_ACCOUNT, KubernetesVault, KubernetesVaultConfig, TOKEN_MIN_DURATION,
};
pub use resolver::{CredentialResolver, ResolveError, RevokeWarning, revoke};
#[cfg(feature = "aws")]
pub use sts::{StsVault, StsVaultConfig, session_policy};
pub use template::{TemplateError, is_plain_token, render_scope};
pub use vault::{CredentialVault, MAX_TTL, VaultError, require_scoped};
pub use view::CredentialView;

#[cfg(test)]
mod test_support;
