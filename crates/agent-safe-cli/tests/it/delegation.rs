//! CLI snapshots for `agent-safe delegation create|verify`: stdout, stderr and exit code of
//! every outcome, on the Python fixture tokens and on tokens created here.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{bin, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[
    // Keeps the `…` after a shortened token in this module's snapshots.
    (r"eyJ[A-Za-z0-9_\-\.]+", "[TOKEN]"),
];

/// The key the Python fixture tokens are signed with.
const KEY: &str = "interop-fixture-key-0123456789abcdef0123456789";

fn fixtures() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/tickets/python-fixtures.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The Python orchestrator identity token (roles deployer, reader; group platform).
fn orchestrator() -> String {
    fixtures()["identity_tokens"]["orchestrator"].as_str().unwrap().to_owned()
}

/// The Python delegation token: worker-1 from orchestrator, role deployer.
fn python_worker() -> String {
    fixtures()["delegation_tokens"]["worker-1 from orchestrator"].as_str().unwrap().to_owned()
}

/// `agent-safe delegation <args…> --signing-key KEY`.
fn delegation(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = bin(dir);
    cmd.arg("delegation").args(args).args(["--signing-key", KEY]);
    cmd
}

/// Creates a child token with `delegation create … --json-output` and returns it.
fn create(dir: &Path, args: &[&str]) -> String {
    let mut cmd = delegation(dir, &["create"]);
    cmd.args(args).arg("--json-output");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

#[test]
fn python_tokens_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker = python_worker();
    snap!("verify_python_delegated", d, delegation(d, &["verify", &worker]));
    snap!("verify_python_delegated_json", d, delegation(d, &["verify", &worker, "--json-output"]));
    snap!("verify_python_direct", d, delegation(d, &["verify", &orchestrator()]));
}

#[test]
fn create_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parent = orchestrator();
    snap!(
        "create_text",
        d,
        delegation(
            d,
            &[
                "create",
                &parent,
                "--child-id",
                "worker-1",
                "--child-name",
                "worker",
                "--roles",
                " deployer , reader",
                "--actions",
                "get-*,restart-deployment",
                "--environments",
                "dev,staging",
                "--ttl",
                "600",
            ]
        )
    );
    snap!(
        "create_json",
        d,
        delegation(d, &["create", &parent, "--child-id", "worker-1", "--json-output"])
    );
    let worker = create(
        d,
        &[&parent, "--child-id", "worker-1", "--roles", "deployer", "--actions", "get-*"],
    );
    let sub = create(d, &[&worker, "--child-id", "sub-1", "--max-depth", "2"]);
    snap!("verify_created_text", d, delegation(d, &["verify", &sub]));
    snap!("verify_created_json", d, delegation(d, &["verify", &sub, "--json-output"]));
}

#[test]
fn refusals_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parent = orchestrator();
    let scoped = create(
        d,
        &[&parent, "--child-id", "worker-1", "--actions", "get-*", "--environments", "dev"],
    );
    let limited = create(d, &[&parent, "--child-id", "worker-2", "--max-depth", "1"]);
    snap!(
        "create_roles_not_held",
        d,
        delegation(d, &["create", &parent, "--child-id", "w", "--roles", "deployer,admin"])
    );
    snap!(
        "create_roles_not_held_json",
        d,
        delegation(d, &["create", &parent, "--child-id", "w", "--groups", "sre", "--json-output"])
    );
    snap!(
        "create_actions_outside_scope",
        d,
        delegation(d, &["create", &scoped, "--child-id", "sub", "--actions", "get-*,delete-*"])
    );
    snap!(
        "create_environments_outside_scope",
        d,
        delegation(d, &["create", &scoped, "--child-id", "sub", "--environments", "prod"])
    );
    snap!("create_depth_exceeded", d, delegation(d, &["create", &limited, "--child-id", "sub"]));
    snap!(
        "create_self_delegation",
        d,
        delegation(d, &["create", &parent, "--child-id", "orchestrator"])
    );
    snap!(
        "create_cycle",
        d,
        delegation(d, &["create", &python_worker(), "--child-id", "orchestrator"])
    );
    snap!("create_invalid_parent", d, delegation(d, &["create", "garbage", "--child-id", "w"]));
    let mut other_key = bin(d);
    other_key.args([
        "delegation",
        "verify",
        &parent,
        "--signing-key",
        "another-key-0123456789abcdef0123456789",
    ]);
    snap!("verify_wrong_key", d, other_key);
    snap!("verify_garbage_json", d, delegation(d, &["verify", "garbage", "--json-output"]));
    snap!("verify_wrong_issuer", d, delegation(d, &["verify", &parent, "--issuer", "elsewhere"]));
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parent = orchestrator();
    snap!(
        "create_no_signing_key",
        d,
        bin(d).args(["delegation", "create", &parent, "--child-id", "w"])
    );
    snap!("verify_no_signing_key", d, bin(d).args(["delegation", "verify", &parent]));
    snap!(
        "create_bad_environment",
        d,
        delegation(d, &["create", &parent, "--child-id", "w", "--environments", "dev,qa"])
    );
    snap!(
        "create_ttl_zero",
        d,
        delegation(d, &["create", &parent, "--child-id", "w", "--ttl", "0"])
    );
    snap!(
        "create_invalid_pattern",
        d,
        delegation(d, &["create", &parent, "--child-id", "w", "--actions", "get-[pod"])
    );
    snap!("create_missing_child_id", d, delegation(d, &["create", &parent]));
    snap!("delegation_create_help", d, bin(d).args(["delegation", "create", "--help"]));
}

#[test]
fn the_key_and_issuer_come_from_agent_safe_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("agent-safe.yaml"), format!("signing_key: {KEY}\n")).unwrap();
    let out = bin(d).args(["delegation", "verify", &python_worker()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(d.join("agent-safe.yaml"), format!("signing_key: {KEY}\nissuer: other\n"))
        .unwrap();
    let out = bin(d).args(["delegation", "verify", &python_worker()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "INVALID — Invalid token issuer: agent-safe\n"
    );
}
