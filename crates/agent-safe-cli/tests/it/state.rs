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

/// The schema version of this build.
const LATEST: u32 = agent_safe::postgres::LATEST_VERSION;

/// A replica's project: its own audit log (and file nonce store, unused), the shared database.
fn replica(dir: &Path) {
    replica_with(dir, &catalog().join("policies"), "");
}

/// A replica's project with the policies of `policies` and `extra` lines of configuration.
fn replica_with(dir: &Path, policies: &Path, extra: &str) {
    let cat = catalog();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\nstate:\n  backend: postgres\n  pool_size: 2\n{extra}",
            cat.join("actions").display(),
            policies.display(),
            cat.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
}

/// An identity token for `agent`, signed with the replicas' key (an hour of real time).
fn token(agent: &str, roles: &[&str]) -> String {
    crate::common::identity_token(KEY, agent, roles)
}

/// A fresh migrated database for `test` and two replicas' projects on it, `a` and `b` under
/// the returned directory; `None` without a server (skipped loudly).
fn two_replicas(test: &str) -> Option<(tempfile::TempDir, String)> {
    let url = agent_safe_testkit::postgres::database(test).unwrap()?;
    let root = tempfile::tempdir().unwrap();
    replica(&root.path().join("a"));
    replica(&root.path().join("b"));
    assert_eq!(run(&root.path().join("a"), &url, &["db", "migrate"]).status.code(), Some(0));
    Some((root, url))
}

