//! Where the served configuration comes from: `agent-safe.yaml` (an explicit file or the one
//! discovered from a directory, re-read on every reload) and the same overrides as the CLI
//! flags; loading it into an [`AgentSafe`] stamped with its policy revision.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe::shipping::ShipperConfig;
use agent_safe::{
    AgentSafe, AppendObserver, Builder, Clock, ConfigFile, Defaults, DurabilityMode, IdentityMode,
    Overrides,
};
use agent_safe_core::{REDACTED, hex};
use agent_safe_registry::yaml::sha256;
use agent_safe_tickets::SigningKey;
use time::OffsetDateTime;

use crate::ServerError;

/// A change to the builder applied after everything else (tests inject clocks and sleepers).
pub type Customize = Arc<dyn Fn(Builder) -> Builder + Send + Sync>;

/// How to load the configuration served. Explicit settings win over `agent-safe.yaml`, as in
/// the CLI; relative defaults (`./actions`, `./policies`, `./inventory.yaml` when present,
/// `./audit.jsonl`) are relative to the process's working directory.
#[derive(Clone, Default)]
pub struct Source {
    config_file: Option<PathBuf>,
    discover_from: Option<PathBuf>,
    overrides: Overrides,
    signing_key: Option<SigningKey>,
    durability: Option<DurabilityMode>,
    clock: Option<Arc<dyn Clock>>,
    customize: Option<Customize>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("config_file", &self.config_file)
            .field("discover_from", &self.discover_from)
            .field("overrides", &self.overrides)
            .field("signing_key", &self.signing_key.as_ref().map(|_| REDACTED))
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

/// The file locations one load used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paths {
    pub(crate) registry: PathBuf,
    pub(crate) policies: PathBuf,
    pub(crate) inventory: Option<PathBuf>,
    pub(crate) audit_log: PathBuf,
}

/// One loaded configuration: what a request is decided by, from start to end.
#[derive(Debug)]
pub struct Loaded {
    /// The SDK built from it.
    pub safe: AgentSafe,
    /// `sha256:` + the digest of the action files, policy files and inventory it was built from.
    pub revision: String,
    /// When it was loaded (server clock).
    pub loaded_at: OffsetDateTime,
}

/// How many times a load is retried when a file changed while it was being read.
const LOAD_ATTEMPTS: usize = 3;

impl Source {
    /// Nothing set: discovers `agent-safe.yaml` from the working directory at each load.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this `agent-safe.yaml` (re-read on every reload).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Looks for `agent-safe.yaml` in `dir` and its ancestors (instead of the working directory).
    pub fn discover_from(mut self, dir: impl Into<PathBuf>) -> Self {
        self.discover_from = Some(dir.into());
        self
    }

    /// Actions directory.
    pub fn registry(mut self, dir: impl Into<PathBuf>) -> Self {
        self.overrides.registry = Some(dir.into());
        self
    }

    /// Policies directory.
    pub fn policies(mut self, dir: impl Into<PathBuf>) -> Self {
        self.overrides.policies = Some(dir.into());
        self
    }

    /// Inventory file.
    pub fn inventory(mut self, file: impl Into<PathBuf>) -> Self {
        self.overrides.inventory = Some(file.into());
        self
    }

    /// Audit log.
    pub fn audit_log(mut self, file: impl Into<PathBuf>) -> Self {
        self.overrides.audit_log = Some(file.into());
        self
    }

    /// Approval store.
    pub fn approval_store(mut self, file: impl Into<PathBuf>) -> Self {
        self.overrides.approval_store = Some(file.into());
        self
    }

    /// The audience of execution tickets (as `tickets: {audience}` in agent-safe.yaml).
    pub fn ticket_audience(mut self, audience: agent_safe::TicketAudience) -> Self {
        self.overrides.ticket_audience = Some(audience);
        self
    }

    /// Signing key (verifies identity tokens, signs execution tickets).
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Audit durability (default: from agent-safe.yaml, else fsync).
    pub fn durability(mut self, mode: DurabilityMode) -> Self {
        self.durability = Some(mode);
        self
    }

