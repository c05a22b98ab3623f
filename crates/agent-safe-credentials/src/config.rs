//! Building a vault from a configuration map (SPEC §9 `build_vault`), e.g. the `vault:` block of
//! a config file: `{type: env, credentials: {...}, env_prefix: ...}` or `{type: file, dir: ...}`.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::{Clock, Secret};
use agent_safe_registry::suggest::did_you_mean;
use serde_json::{Map, Value};

use crate::env::EnvVarVault;
use crate::file::FileVault;
use crate::vault::CredentialVault;

/// The vault types [`build_vault`] knows (`sts` needs the cargo feature `aws`, `kubernetes`
/// the feature `k8s`).
pub const VAULT_TYPES: &[&str] = &["env", "file", "sts", "kubernetes"];

const ENV_KEYS: &[&str] = &["type", "credentials", "env_prefix"];
const FILE_KEYS: &[&str] = &["type", "dir"];
const STS_KEYS: &[&str] =
    &["type", "role_arn", "region", "profile", "endpoint_url", "session_duration"];
const KUBERNETES_KEYS: &[&str] =
    &["type", "kubeconfig", "context", "in_cluster", "namespace", "service_account", "audiences"];

/// The shortest session STS grants, and the one the `sts` vault asks for when the scope's TTL
/// is shorter (the catalog's are 300 s).
pub const STS_MIN_DURATION: u64 = 900;
/// The longest session STS grants (a role's own maximum may be lower).
pub const STS_MAX_DURATION: u64 = 43_200;

/// A vault configuration that cannot be used. Messages never quote configured credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultConfigError {
    /// `type` names no known vault.
    #[error(
        "unknown vault type `{0}`; available: `env`, `file`, `sts`, `kubernetes` (planned: \
         `hashicorp`)"
    )]
    UnknownType(String),
    /// `type: sts` in a build without the AWS vault.
    #[error(
        "the `sts` vault is not in this build: install the CLI with `cargo install \
         agent-safe-cli --features aws` (or enable the `aws` feature of agent-safe-credentials)"
    )]
    StsNotBuilt,
    /// `type: kubernetes` in a build without the Kubernetes vault.
    #[error(
        "the `kubernetes` vault is not in this build: install the CLI with `cargo install \
         agent-safe-cli --features k8s` (or enable the `k8s` feature of agent-safe-credentials)"
    )]
    KubernetesNotBuilt,
    /// A key the vault type does not take.
    #[error(
        "unknown key `{key}` in the `{vault}` vault config; expected one of {}{}",
        quoted(expected),
        hint.map(|h| format!("; did you mean `{h}`?")).unwrap_or_default()
    )]
    UnknownKey {
        /// The key.
        key: String,
        /// The vault type.
        vault: &'static str,
        /// The keys it takes.
        expected: &'static [&'static str],
        /// The closest expected key, if it looks like a typo.
        hint: Option<&'static str>,
    },
    /// A key whose value has the wrong shape.
    #[error("vault config key `{key}` must be {expected}")]
    WrongType {
        /// The key (`credentials.<type>` for one static credential).
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A required key is absent.
    #[error("the `{vault}` vault config needs `{key}`")]
    MissingKey {
        /// The key.
        key: &'static str,
        /// The vault type.
        vault: &'static str,
    },
}

