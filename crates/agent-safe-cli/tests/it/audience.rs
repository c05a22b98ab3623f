//! The audience of execution tickets (`tickets: {audience}` in agent-safe.yaml,
//! `--ticket-audience`): what `check` mints and what `ticket verify` accepts, proven against the
//! interop fixtures — `none` is the Python-compatible setting (no `aud`; a ticket with one is
//! refused with PyJWT's `Invalid audience`), which `tests/data/tickets/verify_with_python.py`
//! showed the Python `TicketValidator` requires.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

use crate::common::{bin, catalog};

fn fixtures(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/tickets").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A project with the catalog, the fixtures' key and issuer, and `tickets` lines.
fn project(dir: &Path, tickets: &str) {
    let rust = fixtures("rust-minted.json");
    let cat = catalog();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {}\n{tickets}",
            cat.join("actions").display(),
            cat.join("policies").display(),
            cat.join("inventory.yaml").display(),
            rust["signing_key"].as_str().unwrap(),
        ),
    )
    .unwrap();
}

/// `ticket verify TOKEN --no-consume --json-output` in `dir`, plus `extra`.
fn verify(dir: &Path, token: &str, extra: &[&str]) -> (i32, Value) {
    let out = bin(dir)
        .args(["ticket", "verify", token, "--no-consume", "--json-output"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap(), serde_json::from_slice(&out.stdout).unwrap())
}

/// The `aud` claim of the ticket `check` mints in `dir` (`None` without one).
fn minted_aud(dir: &Path, extra: &[&str]) -> (String, Option<Value>) {
    let out = bin(dir)
        .args(["check", "restart-deployment", "-t", "dev/test-app"])
        .args(["-p", r#"{"namespace": "dev", "deployment": "test-app"}"#, "--json-output"])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = decision["ticket"]["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    (token, claims.get("aud").cloned())
}

fn fixture_ticket(file: &str, path: &[&str]) -> String {
    let mut v = fixtures(file);
    for p in path {
        v = v[*p].clone();
    }
    v.as_str().unwrap().to_owned()
}

#[test]
fn none_is_the_python_compatible_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "tickets:\n  audience: none\n");
    // Minted without `aud`, like the `no-aud` fixture the Python validator accepted.
    let (token, aud) = minted_aud(d, &[]);
    assert_eq!(aud, None);
    let (code, report) = verify(d, &token, &[]);
    assert_eq!((code, &report["valid"]), (0, &Value::Bool(true)), "{report}");
    // Python-minted and Rust `no-aud` tickets validate; a ticket with `aud` is refused with the
    // reason Python gives.
    let python = fixture_ticket(
        "python-fixtures.json",
        &["execution_tickets", "scale-deployment dev/test-app"],
    );
    let no_aud = fixture_ticket("rust-minted.json", &["execution_tickets", "no-aud", "token"]);
    let with_aud = fixture_ticket(
        "rust-minted.json",
        &["execution_tickets", "aud-agent-safe-runner", "token"],
    );
    for ok in [&python, &no_aud] {
        let (code, report) = verify(d, ok, &[]);
        assert_eq!(code, 0, "{report}");
    }
    let (code, report) = verify(d, &with_aud, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report["reason"].as_str().unwrap().contains("Invalid audience"), "{report}");
}

#[test]
fn the_default_audience_accepts_python_tickets_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "");
    let (_, aud) = minted_aud(d, &[]);
    assert_eq!(aud, Some(Value::from("agent-safe-runner")));
    for ticket in [
        fixture_ticket(
            "python-fixtures.json",
            &["execution_tickets", "scale-deployment dev/test-app"],
        ),
        fixture_ticket(
            "rust-minted.json",
            &["execution_tickets", "aud-agent-safe-runner", "token"],
        ),
    ] {
        let (code, report) = verify(d, &ticket, &[]);
        assert_eq!(code, 0, "{report}");
    }
}

#[test]
fn a_named_audience_from_the_flag_or_the_environment_overrides_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "tickets:\n  audience: none\n");
    let (token, aud) = minted_aud(d, &["--ticket-audience", "billing-runner"]);
    assert_eq!(aud, Some(Value::from("billing-runner")));
    // Under the config's `none` it is refused; with the same audience it is accepted.
    let (code, report) = verify(d, &token, &[]);
    assert_eq!(code, 1, "{report}");
    let mut cmd: Command = bin(d);
    cmd.env("AGENT_SAFE_TICKET_AUDIENCE", "billing-runner");
    cmd.args(["ticket", "verify", &token, "--no-consume", "--json-output"]);
    let out: Output = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let (code, report) = verify(d, &token, &["--ticket-audience", "agent-safe-runner"]);
    assert_eq!(code, 1, "{report}");
    assert!(report["reason"].as_str().unwrap().contains("Audience doesn't match"), "{report}");
}

#[test]
fn bad_audience_settings_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (tickets, message) in [
        ("tickets:\n  audience: ''\n", "must be a name, or `none`"),
        ("tickets:\n  audiance: none\n", "audiance"),
        ("tickets:\n  audience: [a, b]\n", "audience"),
    ] {
        project(d, tickets);
        let out =
            bin(d).args(["check", "restart-deployment", "-t", "dev/test-app"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{tickets}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(message) && stderr.contains("agent-safe.yaml"),
            "{tickets}: {stderr}"
        );
    }
    let out = bin(d).args(["--ticket-audience", " ", "list-actions"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
