//! Precedence of settings, owned here once for every front: an explicit setting (a builder
//! call, a command-line flag, a server option) wins over `agent-safe.yaml`, which wins over the
//! default. The CLI and `agent-safe serve` pass their flags as [`Overrides`] and read the
//! outcome from [`Resolved`]; [`Builder::build`](crate::Builder::build) uses the same function.

use std::path::{Path, PathBuf};

use agent_safe_tickets::SigningKey;

use crate::config::{ConfigFile, default_nonce_store};

/// The issuer of tokens and tickets when none is configured.
pub const DEFAULT_ISSUER: &str = "agent-safe";

/// The approval store the `approval` commands use when none is configured.
pub const DEFAULT_APPROVAL_STORE: &str = "approvals.jsonl";

/// Explicit settings; each `None` falls back to `agent-safe.yaml`, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// Actions directory.
    pub registry: Option<PathBuf>,
    /// Policies directory.
    pub policies: Option<PathBuf>,
    /// Inventory file.
    pub inventory: Option<PathBuf>,
    /// Audit log file.
    pub audit_log: Option<PathBuf>,
    /// Approval store.
    pub approval_store: Option<PathBuf>,
    /// Persistent nonce store of execution tickets.
    pub nonce_store: Option<PathBuf>,
    /// Token issuer.
    pub issuer: Option<String>,
    /// The audience of execution tickets.
    pub ticket_audience: Option<TicketAudience>,
}

impl Overrides {
    /// `self` with every setting `other` gives replaced by `other`'s.
    pub fn merge(mut self, other: &Overrides) -> Self {
        let pick = |mine: &mut Option<PathBuf>, theirs: &Option<PathBuf>| {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        };
        pick(&mut self.registry, &other.registry);
        pick(&mut self.policies, &other.policies);
        pick(&mut self.inventory, &other.inventory);
        pick(&mut self.audit_log, &other.audit_log);
        pick(&mut self.approval_store, &other.approval_store);
        pick(&mut self.nonce_store, &other.nonce_store);
        if other.issuer.is_some() {
            self.issuer.clone_from(&other.issuer);
        }
        if other.ticket_audience.is_some() {
            self.ticket_audience.clone_from(&other.ticket_audience);
        }
        self
    }
}

/// What a path is when neither an override nor `agent-safe.yaml` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Defaults {
    /// No default: the registry and the policies must be given; no inventory, no audit log.
    /// The library's default.
    #[default]
    None,
    /// The project layout in the working directory, as the CLI and `agent-safe serve` use it:
    /// `./actions`, `./policies`, `./inventory.yaml` when that file exists, `./audit.jsonl`.
    WorkingDir,
}

/// Settings after precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolved {
    /// Actions directory (`None` only with [`Defaults::None`] and nothing configured).
    pub registry: Option<PathBuf>,
    /// Policies directory (`None` as for `registry`).
    pub policies: Option<PathBuf>,
    /// Inventory file, if any.
    pub inventory: Option<PathBuf>,
    /// Audit log file, if any.
    pub audit_log: Option<PathBuf>,
    /// Approval store, if any (`approvals.store` of the config).
    pub approval_store: Option<PathBuf>,
    /// Nonce store: explicit, else configured, else `<audit_log>.nonces` when there is a log.
    pub nonce_store: Option<PathBuf>,
    /// Token issuer (default [`DEFAULT_ISSUER`]).
    pub issuer: String,
    /// The audience of execution tickets (default `agent-safe-runner`).
    pub ticket_audience: TicketAudience,
}

/// The `aud` claim of execution tickets, as issued and as required when they are validated
/// (`tickets: {audience: …}` in agent-safe.yaml, `--ticket-audience`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum TicketAudience {
    /// Tickets carry `aud: <name>`; a ticket with another audience is refused, one without
    /// any (minted by Python) is accepted. The default, `agent-safe-runner`.
    Named(String),
    /// `none`: tickets carry no `aud`, and a ticket with one is refused, as the Python
    /// `TicketValidator` (PyJWT) does: the setting for tickets validated by the Python runner.
    None,
}

impl Default for TicketAudience {
    fn default() -> Self {
        Self::Named(agent_safe_tickets::DEFAULT_TICKET_AUDIENCE.to_owned())
    }
}

impl TicketAudience {
    /// The audience rule of the ticket issuer and of every ticket validator.
    pub fn audience(&self) -> agent_safe_tickets::Audience {
        match self {
            Self::Named(name) => agent_safe_tickets::Audience::IfPresent(name.clone()),
            Self::None => agent_safe_tickets::Audience::Absent,
        }
    }
}

impl std::str::FromStr for TicketAudience {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Err("the ticket audience must be a name, or `none` for no audience".to_owned()),
            "none" => Ok(Self::None),
            name => Ok(Self::Named(name.to_owned())),
        }
    }
}

/// A name, or `none` (not blank).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for TicketAudience {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TicketAudience".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The `aud` of execution tickets: a name, or `none` for tickets the Python runner accepts",
            "type": "string",
            "pattern": "\\S"
        })
    }
}

