//! `agent-safe.yaml`: the project configuration file and its discovery (SPEC Appendix A).

use std::path::{Path, PathBuf};

use agent_safe_core::Secret;
use agent_safe_pdp::{CumulativeRiskConfig, RateLimitConfig};
use agent_safe_registry::yaml::{self, YamlError};
use serde::Deserialize;

/// The file name looked for by discovery.
pub const CONFIG_FILE_NAME: &str = "agent-safe.yaml";

/// Whether callers must present a verified identity token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Plain caller ids are accepted (without roles or groups), as in the Python version.
    #[default]
    Optional,
    /// Only callers with a verified identity token may be allowed.
    Required,
}

/// How the audit log makes appends durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// fsync before a decision is returned (group-committed).
    #[default]
    Fsync,
    /// Written to the OS, not synced: faster, may lose the tail on power loss.
    Buffered,
}

/// The parsed `agent-safe.yaml`, with paths resolved against the file's directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    /// Where the file was read from.
    pub path: PathBuf,
    /// Actions directory.
    pub registry: Option<PathBuf>,
    /// Policies directory.
    pub policies: Option<PathBuf>,
    /// Inventory file.
    pub inventory: Option<PathBuf>,
    /// Audit log file.
    pub audit_log: Option<PathBuf>,
    /// Persistent single-use nonce store for execution tickets (default: next to the audit
    /// log, see [`ConfigFile::nonce_store_path`]).
    pub nonce_store: Option<PathBuf>,
    /// HS256 signing secret (text); see also `signing_key_file`.
    pub signing_key: Option<Secret<String>>,
    /// Key file written by `agent-safe keys generate`.
    pub signing_key_file: Option<PathBuf>,
    /// Token issuer.
    pub issuer: Option<String>,
    /// Identity mode.
    pub identity: IdentityMode,
    /// Audit durability.
    pub audit_durability: DurabilityMode,
    /// `rate_limit:` settings.
    pub rate_limit: Option<RateLimitConfig>,
    /// `cumulative_risk:` settings.
    pub cumulative_risk: Option<CumulativeRiskConfig>,
    /// `approvals:` settings (store, TTL, approver token file, notifiers).
    pub approvals: Option<crate::approvals::ApprovalsConfig>,
    /// `audit_shipping:` settings (shippers of the audit log).
    pub audit_shipping: Option<agent_safe_audit_ship::ShipperConfig>,
    /// `tickets:` settings (the audience of execution tickets).
    pub tickets: Option<TicketsConfig>,
    /// `credentials:` settings (the vault, `require_scoped`).
    pub credentials: Option<CredentialsConfig>,
    /// `state:` settings (where replicas share state: files or PostgreSQL).
    pub state: Option<crate::state::StateConfig>,
    /// `audit_checkpoints:` settings (signed checkpoints of the audit log made by `serve`).
    pub audit_checkpoints: Option<CheckpointsConfig>,
}

/// `audit_checkpoints:` in agent-safe.yaml: `agent-safe serve` signs a checkpoint of the audit
/// log's Merkle tree (a C2SP `tlog-checkpoint`) after `every_entries` new entries, and at
/// least every `every_seconds` while entries arrive, into `<audit_log>.checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckpointsConfig {
    /// The checkpoint signing key written by `agent-safe keys generate --kind checkpoint`
    /// (relative to this file).
    pub key_file: PathBuf,
    /// The log's name, as auditors know it; must be the key's name (default: the key's name).
    #[serde(default)]
    pub origin: Option<String>,
    /// Sign after this many new entries (default 1000).
    #[serde(default = "CheckpointsConfig::default_every_entries")]
    pub every_entries: std::num::NonZeroU64,
    /// Sign at least this often, in seconds, while new entries arrive (default 60).
    #[serde(default = "CheckpointsConfig::default_every_seconds")]
    pub every_seconds: std::num::NonZeroU64,
    /// C2SP `tlog-witness` endpoints asked to cosign every new checkpoint; their cosignatures
    /// are kept with it.
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
}

/// One witness of `audit_checkpoints.witnesses`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's submission prefix: `<url>/add-checkpoint` is posted to (http or https).
    pub url: String,
    /// Its public key: a C2SP vkey of type 0x04, `<name>+<key ID>+<base64>`.
    pub public_key: String,
}

impl CheckpointsConfig {
    fn default_every_entries() -> std::num::NonZeroU64 {
        std::num::NonZeroU64::new(1000).unwrap_or(std::num::NonZeroU64::MIN)
    }

    fn default_every_seconds() -> std::num::NonZeroU64 {
        std::num::NonZeroU64::new(60).unwrap_or(std::num::NonZeroU64::MIN)
    }
}

