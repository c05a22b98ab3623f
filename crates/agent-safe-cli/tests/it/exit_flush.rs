//! Every short-lived command ships its audit entries before it exits: `check`, `runner execute`
//! and `approval approve` with `audit_shipping: {webhook_url}` deliver to a loopback webhook with
//! no other process running; a destination that does not answer in time makes the command wait
//! no longer than `--exit-flush-timeout`, say so, keep its exit code, and leave the entries for
//! the next process (`agent-safe audit ship`), which delivers them.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use agent_safe_testkit::{Reply, TestServer};
use serde_json::{Value, json};

use crate::common::{bin, mcp_calls, sre_project};

const KEY: &str = "cli-exit-flush-key-0123456789abcdef0123456789abcdef";
const PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

/// A project shipping its audit log to `url`, with `extra` lines under `audit_shipping:`.
fn project(dir: &Path, url: &str, extra: &str) {
    let shipping =
        format!("audit_shipping:\n  webhook_url: {url}\n  retry_initial_backoff: 0.05\n{extra}");
    sre_project(dir, KEY, &shipping);
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().unwrap()
}

/// The event ids of the audit log, in order.
fn logged(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The event ids the webhook received (each once: the shipper never sends an entry twice).
fn shipped(server: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = server.requests().iter().filter_map(|r| r.event_id()).collect();
    ids.dedup();
    ids
}

#[test]
fn check_runner_and_approval_ship_before_they_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = TestServer::ok().unwrap();
    project(d, &server.url(), "");

    let out = run(
        d,
        &["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS, "--json-output"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(shipped(&server), logged(d), "check's decision is delivered by check itself");
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = decision["ticket"]["token"].as_str().unwrap();

    // (The catalog's restart-deployment declares a credential; the dry-run executor needs none.)
    let out = run(d, &["runner", "execute", ticket, "--ambient-credentials"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(shipped(&server), logged(d), "the execution events are delivered by the runner");

    let requester = run(d, &["identity", "issue", "deploy-bot"]);
    let requester = String::from_utf8(requester.stdout).unwrap();
    let out = run(
        d,
        &[
            "check",
            "restart-deployment",
            "-t",
            "prod/api-server",
            "-p",
            r#"{"namespace": "prod", "deployment": "api-server"}"#,
            "-c",
            requester.trim(),
            "--json-output",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approver = run(d, &["identity", "issue", "alice", "--role", "sre"]);
    let approver = String::from_utf8(approver.stdout).unwrap();
    let out = run(d, &["approval", "approve", &id, "--approver-token", approver.trim()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(shipped(&server), logged(d), "the approval's events are delivered by approve");
    assert!(logged(d).len() >= 6, "{:?}", logged(d));
}

#[test]
fn a_destination_that_does_not_answer_delays_the_exit_by_the_timeout_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = TestServer::start(|_, _| Reply::Hold).unwrap();
    project(d, &server.url(), "  webhook_timeout: 30\n");

    let started = Instant::now();
    let out = run(
        d,
        &[
            "--exit-flush-timeout",
            "0.5",
            "check",
            "restart-deployment",
            "-t",
            "dev/test-app",
            "-p",
            PARAMS,
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "the decision's exit code, not shipping's");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "audit shipping: not every destination has this command's entries after 0.5s"
        ),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(20), "waited {took:?} for a 0.5 s flush timeout");
    assert_eq!(logged(d).len(), 1, "the decision is in the log all the same");

    // The next process that ships delivers it.
    server.release();
    let out = run(d, &["audit", "ship", "--backend", "webhook", "--url", &server.url()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(shipped(&server), logged(d));
}

#[test]
fn zero_means_do_not_wait_and_bad_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = TestServer::start(|_, _| Reply::Hold).unwrap();
    project(d, &server.url(), "  exit_flush_timeout: 0\n");
    let out = run(d, &["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("audit shipping"),
        "no wait, no warning"
    );

    project(d, &server.url(), "  exit_flush_timeout: -1\n");
    let out = run(d, &["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exit_flush_timeout"), "{out:?}");
    let out = run(d, &["--exit-flush-timeout", "soon", "check", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a number of seconds"), "{out:?}");
}

/// `agent-safe mcp` ships the session's entries when its client closes stdin.
#[test]
fn an_mcp_session_ships_its_entries_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = TestServer::ok().unwrap();
    project(d, &server.url(), "");
    let token = run(d, &["identity", "issue", "deploy-bot"]);
    let token = String::from_utf8(token.stdout).unwrap();
    // One check, then the client closes stdin (`mcp_calls` waits for exit 0).
    let mut mcp = bin(d);
    mcp.arg("mcp").env("AGENT_SAFE_IDENTITY_TOKEN", token.trim());
    let results = mcp_calls(
        &mut mcp,
        &[json!({"name": "check_action", "arguments": {"action": "restart-deployment",
                  "target": "dev/test-app", "params": {"namespace": "dev", "deployment": "test-app"}}})],
    );
    assert_eq!(results[0]["structuredContent"]["result"], "allow", "{}", results[0]);
    assert_eq!(logged(d).len(), 1);
    assert_eq!(shipped(&server), logged(d), "the session's decision was shipped before exit");
}
