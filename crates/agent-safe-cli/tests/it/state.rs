//! `state: {backend: postgres}` through the binary, against a real PostgreSQL server: `db
//! status|migrate`, a process refusing an unmigrated database, and one execution ticket
//! presented to two "replicas" (two project directories with their own audit logs and nonce
//! files, one database): executed once, refused as a replay by the other.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::common::{bin, catalog};

const KEY: &str = "cli-state-key-0123456789abcdef0123456789abcdef";

/// A replica's project: its own audit log (and file nonce store, unused), the shared database.
fn replica(dir: &Path) {
    let cat = catalog();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\nstate:\n  backend: postgres\n  pool_size: 2\n",
            cat.join("actions").display(),
            cat.join("policies").display(),
            cat.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
}

fn run(dir: &Path, url: &str, args: &[&str]) -> Output {
    let mut cmd: Command = bin(dir);
    cmd.env(agent_safe::state::DATABASE_URL_VAR, url).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn replicas_share_nonces_through_the_database() {
    let Some(url) = agent_safe_testkit::postgres::database("cli_state").unwrap() else { return };
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    replica(&a);
    replica(&b);
    let params = json!({"namespace": "dev", "deployment": "test-app"}).to_string();
    let check = ["check", "restart-deployment", "-t", "dev/test-app", "-c", "bot", "-p", &params];

    // Not migrated: status says so (exit 1), and a process refuses to start on it.
    let out = run(&a, &url, &["db", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("schema version: 0 (this release needs 1)"), "{}", text(&out));
    let out = run(&a, &url, &check);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(
            "has schema version 0; this agent-safe needs version 1: run `agent-safe db migrate`"
        ),
        "{}",
        text(&out)
    );

    let out = run(&a, &url, &["db", "migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("applied migration(s) 1; schema version 1"), "{}", text(&out));
    let out = run(&b, &url, &["db", "migrate"]);
    assert!(text(&out).contains("schema version 1, up to date"), "{}", text(&out));
    let out = run(&b, &url, &["db", "status", "--json-output"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&status["version"], &status["up_to_date"]), (&json!(1), &json!(true)));

    // One ticket, two replicas: executed by one, a replay for the other.
    let out = run(&a, &url, &[&check[..], &["--json-output"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = decision["ticket"]["token"].as_str().unwrap();
    let out = run(&b, &url, &["runner", "execute", ticket, "--json-output"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&a, &url, &["runner", "execute", ticket, "--json-output"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let refused: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        refused["error"],
        "Ticket validation failed: Ticket has already been used (replay detected)"
    );
    // `ticket verify` consults the same store.
    let out = run(&b, &url, &["ticket", "verify", ticket, "--json-output"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("replay detected"), "{}", text(&out));
    // Neither replica wrote a nonce file: the nonces are in the database.
    assert!(!a.join("audit.jsonl.nonces").exists() && !b.join("audit.jsonl.nonces").exists());
}

#[test]
fn the_database_url_and_its_password_stay_out_of_errors_and_help() {
    let dir = tempfile::tempdir().unwrap();
    replica(dir.path());
    let url = "postgres://svc:hunter2@127.0.0.1:1/agent_safe";
    for args in [
        &["db", "status"][..],
        &["db", "migrate"],
        &["check", "get-pod-logs", "-t", "dev/test-app", "-c", "bot"],
    ] {
        let out = run(dir.path(), url, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("hunter2"), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("postgres://svc@127.0.0.1:1/agent_safe is unavailable"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = run(dir.path(), url, &["db", "--help"]);
    assert!(!text(&out).contains("hunter2"));
    let out = run(dir.path(), url, &["--help"]);
    assert!(!text(&out).contains("hunter2"));
}
