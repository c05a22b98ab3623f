//! `agent-safe audit checkpoint|prove|verify-proof|consistency`: signed checkpoints of the file log's
//! Merkle tree and inclusion proofs an auditor verifies with the public key alone
//! (`agent-safe-tlog`).

use std::path::{Path, PathBuf};

use agent_safe_tlog::{
    Checkpoint, CheckpointStore, Compared, FileStore, InclusionBundle, LogCheck, LogSigner,
    SignError, TreeIndex, TreeSource, check_log, compare_checkpoints, read_signer_key,
    read_verifier_key,
};
use anyhow::{Context as _, bail};
use serde_json::json;

use crate::output::{green, line, red};
use crate::{Cli, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct CheckpointArgs {
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    log: Option<PathBuf>,
    /// The checkpoint signing key (written by `agent-safe keys generate --kind checkpoint`);
    /// its name is the log's origin.
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// Also write the signed checkpoint to this file.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ProveArgs {
    /// The entry's event id (a decision's audit id, or any entry's `event_id`).
    event_id: String,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Prove against this signed checkpoint [default: the newest in `<log>.checkpoints`].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The log's public checkpoint key, to check the checkpoint before proving against it.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// Write the proof here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyProofArgs {
    /// A proof written by `agent-safe audit prove`.
    proof: PathBuf,
    /// The log's public checkpoint key.
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConsistencyArgs {
    /// The older signed checkpoint.
    old: PathBuf,
    /// The newer signed checkpoint (at least as large).
    new: PathBuf,
    /// The log's public checkpoint key (both must be signed by it).
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// Audit log [default: from agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Print the result (and the proof) as JSON.
    #[arg(long)]
    json_output: bool,
}

/// The tree and the checkpoint store of the log `source` names: the file log's `<log>.tree`
/// and `<log>.checkpoints`, or the database's tables (`state: {backend: postgres}`).
fn stores(
    source: &crate::audit_path::LogSource,
    what: &str,
) -> anyhow::Result<(Box<dyn TreeSource>, Box<dyn CheckpointStore>)> {
    #[cfg(feature = "postgres")]
    if let Some(db) = source.database() {
        let tree = agent_safe::postgres::PgTree::open(db.clone())?;
        return Ok((Box::new(tree), Box::new(agent_safe::postgres::PgCheckpointStore::new(db))));
    }
    let log = source.as_file(what)?;
    Ok((Box::new(TreeIndex::open(log)?), Box::new(FileStore::new(log))))
}

fn open_stores(
    cli: &Cli,
    given: Option<&PathBuf>,
    what: &str,
) -> anyhow::Result<(Box<dyn TreeSource>, Box<dyn CheckpointStore>)> {
    let (tree, store) = stores(&crate::audit_path::log_source(cli, given)?, what)?;
    if let Some(reason) = tree.rebuilt() {
        crate::output::note(&format!("the tree index was rebuilt from the log: {reason}"));
    }
    Ok((tree, store))
}

/// Signs the current tree head, appends it to `<log>.checkpoints` and prints it (the newest
/// checkpoint again when it already covers every entry). Refuses a log that is not an
/// extension of the newest checkpoint.
pub(crate) fn checkpoint(cli: &Cli, args: &CheckpointArgs) -> anyhow::Result<u8> {
    let key = read_signer_key(&args.key_file)?;
    let (tree, store) = open_stores(cli, args.log.as_ref(), "audit checkpoint")?;
    let mut signer = LogSigner::with(tree, store, key)?;
    let now = agent_safe_core::Clock::now(&agent_safe_core::SystemClock);
    let (_, note) = match signer.sign(now) {
        Ok(signed) => signed,
        Err(e @ SignError::Diverged { .. }) => {
            crate::output::error(&e.to_string());
            return Ok(exit::DENY_OR_FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(out) = &args.output {
        std::fs::write(out, &note).with_context(|| format!("cannot write `{}`", out.display()))?;
    }
    // The note ends with its newline.
    line(note.trim_end_matches('\n'));
    Ok(exit::OK)
}

/// The signed checkpoint in `file`, or the newest in the log's store.
fn checkpoint_note(store: &dyn CheckpointStore, file: Option<&PathBuf>) -> anyhow::Result<String> {
    if let Some(file) = file {
        return std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the checkpoint `{}`", file.display()));
    }
    store.notes()?.pop().with_context(|| {
        format!(
            "`{}` holds no checkpoint: run `agent-safe audit checkpoint` first, or give \
             --checkpoint FILE",
            store.location()
        )
    })
}

/// Writes the inclusion proof of one entry against a checkpoint, as JSON.
pub(crate) fn prove(cli: &Cli, args: &ProveArgs) -> anyhow::Result<u8> {
    let key = read_verifier_key(&args.public_key)?;
    let (tree, store) = open_stores(cli, args.log.as_ref(), "audit prove")?;
    let note = checkpoint_note(store.as_ref(), args.checkpoint.as_ref())?;
    let checkpoint = Checkpoint::open(&note, &key).context("the checkpoint")?;
    let Some((leaf, entry)) = store.entry(&args.event_id)? else {
        bail!("no entry with event id `{}` in the audit log", args.event_id);
    };
    if leaf >= checkpoint.size {
        bail!(
            "entry `{}` is entry {} of the log; the checkpoint covers the first {}: sign a newer \
             one with `agent-safe audit checkpoint`",
            args.event_id,
            leaf + 1,
            checkpoint.size
        );
    }
    if tree.size() < checkpoint.size || tree.root_at(checkpoint.size)? != checkpoint.root {
        bail!(
            "the log does not hold the tree the checkpoint signs (size {}): it was truncated or \
             rewritten; run `agent-safe audit verify --checkpoint`",
            checkpoint.size
        );
    }
    let proof = tree.inclusion_proof(leaf, checkpoint.size)?;
    let entry = String::from_utf8(entry).context("the entry is not UTF-8")?;
    let bundle = InclusionBundle::new(&args.event_id, &entry, leaf, &checkpoint, &note, &proof);
    match &args.output {
        Some(out) => {
            let text = format!("{}\n", serde_json::to_string_pretty(&bundle)?);
            std::fs::write(out, text)
                .with_context(|| format!("cannot write `{}`", out.display()))?;
        }
        None => crate::output::json(&bundle)?,
    }
    Ok(exit::OK)
}

/// Reads and signature-checks a checkpoint file.
fn open_checkpoint(file: &Path, key: &agent_safe_tlog::VerifierKey) -> anyhow::Result<Checkpoint> {
    let note = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the checkpoint `{}`", file.display()))?;
    Checkpoint::open(&note, key).with_context(|| format!("the checkpoint `{}`", file.display()))
}

/// Checks that the older checkpoint's tree is a prefix of the newer one's, with a consistency
/// proof made from the log.
pub(crate) fn consistency(cli: &Cli, args: &ConsistencyArgs) -> anyhow::Result<u8> {
    let key = read_verifier_key(&args.public_key)?;
    let old = open_checkpoint(&args.old, &key)?;
    let new = open_checkpoint(&args.new, &key)?;
    if old.size > new.size {
        bail!(
            "`{}` (size {}) is larger than `{}` (size {}): give the older checkpoint first",
            args.old.display(),
            old.size,
            args.new.display(),
            new.size
        );
    }
    let (tree, _) = open_stores(cli, args.log.as_ref(), "audit consistency")?;
    let (m, n) = (old.size, new.size);
    let compared = compare_checkpoints(tree.as_ref(), &old, &new)?;
    let (consistent, proof, message) = match &compared {
        Compared::Consistent { proof } => (
            true,
            proof.as_slice(),
            format!("the tree of size {m} is a prefix of the tree of size {n} of `{}`", new.origin),
        ),
        Compared::Forked { reason } => (
            false,
            &[][..],
            format!(
                "the tree of size {m} is not a prefix of the tree of size {n}, which the log                  holds: two histories were signed ({reason})"
            ),
        ),
        Compared::NewNotInLog { entries } => (
            false,
            &[][..],
            format!(
                "the log ({entries} entries) does not hold the tree of size {n}: it was cut                  short or rewritten since; run `agent-safe audit verify --checkpoint {}`",
                args.new.display()
            ),
        ),
        _ => (false, &[][..], "the checkpoints cannot be compared".to_owned()),
    };
    if args.json_output {
        crate::output::json(&json!({
            "consistent": consistent,
            "origin": new.origin,
            "old_size": m,
            "new_size": n,
            "consistency_proof": proof.iter().map(agent_safe_tlog::Hash::to_base64).collect::<Vec<_>>(),
            "message": message,
        }))?;
    } else if consistent {
        line(&format!("{} — {message}", green("CONSISTENT")));
    } else {
        line(&format!("{} — {message}", red("INCONSISTENT")));
    }
    Ok(if consistent { exit::OK } else { exit::DENY_OR_FAILED })
}

/// Verifies a proof with the public key alone.
pub(crate) fn verify_proof(args: &VerifyProofArgs) -> anyhow::Result<u8> {
    let key = read_verifier_key(&args.public_key)?;
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("cannot read `{}`", args.proof.display()))?;
    let bundle: InclusionBundle = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a proof", args.proof.display()))?;
    let result = bundle.verify(&key);
    if args.json_output {
        crate::output::json(&json!({
            "valid": result.is_ok(),
            "event_id": bundle.event_id,
            "leaf_index": bundle.leaf_index,
            "tree_size": bundle.tree_size,
            "origin": result.as_ref().ok().map(|c| c.origin.clone()),
            "error": result.as_ref().err().map(ToString::to_string),
        }))?;
    } else {
        match &result {
            Ok(c) => line(&format!(
                "{} entry `{}` is leaf {} of the {}-entry tree of `{}`, signed by {}",
                green("VALID"),
                bundle.event_id,
                bundle.leaf_index,
                bundle.tree_size,
                c.origin,
                key.label()
            )),
            Err(e) => line(&format!("{} {e}", red("INVALID"))),
        }
    }
    Ok(if result.is_ok() { exit::OK } else { exit::DENY_OR_FAILED })
}

/// The outcome of `audit verify --checkpoint`.
pub(crate) struct Checked {
    pub(crate) consistent: bool,
    pub(crate) message: String,
    size: u64,
    origin: String,
    first_differing_index: Option<u64>,
}

impl Checked {
    pub(crate) fn json(&self) -> serde_json::Value {
        json!({
            "origin": self.origin,
            "tree_size": self.size,
            "consistent": self.consistent,
            "first_differing_index": self.first_differing_index,
            "message": self.message,
        })
    }
}

/// Whether the log still holds the tree the signed checkpoint in `file` names.
pub(crate) fn against_checkpoint(
    source: &crate::audit_path::LogSource,
    file: &Path,
    key: &Path,
) -> anyhow::Result<Checked> {
    let log = source.as_file("audit verify --checkpoint")?;
    let key = read_verifier_key(key)?;
    let checkpoint = open_checkpoint(file, &key)?;
    let size = checkpoint.size;
    let (consistent, first, message) = match check_log(log, size, &checkpoint.root)? {
        LogCheck::Consistent { entries } => (
            true,
            None,
            format!(
                "the log's first {size} of {entries} entries are the tree `{}` signed",
                checkpoint.origin
            ),
        ),
        LogCheck::Truncated { entries } => (
            false,
            Some(entries),
            format!(
                "the log has {entries} entries; the checkpoint signs {size}: the log was cut \
                 short, the first missing entry is index {entries} (entry {})",
                entries + 1
            ),
        ),
        LogCheck::Rewritten { first: Some(i), .. } => (
            false,
            Some(i),
            format!(
                "entry {} (index {i}) is not the one the checkpoint signs: the log was \
                 rewritten from there",
                i + 1
            ),
        ),
        LogCheck::Rewritten { root, first: None, .. } => (
            false,
            None,
            format!(
                "the log's first {size} entries have root {root}, not the signed one: the log \
                 was rewritten (the tree index no longer holds the signed tree, so the first \
                 changed entry cannot be named)"
            ),
        ),
        _ => (false, None, "the log cannot be compared with the checkpoint".to_owned()),
    };
    Ok(Checked {
        consistent,
        message,
        size,
        origin: checkpoint.origin,
        first_differing_index: first,
    })
}
