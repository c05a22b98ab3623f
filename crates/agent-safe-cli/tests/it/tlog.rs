//! `keys generate --kind checkpoint`, `audit checkpoint`, `audit prove` and `audit
//! verify-proof` through the binary: a proof an auditor checks with the public key alone, and
//! every way it must fail.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::bin;

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().unwrap()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One allowed decision, appended to the project's log.
fn decide(dir: &Path) {
    let params = r#"{"namespace": "dev", "deployment": "test-app"}"#;
    let args = [
        "check",
        "restart-deployment",
        "--target",
        "dev/test-app",
        "--caller",
        "deploy-bot",
        "-p",
        params,
    ];
    let out = run(dir, &args);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

/// A second checkpoint key of the same origin, `other.key` / `other.pub`.
fn other_key(dir: &Path) {
    let args = ["keys", "generate", "--kind", "checkpoint", "--origin", "audit.example.com/test"];
    let out = bin(dir).args(args).args(["--name", "other"]).output().unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

/// An `init` project with `n` decisions in its log and a checkpoint key; the event ids.
fn project(dir: &Path, n: usize) -> Vec<String> {
    assert_eq!(code(&run(dir, &["init"])), Some(0));
    for _ in 0..n {
        decide(dir);
    }
    let out = run(
        dir,
        &["keys", "generate", "--kind", "checkpoint", "--origin", "audit.example.com/test"],
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_auditor_verifies_a_proof_with_the_public_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = project(d, 5);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("checkpoint.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Key files are never overwritten.
    let again = run(d, &["keys", "generate", "--kind", "checkpoint", "--origin", "x"]);
    assert_eq!(code(&again), Some(2));
    assert!(stderr(&again).contains("checkpoint.key: already exists"), "{}", stderr(&again));

    let out = run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key", "-o", "cp.txt"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let note = String::from_utf8(out.stdout).unwrap();
    assert!(note.starts_with("audit.example.com/test\n5\n"), "{note}");
    assert_eq!(std::fs::read_to_string(d.join("cp.txt")).unwrap(), note);
    assert!(
        std::fs::read_to_string(d.join("audit.jsonl.checkpoints")).unwrap().contains("\\n5\\n")
    );

    let out =
        run(d, &["audit", "prove", &ids[2], "--public-key", "checkpoint.pub", "-o", "proof.json"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let proof: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("proof.json")).unwrap()).unwrap();
    assert_eq!((proof["leaf_index"].as_u64(), proof["tree_size"].as_u64()), (Some(2), Some(5)));
    assert_eq!(proof["checkpoint"].as_str(), Some(note.as_str()));
    // Offline: a directory with nothing but the proof and the public key.
    let auditor = tempfile::tempdir().unwrap();
    let a = auditor.path();
    std::fs::copy(d.join("proof.json"), a.join("proof.json")).unwrap();
    std::fs::copy(d.join("checkpoint.pub"), a.join("log.pub")).unwrap();
    let out = run(
        a,
        &["audit", "verify-proof", "proof.json", "--public-key", "log.pub", "--json-output"],
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], Value::Bool(true), "{report}");
    assert_eq!(report["origin"], "audit.example.com/test");

    // Tampered: another entry's text, another index, a changed proof hash, another key.
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut p = proof.clone();
        f(&mut p);
        std::fs::write(a.join("bad.json"), serde_json::to_string(&p).unwrap()).unwrap();
        let out = run(a, &["audit", "verify-proof", "bad.json", "--public-key", "log.pub"]);
        (code(&out), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let entry = proof["entry"].as_str().unwrap().replace("deploy-bot", "deploy-bob");
    let (c, text) = tamper(&|p| p["entry"] = Value::String(entry.clone()));
    assert_eq!(c, Some(1), "{text}");
    assert!(text.contains("INVALID inclusion proof: the proof leads to root"), "{text}");
    let (c, text) = tamper(&|p| p["leaf_index"] = Value::from(3));
    assert_eq!(c, Some(1), "{text}");
    let (c, text) = tamper(&|p| {
        let h = p["inclusion_proof"][0].as_str().unwrap().to_owned();
        let first = if h.starts_with('A') { "B" } else { "A" };
        p["inclusion_proof"][0] = Value::String(format!("{first}{}", &h[1..]));
    });
    assert_eq!(c, Some(1), "{text}");
    let (c, text) = tamper(&|p| p["tree_size"] = Value::from(6));
    assert_eq!(c, Some(1), "{text}");
    assert!(text.contains("the checkpoint is for a tree of size 5"), "{text}");
    let (c, text) = tamper(&|p| p["event_id"] = Value::String(ids[3].clone()));
    assert_eq!(c, Some(1), "{text}");
    assert!(text.contains("the entry is not event"), "{text}");
    other_key(a);
    let out = run(a, &["audit", "verify-proof", "proof.json", "--public-key", "other.pub"]);
    assert_eq!(code(&out), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("is not signed by audit.example.com/test+")
    );
    // Not a proof, not a key: usage errors.
    std::fs::write(a.join("junk.json"), "{\"x\": 1}").unwrap();
    let out = run(a, &["audit", "verify-proof", "junk.json", "--public-key", "log.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("`junk.json` is not a proof"), "{}", stderr(&out));
    let out = run(a, &["audit", "verify-proof", "proof.json", "--public-key", "proof.json"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("proof.json: not a verifier key"), "{}", stderr(&out));
}

#[test]
fn proving_refuses_what_the_checkpoint_does_not_cover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = project(d, 3);
    // No checkpoint yet.
    let out = run(d, &["audit", "prove", &ids[0], "--public-key", "checkpoint.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(
        stderr(&out).contains("holds no checkpoint: run `agent-safe audit checkpoint` first"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key"])), Some(0));
    // An unknown event; an entry appended after the checkpoint.
    let out = run(d, &["audit", "prove", "evt-000000000000", "--public-key", "checkpoint.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("no entry with event id `evt-000000000000`"), "{}", stderr(&out));
    decide(d);
    let text = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let last = serde_json::from_str::<Value>(text.lines().last().unwrap()).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run(d, &["audit", "prove", &last, "--public-key", "checkpoint.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("the checkpoint covers the first 3"), "{}", stderr(&out));
    // The log cut short under the checkpoint: no proof against a tree it no longer holds.
    let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("audit.jsonl"), first_two).unwrap();
    let out = run(d, &["audit", "prove", &ids[0], "--public-key", "checkpoint.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(
        stderr(&out).contains("the log does not hold the tree the checkpoint signs"),
        "{}",
        stderr(&out)
    );
    // A missing key file, an empty log.
    let out = run(d, &["audit", "checkpoint", "--key-file", "nope.key"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("nope.key"), "{}", stderr(&out));
    std::fs::write(d.join("audit.jsonl"), "").unwrap();
    let out = run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("has no entries: there is no tree to sign"), "{}", stderr(&out));
}

#[test]
fn verify_with_a_checkpoint_names_a_truncation_or_the_first_rewritten_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 5);
    let out = run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key", "-o", "cp.txt"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let verify = |d: &Path| {
        let out = run(
            d,
            &["audit", "verify", "--checkpoint", "cp.txt", "--public-key", "checkpoint.pub"],
        );
        (code(&out), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (c, text) = verify(d);
    assert_eq!(c, Some(0), "{text}");
    assert!(text.contains("CONSISTENT — the log's first 5 of 5 entries"), "{text}");
    // Appending keeps it consistent.
    decide(d);
    let (c, text) = verify(d);
    assert_eq!(c, Some(0), "{text}");
    let log = d.join("audit.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    // An entry rewritten (and the chain after it re-hashed or not): named.
    let lines: Vec<&str> = original.lines().collect();
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited[2] = edited[2].replace("deploy-bot", "deploy-bob");
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    let (c, text) = verify(d);
    assert_eq!(c, Some(1), "{text}");
    assert!(
        text.contains("INCONSISTENT — entry 3 (index 2) is not the one the checkpoint signs"),
        "{text}"
    );
    // Cut short: the first missing entry is named.
    let first_three: String = lines.iter().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, first_three).unwrap();
    let out = run(
        d,
        &[
            "audit",
            "verify",
            "--json-output",
            "--checkpoint",
            "cp.txt",
            "--public-key",
            "checkpoint.pub",
        ],
    );
    assert_eq!(code(&out), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checkpoint"]["consistent"], Value::Bool(false), "{report}");
    assert_eq!(report["checkpoint"]["first_differing_index"], Value::from(3), "{report}");
    // A checkpoint signed by another key is a usage error.
    other_key(d);
    let out = run(d, &["audit", "verify", "--checkpoint", "cp.txt", "--public-key", "other.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("is not signed by audit.example.com/test+"), "{}", stderr(&out));
}

#[test]
fn consistency_proves_an_old_checkpoint_a_prefix_of_a_new_one_or_names_the_fork() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, 3);
    let sign = |d: &Path, out: &str| {
        let o = run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key", "-o", out]);
        assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    };
    let consistency = |d: &Path, old: &str, new: &str| {
        let out = run(
            d,
            &["audit", "consistency", old, new, "--public-key", "checkpoint.pub", "--json-output"],
        );
        let report = serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null);
        (code(&out), report, stderr(&out))
    };
    sign(d, "old.txt");
    decide(d);
    decide(d);
    sign(d, "new.txt");
    let (c, report, err) = consistency(d, "old.txt", "new.txt");
    assert_eq!(c, Some(0), "{report} {err}");
    assert_eq!(report["consistent"], Value::Bool(true));
    assert_eq!((report["old_size"].as_u64(), report["new_size"].as_u64()), (Some(3), Some(5)));
    // RFC 9162 §2.1.4.1: from 3 to 5 leaves, [d2, d3, MTH(d0, d1), d4].
    assert_eq!(report["consistency_proof"].as_array().map(Vec::len), Some(4), "{report}");
    let out =
        run(d, &["audit", "consistency", "old.txt", "new.txt", "--public-key", "checkpoint.pub"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("CONSISTENT — the tree of size 3"));
    // The same checkpoint twice is consistent; the wrong order is a usage error.
    assert_eq!(consistency(d, "new.txt", "new.txt").0, Some(0));
    let (c, _, err) = consistency(d, "new.txt", "old.txt");
    assert_eq!(c, Some(2));
    assert!(err.contains("give the older checkpoint first"), "{err}");

    // A fork: the first entry rewritten (the chain's hashes left as they were) and the tree
    // index removed with it (it remembers the signed history, so a checkpoint would sign that
    // again), then a checkpoint signed over the rewritten log: the old one is not its prefix.
    let log = d.join("audit.jsonl");
    let original = std::fs::read_to_string(&log).unwrap();
    let forked = original.replacen("deploy-bot", "deploy-bob", 1);
    assert_ne!(forked, original);
    std::fs::write(&log, &forked).unwrap();
    std::fs::remove_file(d.join("audit.jsonl.tree")).unwrap();
    // The log's own signer refuses to sign over a history it signed otherwise…
    let out = run(d, &["audit", "checkpoint", "--key-file", "checkpoint.key"]);
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the log no longer holds the tree of the newest checkpoint (size 5"),
        "{}",
        stderr(&out)
    );
    // …so the fork is signed from a copy of the log without that checkpoint history.
    std::fs::remove_file(d.join("audit.jsonl.checkpoints")).unwrap();
    sign(d, "forked.txt");
    let (c, report, err) = consistency(d, "old.txt", "forked.txt");
    assert_eq!(c, Some(1), "{report} {err}");
    assert_eq!(report["consistent"], Value::Bool(false));
    assert!(
        report["message"].as_str().unwrap().contains("is not a prefix of the tree of size 5"),
        "{report}"
    );
    // The log no longer holds the new checkpoint's tree: said so, exit 1.
    let (c, report, _) = consistency(d, "old.txt", "new.txt");
    assert_eq!(c, Some(1), "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("does not hold the tree of size 5"),
        "{report}"
    );
    // A checkpoint signed by another key, a file that is not a checkpoint: usage errors.
    other_key(d);
    let out = run(d, &["audit", "consistency", "old.txt", "new.txt", "--public-key", "other.pub"]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("the checkpoint `old.txt`"), "{}", stderr(&out));
    std::fs::write(d.join("junk.txt"), "not a note\n").unwrap();
    let (c, _, err) = consistency(d, "old.txt", "junk.txt");
    assert_eq!(c, Some(2));
    assert!(err.contains("the checkpoint `junk.txt`"), "{err}");
}
