//! `agent-safe identity issue|inspect` through the binary: tokens from the configured key
//! (HS256 from agent-safe.yaml, Ed25519 key files), written privately to a file, inspected,
//! refused when forged or malformed, and an approval done with the CLI alone.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{bin, sre_project};

const KEY: &str = "cli-identity-key-0123456789abcdef0123456789abcdef";

/// The shared project: production restarts need an `sre` approver.
fn project(dir: &Path) {
    sre_project(dir, KEY, "");
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `identity issue` with `args`; the token it printed.
fn issue(dir: &Path, args: &[&str]) -> String {
    let out = bin(dir).args(["identity", "issue"]).args(args).output().unwrap();
    assert_exit(&out, 0);
    let token = stdout(&out);
    assert_eq!(token.split('.').count(), 3, "one JWT and nothing else: {token}");
    token
}

fn inspect_json(dir: &Path, token: &str, extra: &[&str]) -> (i32, Value) {
    let out = bin(dir)
        .args(["identity", "inspect", token, "--json-output"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn issues_with_the_configured_key_and_inspects_the_claims() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let token = issue(d, &["alice", "--role", "sre", "--role", "approver", "--group", "ops"]);
    let (code, report) = inspect_json(d, &token, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["agent_id"], "alice", "{report}");
    assert_eq!(report["roles"], serde_json::json!(["sre", "approver"]), "{report}");
    assert_eq!(report["groups"], serde_json::json!(["ops"]), "{report}");

    let text = run(d, &["identity", "inspect", &token]);
    assert_exit(&text, 0);
    assert!(stdout(&text).starts_with("DIRECT — alice"), "{}", stdout(&text));

    // JSON output of issue: the token and its claims.
    let out = run(d, &["identity", "issue", "bob", "--ttl", "90s", "--json-output"]);
    assert_exit(&out, 0);
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["agent_id"], "bob");
    assert_eq!(issued["issuer"], "agent-safe");
    assert!(issued["token"].as_str().is_some_and(|t| t.starts_with("eyJ")), "{issued}");
    assert!(issued["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{issued}");
}

#[test]
fn forged_expired_or_foreign_tokens_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let other_key = "another-key-0123456789abcdef0123456789abcdef";
    let foreign = issue(d, &["mallory", "--role", "sre", "--signing-key", other_key]);
    let (code, report) = inspect_json(d, &foreign, &[]);
    assert_eq!((code, &report["valid"]), (1, &Value::Bool(false)), "{report}");
    let other_issuer = issue(d, &["mallory", "--issuer", "elsewhere"]);
    let (code, report) = inspect_json(d, &other_issuer, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report["reason"].as_str().unwrap().contains("issuer"), "{report}");
    // An unsigned copy of a good token (alg: none, empty signature).
    let good = issue(d, &["alice"]);
    let claims = good.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    let (code, report) = inspect_json(d, &none, &[]);
    assert_eq!(code, 1, "{report}");
}

#[test]
fn bad_requests_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, message) in [
        (&["identity", "issue", "alice", "--ttl", "31d", "--signing-key", KEY][..], "at most 30d"),
        (&["identity", "issue", "alice", "--ttl", "0", "--signing-key", KEY][..], "positive"),
        (&["identity", "issue", "alice", "--ttl", "1w", "--signing-key", KEY][..], "s, m, h or d"),
        (&["identity", "issue", " ", "--signing-key", KEY][..], "must not be empty"),
        (&["identity", "issue", "alice"][..], "--signing-key is required"),
    ] {
        let out = run(d, args);
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains(KEY), "the key leaked: {stderr}");
    }
}

#[test]
fn writes_the_token_privately_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let out = run(d, &["identity", "issue", "alice", "--role", "sre", "--output", "alice.jwt"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("Wrote an identity token for alice to alice.jwt"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("eyJ"), "the token is not printed");
    let token = std::fs::read_to_string(d.join("alice.jwt")).unwrap();
    assert!(token.ends_with('\n'));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("alice.jwt")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, report) = inspect_json(d, token.trim_end(), &[]);
    assert_eq!(code, 0, "{report}");
    // Replaced, not appended to.
    let again = run(d, &["identity", "issue", "bob", "--output", "alice.jwt", "--json-output"]);
    assert_exit(&again, 0);
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(report.get("token").is_none(), "{report}");
    assert_eq!(report["output"], "alice.jwt");
    let token = std::fs::read_to_string(d.join("alice.jwt")).unwrap();
    assert_eq!(token.lines().count(), 1);
    let (_, report) = inspect_json(d, token.trim_end(), &[]);
    assert_eq!(report["agent_id"], "bob");
}

#[test]
fn ed25519_tokens_verify_with_the_public_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_exit(&run(d, &["keys", "generate", "--algorithm", "ed25519"]), 0);
    let token = issue(d, &["alice", "--role", "sre", "--signing-key-file", "agent-safe.key"]);
    let (code, report) = inspect_json(d, &token, &["--signing-key-file", "agent-safe.pub"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["roles"], serde_json::json!(["sre"]));
}

/// The whole approval loop with the binary alone: a requester's token, a REQUIRE_APPROVAL,
/// an approver's token, the approval, and an audit log that verifies.
#[test]
fn an_approval_with_the_cli_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d);
    let requester = issue(d, &["deploy-bot", "--role", "deployer"]);
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
            &requester,
            "--json-output",
        ],
    );
    assert_exit(&out, 3);
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = decision["request_id"].as_str().unwrap();

    let approver = issue(d, &["alice", "--role", "sre", "--output", "alice.jwt"]);
    assert!(approver.starts_with("Wrote"), "{approver}");
    let mut approve = Command::new(env!("CARGO_BIN_EXE_agent-safe"));
    let token = std::fs::read_to_string(d.join("alice.jwt")).unwrap();
    approve.current_dir(d).env_clear().env("PATH", std::env::var_os("PATH").unwrap());
    approve.args([
        "approval",
        "approve",
        id,
        "--approver-token",
        token.trim_end(),
        "--json-output",
    ]);
    let out = approve.output().unwrap();
    assert_exit(&out, 0);
    let resolved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resolved["result"], "allow", "{resolved}");
    assert_eq!(resolved["reason"], "Approved by alice", "{resolved}");
    assert!(resolved["ticket"]["token"].is_string(), "an execution ticket: {resolved}");
    assert_exit(&run(d, &["audit", "verify"]), 0);
}