/// `credentials:` in agent-safe.yaml: where just-in-time credentials come from, for every
/// front (`runner execute`, `credential …`, `serve`, `mcp`, the SDK's builder).
#[derive(Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The vault, as [`build_vault`](crate::credentials::build_vault) takes it:
    /// `{type: env, credentials: {…}, env_prefix: …}`, `{type: file, dir: …}` (relative to the
    /// config file), `{type: sts, role_arn: …, region: …, endpoint_url: …, profile: …}` or
    /// `{type: kubernetes, kubeconfig: …, context: …, namespace: …, service_account: …,
    /// audiences: […]}`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<VaultSchema>"))]
    pub vault: Option<serde_json::Map<String, serde_json::Value>>,
    /// Refuse credentials that are not limited to the action's scope: a vault that cannot
    /// enforce scope (env, file) refuses every request, and ambient credentials are refused.
    #[serde(default)]
    pub require_scoped: bool,
}

impl std::fmt::Debug for CredentialsConfig {
    /// The vault's type only: an env vault's static credentials are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind =
            self.vault.as_ref().map(|v| v.get("type").and_then(|t| t.as_str()).unwrap_or("env"));
        f.debug_struct("CredentialsConfig")
            .field("vault", &kind)
            .field("require_scoped", &self.require_scoped)
            .finish()
    }
}

impl CredentialsConfig {
    /// The vault to use: `explicit` (a builder call, a CLI flag), else the configured `vault`;
    /// wrapped by [`require_scoped`](crate::credentials::require_scoped) when that is set. The
    /// one place the precedence and `require_scoped` are applied.
    pub fn vault(
        config: Option<&Self>,
        explicit: Option<std::sync::Arc<dyn crate::credentials::CredentialVault>>,
        clock: &std::sync::Arc<dyn agent_safe_core::Clock>,
    ) -> Result<
        Option<std::sync::Arc<dyn crate::credentials::CredentialVault>>,
        crate::credentials::VaultConfigError,
    > {
        let vault = match explicit {
            Some(vault) => Some(vault),
            None => config
                .and_then(|c| c.vault.as_ref())
                .map(|v| crate::credentials::build_vault(v, clock.clone()))
                .transpose()?,
        };
        Ok(match vault {
            Some(vault) if config.is_some_and(|c| c.require_scoped) => {
                Some(crate::credentials::require_scoped(vault))
            }
            other => other,
        })
    }

    /// The vault's relative paths (a file vault's `dir`, a Kubernetes vault's `kubeconfig`)
    /// resolved against `base` (the config file's directory).
    fn resolve(mut self, base: &Path) -> Self {
        let Some(vault) = &mut self.vault else { return self };
        let key = match vault.get("type").and_then(|t| t.as_str()) {
            Some("file") => "dir",
            Some("kubernetes") => "kubeconfig",
            _ => return self,
        };
        if let Some(serde_json::Value::String(path)) = vault.get_mut(key)
            && !path.is_empty()
            && Path::new(path.as_str()).is_relative()
        {
            *path = base.join(path.as_str()).to_string_lossy().into_owned();
        }
        self
    }
}

/// `tickets:` in agent-safe.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// The `aud` of execution tickets: a name, or `none` for tickets the Python runner accepts
    /// (default `agent-safe-runner`).
    #[serde(default)]
    pub audience: Option<crate::settings::TicketAudience>,
}

/// `agent-safe.yaml` as written (paths relative to the file).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(title = "agent-safe.yaml"))]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Actions directory.
    #[serde(default)]
    registry: Option<PathBuf>,
    /// Policies directory.
    #[serde(default)]
    policies: Option<PathBuf>,
    /// Inventory file.
    #[serde(default)]
    inventory: Option<PathBuf>,
    /// Audit log file.
    #[serde(default)]
    audit_log: Option<PathBuf>,
    /// Persistent single-use nonce store of execution tickets (default: next to the audit log).
    #[serde(default)]
    nonce_store: Option<PathBuf>,
    /// HS256 signing secret (text); or use `signing_key_file`. Keep it out of version control.
    #[serde(default)]
    signing_key: Option<Secret<String>>,
    /// Key file written by `agent-safe keys generate`.
    #[serde(default)]
    signing_key_file: Option<PathBuf>,
    /// Token issuer.
    #[serde(default)]
    issuer: Option<String>,
    /// Whether callers must present a verified identity token (`optional`, `required`).
    #[serde(default)]
    identity: IdentityMode,
    /// How appends are made durable: `fsync` (default) or `buffered`.
    #[serde(default)]
    audit_durability: DurabilityMode,
    /// Per-caller rate limit and circuit breaker.
    #[serde(default)]
    rate_limit: Option<RateLimitConfig>,
    /// Per-caller cumulative risk scoring.
    #[serde(default)]
    cumulative_risk: Option<CumulativeRiskConfig>,
    /// Approval store, TTL, approver token file and notifiers.
    #[serde(default)]
    approvals: Option<crate::approvals::RawApprovalsConfig>,
    /// Copies of the audit log sent to a file, a webhook or S3.
    #[serde(default)]
    audit_shipping: Option<agent_safe_audit_ship::ShipperConfig>,
    /// Execution tickets (their audience).
    #[serde(default)]
    tickets: Option<TicketsConfig>,
    /// Just-in-time credentials: the vault and `require_scoped`.
    #[serde(default)]
    credentials: Option<CredentialsConfig>,
    /// Where the state replicas share lives: `file` (default) or `postgres` with its `url`.
    #[serde(default)]
    state: Option<crate::state::StateConfig>,
    /// Signed checkpoints of the audit log made by `agent-safe serve`.
    #[serde(default)]
    audit_checkpoints: Option<CheckpointsConfig>,
}

