//! CLI snapshots for `agent-safe approval list|show|approve|deny` and `check` with an approval
//! store: stdout, stderr and exit code of every outcome, in text and JSON modes. Random ids,
//! tokens, digests, times and temporary paths are redacted.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{bin, catalog, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[(r"apr-[0-9a-f]{12}", "[REQUEST_ID]")];

const KEY: &str = "cli-approval-key-0123456789abcdef0123456789abcdef";

const POLICY: &str = "\
rules:
  - name: scale-prod-two-sres
    priority: 100
    match: {actions: [scale-deployment], targets: {environments: [prod]}}
    decision: require_approval
    reason: scaling production needs two SREs
    approvals: {required: 2, approver_roles: [sre]}
  - name: prod-needs-approval
    priority: 10
    match: {targets: {environments: [prod]}}
    decision: require_approval
    reason: production changes need approval
";

/// A project in `dir`: the catalog's actions and inventory, the policy above, an audit log, a
/// signing key and an approval store, plus `extra` lines under `approvals:`.
fn project(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/main.yaml"), POLICY).unwrap();
    let cat = catalog();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: policies\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\napprovals:\n  store: approvals.jsonl\n{extra}",
            cat.join("actions").display(),
            cat.join("inventory.yaml").display()
        ),
    )
    .unwrap();
}

/// An identity token for `agent` (valid for an hour of real time: the binary uses the system
/// clock).
fn token(agent: &str, roles: &[&str]) -> String {
    crate::common::identity_token(KEY, agent, roles)
}

fn approval(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = bin(dir);
    cmd.arg("approval").args(args);
    cmd
}

const RESTART_PROD: &[&str] = &[
    "check",
    "restart-deployment",
    "-t",
    "prod/api-server",
    "-p",
    r#"{"namespace": "prod", "deployment": "api-server"}"#,
];

/// Runs `check` (JSON) as `caller` with `args` and returns the request id.
fn request(dir: &Path, args: &[&str], caller: &str) -> String {
    let out = bin(dir).args(args).args(["-c", caller, "--json-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    decision["request_id"].as_str().unwrap().to_owned()
}

#[test]
fn list_show_approve_and_deny() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "");
    let requester = token("deploy-bot", &["deployer"]);
    let alice = token("alice", &["sre"]);

    snap!("list_no_store", d, approval(d, &["list"]));
    let mut check = bin(d);
    check.args(RESTART_PROD).args(["-c", &requester]);
    snap!("check_creates_a_request", d, check);
    let id = request(d, RESTART_PROD, &requester);
    let other = request(d, RESTART_PROD, &requester);

    snap!("list_pending", d, approval(d, &["list"]));
    snap!("list_pending_json", d, approval(d, &["list", "--json-output"]));
    snap!("show_pending", d, approval(d, &["show", &id]));
    snap!("show_unknown", d, approval(d, &["show", "apr-000000000000"]));
    snap!("show_unknown_store", d, approval(d, &["show", &id, "--store", "nope.jsonl"]));

    snap!("approve_without_token", d, approval(d, &["approve", &id]));
    snap!("approve_self", d, approval(d, &["approve", &id, "--approver-token", &requester]));
    snap!(
        "approve_self_json",
        d,
        approval(d, &["approve", &id, "--approver-token", &requester, "--json-output"])
    );
    snap!("approve_bad_token", d, approval(d, &["approve", &id, "--approver-token", "alice"]));
    snap!(
        "approve",
        d,
        approval(d, &["approve", &id, "--approver-token", &alice, "--reason", "runbook checked"])
    );
    snap!("approve_again", d, approval(d, &["approve", &id, "--approver-token", &alice]));
    snap!("show_approved", d, approval(d, &["show", &id]));
    let mut deny = approval(d, &["deny", &other, "--reason", "not now", "--json-output"]);
    deny.env("AGENT_SAFE_APPROVER_TOKEN", token("bob", &[]));
    snap!("deny_json", d, deny);
    snap!("list_after", d, approval(d, &["list"]));

    // Every step is in the audit log, and the chain is intact.
    let out = bin(d).args(["audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn two_person_rule_and_token_file_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "  approver_token_file: approver.jwt\n");
    let scale: &[&str] = &[
        "check",
        "scale-deployment",
        "-t",
        "prod/api-server",
        "-p",
        r#"{"namespace": "prod", "deployment": "api-server", "replicas": 6}"#,
    ];
    let id = request(d, scale, "deploy-bot");
    std::fs::write(d.join("approver.jwt"), format!("{}\n", token("alice", &["sre"]))).unwrap();
    snap!("two_person_first", d, approval(d, &["approve", &id]));
    snap!("two_person_same_again", d, approval(d, &["approve", &id]));
    snap!(
        "two_person_wrong_role",
        d,
        approval(d, &["approve", &id, "--approver-token", &token("carol", &["dev"])])
    );
    snap!(
        "two_person_second",
        d,
        approval(d, &["approve", &id, "--approver-token", &token("bob", &["sre"])])
    );
}

#[test]
fn damaged_store_and_sensitive_params() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "");
    let lambda: &[&str] = &[
        "check",
        "lambda-update-function-config",
        "-t",
        "prod/report-generator",
        "-p",
        r#"{"function_name": "report-generator", "region": "us-east-1", "environment_variables": "{\"DB_PASSWORD\": \"hunter2\"}"}"#,
    ];
    let secret = request(d, lambda, "deploy-bot");
    snap!("show_redacts_sensitive_params", d, approval(d, &["show", &secret, "--json-output"]));

    let damaged = request(d, RESTART_PROD, "deploy-bot");
    let store = d.join("approvals.jsonl");
    let text = std::fs::read_to_string(&store).unwrap();
    let edited = text.replace(r#""deployment": "api-server""#, r#""deployment": "payments""#);
    std::fs::write(&store, edited).unwrap();
    snap!("list_damaged", d, approval(d, &["list"]));
    snap!("show_damaged", d, approval(d, &["show", &damaged]));
    snap!(
        "approve_damaged",
        d,
        approval(d, &["approve", &damaged, "--approver-token", &token("alice", &[])])
    );
}
