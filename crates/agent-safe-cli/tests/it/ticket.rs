//! `agent-safe ticket verify` and `agent-safe keys generate`: exit codes, reasons, single use
//! across processes, key file permissions.

#![expect(clippy::unwrap_used, clippy::panic, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Output;

use crate::common::cli;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

/// Generates an Ed25519 key in `dir/keys` and returns a ticket for restart-deployment on dev.
fn ticket(dir: &Path) -> String {
    let out = cli(dir).args(["keys", "generate", "--out", "keys"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = cli(dir)
        .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS, "--json-output"])
        .args(["--signing-key-file", "keys/agent-safe.key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    decision["ticket"]["token"].as_str().unwrap().to_owned()
}

fn verify(dir: &Path, token: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = cli(dir)
        .args([
            "ticket",
            "verify",
            token,
            "--signing-key-file",
            "keys/agent-safe.pub",
            "--json-output",
        ])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}")))
}

#[test]
fn verify_is_single_use_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = ticket(d);
    // Checking without consuming leaves the ticket usable.
    let (code, r) = verify(d, &token, &["--no-consume"]);
    assert_eq!(
        (code, r["valid"].as_bool(), r["consumed"].as_bool()),
        (Some(0), Some(true), Some(false))
    );
    // Mismatches are refused and do not consume it either.
    let (code, r) = verify(d, &token, &["--action", "delete-pod"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        r["reason"],
        "Action mismatch: ticket is for 'restart-deployment', expected 'delete-pod'"
    );
    let (code, r) =
        verify(d, &token, &["--params", r#"{"namespace": "prod", "deployment": "test-app"}"#]);
    assert_eq!(code, Some(1));
    assert!(r["reason"].as_str().unwrap().starts_with("Params mismatch"), "{r}");
    // The real use, with the exact params, then a replay from another process.
    let (code, r) = verify(
        d,
        &token,
        &["--action", "restart-deployment", "--target", "dev/test-app", "--params", PARAMS],
    );
    assert_eq!((code, r["consumed"].as_bool()), (Some(0), Some(true)), "{r}");
    let (code, r) = verify(d, &token, &[]);
    assert_eq!(
        (code, r["reason"].as_str()),
        (Some(1), Some("Ticket has already been used (replay detected)"))
    );
    // Text mode agrees on the exit code.
    let out = cli(d)
        .args(["ticket", "verify", &token, "--signing-key-file", "keys/agent-safe.pub"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "INVALID — Ticket has already been used (replay detected)\n");
}

#[test]
fn forged_and_confused_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = ticket(d);
    // Another key pair.
    let out = cli(d).args(["keys", "generate", "--out", "other"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = cli(d)
        .args([
            "ticket",
            "verify",
            &token,
            "--signing-key-file",
            "other/agent-safe.pub",
            "--json-output",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(r["reason"].as_str().unwrap().starts_with("Invalid ticket:"), "{r}");
    // Tampered payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let (code, _) = verify(d, &parts.join("."), &[]);
    assert_eq!(code, Some(1));
    // Garbage.
    let (code, r) = verify(d, "not-a-token", &[]);
    assert_eq!(code, Some(1));
    assert!(r["reason"].as_str().unwrap().starts_with("Invalid ticket"), "{r}");
    // No key at all is a usage error.
    let out = cli(d).args(["ticket", "verify", &token]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--signing-key is required"));
}

#[test]
fn keys_are_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cli(d)
        .args(["keys", "generate", "--algorithm", "hs256", "--out", "k", "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["public"], serde_json::Value::Null);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("k/agent-safe.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(d.join("k/agent-safe.key")).unwrap();
    let out =
        cli(d).args(["keys", "generate", "--algorithm", "hs256", "--out", "k"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(std::fs::read(d.join("k/agent-safe.key")).unwrap(), before);
    // The key never appears in output.
    let key_text = String::from_utf8(before).unwrap();
    let secret = key_text.trim().trim_start_matches("agent-safe-hs256:");
    assert!(
        !stdout(&out).contains(secret) && !String::from_utf8_lossy(&out.stderr).contains(secret)
    );
}