/// The JSON Schema of `agent-safe.yaml` (feature `schema`), as the loader reads it.
#[cfg(feature = "schema")]
pub fn config_schema() -> schemars::Schema {
    agent_safe_registry::yaml::lax::schema::yaml_document(schemars::schema_for!(RawConfig))
}

/// [`agent_safe_credentials::vault_schema`] for `#[schemars(with)]`.
#[cfg(feature = "schema")]
struct VaultSchema;

#[cfg(feature = "schema")]
impl schemars::JsonSchema for VaultSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Vault".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        agent_safe_credentials::vault_schema()
    }
}

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An explicitly named config file does not exist.
    #[error("config file not found: `{}`", .0.display())]
    NotFound(PathBuf),
    /// The file is not a valid config document.
    #[error(transparent)]
    Yaml(#[from] YamlError),
}

impl ConfigFile {
    /// Reads and parses `path`; relative paths inside are resolved against its directory.
    /// Empty strings count as absent (as in the Python version).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::NotFound(path.to_path_buf()));
        }
        let (raw, _): (Option<RawConfig>, _) = yaml::read(path)?;
        let raw = raw.unwrap_or(RawConfig {
            registry: None,
            policies: None,
            inventory: None,
            audit_log: None,
            nonce_store: None,
            signing_key: None,
            signing_key_file: None,
            issuer: None,
            identity: IdentityMode::Optional,
            audit_durability: DurabilityMode::Fsync,
            rate_limit: None,
            cumulative_risk: None,
            approvals: None,
            audit_shipping: None,
            tickets: None,
            credentials: None,
            state: None,
            audit_checkpoints: None,
        });
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: Option<PathBuf>| {
            p.filter(|p| !p.as_os_str().is_empty())
                .map(|p| if p.is_absolute() { p } else { base.join(p) })
        };
        Ok(Self {
            path: path.to_path_buf(),
            registry: resolve(raw.registry),
            policies: resolve(raw.policies),
            inventory: resolve(raw.inventory),
            audit_log: resolve(raw.audit_log),
            nonce_store: resolve(raw.nonce_store),
            signing_key: raw.signing_key.filter(|k| !k.expose().is_empty()),
            signing_key_file: resolve(raw.signing_key_file),
            issuer: raw.issuer.filter(|i| !i.is_empty()),
            identity: raw.identity,
            audit_durability: raw.audit_durability,
            rate_limit: raw.rate_limit,
            cumulative_risk: raw.cumulative_risk,
            approvals: raw.approvals.map(|a| a.resolve(base)),
            audit_shipping: raw.audit_shipping.map(|s| s.resolve_paths(base)),
            tickets: raw.tickets,
            credentials: raw.credentials.map(|c| c.resolve(base)),
            state: raw.state,
            audit_checkpoints: raw.audit_checkpoints.map(|mut c| {
                c.key_file = base.join(&c.key_file);
                c
            }),
        })
    }

    /// Where execution-ticket nonces are kept: `nonce_store` when set, else the audit log's path
    /// with `.nonces` appended, else `None`.
    pub fn nonce_store_path(&self) -> Option<PathBuf> {
        let resolved = crate::settings::resolve(
            Some(self),
            &crate::Overrides::default(),
            crate::Defaults::None,
        );
        resolved.nonce_store
    }

    /// Finds `agent-safe.yaml` in `start` or the nearest ancestor directory.
    pub fn discover(start: &Path) -> Option<PathBuf> {
        start.ancestors().map(|dir| dir.join(CONFIG_FILE_NAME)).find(|p| p.is_file())
    }
}

/// The default nonce store for an audit log: `<audit_log>.nonces` (e.g. `audit.jsonl.nonces`).
pub fn default_nonce_store(audit_log: &Path) -> PathBuf {
    let mut name = audit_log.as_os_str().to_owned();
    name.push(".nonces");
    PathBuf::from(name)
}
