//! The transparency layer of agent-safe's audit log: an RFC 9162 §2.1 Merkle tree over the
//! log's entries, in order, each leaf the exact bytes of an entry's line without its newline,
//! so the lines (and Python compatibility) stay as they are.
//!
//! - [`leaf_hash`], [`node_hash`], [`Hash`]: the tree's hashing (SHA-256, `0x00`/`0x01`
//!   domain separation).
//! - The stored-hash layout ([`stored_index`], [`stored_count`], [`TreeBuilder`],
//!   [`HashReader`]): every complete subtree's hash in the order a growing log completes them,
//!   so a persisted index only grows at its end and a root or proof needs O(log n) reads.
//! - [`inclusion_proof`] / [`verify_inclusion`] (§2.1.3) and [`consistency_proof`] /
//!   [`verify_consistency`] (§2.1.4).
//! - [`TreeIndex`]: the persisted index of a file log (`<log>.tree`), caught up with the log
//!   on demand and rebuilt when it does not match it.
//! - [`Checkpoint`], [`Note`], [`SignerKey`], [`VerifierKey`]: C2SP `tlog-checkpoint`s in C2SP
//!   `signed-note`s with Ed25519 keys of their own (not the ticket key); [`LogSigner`] signs
//!   a log's tree heads into `<log>.checkpoints`, never one that forks from the newest.
//!
//! ```
//! use agent_safe_tlog::{TreeBuilder, inclusion_proof, leaf_hash, verify_inclusion};
//!
//! let lines = [&b"first entry"[..], b"second entry", b"third entry"];
//! let mut tree = TreeBuilder::new();
//! let mut stored = Vec::new();
//! for line in lines {
//!     tree.push(leaf_hash(line), &mut stored);
//! }
//! let root = tree.root();
//! let proof = inclusion_proof(1, 3, &stored)?;
//! verify_inclusion(&leaf_hash(b"second entry"), 1, 3, &proof, &root)?;
//! assert!(verify_inclusion(&leaf_hash(b"forged entry"), 1, 3, &proof, &root).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bundle;
mod check;
mod files;
mod hash;
mod index;
mod leaves;
mod note;
mod proof;
mod signer;
mod store;
mod stored;
mod witness;

#[cfg(test)]
mod independent_tests;
#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod note_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod witness_tests;

pub use bundle::{BundleError, InclusionBundle};
pub use check::{Compared, LogCheck, check_log, compare_checkpoints};
pub use files::{
    CheckpointRecord, FileError, append_checkpoint, checkpoints_path, read_checkpoints,
    read_signer_key, read_verifier_key, write_key_files,
};
pub use hash::{Hash, leaf_hash, node_hash};
pub use index::{IndexError, TreeIndex};
pub use note::{Checkpoint, Note, NoteError, NoteSignature, SignerKey, VerifierKey};
pub use proof::{
    ProofError, consistency_proof, inclusion_proof, verify_consistency, verify_inclusion,
};
pub use signer::{LogSigner, SignError};
pub use store::{CheckpointStore, FileStore, StoreError, TreeSource};
pub use stored::{HashReader, TreeBuilder, stored_count, stored_index, subtree_hash, tree_hash};
pub use witness::{
    AddCheckpoint, COSIGNATURE_TYPE, Cosigner, CosignerKey, Witness, WitnessAnswer,
    add_checkpoint_request, add_cosignatures, cosignatures,
};

/// Why a tree operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The request itself is impossible (a size of 0, a leaf past the end, …).
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A stored hash the tree should hold is missing (the index is shorter than the tree).
    #[error("the tree index has no hash at position {index}")]
    MissingHash {
        /// Its [`stored_index`].
        index: u64,
    },
    /// An empty range was asked for.
    #[error("an empty range of leaves has no subtree hash")]
    Empty,
    /// Reading the persisted index failed.
    #[error("{0}")]
    Store(String),
}
