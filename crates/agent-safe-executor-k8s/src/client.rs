//! Building a Kubernetes client per call: from the resolved credential when there is one,
//! otherwise from the executor's settings; never through process-wide state such as
//! `KUBECONFIG` being set or a global default configuration being replaced.

use std::path::PathBuf;

use agent_safe_core::Credential;
use base64::Engine as _;
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// Where the executor gets its cluster connection when a call carries no credential
/// (the CLI's `--kubeconfig`, `--context` and `--in-cluster`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sSettings {
    /// A kubeconfig file; `None` means `$KUBECONFIG` or `~/.kube/config` (read, never set).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; `None` means the file's `current-context`.
    pub context: Option<String>,
    /// Use the pod's service account (`KUBERNETES_SERVICE_HOST`, the mounted token and CA).
    pub in_cluster: bool,
}

/// Why no client could be built for a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The credential payload has an unusable shape.
    #[error("credential `{credential}`: {message}")]
    Credential {
        /// The credential id.
        credential: String,
        /// What is wrong with it.
        message: String,
    },
    /// A kubeconfig could not be read or used.
    #[error("kubeconfig{}: {source}", origin.as_ref().map(|o| format!(" `{o}`")).unwrap_or_default())]
    Kubeconfig {
        /// The file, when it came from one.
        origin: Option<String>,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster configuration is not available.
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    /// No configuration could be found at all.
    #[error(
        "no Kubernetes configuration found: no kubeconfig (`{kubeconfig}`) and not running in a cluster ({in_cluster}); pass `--kubeconfig`, `--in-cluster` or a credential"
    )]
    NotFound {
        /// Why the kubeconfig could not be loaded.
        kubeconfig: String,
        /// Why the in-cluster configuration could not be loaded.
        in_cluster: String,
    },
    /// The client could not be built from the configuration (TLS set-up, proxy…).
    #[error("building the Kubernetes client: {0}")]
    Build(#[source] kube::Error),
}

/// The payload keys a `kubernetes` credential may carry (documented in
/// `docs/executors/kubernetes.md`).
const PAYLOAD_KINDS: [&str; 3] = ["kubeconfig", "token", "in_cluster"];

/// The client configuration for one call: from `credential` when given, else from `settings`.
///
/// Credential payloads (exactly one of):
/// - `kubeconfig`: a path, the file's YAML content (any string with a newline), or the
///   kubeconfig as an object; optional `context`;
/// - `token`: a bearer token, with optional `server` (alias `host`) and CA bundle
///   (`certificate_authority_data`: base64 of PEM as in a kubeconfig, or `ca_cert`: PEM),
///   `insecure_skip_tls_verify` (alias `verify_ssl: false`); without `server` the cluster of
///   `settings` is used with this token as the only authentication;
/// - `in_cluster: true`.
///
/// # Errors
/// [`ClientError`] when the credential or configuration cannot be used.
pub async fn client_config(
    credential: Option<&Credential>,
    settings: &K8sSettings,
) -> Result<kube::Config, ClientError> {
    let mut config = match credential {
        None => settings_config(settings).await?,
        Some(credential) => credential_config(credential, settings).await?,
    };
    // Retries and time limits are the executor's and the runner's business (drain retries
    // PodDisruptionBudget refusals itself), so kube's built-in retry layer stays off.
    config.default_retry = false;
    Ok(config)
}

/// Builds the client for `config`, making sure rustls has a crypto provider.
///
/// # Errors
/// [`ClientError::Build`] when TLS or the HTTP stack cannot be set up.
pub fn build_client(config: kube::Config) -> Result<kube::Client, ClientError> {
    ensure_crypto_provider();
    kube::Client::try_from(config).map_err(ClientError::Build)
}

/// rustls picks its process-wide default provider from crate features and gives up when
/// both `ring` and `aws-lc-rs` are compiled in (which another crate in the same binary can
/// cause). Install `ring` only when nothing is installed yet, so an application's own choice
/// always wins; this is the one process-wide effect of the executor, and it is idempotent.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: some provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

async fn settings_config(settings: &K8sSettings) -> Result<kube::Config, ClientError> {
    let options = KubeConfigOptions { context: settings.context.clone(), ..Default::default() };
    if settings.in_cluster {
        return kube::Config::incluster().map_err(ClientError::InCluster);
    }
    if let Some(path) = &settings.kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ClientError::Kubeconfig {
            origin: Some(path.display().to_string()),
            source,
        })?;
        return from_kubeconfig(kubeconfig, &options, Some(path.display().to_string())).await;
    }
    match kube::Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        Err(kubeconfig) if settings.context.is_none() => match kube::Config::incluster() {
            Ok(config) => Ok(config),
            Err(in_cluster) => Err(ClientError::NotFound {
                kubeconfig: kubeconfig.to_string(),
                in_cluster: in_cluster.to_string(),
            }),
        },
        Err(source) => Err(ClientError::Kubeconfig { origin: None, source }),
    }
}

async fn from_kubeconfig(
    kubeconfig: Kubeconfig,
    options: &KubeConfigOptions,
    origin: Option<String>,
) -> Result<kube::Config, ClientError> {
    kube::Config::from_custom_kubeconfig(kubeconfig, options)
        .await
        .map_err(|source| ClientError::Kubeconfig { origin, source })
}