fn json_of(out: &Output) -> Value {
    let value = serde_json::from_slice(&out.stdout);
    assert!(value.is_ok(), "not JSON: {}", text(out));
    value.unwrap()
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
    let needs = format!("schema version: 0 (this release needs {LATEST})");
    assert!(text(&out).contains(&needs), "{}", text(&out));
    let out = run(&a, &url, &check);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let needs = format!(
        "has schema version 0; this agent-safe needs version {LATEST}: run `agent-safe db migrate`"
    );
    assert!(text(&out).contains(&needs), "{}", text(&out));

    let out = run(&a, &url, &["db", "migrate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let applied: Vec<String> = (1..=LATEST).map(|v| v.to_string()).collect();
    let applied = format!("applied migration(s) {}; schema version {LATEST}", applied.join(", "));
    assert!(text(&out).contains(&applied), "{}", text(&out));
    let out = run(&b, &url, &["db", "migrate"]);
    let current = format!("schema version {LATEST}, up to date");
    assert!(text(&out).contains(&current), "{}", text(&out));
    let out = run(&b, &url, &["db", "status", "--json-output"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&status["version"], &status["up_to_date"]), (&json!(LATEST), &json!(true)));

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

#[test]
fn replicas_share_approval_requests_through_the_database() {
    let Some(url) = agent_safe_testkit::postgres::database("cli_state_approvals").unwrap() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let policies = root.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("main.yaml"),
        "rules:\n  - name: prod-needs-approval\n    priority: 10\n    match: {targets: \
         {environments: [prod]}}\n    decision: require_approval\n    reason: production \
         changes need approval\n",
    )
    .unwrap();
    // `approvals.store` names a file: with the database backend it is not used.
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    replica_with(&a, &policies, "approvals:\n  store: approvals.jsonl\n");
    replica_with(&b, &policies, "");
    assert_eq!(run(&a, &url, &["db", "migrate"]).status.code(), Some(0));
    let requester = token("deploy-bot", &["deployer"]);
    let alice = token("alice", &["sre"]);
    let params = json!({"namespace": "prod", "deployment": "api-server"}).to_string();
    let check = [
        "check",
        "restart-deployment",
        "-t",
        "prod/api-server",
        "-p",
        &params,
        "-c",
        &requester,
        "--json-output",
    ];

    // Requested through replica a…
    let out = run(&a, &url, &check);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = json_of(&out)["request_id"].as_str().unwrap().to_owned();
    // …listed and shown through replica b.
    let out = run(&b, &url, &["approval", "list", "--json-output"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = json_of(&out);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["request_id"], json!(id));
    let out = run(&b, &url, &["approval", "show", &id, "--json-output"]);
    assert_eq!(json_of(&out)["status"], json!("pending"), "{}", text(&out));

    // Approved through b (the creation event it is checked against is in the shared audit
    // chain): one ticket.
    let out =
        run(&b, &url, &["approval", "approve", &id, "--approver-token", &alice, "--json-output"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let approved = json_of(&out);
    assert_eq!(approved["result"], json!("allow"), "{approved}");
    let ticket = approved["ticket"]["token"].as_str().unwrap().to_owned();
    // A second resolution through a is refused: the request is no longer pending.
    let out = run(&a, &url, &["approval", "deny", &id, "--approver-token", &token("bob", &[])]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("approved"), "{}", text(&out));
    let out = run(&b, &url, &["approval", "show", &id, "--json-output"]);
    let shown = json_of(&out);
    assert_eq!(shown["status"], json!("approved"));
    assert_eq!(shown["resolved_by"], json!("alice"));
    assert_eq!(shown["ticket"]["token"], json!(ticket), "the one ticket is stored with it");
    let out = run(&b, &url, &["approval", "list", "--json-output"]);
    assert_eq!(json_of(&out), json!([]));
    assert!(!a.join("approvals.jsonl").exists() && !b.join("approvals.jsonl").exists());
    // The decision, the request and the approval are in one chain, whichever replica wrote
    // them.
    let out = run(&a, &url, &["audit", "show", "--json-output"]);
    let events = json_of(&out);
    let kinds: Vec<&Value> =
        events.as_array().unwrap().iter().map(|e| &e["context"]["type"]).collect();
    assert_eq!(kinds, [&Value::Null, &json!("approval_request"), &json!("approval_resolution")]);
    assert!(!a.join("audit.jsonl").exists() && !b.join("audit.jsonl").exists());
}

#[test]
fn the_audit_chain_is_shared_exported_and_imported() {
    let Some((root, url)) = two_replicas("cli_state_audit") else { return };
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let params = json!({"namespace": "dev", "deployment": "test-app"}).to_string();
    for (i, dir) in [&a, &b, &a, &b].into_iter().enumerate() {
        let caller = format!("bot-{i}");
        let check =
            ["check", "restart-deployment", "-t", "dev/test-app", "-c", &caller, "-p", &params];
        assert_eq!(run(dir, &url, &check).status.code(), Some(0));
    }
    // One chain, verified through either replica.
    for dir in [&a, &b] {
        let out = run(dir, &url, &["audit", "verify", "--json-output"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let report = json_of(&out);
        assert_eq!((&report["valid"], &report["entries"]), (&json!(true), &json!(4)));
    }
    let out = run(&b, &url, &["audit", "show", "--json-output"]);
    let shown = json_of(&out);
    let callers: Vec<&Value> = shown.as_array().unwrap().iter().map(|e| &e["caller"]).collect();
    assert_eq!(callers, [&json!("bot-0"), &json!("bot-1"), &json!("bot-2"), &json!("bot-3")]);

    // Exported: a file log that verifies on its own; from entry 3 on: the last two lines.
    let export = root.path().join("export.jsonl");
    let out = run(&a, &url, &["audit", "export", "--output", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Exported 4 entries from postgres://"), "{}", text(&out));
    let out = run(&a, &url, &["audit", "verify", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let full = std::fs::read_to_string(&export).unwrap();
    let part = root.path().join("part.jsonl");
    let out = run(&a, &url, &["audit", "export", "-o", part.to_str().unwrap(), "--from-seq", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(std::fs::read_to_string(&part).unwrap(), format!("{}\n{}\n", lines[2], lines[3]));

    // Imported into another (empty) database: the same bytes; a second import is refused.
    let other = agent_safe_testkit::postgres::database("cli_state_audit_import").unwrap().unwrap();
    assert_eq!(run(&a, &other, &["db", "migrate"]).status.code(), Some(0));
    let out = run(&a, &other, &["audit", "import", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("IMPORTED — imported 4 entries"), "{}", text(&out));
    let again = root.path().join("again.jsonl");
    let out = run(&b, &other, &["audit", "export", "-o", again.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), full);
    let out = run(&a, &other, &["audit", "import", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("the audit log is not empty (4 entries)"), "{}", text(&out));

    // A file that does not verify is refused before anything is written.
    let third = agent_safe_testkit::postgres::database("cli_state_audit_bad").unwrap().unwrap();
    assert_eq!(run(&a, &third, &["db", "migrate"]).status.code(), Some(0));
    let bad = root.path().join("bad.jsonl");
    std::fs::write(&bad, full.replace("bot-1", "bot-9")).unwrap();
    let out = run(&a, &third, &["audit", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    let out = run(&a, &third, &["audit", "verify", "--json-output"]);
    assert_eq!(json_of(&out)["entries"], json!(0), "nothing was imported");
    // Commands that need a file say so.
    let out = run(&a, &url, &["audit", "repair"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`audit repair` works on a file log"), "{}", text(&out));
}

#[test]
fn serve_answers_503_while_the_database_is_down_and_serves_again_after() {
    let Some(mut server) = agent_safe_testkit::postgres::own_server("cli_serve_down").unwrap()
    else {
        return;
    };
    let url = server.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    replica(dir.path());
    assert_eq!(run(dir.path(), &url, &["db", "migrate"]).status.code(), Some(0));
    let mut serve = bin(dir.path());
    serve.env(agent_safe::state::DATABASE_URL_VAR, &url).args(["serve", "--listen", "127.0.0.1:0"]);
    let served = crate::common::Served::spawn(&mut serve);
    let bot = token("deploy-bot", &[]);
    let body = json!({
        "action": "restart-deployment",
        "target": "dev/test-app",
        "params": {"namespace": "dev", "deployment": "test-app"},
    });
    let (status, decision) = served.post("/v1/check", &bot, &body);
    assert!(status.contains("200"), "{status} {decision}");
    assert_eq!(served.get("/readyz").1["ready"], json!(true));

    server.stop();
    // Down: no decision without its record, and the replica says it is not ready.
    let (status, error) = served.post("/v1/check", &bot, &body);
    assert!(status.contains("503"), "{status} {error}");
    assert_eq!(error["error"]["code"], json!("unavailable"), "{error}");
    let shown = error["error"]["message"].as_str().unwrap();
    assert!(shown.contains(&format!("database {url} is unavailable")), "{shown}");
    let (status, ready) = served.get("/readyz");
    assert!(status.contains("503"), "{status} {ready}");
    assert_eq!(ready["ready"], json!(false));
    assert!(ready["reason"].as_str().unwrap().contains("is unavailable"), "{ready}");

    // Up again: the same process serves, without a restart.
    server.restart().unwrap();
    assert_eq!(served.get("/readyz").1["ready"], json!(true));
    let (status, decision) = served.post("/v1/check", &bot, &body);
    assert!(status.contains("200"), "{status} {decision}");
    served.stop();
    // What clients were told is recorded; the refused request is not.
    let out = run(dir.path(), &url, &["audit", "verify", "--json-output"]);
    let report = json_of(&out);
    assert_eq!((&report["valid"], &report["entries"]), (&json!(true), &json!(2)), "{report}");
}

#[test]
fn checkpoints_and_proofs_of_the_database_log() {
    let Some((root, url)) = two_replicas("cli_state_tlog") else { return };
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let params = json!({"namespace": "dev", "deployment": "test-app"}).to_string();
    let decide = |dir: &Path, i: usize| {
        let caller = format!("bot-{i}");
        let check =
            ["check", "restart-deployment", "-t", "dev/test-app", "-c", &caller, "-p", &params];
        assert_eq!(run(dir, &url, &check).status.code(), Some(0));
    };
    for i in 0..3 {
        decide(if i % 2 == 0 { &a } else { &b }, i);
    }
    let keys = ["keys", "generate", "--kind", "checkpoint", "--origin", "audit.example.com/pg"];
    assert_eq!(run(&a, &url, &keys).status.code(), Some(0));
    for file in ["checkpoint.key", "checkpoint.pub"] {
        std::fs::copy(a.join(file), b.join(file)).unwrap();
    }
    // Signed through one replica, kept in the database: the other proves against it.
    let out =
        run(&a, &url, &["audit", "checkpoint", "--key-file", "checkpoint.key", "-o", "one.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("audit.example.com/pg\n3\n"), "{}", text(&out));
    assert!(!a.join("audit.jsonl.checkpoints").exists());
    let shown = json_of(&run(&b, &url, &["audit", "show", "--json-output"]));
    let second = shown[1]["event_id"].as_str().unwrap().to_owned();
    let out = run(
        &b,
        &url,
        &["audit", "prove", &second, "--public-key", "checkpoint.pub", "-o", "p.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(
        &b,
        &url,
        &["audit", "verify-proof", "p.json", "--public-key", "checkpoint.pub", "--json-output"],
    );
    let report = json_of(&out);
    assert_eq!((&report["valid"], &report["leaf_index"]), (&json!(true), &json!(1)), "{report}");
    // More entries, a second checkpoint through the other replica: consistent with the first.
    decide(&b, 3);
    decide(&a, 4);
    let out =
        run(&b, &url, &["audit", "checkpoint", "--key-file", "checkpoint.key", "-o", "two.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::copy(a.join("one.txt"), b.join("one.txt")).unwrap();
    let out = run(
        &b,
        &url,
        &[
            "audit",
            "consistency",
            "one.txt",
            "two.txt",
            "--public-key",
            "checkpoint.pub",
            "--json-output",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json_of(&out);
    assert_eq!((&report["old_size"], &report["new_size"]), (&json!(3), &json!(5)), "{report}");
    // An unknown event is a usage error naming it.
    let out = run(&a, &url, &["audit", "prove", "evt-not-there", "--public-key", "checkpoint.pub"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no entry with event id `evt-not-there`"), "{}", text(&out));
}
