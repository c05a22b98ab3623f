//! The persisted index against real files: it follows the log, waits for torn lines, and is
//! rebuilt (saying why) whenever it does not match the log.

use std::io::Write as _;
use std::path::Path;

use crate::*;

const NOW: time::OffsetDateTime = time::macros::datetime!(2026-12-07 12:00 UTC);

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The tree of `lines`, computed in memory.
fn expected(lines: &[&str]) -> (Vec<Hash>, Hash) {
    let mut tree = TreeBuilder::new();
    let mut stored = Vec::new();
    for line in lines {
        tree.push(leaf_hash(line.as_bytes()), &mut stored);
    }
    (stored, tree.root())
}

#[test]
fn the_index_follows_the_log_and_waits_for_torn_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    // Blank lines are not leaves; a CRLF line's leaf has no terminator; the last line is
    // still being written.
    append(&log, "{\"a\": 1}\n\n{\"b\": 2}\r\n   \n{\"c\": 3}\n{\"d\": 4");
    let mut index = TreeIndex::open(&log).unwrap();
    assert_eq!(index.rebuilt(), None);
    assert_eq!(index.size(), 3);
    let (_, root) = expected(&["{\"a\": 1}", "{\"b\": 2}", "{\"c\": 3}"]);
    assert_eq!(index.root(), root);
    assert_eq!(index.root_at(3).unwrap(), root);
    // The torn line completes, more follow.
    append(&log, "}\n{\"e\": 5}\n");
    assert_eq!(index.catch_up().unwrap(), 2);
    let all = ["{\"a\": 1}", "{\"b\": 2}", "{\"c\": 3}", "{\"d\": 4}", "{\"e\": 5}"];
    let (stored, root) = expected(&all);
    assert_eq!((index.size(), index.root()), (5, root));
    // Proofs from the file equal proofs from memory, and verify.
    for size in 1..=5u64 {
        let at = index.root_at(size).unwrap();
        for i in 0..size {
            let proof = index.inclusion_proof(i, size).unwrap();
            assert_eq!(proof, inclusion_proof(i, size, &stored).unwrap());
            let leaf = leaf_hash(all[usize::try_from(i).unwrap()].as_bytes());
            verify_inclusion(&leaf, i, size, &proof, &at).unwrap();
        }
        let proof = index.consistency_proof(size, 5).unwrap();
        verify_consistency(size, 5, &proof, &at, &root).unwrap();
    }
    assert!(matches!(
        index.inclusion_proof(5, 5),
        Err(IndexError::Tree(TreeError::Proof(ProofError::IndexOutOfRange { .. })))
    ));
    // Opened again: nothing to do, nothing rebuilt.
    drop(index);
    let mut again = TreeIndex::open(&log).unwrap();
    assert_eq!((again.size(), again.root(), again.rebuilt()), (5, root, None));
    assert_eq!(again.catch_up().unwrap(), 0);
}

#[test]
fn an_index_that_does_not_match_the_log_is_rebuilt_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let index_path = TreeIndex::path_for(&log);
    append(&log, "one\ntwo\nthree\n");
    drop(TreeIndex::open(&log).unwrap());
    let rebuilt = |log: &Path| {
        let index = TreeIndex::open(log).unwrap();
        let reason = index.rebuilt().map(str::to_owned);
        (index.size(), index.root(), reason)
    };

    // The last indexed line rewritten.
    std::fs::write(&log, "one\ntwo\nTHREE\n").unwrap();
    let (size, root, reason) = rebuilt(&log);
    assert_eq!((size, root), (3, expected(&["one", "two", "THREE"]).1));
    assert!(reason.unwrap().contains("entry 3 (at byte 8) is not the one indexed"));

    // The log truncated.
    std::fs::write(&log, "one\n").unwrap();
    let (size, _, reason) = rebuilt(&log);
    assert_eq!(size, 1);
    assert!(reason.unwrap().contains("fewer than the 14 indexed"));

    // Not an index; an index cut short.
    std::fs::write(&index_path, "garbage").unwrap();
    assert_eq!(rebuilt(&log).2.as_deref(), Some("not a tree index"));
    append(&log, "two\nthree\nfour\n");
    drop(TreeIndex::open(&log).unwrap());
    let len = std::fs::metadata(&index_path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&index_path).unwrap().set_len(len - 1).unwrap();
    let (size, root, reason) = rebuilt(&log);
    assert_eq!((size, root), (4, expected(&["one", "two", "three", "four"]).1));
    assert!(reason.unwrap().contains("its 4 leaves need"));
}

