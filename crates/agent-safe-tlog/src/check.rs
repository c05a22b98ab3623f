//! A log compared with a signed tree (`agent-safe audit verify --checkpoint`): the log is
//! hashed again from its first line; the tree index is only consulted to name the first entry
//! that differs. Two checkpoints compared with a consistency proof from the log's tree index.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::TreeError;
use crate::hash::{Hash, leaf_hash};
use crate::index::{FileHashes, IndexError, TreeIndex, log_error, stored_leaves};
use crate::leaves::{Step, scan_leaves};
use crate::note::Checkpoint;
use crate::proof::{ProofError, verify_consistency};
use crate::store::TreeSource;
use crate::stored::{HashReader, TreeBuilder, stored_count, stored_index, tree_hash};

/// How a log compares with a signed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogCheck {
    /// The log's first `size` entries are the signed tree (`entries` in all).
    Consistent {
        /// Entries in the log.
        entries: u64,
    },
    /// The log has fewer entries than the tree signed: entries were cut off after these.
    Truncated {
        /// Entries in the log.
        entries: u64,
    },
    /// The log's first `size` entries have another root: an entry was changed, removed or
    /// inserted.
    Rewritten {
        /// Their root.
        root: Hash,
        /// The first entry (leaf index, from 0) that is not the signed one, when the tree
        /// index still holds the signed tree.
        first: Option<u64>,
    },
}

fn log_err(log: &Path) -> impl Fn(io::Error) -> IndexError + '_ {
    move |source| log_error(log, source)
}

/// Compares the log at `log` with the tree of `size` leaves whose root is `root`.
pub fn check_log(log: &Path, size: u64, root: &Hash) -> Result<LogCheck, IndexError> {
    let file = File::open(log).map_err(log_err(log))?;
    let mut builder = TreeBuilder::new();
    let mut sink = Vec::new();
    let mut at_size = (size == 0).then(Hash::empty);
    let mut entries = 0u64;
    scan_leaves(&file, 0, log_err(log), |step| {
        if let Step::Leaf(line, _) = step {
            entries += 1;
            if builder.size() < size {
                builder.push(leaf_hash(line), &mut sink);
                sink.clear();
                if builder.size() == size {
                    at_size = Some(builder.root());
                }
            }
        }
        Ok(())
    })?;
    let Some(computed) = at_size else { return Ok(LogCheck::Truncated { entries }) };
    if computed == *root {
        return Ok(LogCheck::Consistent { entries });
    }
    let first = first_difference(log, &file, size, root)?;
    Ok(LogCheck::Rewritten { root: computed, first })
}

/// The first of the log's first `size` leaves that is not the one the tree index holds, when
/// the index holds the tree `root` names.
fn first_difference(
    log: &Path,
    file: &File,
    size: u64,
    root: &Hash,
) -> Result<Option<u64>, IndexError> {
    // The index as it is on disk, read-only, not checked against the log.
    let path = TreeIndex::path_for(log);
    let Ok(index_file) = File::open(&path) else { return Ok(None) };
    let Some(leaves) = stored_leaves(&index_file) else { return Ok(None) };
    let snapshot = FileHashes { file: &index_file, path: &path, stored: stored_count(leaves) };
    if leaves < size || tree_hash(size, &snapshot).ok().as_ref() != Some(root) {
        return Ok(None);
    }
    let mut index = 0u64;
    let mut first = None;
    scan_leaves(file, 0, log_err(log), |step| {
        if let Step::Leaf(line, _) = step {
            if first.is_none() && index < size {
                let signed = snapshot.read_hashes(&[stored_index(0, index)]).ok();
                if signed.as_deref() != Some(&[leaf_hash(line)][..]) {
                    first = Some(index);
                }
            }
            index += 1;
        }
        Ok(())
    })?;
    Ok(first)
}

/// How two checkpoints of one log compare (`agent-safe audit consistency`, the witness
/// client): a consistency proof from the log's tree index, checked against both roots.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compared {
    /// The old tree is a prefix of the new one; the proof (RFC 9162 §2.1.4) shows it (empty
    /// when the sizes are equal).
    Consistent {
        /// The consistency proof from the old size to the new one.
        proof: Vec<Hash>,
    },
    /// The log holds the new tree, and the old tree is not a prefix of it: two different
    /// histories were signed (a fork, or a log rewritten between the two checkpoints).
    Forked {
        /// Why the log's consistency proof does not lead to the old root.
        reason: ProofError,
    },
    /// The log no longer holds the new tree (it was cut short or rewritten since), so no
    /// proof can be made from it.
    NewNotInLog {
        /// Leaves in the log's index.
        entries: u64,
    },
}

/// Compares the trees of `old` and `new` (already signature-checked; `old.size ≤ new.size`,
/// both of one origin) using the tree of their log.
pub fn compare_checkpoints(
    index: &(impl TreeSource + ?Sized),
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<Compared, IndexError> {
    let (m, n) = (old.size, new.size);
    if m > n {
        return Err(TreeError::Proof(ProofError::OldLarger { old: m, new: n }).into());
    }
    if m == 0 {
        // The empty tree is a prefix of every tree.
        return Ok(Compared::Consistent { proof: Vec::new() });
    }
    if index.size() < n || index.root_at(n)? != new.root {
        return Ok(Compared::NewNotInLog { entries: index.size() });
    }
    let proof = index.consistency_proof(m, n)?;
    Ok(match verify_consistency(m, n, &proof, &old.root, &new.root) {
        Ok(()) => Compared::Consistent { proof },
        Err(reason) => Compared::Forked { reason },
    })
}