fn quoted(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Builds a vault from `config`:
///
/// - `type: env` (the default): [`EnvVarVault`] with `credentials` (a map of credential type
///   to payload map, or to a string meaning `{"token": string}`) and `env_prefix` (default
///   `AGENT_SAFE_CRED_`);
/// - `type: file`: [`FileVault`] over the directory `dir`;
/// - `type: sts` (cargo feature `aws`): [`StsVault`](crate::StsVault) assuming `role_arn`, with
///   optional `region`, `profile`, `endpoint_url` and `session_duration` (seconds, a cap) —
///   scoped by a session policy;
/// - `type: kubernetes` (cargo feature `k8s`): [`KubernetesVault`](crate::KubernetesVault), a
///   ServiceAccount token per execution, with optional `kubeconfig`, `context`, `in_cluster`
///   (how the vault connects), `namespace`, `service_account` and `audiences` — scoped by the
///   ServiceAccount's RBAC.
///
/// ```
/// use std::sync::Arc;
/// use agent_safe_core::SystemClock;
/// use agent_safe_credentials::build_vault;
///
/// let config = serde_json::json!({"type": "env", "credentials": {"kubernetes": {"token": "t"}}});
/// let vault = build_vault(config.as_object().unwrap(), Arc::new(SystemClock))?;
/// assert_eq!(vault.kind(), "env");
///
/// let config = serde_json::json!({"type": "hashicorp"});
/// let err = build_vault(config.as_object().unwrap(), Arc::new(SystemClock)).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "unknown vault type `hashicorp`; available: `env`, `file`, `sts`, `kubernetes` (planned: `hashicorp`)"
/// );
/// # Ok::<(), agent_safe_credentials::VaultConfigError>(())
/// ```
pub fn build_vault(
    config: &Map<String, Value>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialVault>, VaultConfigError> {
    let kind = match config.get("type") {
        None | Some(Value::Null) => "env",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(VaultConfigError::WrongType {
                key: "type".to_owned(),
                expected: "a string",
            });
        }
    };
    match kind {
        "env" => {
            check_keys(config, "env", ENV_KEYS)?;
            Ok(Arc::new(env_vault(config, clock)?))
        }
        "file" => {
            check_keys(config, "file", FILE_KEYS)?;
            let dir = match config.get("dir") {
                None | Some(Value::Null) => {
                    return Err(VaultConfigError::MissingKey { key: "dir", vault: "file" });
                }
                Some(Value::String(dir)) if !dir.is_empty() => PathBuf::from(dir),
                Some(_) => {
                    return Err(VaultConfigError::WrongType {
                        key: "dir".to_owned(),
                        expected: "a directory path",
                    });
                }
            };
            Ok(Arc::new(FileVault::new(dir, clock)))
        }
        "sts" => {
            check_keys(config, "sts", STS_KEYS)?;
            sts_vault(config, clock)
        }
        "kubernetes" => {
            check_keys(config, "kubernetes", KUBERNETES_KEYS)?;
            kubernetes_vault(config, clock)
        }
        other => Err(VaultConfigError::UnknownType(other.to_owned())),
    }
}

/// An optional string setting of `config`.
fn string(config: &Map<String, Value>, key: &str) -> Result<Option<String>, VaultConfigError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VaultConfigError::WrongType { key: key.to_owned(), expected: "a string" }),
    }
}

#[cfg(feature = "aws")]
fn sts_vault(
    config: &Map<String, Value>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialVault>, VaultConfigError> {
    let role_arn = string(config, "role_arn")?
        .ok_or(VaultConfigError::MissingKey { key: "role_arn", vault: "sts" })?;
    let settings = crate::sts::StsVaultConfig {
        role_arn,
        region: string(config, "region")?,
        profile: string(config, "profile")?,
        endpoint_url: string(config, "endpoint_url")?,
        session_duration: match config.get("session_duration") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                return Err(VaultConfigError::WrongType {
                    key: "session_duration".to_owned(),
                    expected: "900 to 43200 seconds",
                });
            }
        },
    };
    Ok(Arc::new(crate::sts::StsVault::new(settings, clock)?))
}

#[cfg(not(feature = "aws"))]
fn sts_vault(
    config: &Map<String, Value>,
    _clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialVault>, VaultConfigError> {
    string(config, "role_arn")?;
    Err(VaultConfigError::StsNotBuilt)
}

#[cfg(feature = "k8s")]
fn kubernetes_vault(
    config: &Map<String, Value>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialVault>, VaultConfigError> {
    let in_cluster = match config.get("in_cluster") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(VaultConfigError::WrongType {
                key: "in_cluster".to_owned(),
                expected: "true or false",
            });
        }
    };
    let audiences = match config.get("audiences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(list)) => {
            list.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or(
                VaultConfigError::WrongType {
                    key: "audiences".to_owned(),
                    expected: "a list of audience names",
                },
            )?
        }
        Some(_) => {
            return Err(VaultConfigError::WrongType {
                key: "audiences".to_owned(),
                expected: "a list of audience names",
            });
        }
    };
    let settings = crate::kubernetes::KubernetesVaultConfig {
        connection: agent_safe_executor_k8s::K8sSettings {
            kubeconfig: string(config, "kubeconfig")?.map(PathBuf::from),
            context: string(config, "context")?,
            in_cluster,
        },
        namespace: string(config, "namespace")?,
        service_account: string(config, "service_account")?
            .unwrap_or_else(|| crate::kubernetes::DEFAULT_SERVICE_ACCOUNT.to_owned()),
        audiences,
    };
    Ok(Arc::new(crate::kubernetes::KubernetesVault::new(settings, clock)?))
}

