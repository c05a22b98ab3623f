//! Cosignatures and the witness's side of `add-checkpoint`: every refusal the protocol names.

use crate::*;

const NOW: u64 = 1_765_000_000;

/// A log of `n` leaves: its key, the stored hashes and the signed checkpoint of each size.
struct Log {
    key: SignerKey,
    stored: Vec<Hash>,
    roots: Vec<Hash>,
}

impl Log {
    fn new(name: &str, n: u64) -> Log {
        Log::forked(name, n, u64::MAX)
    }

    /// The log whose entries from index `from` on differ from [`Log::new`]'s.
    fn forked(name: &str, n: u64, from: u64) -> Log {
        let mut tree = TreeBuilder::new();
        let mut stored = Vec::new();
        let mut roots = vec![Hash::empty()];
        for i in 0..n {
            let fork = if i >= from { " (rewritten)" } else { "" };
            tree.push(leaf_hash(format!("{name} entry {i}{fork}").as_bytes()), &mut stored);
            roots.push(tree.root());
        }
        Log { key: SignerKey::generate(name).unwrap(), stored, roots }
    }

    fn checkpoint(&self, size: u64) -> (Checkpoint, String) {
        let checkpoint = Checkpoint {
            origin: self.key.verifier().name().to_owned(),
            size,
            root: self.roots[usize::try_from(size).unwrap()],
            extensions: Vec::new(),
        };
        let note = checkpoint.sign(&self.key).unwrap();
        (checkpoint, note)
    }

    fn request(&self, old: u64, size: u64) -> String {
        let proof = if old == 0 || old == size {
            Vec::new()
        } else {
            consistency_proof(old, size, &self.stored).unwrap()
        };
        add_checkpoint_request(old, &proof, &self.checkpoint(size).1)
    }
}

fn refused(answer: &WitnessAnswer) -> Option<u16> {
    match answer {
        WitnessAnswer::Refused { status, .. } => Some(*status),
        _ => None,
    }
}

#[test]
fn a_witness_cosigns_consistent_checkpoints_and_refuses_the_rest() {
    let log = Log::new("example.com/log", 20);
    let cosigner = Cosigner::generate("witness.example/w1").unwrap();
    let witness_key = cosigner.verifier().clone();
    assert_eq!(CosignerKey::parse(&witness_key.to_string()).unwrap(), witness_key);
    let witness = Witness::new(cosigner, vec![log.key.verifier().clone()]);

    // First contact: old 0, no proof.
    let WitnessAnswer::Cosigned(lines) = witness.add_checkpoint(&log.request(0, 5), NOW) else {
        panic!("not cosigned");
    };
    let (_, note) = log.checkpoint(5);
    let cosigned = add_cosignatures(&note, &lines, &witness_key).unwrap();
    assert_eq!(cosignatures(&cosigned, &witness_key).unwrap(), vec![NOW]);
    // The log's own signature still verifies; a note without the witness has no cosignature.
    assert_eq!(Checkpoint::open(&cosigned, log.key.verifier()).unwrap().size, 5);
    assert!(cosignatures(&note, &witness_key).unwrap().is_empty());
    // The answer for another checkpoint does not cosign this one.
    assert!(add_cosignatures(&log.checkpoint(4).1, &lines, &witness_key).is_err());

    // A wrong old size: 409 with the size it cosigned; then the proof from there.
    assert_eq!(witness.add_checkpoint(&log.request(0, 9), NOW), WitnessAnswer::Conflict(5));
    assert_eq!(witness.add_checkpoint(&log.request(3, 9), NOW), WitnessAnswer::Conflict(5));
    assert!(matches!(witness.add_checkpoint(&log.request(5, 9), NOW), WitnessAnswer::Cosigned(_)));
    assert_eq!(witness.latest("example.com/log").map(|c| c.size), Some(9));
    // The same checkpoint again is fine; the same size with another root is a conflict.
    assert!(matches!(witness.add_checkpoint(&log.request(9, 9), NOW), WitnessAnswer::Cosigned(_)));
    let fork = Log {
        key: SignerKey::parse(&log.key.secret_text()).unwrap(),
        ..Log::forked("example.com/log", 20, 7)
    };
    assert_eq!(witness.add_checkpoint(&fork.request(9, 9), NOW), WitnessAnswer::Conflict(9));
    // A fork of the log from 9 to 12 (same key, other entries): the proof does not verify.
    assert_eq!(refused(&witness.add_checkpoint(&fork.request(9, 12), NOW)), Some(422));
    assert_eq!(witness.latest("example.com/log").map(|c| c.size), Some(9));

    // Unknown log 404; not signed by the log's key 403; malformed 400; old > size 400.
    let stranger = Log::new("example.com/stranger", 3);
    assert_eq!(refused(&witness.add_checkpoint(&stranger.request(0, 3), NOW)), Some(404));
    let impostor = Log {
        key: SignerKey::generate("example.com/log").unwrap(),
        ..Log::new("example.com/log", 20)
    };
    assert_eq!(refused(&witness.add_checkpoint(&impostor.request(9, 12), NOW)), Some(403));
    assert_eq!(refused(&witness.add_checkpoint("old 1\n", NOW)), Some(400));
    assert_eq!(
        refused(&witness.add_checkpoint(&log.request(0, 9).replacen("old 0", "old 01", 1), NOW)),
        Some(400)
    );
    let (_, small) = log.checkpoint(9);
    assert_eq!(
        refused(&witness.add_checkpoint(&add_checkpoint_request(12, &[], &small), NOW)),
        Some(400)
    );
    let garbage = add_checkpoint_request(9, &[], &small).replacen("\n\n", "\nnot-base64!\n\n", 1);
    assert_eq!(refused(&witness.add_checkpoint(&garbage, NOW)), Some(400));
}

#[test]
fn add_checkpoint_requests_round_trip() {
    let log = Log::new("example.com/log", 7);
    let body = log.request(3, 7);
    let parsed = AddCheckpoint::parse(&body).unwrap();
    assert_eq!(parsed.old, 3);
    assert_eq!(parsed.proof, consistency_proof(3, 7, &log.stored).unwrap());
    assert_eq!(parsed.note, log.checkpoint(7).1);
    assert!(body.starts_with("old 3\n"));
    let too_long = add_checkpoint_request(3, &[Hash::empty(); 64], &parsed.note);
    assert!(AddCheckpoint::parse(&too_long).unwrap_err().contains("more than 63"));
}
