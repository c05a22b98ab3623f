//! Ours against an independent implementation of the same formats: Cloudflare's `tlog_tiles`
//! (a port of Go's `golang.org/x/mod/sumdb/tlog`, the checksum database's, whose proofs are
//! RFC 6962's), in both directions: the same stored hashes and roots, their inclusion
//! (record) and consistency (tree) proofs verify with our verifiers, ours with theirs, and
//! checkpoint bodies read both ways.

use proptest::prelude::*;

use crate::*;

/// Their stored hashes, read by index.
struct Theirs(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for Theirs {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| self.0.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn theirs(h: &Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(h.0)
}

fn ours(h: &tlog_tiles::Hash) -> Hash {
    Hash(h.0)
}

/// Both implementations' stored hashes of `leaves`, which must be equal.
fn build(leaves: &[Vec<u8>]) -> (Vec<Hash>, Theirs) {
    let mut tree = TreeBuilder::new();
    let mut mine = Vec::new();
    let mut other = Theirs(Vec::new());
    for (n, leaf) in leaves.iter().enumerate() {
        tree.push(leaf_hash(leaf), &mut mine);
        let added = tlog_tiles::stored_hashes(n as u64, leaf, &other).unwrap();
        other.0.extend(added);
    }
    assert_eq!(mine, other.0.iter().map(ours).collect::<Vec<_>>(), "stored hashes differ");
    (mine, other)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn proofs_verify_across_implementations(
        leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..34)
    ) {
        let (mine, other) = build(&leaves);
        let n = leaves.len() as u64;
        for size in 1..=n {
            let root = tree_hash(size, mine.as_slice()).unwrap();
            let their_root = tlog_tiles::tree_hash(size, &other).unwrap();
            prop_assert_eq!(theirs(&root), their_root);
            for i in 0..size {
                let leaf = leaf_hash(&leaves[i as usize]);
                // Ours, checked by theirs; theirs, checked by ours.
                let proof = inclusion_proof(i, size, mine.as_slice()).unwrap();
                let as_theirs: Vec<_> = proof.iter().map(theirs).collect();
                prop_assert!(tlog_tiles::check_record(&as_theirs, size, their_root, i, theirs(&leaf)).is_ok());
                let their_proof = tlog_tiles::prove_record(size, i, &other).unwrap();
                let as_ours: Vec<Hash> = their_proof.iter().map(ours).collect();
                prop_assert!(verify_inclusion(&leaf, i, size, &as_ours, &root).is_ok());
                prop_assert_eq!(as_ours, proof);
            }
            for old in 1..=size {
                let old_root = tree_hash(old, mine.as_slice()).unwrap();
                let proof = consistency_proof(old, size, mine.as_slice()).unwrap();
                let as_theirs: Vec<_> = proof.iter().map(theirs).collect();
                prop_assert!(
                    tlog_tiles::check_tree(&as_theirs, size, their_root, old, theirs(&old_root)).is_ok()
                );
                let their_proof = tlog_tiles::prove_tree(size, old, &other).unwrap();
                let as_ours: Vec<Hash> = their_proof.iter().map(ours).collect();
                prop_assert!(verify_consistency(old, size, &as_ours, &old_root, &root).is_ok());
                prop_assert_eq!(as_ours, proof);
            }
        }
    }
}

#[test]
fn a_forged_proof_fails_in_both() {
    let leaves: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i; 3]).collect();
    let (mine, other) = build(&leaves);
    let root = tree_hash(13, mine.as_slice()).unwrap();
    let mut proof = inclusion_proof(5, 13, mine.as_slice()).unwrap();
    proof[1].0[0] ^= 1;
    let leaf = leaf_hash(&leaves[5]);
    assert!(verify_inclusion(&leaf, 5, 13, &proof, &root).is_err());
    let as_theirs: Vec<_> = proof.iter().map(theirs).collect();
    let their_root = tlog_tiles::tree_hash(13, &other).unwrap();
    assert!(tlog_tiles::check_record(&as_theirs, 13, their_root, 5, theirs(&leaf)).is_err());
}

#[test]
fn checkpoint_bodies_read_both_ways() {
    let root = leaf_hash(b"root");
    let mine = Checkpoint {
        origin: "audit.example.com/prod".to_owned(),
        size: 20_852_163,
        root,
        extensions: vec!["ext one".to_owned()],
    };
    let parsed = tlog_tiles::Checkpoint::from_bytes(mine.body().as_bytes()).unwrap();
    assert_eq!(
        (parsed.origin(), parsed.size(), ours(parsed.hash()), parsed.extension()),
        ("audit.example.com/prod", 20_852_163, root, "ext one\n")
    );
    let theirs = tlog_tiles::Checkpoint::new("example.com/log", 7, tlog_tiles::Hash(root.0), "")
        .unwrap()
        .to_bytes();
    let back = Checkpoint::parse(std::str::from_utf8(&theirs).unwrap()).unwrap();
    assert_eq!((back.origin.as_str(), back.size, back.root), ("example.com/log", 7, root));
    assert!(back.extensions.is_empty());
}