#[cfg(not(feature = "k8s"))]
fn kubernetes_vault(
    _config: &Map<String, Value>,
    _clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialVault>, VaultConfigError> {
    Err(VaultConfigError::KubernetesNotBuilt)
}

fn check_keys(
    config: &Map<String, Value>,
    vault: &'static str,
    expected: &'static [&'static str],
) -> Result<(), VaultConfigError> {
    match config.keys().find(|k| !expected.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(VaultConfigError::UnknownKey {
            key: key.clone(),
            vault,
            expected,
            hint: did_you_mean(key, expected.iter().copied()),
        }),
    }
}

fn env_vault(
    config: &Map<String, Value>,
    clock: Arc<dyn Clock>,
) -> Result<EnvVarVault, VaultConfigError> {
    let mut vault = EnvVarVault::new(clock);
    match config.get("env_prefix") {
        None | Some(Value::Null) => {}
        Some(Value::String(prefix)) => vault = vault.with_prefix(prefix),
        Some(_) => {
            return Err(VaultConfigError::WrongType {
                key: "env_prefix".to_owned(),
                expected: "a string",
            });
        }
    }
    let credentials = match config.get("credentials") {
        None | Some(Value::Null) => return Ok(vault),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(VaultConfigError::WrongType {
                key: "credentials".to_owned(),
                expected: "a map of credential type to payload",
            });
        }
    };
    for (kind, payload) in credentials {
        vault = match payload {
            Value::Object(payload) => vault.with_static(kind, payload.clone()),
            Value::String(token) => vault.with_static_token(kind, Secret::new(token.clone())),
            _ => {
                return Err(VaultConfigError::WrongType {
                    key: format!("credentials.{kind}"),
                    expected: "a payload map or a token string",
                });
            }
        };
    }
    Ok(vault)
}

/// The JSON Schema of a vault configuration (feature `schema`): one alternative per vault
/// type, with the keys [`build_vault`] takes (a `null` value is an absent key). Strings are
/// strict: the map is read as it was parsed, so `region: 1` is a number, not the text `1`.
#[cfg(feature = "schema")]
pub fn vault_schema() -> schemars::Schema {
    use serde_json::json;

    let string = || json!({"type": ["string", "null"], "x-agent-safe-strict": true});
    let key = |key: &str| match key {
        "credentials" => json!({
            "description": "Static credentials: credential type → payload map, or a token string",
            "type": ["object", "null"],
            "additionalProperties": {"anyOf": [
                {"type": "object"},
                {"type": "string", "x-agent-safe-strict": true}
            ]}
        }),
        "dir" => json!({"type": "string", "minLength": 1, "x-agent-safe-strict": true,
                         "description": "A directory path, relative to the config file"}),
        "session_duration" => json!({"type": ["integer", "null"],
                                      "minimum": STS_MIN_DURATION, "maximum": STS_MAX_DURATION,
                                      "description": "The longest session, in seconds"}),
        "in_cluster" => json!({"type": ["boolean", "null"]}),
        "role_arn" => json!({"type": "string", "x-agent-safe-strict": true,
                              "pattern": r"^arn:aws[\s\S]*:iam::[0-9]{12}:role/[\s\S]+$",
                              "description": "An IAM role ARN"}),
        "endpoint_url" => json!({"type": ["string", "null"], "x-agent-safe-strict": true,
                                  "pattern": "^https?://"}),
        "profile" => json!({"type": ["string", "null"], "x-agent-safe-strict": true,
                             "minLength": 1}),
        "audiences" => json!({"anyOf": [
            {"type": ["string", "null"], "x-agent-safe-strict": true},
            {"type": "array", "items": {"type": "string", "x-agent-safe-strict": true}}
        ]}),
        _ => string(),
    };
    let alternatives: Vec<Value> = [
        ("env", ENV_KEYS, &[][..]),
        ("file", FILE_KEYS, &["type", "dir"][..]),
        ("sts", STS_KEYS, &["type", "role_arn"][..]),
        ("kubernetes", KUBERNETES_KEYS, &["type"][..]),
    ]
    .into_iter()
    .map(|(kind, keys, required)| {
        let mut properties = Map::new();
        for name in keys.iter().filter(|k| **k != "type") {
            properties.insert((*name).to_owned(), key(name));
        }
        // `env` is the type of a vault that names none.
        let kind_schema =
            if kind == "env" { json!({"enum": ["env", null]}) } else { json!({"const": kind}) };
        properties.insert("type".to_owned(), kind_schema);
        json!({
            "title": format!("{kind} vault"),
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false
        })
    })
    .collect();
    schemars::json_schema!({
        "description": "Where just-in-time credentials come from (`type`: env, file, sts, kubernetes)",
        "oneOf": alternatives
    })
}

#[cfg(test)]
mod tests;