impl TryFrom<String> for TicketAudience {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl std::fmt::Display for TicketAudience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::None => f.write_str("none"),
        }
    }
}

/// Applies the precedence: `overrides` > `config` > `defaults`.
pub fn resolve(config: Option<&ConfigFile>, overrides: &Overrides, defaults: Defaults) -> Resolved {
    let working_dir = defaults == Defaults::WorkingDir;
    let pick = |given: &Option<PathBuf>, configured: Option<&PathBuf>, default: &str| {
        given
            .clone()
            .or_else(|| configured.cloned())
            .or_else(|| working_dir.then(|| PathBuf::from(default)))
    };
    let inventory =
        overrides.inventory.clone().or_else(|| config.and_then(|c| c.inventory.clone())).or_else(
            || {
                let default = Path::new("inventory.yaml");
                (working_dir && default.is_file()).then(|| default.to_path_buf())
            },
        );
    let audit_log =
        pick(&overrides.audit_log, config.and_then(|c| c.audit_log.as_ref()), "audit.jsonl");
    let nonce_store = overrides
        .nonce_store
        .clone()
        .or_else(|| config.and_then(|c| c.nonce_store.clone()))
        .or_else(|| audit_log.as_deref().map(default_nonce_store));
    Resolved {
        registry: pick(&overrides.registry, config.and_then(|c| c.registry.as_ref()), "actions"),
        policies: pick(&overrides.policies, config.and_then(|c| c.policies.as_ref()), "policies"),
        inventory,
        audit_log,
        approval_store: overrides
            .approval_store
            .clone()
            .or_else(|| config.and_then(|c| c.approvals.as_ref()).and_then(|a| a.store.clone())),
        nonce_store,
        issuer: overrides
            .issuer
            .clone()
            .or_else(|| config.and_then(|c| c.issuer.clone()))
            .unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
        ticket_audience: overrides
            .ticket_audience
            .clone()
            .or_else(|| config.and_then(|c| c.tickets.as_ref()).and_then(|t| t.audience.clone()))
            .unwrap_or_default(),
    }
}

/// The signing key: `explicit`, else the config's `signing_key` (an HS256 secret), else its
/// `signing_key_file`, else none.
pub fn signing_key(
    explicit: Option<SigningKey>,
    config: Option<&ConfigFile>,
) -> Result<Option<SigningKey>, agent_safe_tickets::KeyError> {
    if let Some(key) = explicit {
        return Ok(Some(key));
    }
    if let Some(secret) = config.and_then(|c| c.signing_key.as_ref()) {
        return Ok(Some(SigningKey::hs256_from_str(secret.expose())?));
    }
    if let Some(file) = config.and_then(|c| c.signing_key_file.as_ref()) {
        return Ok(Some(agent_safe_tickets::load_key_file(file)?));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("/p/agent-safe.yaml"),
            registry: Some(PathBuf::from("/p/acts")),
            audit_log: Some(PathBuf::from("/p/log.jsonl")),
            issuer: Some("corp".to_owned()),
            ..ConfigFile::default()
        }
    }

    #[test]
    fn explicit_beats_config_beats_default() {
        let flags = Overrides {
            policies: Some(PathBuf::from("pol")),
            audit_log: Some(PathBuf::from("flag.jsonl")),
            ..Overrides::default()
        };
        let r = resolve(Some(&config()), &flags, Defaults::WorkingDir);
        assert_eq!(r.registry, Some(PathBuf::from("/p/acts")), "config");
        assert_eq!(r.policies, Some(PathBuf::from("pol")), "flag");
        assert_eq!(r.audit_log, Some(PathBuf::from("flag.jsonl")), "flag over config");
        assert_eq!(r.nonce_store, Some(PathBuf::from("flag.jsonl.nonces")), "next to the log");
        assert_eq!(r.issuer, "corp");
        assert_eq!(r.approval_store, None);

        let r = resolve(None, &Overrides::default(), Defaults::WorkingDir);
        assert_eq!(r.registry, Some(PathBuf::from("actions")));
        assert_eq!(r.policies, Some(PathBuf::from("policies")));
        assert_eq!(r.audit_log, Some(PathBuf::from("audit.jsonl")));
        assert_eq!(r.issuer, DEFAULT_ISSUER);

        let r = resolve(None, &Overrides::default(), Defaults::None);
        assert_eq!((r.registry, r.policies, r.inventory, r.audit_log), (None, None, None, None));
        assert_eq!(r.nonce_store, None);
    }

    #[test]
    fn merge_keeps_what_the_other_leaves_unset() {
        let a = Overrides {
            registry: Some(PathBuf::from("a")),
            issuer: Some("x".to_owned()),
            ..Overrides::default()
        };
        let b = Overrides {
            policies: Some(PathBuf::from("b")),
            issuer: Some("y".to_owned()),
            ..Overrides::default()
        };
        let m = a.merge(&b);
        assert_eq!(m.registry, Some(PathBuf::from("a")));
        assert_eq!(m.policies, Some(PathBuf::from("b")));
        assert_eq!(m.issuer.as_deref(), Some("y"));
    }
}