#[test]
fn hashes_written_after_the_header_count_are_dropped() {
    // A catch-up that wrote hashes and stopped before its header: they are not counted, and
    // the next catch-up writes over them.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, "one\ntwo\n");
    drop(TreeIndex::open(&log).unwrap());
    append(&TreeIndex::path_for(&log), &"x".repeat(100));
    append(&log, "three\n");
    let index = TreeIndex::open(&log).unwrap();
    assert_eq!(index.rebuilt(), None);
    assert_eq!(index.root(), expected(&["one", "two", "three"]).1);
    assert_eq!(index.root_at(2).unwrap(), expected(&["one", "two"]).1);
}

#[test]
fn a_missing_log_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = TreeIndex::open(&dir.path().join("nope.jsonl")).unwrap_err();
    assert!(err.to_string().ends_with("nope.jsonl: no such audit log"), "{err}");
}

#[test]
fn a_log_is_checked_against_a_signed_tree_from_its_own_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    append(&log, "one\ntwo\nthree\nfour\n");
    let index = TreeIndex::open(&log).unwrap();
    let (size, root) = (index.size(), index.root());
    drop(index);
    assert_eq!(check_log(&log, size, &root).unwrap(), LogCheck::Consistent { entries: 4 });
    append(&log, "five\n");
    assert_eq!(check_log(&log, size, &root).unwrap(), LogCheck::Consistent { entries: 5 });
    // Rewritten in the middle: the index still holds the signed tree, so the entry is named.
    std::fs::write(&log, "one\nTWO\nthree\nfour\nfive\n").unwrap();
    let check = check_log(&log, size, &root).unwrap();
    assert!(matches!(check, LogCheck::Rewritten { first: Some(1), .. }), "{check:?}");
    // Without an index that holds it, the change is still found, but not where.
    std::fs::remove_file(TreeIndex::path_for(&log)).unwrap();
    let check = check_log(&log, size, &root).unwrap();
    assert!(matches!(check, LogCheck::Rewritten { first: None, .. }), "{check:?}");
    // Cut short.
    std::fs::write(&log, "one\ntwo\n").unwrap();
    assert_eq!(check_log(&log, size, &root).unwrap(), LogCheck::Truncated { entries: 2 });
    assert!(matches!(
        check_log(&dir.path().join("nope"), size, &root),
        Err(IndexError::NoLog { .. })
    ));
}

#[test]
fn two_checkpoints_compare_by_a_proof_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let lines: Vec<String> = (0..9).map(|i| format!("{{\"n\": {i}}}")).collect();
    for line in &lines[..7] {
        append(&log, &format!("{line}\n"));
    }
    let index = TreeIndex::open(&log).unwrap();
    let at = |size: u64| Checkpoint {
        origin: "example.com/log".to_owned(),
        size,
        root: index.root_at(size).unwrap(),
        extensions: Vec::new(),
    };
    for (m, n) in [(1, 7), (3, 7), (4, 7), (7, 7), (2, 5)] {
        let Compared::Consistent { proof } = compare_checkpoints(&index, &at(m), &at(n)).unwrap()
        else {
            panic!("{m} → {n} is consistent");
        };
        verify_consistency(m, n, &proof, &at(m).root, &at(n).root).unwrap();
    }
    // An old checkpoint of another history: a fork (also at equal sizes).
    let mut other = at(3);
    other.root = leaf_hash(b"another history");
    for new in [7, 3] {
        let compared = compare_checkpoints(&index, &other, &at(new)).unwrap();
        assert!(matches!(compared, Compared::Forked { .. }), "{compared:?}");
    }
    // Old larger than new: refused.
    assert!(compare_checkpoints(&index, &at(7), &at(3)).is_err());
    // A new checkpoint the log does not hold: beyond its end, or another root.
    let mut beyond = at(7);
    beyond.size = 9;
    let mut rewritten = at(7);
    rewritten.root = leaf_hash(b"rewritten");
    for new in [beyond, rewritten] {
        let compared = compare_checkpoints(&index, &at(3), &new).unwrap();
        assert_eq!(compared, Compared::NewNotInLog { entries: 7 });
    }
}

