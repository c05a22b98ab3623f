//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): made from a tree's stored
//! hashes, verified from nothing but the proof, the hashes it claims and the tree sizes.

use crate::TreeError;
use crate::hash::{Hash, node_hash};
use crate::stored::{HashReader, subtree_hash};

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// An inclusion proof for a leaf the tree does not have.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf's index (from 0).
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// A proof about a tree of size 0.
    #[error("a tree of size 0 has no leaves and no proofs")]
    EmptyTree,
    /// A consistency proof from a larger tree to a smaller one.
    #[error("the old tree (size {old}) is larger than the new one (size {new})")]
    OldLarger {
        /// The old tree's size.
        old: u64,
        /// The new tree's size.
        new: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has {got} hash(es); a proof for these sizes has {expected}")]
    Length {
        /// Hashes in the proof.
        got: usize,
        /// Hashes a proof for these sizes has.
        expected: usize,
    },
    /// The proof leads to another root than the one claimed.
    #[error("the proof leads to root {computed}, not {claimed}")]
    RootMismatch {
        /// The root the proof computes.
        computed: Hash,
        /// The root it was checked against.
        claimed: Hash,
    },
    /// A consistency proof whose old root does not match.
    #[error("the proof leads to old root {computed}, not {claimed}")]
    OldRootMismatch {
        /// The old root the proof computes.
        computed: Hash,
        /// The old root it was checked against.
        claimed: Hash,
    },
}

/// The largest power of two below `n` (`n ≥ 2`): where RFC 9162 splits `n` leaves.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162
/// `PATH(index, D[0:size])`), from the leaf's sibling up.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    reader: &(impl HashReader + ?Sized),
) -> Result<Vec<Hash>, TreeError> {
    if size == 0 {
        return Err(ProofError::EmptyTree.into());
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    inclusion_path(index, size).iter().map(|&(a, b)| subtree_hash(a, b, reader)).collect()
}

/// The subtrees `[a, b)` whose hashes make the inclusion proof of leaf `index` in a tree of
/// `size` (`index < size`), from the leaf's sibling up: RFC 9162's `PATH`, walked down from the
/// root, noting the sibling at each level.
fn inclusion_path(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut siblings = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            siblings.push((lo + k, hi));
            hi = lo + k;
        } else {
            siblings.push((lo, lo + k));
            lo += k;
        }
    }
    siblings.reverse();
    siblings
}

/// The consistency proof from the tree of the first `old` leaves to the tree of the first
/// `new` (RFC 9162 `PROOF(old, D[0:new])`); empty when they are the same size.
pub fn consistency_proof(
    old: u64,
    new: u64,
    reader: &(impl HashReader + ?Sized),
) -> Result<Vec<Hash>, TreeError> {
    if old == 0 {
        return Err(ProofError::EmptyTree.into());
    }
    if old > new {
        return Err(ProofError::OldLarger { old, new }.into());
    }
    consistency_path(old, new).iter().map(|&(a, b)| subtree_hash(a, b, reader)).collect()
}

/// The subtrees `[a, b)` whose hashes make the consistency proof from `old` to `new` leaves
/// (`0 < old ≤ new`), in proof order: RFC 9162's `SUBPROOF(old, D[0:new], true)` walked from the
/// root; each step notes a sibling, and the last, when `old` ends a subtree that is not the
/// whole old tree, that subtree.
fn consistency_path(old: u64, new: u64) -> Vec<(u64, u64)> {
    let mut parts = Vec::new();
    let (mut lo, mut hi, mut whole) = (0, new, true);
    while old != hi {
        let k = split(hi - lo);
        if old <= lo + k {
            parts.push((lo + k, hi));
            hi = lo + k;
        } else {
            parts.push((lo, lo + k));
            lo += k;
            whole = false;
        }
    }
    if !whole {
        parts.push((lo, hi));
    }
    parts.reverse();
    parts
}

/// Verifies that `leaf` (a [`crate::leaf_hash`]) is leaf `index` of the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if size == 0 {
        return Err(ProofError::EmptyTree);
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_path(index, size).len();
    if proof.len() != expected {
        return Err(ProofError::Length { got: proof.len(), expected });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            // Up past the levels where this node has no right sibling.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if r != *root {
        return Err(ProofError::RootMismatch { computed: r, claimed: *root });
    }
    Ok(())
}

/// Verifies that the tree of `old` leaves with root `old_root` is a prefix of the tree of
/// `new` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old == 0 {
        return Err(ProofError::EmptyTree);
    }
    if old > new {
        return Err(ProofError::OldLarger { old, new });
    }
    let expected = consistency_path(old, new).len();
    if proof.len() != expected {
        return Err(ProofError::Length { got: proof.len(), expected });
    }
    if old == new {
        if old_root != new_root {
            return Err(ProofError::RootMismatch { computed: *old_root, claimed: *new_root });
        }
        return Ok(());
    }
    // When `old` is a power of two the old root is itself the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Length { got: 0, expected });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { computed: fr, claimed: *old_root });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch { computed: sr, claimed: *new_root });
    }
    Ok(())
}
