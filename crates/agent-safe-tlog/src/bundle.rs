//! An inclusion proof as handed to an auditor: the entry, where it is in the tree, the proof
//! and the signed checkpoint it verifies against — everything [`InclusionBundle::verify`]
//! needs besides the log's public key.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash, leaf_hash};
use crate::note::{Checkpoint, NoteError, VerifierKey};
use crate::proof::{ProofError, verify_inclusion};

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The checkpoint is not signed by the key, or is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    /// The proof does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Proof(#[from] ProofError),
    /// The bundle's parts do not agree.
    #[error("{0}")]
    Mismatch(String),
}

/// An inclusion proof of one audit entry (`agent-safe audit prove`, `GET
/// /v1/audit/proof/{event_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// The entry's `event_id`.
    pub event_id: String,
    /// The entry's line, exactly as stored, without its newline (the leaf).
    pub entry: String,
    /// Its index in the tree (its non-blank line number minus one).
    pub leaf_index: u64,
    /// The tree's size (the checkpoint's).
    pub tree_size: u64,
    /// The tree's root, base64.
    pub root: String,
    /// The proof's hashes, base64, from the leaf's sibling up.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint (a C2SP signed note) the proof verifies against.
    pub checkpoint: String,
}

impl InclusionBundle {
    /// A bundle for `entry` at `leaf_index` in the tree `checkpoint` (signed as `note`) names.
    pub fn new(
        event_id: &str,
        entry: &str,
        leaf_index: u64,
        checkpoint: &Checkpoint,
        note: &str,
        proof: &[Hash],
    ) -> InclusionBundle {
        InclusionBundle {
            event_id: event_id.to_owned(),
            entry: entry.to_owned(),
            leaf_index,
            tree_size: checkpoint.size,
            root: checkpoint.root.to_base64(),
            inclusion_proof: proof.iter().map(Hash::to_base64).collect(),
            checkpoint: note.to_owned(),
        }
    }

    /// Verifies the bundle with the log's public key alone: the checkpoint is signed by `key`
    /// and names this tree, the entry is the one named, and the proof leads from the entry to
    /// the checkpoint's root. Returns the checkpoint.
    pub fn verify(&self, key: &VerifierKey) -> Result<Checkpoint, BundleError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, key)?;
        if checkpoint.size != self.tree_size || checkpoint.root.to_base64() != self.root {
            return Err(BundleError::Mismatch(format!(
                "the checkpoint is for a tree of size {} with root {}, the proof for size {} with \
                 root {}",
                checkpoint.size,
                checkpoint.root.to_base64(),
                self.tree_size,
                self.root
            )));
        }
        let id = serde_json::from_str::<serde_json::Value>(&self.entry)
            .ok()
            .and_then(|v| v.get("event_id").and_then(|i| i.as_str().map(str::to_owned)));
        if id.as_deref() != Some(self.event_id.as_str()) {
            return Err(BundleError::Mismatch(format!(
                "the entry is not event `{}` (its event_id is {})",
                self.event_id,
                id.map_or("missing".to_owned(), |i| format!("`{i}`"))
            )));
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| {
                Hash::from_base64(h).ok_or_else(|| {
                    BundleError::Mismatch(format!("proof hash `{h}` is not 32 bytes of base64"))
                })
            })
            .collect::<Result<Vec<Hash>, BundleError>>()?;
        verify_inclusion(
            &leaf_hash(self.entry.as_bytes()),
            self.leaf_index,
            self.tree_size,
            &proof,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}
