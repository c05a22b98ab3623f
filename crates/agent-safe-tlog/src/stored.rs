//! The stored-hash layout: every hash of every complete subtree of the tree, in the order a
//! growing log completes them (the layout of Go's `sumdb/tlog`, which C2SP `tlog-tiles` tiles
//! are cut from). Appending leaf `n` stores its leaf hash, then the hash of each subtree it
//! completes (one per trailing 1 bit of `n`), so a store only ever grows at its end, and any
//! subtree hash, root or proof needs O(log n) reads.

use crate::TreeError;
use crate::hash::{Hash, node_hash};

/// Where the hash of complete subtree `n` at `level` (the `2^level` leaves from `n · 2^level`)
/// is in the stored order.
pub fn stored_index(level: u32, n: u64) -> u64 {
    // That hash comes right after the hash of subtree 2n + 1 one level down; at level 0,
    // leaf n comes after the n leaves before it and the n/2 + n/4 + … subtrees they complete.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut index = 0;
    let mut m = n;
    while m > 0 {
        index += m;
        m >>= 1;
    }
    index + u64::from(level)
}

/// How many hashes a tree of `size` leaves stores.
pub fn stored_count(size: u64) -> u64 {
    if size == 0 {
        return 0;
    }
    stored_index(0, size - 1) + 1 + u64::from((size - 1).trailing_ones())
}

/// Reads stored hashes by their [`stored_index`].
pub trait HashReader {
    /// The hashes at `indexes` (in that order).
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError>;
}

/// Stored hashes in memory (tests; small trees).
impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.get(i).copied())
                    .ok_or(TreeError::MissingHash { index: i })
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// The complete subtrees `[lo, hi)` splits into, left to right, as `(level, n)`: the largest
/// aligned power-of-two block at each step.
fn subtrees(lo: u64, hi: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut lo = lo;
    while lo < hi {
        let by_size = 63 - (hi - lo).leading_zeros();
        let level = if lo == 0 { by_size } else { by_size.min(lo.trailing_zeros()) };
        out.push((level, lo >> level));
        lo += 1u64 << level;
    }
    out
}

/// The hash of the leaves `[lo, hi)` (RFC 9162's `MTH(D[lo:hi])`) from the stored hashes of
/// a tree holding at least `hi` leaves; `lo < hi`.
pub fn subtree_hash(
    lo: u64,
    hi: u64,
    reader: &(impl HashReader + ?Sized),
) -> Result<Hash, TreeError> {
    let parts = subtrees(lo, hi);
    let indexes: Vec<u64> = parts.iter().map(|&(level, n)| stored_index(level, n)).collect();
    let hashes = reader.read_hashes(&indexes)?;
    let mut iter = hashes.into_iter().rev();
    let Some(mut acc) = iter.next() else { return Err(TreeError::Empty) };
    for left in iter {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The root of the tree of the first `size` leaves (the empty tree's for 0).
pub fn tree_hash(size: u64, reader: &(impl HashReader + ?Sized)) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(Hash::empty());
    }
    subtree_hash(0, size, reader)
}

/// Builds the stored hashes of a growing tree, keeping the roots of its complete subtrees (the
/// right frontier: one per 1 bit of the size) so appending needs no reads.
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    size: u64,
    /// Roots of the complete subtrees, left (largest) to right.
    frontier: Vec<Hash>,
}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree of `size` leaves whose stored hashes `reader` holds.
    pub fn resume(size: u64, reader: &(impl HashReader + ?Sized)) -> Result<Self, TreeError> {
        let indexes: Vec<u64> =
            subtrees(0, size).iter().map(|&(level, n)| stored_index(level, n)).collect();
        let frontier = reader.read_hashes(&indexes)?;
        Ok(Self { size, frontier })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its [`crate::leaf_hash`]) and pushes onto `out` what to store: the leaf
    /// hash, then the hash of each subtree it completes, in stored order.
    pub fn push(&mut self, leaf: Hash, out: &mut Vec<Hash>) {
        out.push(leaf);
        let mut hash = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            let Some(left) = self.frontier.pop() else { break };
            hash = node_hash(&left, &hash);
            out.push(hash);
            n >>= 1;
        }
        self.frontier.push(hash);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        let Some(&last) = iter.next() else { return Hash::empty() };
        iter.fold(last, |acc, left| node_hash(left, &acc))
    }
}