#[test]
fn the_signer_extends_its_newest_checkpoint_and_never_signs_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(&log, "").unwrap();
    let key = SignerKey::generate("example.com/log").unwrap();
    let copy = || SignerKey::parse(&key.secret_text()).unwrap();
    let mut signer = LogSigner::open(&log, copy()).unwrap();
    assert!(matches!(signer.sign(NOW), Err(SignError::Empty { .. })));
    append(&log, "{\"n\": 1}\n{\"n\": 2}\n");
    let (first, note) = signer.sign(NOW).unwrap();
    assert_eq!(first.size, 2);
    assert_eq!(Checkpoint::open(&note, key.verifier()).unwrap(), first);
    // Nothing new: the same checkpoint, nothing appended.
    assert_eq!(signer.sign(NOW).unwrap().1, note);
    assert_eq!(read_checkpoints(&checkpoints_path(&log)).unwrap().len(), 1);
    append(&log, "{\"n\": 3}\n");
    assert_eq!(signer.catch_up().unwrap(), 1);
    let (second, _) = signer.sign(NOW).unwrap();
    assert_eq!(second.size, 3);
    // Another key's checkpoints in the same file are skipped; a new signer resumes from the
    // newest of its own.
    let other = SignerKey::generate("example.com/other").unwrap();
    let foreign = Checkpoint { origin: "example.com/other".to_owned(), ..second.clone() };
    let note = foreign.sign(&other).unwrap();
    append_checkpoint(&checkpoints_path(&log), &CheckpointRecord::new(&foreign, &note, NOW))
        .unwrap();
    let mut again = LogSigner::open(&log, copy()).unwrap();
    assert_eq!(again.latest().map(|(c, _)| c.size), Some(3));
    // Cut short, or rewritten (the index removed with it): refused, nothing appended.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.lines().take(2).map(|l| format!("{l}\n")).collect::<String>())
        .unwrap();
    let err = again.sign(NOW).unwrap_err();
    assert!(matches!(err, SignError::Diverged { size: 3, .. }), "{err}");
    std::fs::write(&log, text.replace("\"n\": 2", "\"n\": 9")).unwrap();
    std::fs::remove_file(TreeIndex::path_for(&log)).unwrap();
    let err = LogSigner::open(&log, copy()).unwrap().sign(NOW).unwrap_err();
    assert!(err.to_string().contains("no longer holds the tree of the newest checkpoint"), "{err}");
    assert_eq!(read_checkpoints(&checkpoints_path(&log)).unwrap().len(), 3);
    // A damaged checkpoint of this key is an error, not skipped.
    let (_, good) = signer.latest().unwrap().clone();
    let forged = good.replace("\n3\n", "\n4\n");
    let record = CheckpointRecord { note: forged, ..CheckpointRecord::new(&second, &good, NOW) };
    append_checkpoint(&checkpoints_path(&log), &record).unwrap();
    let err = LogSigner::open(&log, copy()).unwrap_err();
    assert!(matches!(err, SignError::BadCheckpoint { .. }), "{err}");
}