    /// The clock decisions, tokens and the per-caller rate limit use (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A change applied to every builder last.
    pub fn customize(mut self, f: Customize) -> Self {
        self.customize = Some(f);
        self
    }

    pub(crate) fn clock_or_system(&self) -> Arc<dyn Clock> {
        self.clock.clone().unwrap_or_else(|| Arc::new(agent_safe::SystemClock))
    }

    /// The `agent-safe.yaml` a load reads now, if any.
    pub(crate) fn config_path(&self) -> Result<Option<PathBuf>, ServerError> {
        Ok(match (&self.config_file, &self.discover_from) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(dir)) => ConfigFile::discover(dir),
            (None, None) => {
                let cwd = std::env::current_dir().map_err(ServerError::CurrentDir)?;
                ConfigFile::discover(&cwd)
            }
        })
    }

    fn config(&self) -> Result<Option<ConfigFile>, ServerError> {
        let path = self.config_path()?;
        path.map(|p| ConfigFile::load(&p).map_err(|e| ServerError::Load(e.into()))).transpose()
    }

    /// The registry, policies and inventory a load reads now (from `agent-safe.yaml` as it
    /// is on disk).
    pub(crate) fn current_paths(&self) -> Result<Paths, ServerError> {
        let config = self.config()?;
        Ok(self.paths(config.as_ref()))
    }

    fn paths(&self, config: Option<&ConfigFile>) -> Paths {
        let r = agent_safe::settings::resolve(config, &self.overrides, Defaults::WorkingDir);
        // The working-directory defaults always give a registry, policies and an audit log.
        Paths {
            registry: r.registry.unwrap_or_default(),
            policies: r.policies.unwrap_or_default(),
            inventory: r.inventory,
            audit_log: r.audit_log.unwrap_or_default(),
        }
    }

    /// Loads and validates everything into a new [`AgentSafe`]. Audit shipping is left out (the
    /// server runs one shipper for the process, see [`Server`](crate::Server)). On a reload,
    /// `previous` is the configuration being replaced: its per-caller rate-limit, breaker and
    /// cumulative-risk state carries over.
    pub(crate) fn load(
        &self,
        identity: Option<IdentityMode>,
        observer: Arc<dyn AppendObserver>,
        previous: Option<&AgentSafe>,
    ) -> Result<Loaded, ServerError> {
        let mut last_change = None;
        for _ in 0..LOAD_ATTEMPTS {
            let config = self.config()?;
            let paths = self.paths(config.as_ref());
            let before = revision(&paths)?;
            let safe = self.build(config, identity, &before, observer.clone(), previous)?;
            let after = revision(&paths)?;
            if before == after {
                let loaded_at = safe.clock().now();
                return Ok(Loaded { safe, revision: before, loaded_at });
            }
            last_change = Some(paths.policies.clone());
        }
        Err(ServerError::Unstable(last_change.unwrap_or_default()))
    }

    fn build(
        &self,
        config: Option<ConfigFile>,
        identity: Option<IdentityMode>,
        revision: &str,
        observer: Arc<dyn AppendObserver>,
        previous: Option<&AgentSafe>,
    ) -> Result<AgentSafe, ServerError> {
        let mut builder = Builder::from_config(config)
            .defaults(Defaults::WorkingDir)
            .overrides(&self.overrides)
            .audit_shippers(ShipperConfig::default())
            .policy_revision(revision)
            .append_observer(observer);
        if let Some(mode) = identity {
            builder = builder.identity(mode);
        }
        if let Some(key) = &self.signing_key {
            builder = builder.signing_key(key.clone());
        }
        if let Some(mode) = self.durability {
            builder = builder.durability(mode);
        }
        if let Some(clock) = &self.clock {
            builder = builder.clock(clock.clone());
        }
        if let Some(previous) = previous {
            builder = builder.continue_windows_from(previous);
        }
        if let Some(customize) = &self.customize {
            builder = customize(builder);
        }
        Ok(builder.build()?)
    }

    /// The shipping settings of the configuration at start-up.
    pub(crate) fn shipping(&self) -> Result<Option<ShipperConfig>, ServerError> {
        Ok(self.config()?.and_then(|c| c.audit_shipping))
    }

    /// `audit_checkpoints:` of the start-up configuration.
    pub(crate) fn checkpoints(&self) -> Result<Option<agent_safe::CheckpointsConfig>, ServerError> {
        Ok(self.config()?.and_then(|c| c.audit_checkpoints))
    }
}

