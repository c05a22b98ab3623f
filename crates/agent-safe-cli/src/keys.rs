//! `agent-safe keys generate`, and the signing-key options shared by commands that sign or verify.

use std::path::PathBuf;

use agent_safe::ConfigFile;
use agent_safe_tickets::{
    KeySet, SigningKey, load_key_file, load_verifying_key_file, write_key_files,
};
use anyhow::{Context as _, bail};
use serde_json::json;

use crate::exit;
use crate::output::line;

/// Where a command gets its signing or verifying key from.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct KeyArgs {
    /// HS256 signing secret [default: from agent-safe.yaml]
    #[arg(long, env = "AGENT_SAFE_SIGNING_KEY", hide_env_values = true, value_name = "SECRET")]
    signing_key: Option<String>,
    /// Key file written by `agent-safe keys generate` (private or, for verifying, public)
    #[arg(long, value_name = "FILE", conflicts_with = "signing_key")]
    signing_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key given by flag (`--signing-key` or `--signing-key-file`), if any. The config's
    /// key is not consulted: the SDK builder reads that itself.
    pub(crate) fn flag_key(&self) -> anyhow::Result<Option<SigningKey>> {
        if let Some(secret) = &self.signing_key {
            return Ok(Some(SigningKey::hs256_from_str(secret)?));
        }
        if let Some(file) = &self.signing_key_file {
            return Ok(Some(load_key_file(file)?));
        }
        Ok(None)
    }

    /// The signing key: flag, key file, or the config's `signing_key` / `signing_key_file`.
    pub(crate) fn signing_key(&self, config: Option<&ConfigFile>) -> anyhow::Result<SigningKey> {
        if let Some(key) = agent_safe::settings::signing_key(self.flag_key()?, config)? {
            return Ok(key);
        }
        bail!(
            "--signing-key is required (or set signing_key / signing_key_file in agent-safe.yaml)"
        )
    }

    /// Keys to verify with: like [`KeyArgs::signing_key`], but a public key file is enough.
    pub(crate) fn verifying_keys(&self, config: Option<&ConfigFile>) -> anyhow::Result<KeySet> {
        if let Some(file) = &self.signing_key_file {
            if let Ok(key) = load_key_file(file) {
                return Ok(KeySet::from(&key));
            }
            return Ok(KeySet::from(load_verifying_key_file(file)?));
        }
        Ok(KeySet::from(&self.signing_key(config)?))
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Generate a signing key: an HS256 secret, or an Ed25519 key pair (executors then need
    /// only the public key). Files are written with mode 0600 and never overwritten.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// What the key signs: execution tickets and identity tokens, or the audit log's
    /// checkpoints (an Ed25519 key of its own, in the C2SP signed-note key format).
    #[arg(long, value_parser = ["ticket", "checkpoint"], default_value = "ticket")]
    kind: String,
    /// The log's name, which checkpoints carry as their origin (checkpoint keys), for
    /// example `audit.example.com/prod`.
    #[arg(long, required_if_eq("kind", "checkpoint"))]
    origin: Option<String>,
    /// Key type (ticket keys).
    #[arg(long, value_parser = ["hs256", "ed25519"], default_value = "ed25519")]
    algorithm: String,
    /// Directory for the key files.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// File name stem: `<name>.key` (and `<name>.pub`) [default: agent-safe; checkpoint keys:
    /// checkpoint]
    #[arg(long)]
    name: Option<String>,
    /// Key id (`kid`) for rotation.
    #[arg(long)]
    kid: Option<String>,
    /// Print the written paths as JSON.
    #[arg(long)]
    json_output: bool,
}

pub(crate) fn run(cmd: &Command) -> anyhow::Result<u8> {
    let Command::Generate(args) = cmd;
    if args.kind == "checkpoint" {
        return generate_checkpoint_key(args);
    }
    let name = args.name.as_deref().unwrap_or("agent-safe");
    let key = match args.algorithm.as_str() {
        "hs256" => SigningKey::generate_hs256(),
        _ => SigningKey::generate_ed25519()?.0,
    };
    let key = match &args.kid {
        Some(kid) => key.with_kid(kid.clone()),
        None => key,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    let files = write_key_files(&args.out, name, &key)?;
    if args.json_output {
        crate::output::json(&json!({
            "algorithm": args.algorithm,
            "private": files.private,
            "public": files.public,
            "kid": args.kid,
        }))?;
        return Ok(exit::OK);
    }
    line(&format!("Wrote {} (mode 0600; keep it secret)", files.private.display()));
    if let Some(public) = &files.public {
        line(&format!("Wrote {} (give this one to executors that only verify)", public.display()));
    }
    line("\nUse it in agent-safe.yaml:");
    line(&format!("  signing_key_file: {}", files.private.display()));
    Ok(exit::OK)
}

/// `keys generate --kind checkpoint`: the log's checkpoint key pair.
fn generate_checkpoint_key(args: &GenerateArgs) -> anyhow::Result<u8> {
    let origin = args.origin.as_deref().context("--origin is required for --kind checkpoint")?;
    let stem = args.name.as_deref().unwrap_or("checkpoint");
    if stem.is_empty() || stem.contains(['/', '\\']) || stem.starts_with('.') {
        bail!("--name `{stem}`: must be a plain file name");
    }
    let key = agent_safe_tlog::SignerKey::generate(origin)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create `{}`", args.out.display()))?;
    let (private, public) = agent_safe_tlog::write_key_files(&args.out, stem, &key)?;
    if args.json_output {
        crate::output::json(&json!({
            "kind": "checkpoint",
            "origin": origin,
            "private": private,
            "public": public,
            "verifier_key": key.verifier().to_string(),
        }))?;
        return Ok(exit::OK);
    }
    line(&format!(
        "Wrote {} (mode 0600; keep it secret: it signs the log's checkpoints)",
        private.display()
    ));
    line(&format!("Wrote {} (give this one to auditors)", public.display()));
    line(&format!("\nVerifier key: {}", key.verifier()));
    Ok(exit::OK)
}
