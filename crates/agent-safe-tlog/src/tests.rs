//! The RFC 6962 / 9162 reference vectors (the Certificate Transparency reference
//! implementation's eight-leaf tree, republished by the Go, Java and Python implementations),
//! and property tests on random logs.

use proptest::prelude::*;

use crate::*;

/// The eight leaves of the reference tree.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// The roots of the first 0 to 8 leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).unwrap()
}

fn hashes(hexes: &[&str]) -> Vec<Hash> {
    hexes.iter().map(|x| h(x)).collect()
}

fn leaf_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// The stored hashes and the builder of a tree of `leaves`.
fn build<T: AsRef<[u8]>>(leaves: &[T]) -> (Vec<Hash>, TreeBuilder) {
    let mut tree = TreeBuilder::new();
    let mut stored = Vec::new();
    for leaf in leaves {
        tree.push(leaf_hash(leaf.as_ref()), &mut stored);
    }
    (stored, tree)
}

/// RFC 9162's MTH, straight from the definition.
fn mth(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => Hash::empty(),
        1 => leaf_hash(&leaves[0]),
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn reference_leaves() -> Vec<Vec<u8>> {
    LEAVES.iter().map(|l| leaf_bytes(l)).collect()
}

#[test]
fn roots_match_the_reference_vectors() {
    let leaves = reference_leaves();
    for size in 0..=8 {
        let (stored, tree) = build(&leaves[..size]);
        assert_eq!(tree.root(), h(ROOTS[size]), "builder, size {size}");
        assert_eq!(tree_hash(size as u64, &stored).unwrap(), h(ROOTS[size]), "stored, {size}");
        assert_eq!(mth(&leaves[..size]), h(ROOTS[size]), "definition, size {size}");
        assert_eq!(stored.len() as u64, stored_count(size as u64));
        let resumed = TreeBuilder::resume(size as u64, &stored).unwrap();
        assert_eq!(resumed.root(), tree.root());
    }
}

#[test]
fn inclusion_proofs_match_the_reference_vectors() {
    let leaves = reference_leaves();
    let (stored, _) = build(&leaves);
    for &(index, size, expected) in INCLUSION {
        let proof = inclusion_proof(index, size, &stored).unwrap();
        assert_eq!(proof, hashes(expected), "leaf {index} of {size}");
        let leaf = leaf_hash(&leaves[usize::try_from(index).unwrap()]);
        let root = h(ROOTS[usize::try_from(size).unwrap()]);
        verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_reference_vectors() {
    let (stored, _) = build(&reference_leaves());
    for &(old, new, expected) in CONSISTENCY {
        let proof = consistency_proof(old, new, &stored).unwrap();
        assert_eq!(proof, hashes(expected), "{old} → {new}");
        let (old_root, new_root) =
            (h(ROOTS[usize::try_from(old).unwrap()]), h(ROOTS[usize::try_from(new).unwrap()]));
        verify_consistency(old, new, &proof, &old_root, &new_root).unwrap();
    }
}

#[test]
fn impossible_requests_are_clear_errors() {
    let (stored, tree) = build(&reference_leaves());
    let root = tree.root();
    let leaf = leaf_hash(b"");
    assert_eq!(inclusion_proof(0, 0, &stored), Err(TreeError::Proof(ProofError::EmptyTree)));
    assert_eq!(
        inclusion_proof(8, 8, &stored),
        Err(TreeError::Proof(ProofError::IndexOutOfRange { index: 8, size: 8 }))
    );
    assert_eq!(verify_inclusion(&leaf, 0, 0, &[], &root), Err(ProofError::EmptyTree));
    assert_eq!(
        verify_inclusion(&leaf, 9, 8, &[], &root).unwrap_err().to_string(),
        "leaf index 9 is not in a tree of size 8"
    );
    assert_eq!(consistency_proof(0, 8, &stored), Err(TreeError::Proof(ProofError::EmptyTree)));
    assert_eq!(
        consistency_proof(8, 3, &stored).unwrap_err().to_string(),
        "the old tree (size 8) is larger than the new one (size 3)"
    );
    // A tree larger than what is stored: the missing hash is named.
    assert_eq!(inclusion_proof(0, 9, &stored), Err(TreeError::MissingHash { index: 15 }));
    // A proof one hash short or long.
    let proof = inclusion_proof(5, 8, &stored).unwrap();
    assert_eq!(
        verify_inclusion(&leaf_hash(b"x"), 5, 8, &proof[..2], &root),
        Err(ProofError::Length { got: 2, expected: 3 })
    );
    let same = verify_consistency(8, 8, &[], &root, &h(ROOTS[7])).unwrap_err();
    assert!(matches!(same, ProofError::RootMismatch { .. }), "{same}");
}

/// Flips one bit of `hashes[i]`.
fn flipped(hashes: &[Hash], i: usize, bit: u8) -> Vec<Hash> {
    let mut out = hashes.to_vec();
    out[i].0[usize::from(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// For random logs and sizes m ≤ n: every inclusion and consistency proof verifies, and
    /// flipping a bit of the entry, of a proof hash or of a root makes it fail.
    #[test]
    fn every_proof_verifies_and_any_flipped_bit_fails(
        leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..40),
        bit in any::<u8>(),
    ) {
        let (stored, tree) = build(&leaves);
        let n = leaves.len() as u64;
        prop_assert_eq!(tree.root(), mth(&leaves));
        let roots: Vec<Hash> = (0..=leaves.len()).map(|m| mth(&leaves[..m])).collect();
        for size in 1..=n {
            let root = roots[usize::try_from(size).unwrap()];
            prop_assert_eq!(tree_hash(size, &stored).unwrap(), root);
            for index in 0..size {
                let leaf = &leaves[usize::try_from(index).unwrap()];
                let proof = inclusion_proof(index, size, &stored).unwrap();
                prop_assert!(verify_inclusion(&leaf_hash(leaf), index, size, &proof, &root).is_ok());
                let mut other = leaf.clone();
                other.push(bit);
                prop_assert!(verify_inclusion(&leaf_hash(&other), index, size, &proof, &root).is_err());
                for i in 0..proof.len() {
                    let bad = flipped(&proof, i, bit);
                    prop_assert!(verify_inclusion(&leaf_hash(leaf), index, size, &bad, &root).is_err());
                }
                let bad_root = flipped(&[root], 0, bit)[0];
                prop_assert!(verify_inclusion(&leaf_hash(leaf), index, size, &proof, &bad_root).is_err());
            }
            for old in 1..=size {
                let old_root = roots[usize::try_from(old).unwrap()];
                let proof = consistency_proof(old, size, &stored).unwrap();
                prop_assert!(verify_consistency(old, size, &proof, &old_root, &root).is_ok());
                for i in 0..proof.len() {
                    let bad = flipped(&proof, i, bit);
                    prop_assert!(verify_consistency(old, size, &bad, &old_root, &root).is_err());
                }
                let bad_old = flipped(&[old_root], 0, bit)[0];
                prop_assert!(verify_consistency(old, size, &proof, &bad_old, &root).is_err());
                let bad_new = flipped(&[root], 0, bit)[0];
                prop_assert!(verify_consistency(old, size, &proof, &old_root, &bad_new).is_err());
            }
        }
    }
}