/// The YAML files of `dir`, sorted, as the registry and policy loaders select them.
pub(crate) fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ServerError> {
    let io = |source| ServerError::Revision { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `sha256:` + SHA-256 over `kind NUL file name NUL sha256-hex LF` for every action file, policy
/// file and the inventory, in that order.
pub(crate) fn revision(paths: &Paths) -> Result<String, ServerError> {
    let mut manifest = Vec::new();
    let mut add = |kind: &str, path: &Path| -> Result<(), ServerError> {
        let bytes = std::fs::read(path)
            .map_err(|source| ServerError::Revision { path: path.to_path_buf(), source })?;
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        manifest.extend_from_slice(kind.as_bytes());
        manifest.push(0);
        manifest.extend_from_slice(name.as_bytes());
        manifest.push(0);
        manifest.extend_from_slice(hex::encode(&sha256(&bytes)).as_bytes());
        manifest.push(b'\n');
        Ok(())
    };
    // A missing directory is left for the loaders to report with their own message.
    if paths.registry.is_dir() {
        for file in yaml_files(&paths.registry)? {
            add("actions", &file)?;
        }
    }
    if paths.policies.is_dir() {
        for file in yaml_files(&paths.policies)? {
            add("policies", &file)?;
        }
    }
    if let Some(inventory) = paths.inventory.as_ref().filter(|p| p.is_file()) {
        add("inventory", inventory)?;
    }
    Ok(format!("sha256:{}", hex::encode(&sha256(&manifest))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(files: &[(&str, &str)], other: &[(&str, &str)], same: bool) {
        let write = |files: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            for sub in ["actions", "policies"] {
                std::fs::create_dir(dir.path().join(sub)).unwrap();
            }
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            let paths = Paths {
                registry: dir.path().join("actions"),
                policies: dir.path().join("policies"),
                inventory: Some(dir.path().join("inventory.yaml")),
                audit_log: dir.path().join("audit.jsonl"),
            };
            let rev = revision(&paths).unwrap();
            (dir, rev)
        };
        let (_a, left) = write(files);
        let (_b, right) = write(other);
        assert!(left.starts_with("sha256:") && left.len() == 7 + 64, "{left}");
        assert_eq!(left == right, same, "{left} vs {right}");
    }

    #[test]
    fn revision_names_the_loaded_files() {
        let base = [("actions/a.yaml", "a"), ("policies/p.yaml", "p"), ("inventory.yaml", "i")];
        check(&base, &base, true);
        // Any byte of a policy, an action or the inventory changes it.
        check(
            &base,
            &[("actions/a.yaml", "a"), ("policies/p.yaml", "q"), ("inventory.yaml", "i")],
            false,
        );
        check(
            &base,
            &[("actions/a.yaml", "b"), ("policies/p.yaml", "p"), ("inventory.yaml", "i")],
            false,
        );
        check(
            &base,
            &[("actions/a.yaml", "a"), ("policies/p.yaml", "p"), ("inventory.yaml", "j")],
            false,
        );
        // So does a renamed or moved file, and an added one.
        check(
            &base,
            &[("actions/a.yaml", "a"), ("policies/r.yaml", "p"), ("inventory.yaml", "i")],
            false,
        );
        check(
            &base,
            &[("actions/a.yaml", "a"), ("actions/p.yaml", "p"), ("inventory.yaml", "i")],
            false,
        );
        check(
            &base,
            &[
                ("actions/a.yaml", "a"),
                ("policies/p.yaml", "p"),
                ("policies/z.yml", ""),
                ("inventory.yaml", "i"),
            ],
            false,
        );
        // Files the loaders ignore do not.
        check(
            &base,
            &[
                ("actions/a.yaml", "a"),
                ("policies/p.yaml", "p"),
                ("policies/README.md", "x"),
                ("inventory.yaml", "i"),
            ],
            true,
        );
    }
}