async fn credential_config(
    credential: &Credential,
    settings: &K8sSettings,
) -> Result<kube::Config, ClientError> {
    let payload = credential.payload.expose();
    let bad = |message: String| ClientError::Credential {
        credential: credential.credential_id.clone(),
        message,
    };
    let present: Vec<&str> =
        PAYLOAD_KINDS.iter().copied().filter(|k| payload.contains_key(*k)).collect();
    match present.as_slice() {
        ["kubeconfig"] => {
            let context = optional_str(payload, "context").map_err(&bad)?;
            let options = KubeConfigOptions { context, ..Default::default() };
            match payload.get("kubeconfig") {
                Some(Value::String(text)) if text.contains('\n') => {
                    let kubeconfig = Kubeconfig::from_yaml(text)
                        .map_err(|source| ClientError::Kubeconfig { origin: None, source })?;
                    from_kubeconfig(kubeconfig, &options, None).await
                }
                Some(Value::String(path)) => {
                    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| {
                        ClientError::Kubeconfig { origin: Some(path.clone()), source }
                    })?;
                    from_kubeconfig(kubeconfig, &options, Some(path.clone())).await
                }
                Some(object @ Value::Object(_)) => {
                    let kubeconfig: Kubeconfig = serde_json::from_value(object.clone())
                        .map_err(|e| bad(format!("`kubeconfig` is not a kubeconfig: {e}")))?;
                    from_kubeconfig(kubeconfig, &options, None).await
                }
                _ => Err(bad(
                    "`kubeconfig` must be a path, the file's content or an object".to_owned()
                )),
            }
        }
        ["token"] => token_config(payload, settings).await.map_err(|e| match e {
            TokenError::Payload(message) => bad(message),
            TokenError::Client(e) => e,
        }),
        ["in_cluster"] => match payload.get("in_cluster") {
            Some(Value::Bool(true)) => kube::Config::incluster().map_err(ClientError::InCluster),
            _ => Err(bad("`in_cluster` must be `true` when present".to_owned())),
        },
        [] => Err(bad(format!(
            "the payload has none of {}",
            PAYLOAD_KINDS.map(|k| format!("`{k}`")).join(", ")
        ))),
        several => Err(bad(format!(
            "the payload has {}; give exactly one",
            several.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
        ))),
    }
}

enum TokenError {
    Payload(String),
    Client(ClientError),
}

async fn token_config(
    payload: &serde_json::Map<String, Value>,
    settings: &K8sSettings,
) -> Result<kube::Config, TokenError> {
    let token = match payload.get("token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        _ => return Err(TokenError::Payload("`token` must be a non-empty string".to_owned())),
    };
    let server = match (optional_str(payload, "server"), optional_str(payload, "host")) {
        (Ok(Some(server)), _) | (Ok(None), Ok(Some(server))) => Some(server),
        (Ok(None), Ok(None)) => None,
        (Err(e), _) | (_, Err(e)) => return Err(TokenError::Payload(e)),
    };
    let Some(server) = server else {
        // The cluster (URL, CA) of the executor's settings, authenticated by this token only.
        let mut config = settings_config(settings).await.map_err(TokenError::Client)?;
        config.auth_info = token_auth(token).map_err(TokenError::Payload)?;
        return Ok(config);
    };
    let ca_data = match (
        optional_str(payload, "certificate_authority_data"),
        optional_str(payload, "ca_cert"),
    ) {
        (Ok(Some(data)), Ok(None)) => Some(data),
        (Ok(None), Ok(Some(pem))) => {
            Some(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()))
        }
        (Ok(None), Ok(None)) => None,
        (Ok(Some(_)), Ok(Some(_))) => {
            return Err(TokenError::Payload(
                "give one of `certificate_authority_data` and `ca_cert`, not both".to_owned(),
            ));
        }
        (Err(e), _) | (_, Err(e)) => return Err(TokenError::Payload(e)),
    };
    let insecure = match (payload.get("insecure_skip_tls_verify"), payload.get("verify_ssl")) {
        (None, None) => false,
        (Some(Value::Bool(insecure)), None) => *insecure,
        (None, Some(Value::Bool(verify))) => !*verify,
        _ => {
            return Err(TokenError::Payload(
                "give one boolean `insecure_skip_tls_verify` (or Python's `verify_ssl`)".to_owned(),
            ));
        }
    };
    let mut cluster = serde_json::Map::new();
    cluster.insert("server".to_owned(), Value::String(server));
    if let Some(ca_data) = ca_data {
        cluster.insert("certificate-authority-data".to_owned(), Value::String(ca_data));
    }
    if insecure {
        cluster.insert("insecure-skip-tls-verify".to_owned(), Value::Bool(true));
    }
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "agent-safe", "cluster": cluster}],
        "users": [{"name": "agent-safe", "user": {"token": token}}],
        "contexts": [{"name": "agent-safe", "context": {"cluster": "agent-safe", "user": "agent-safe"}}],
        "current-context": "agent-safe",
    });
    let kubeconfig: Kubeconfig = serde_json::from_value(kubeconfig)
        .map_err(|e| TokenError::Payload(format!("cannot use the token credential: {e}")))?;
    from_kubeconfig(kubeconfig, &KubeConfigOptions::default(), None)
        .await
        .map_err(TokenError::Client)
}

fn token_auth(token: String) -> Result<AuthInfo, String> {
    serde_json::from_value(json!({ "token": token }))
        .map_err(|e| format!("cannot use the token credential: {e}"))
}

fn optional_str(
    payload: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}
