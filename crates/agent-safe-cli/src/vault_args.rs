//! The vault options `runner execute|dry-run`, `credential resolve|test-vault`, `serve` and
//! `mcp` share, and their precedence: a flag > `credentials.vault` of agent-safe.yaml > the
//! command's default. `credentials.require_scoped` applies to whichever vault is chosen.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe::credentials::{CredentialVault, EnvVarVault, FileVault};
use agent_safe::{ConfigFile, CredentialsConfig};
use agent_safe_core::{Clock, Secret};

/// Where credentials come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct VaultArgs {
    /// A static credential of TYPE for the env vault, payload {"token": VALUE}; repeatable.
    /// Command lines are visible to other local users: prefer --vault-env or --vault-dir.
    /// [default vault: `credentials.vault` of agent-safe.yaml]
    #[arg(long = "vault-cred", value_name = "TYPE=VALUE")]
    vault_cred: Vec<String>,
    /// Use the environment vault: AGENT_SAFE_CRED_<TYPE> holds the token.
    #[arg(long, conflicts_with = "vault_dir")]
    vault_env: bool,
    /// Use the file vault: <DIR>/<type>.json holds the payload object, mode 0600.
    #[arg(long, value_name = "DIR", conflicts_with = "vault_cred")]
    vault_dir: Option<PathBuf>,
}

/// What a command uses when neither a flag nor agent-safe.yaml names a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoVault {
    /// None: credentialed actions are refused (or run on ambient credentials when allowed).
    Refuse,
    /// The env vault (`AGENT_SAFE_CRED_<TYPE>`), as `credential resolve` always did.
    Env,
}

impl VaultArgs {
    /// The vault the flags name, if any (agent-safe.yaml not consulted).
    pub(crate) fn flag_vault(
        &self,
        clock: &Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Arc<dyn CredentialVault>>> {
        if let Some(dir) = &self.vault_dir {
            return Ok(Some(Arc::new(FileVault::new(dir, clock.clone()))));
        }
        if self.vault_cred.is_empty() && !self.vault_env {
            return Ok(None);
        }
        let mut vault = EnvVarVault::new(clock.clone());
        for (i, spec) in self.vault_cred.iter().enumerate() {
            // The argument is never echoed: it holds (or, mistyped, may be) a secret.
            match spec.split_once('=') {
                Some((kind, value)) if !kind.is_empty() && !value.is_empty() => {
                    vault = vault.with_static_token(kind, Secret::new(value.to_owned()));
                }
                _ => anyhow::bail!(
                    "{} `--vault-cred` must be TYPE=VALUE with a non-empty type and value (the \
                     argument is not shown: it may be a secret)",
                    ordinal(i + 1)
                ),
            }
        }
        Ok(Some(Arc::new(vault)))
    }

    /// The vault: a flag > `credentials.vault` > `otherwise`; wrapped by `require_scoped` when
    /// agent-safe.yaml sets it (both applied by the SDK's `CredentialsConfig::vault`).
    pub(crate) fn vault(
        &self,
        config: Option<&ConfigFile>,
        clock: &Arc<dyn Clock>,
        otherwise: NoVault,
    ) -> anyhow::Result<Option<Arc<dyn CredentialVault>>> {
        let credentials = config.and_then(|c| c.credentials.as_ref());
        let mut explicit = self.flag_vault(clock)?;
        if explicit.is_none()
            && otherwise == NoVault::Env
            && credentials.and_then(|c| c.vault.as_ref()).is_none()
        {
            explicit = Some(Arc::new(EnvVarVault::new(clock.clone())));
        }
        CredentialsConfig::vault(credentials, explicit, clock)
            .map_err(|e| anyhow::anyhow!("credentials.vault: {e}"))
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
