//! CLI snapshots for `agent-safe credential resolve|test-vault`: stdout, stderr and exit code,
//! and that no payload reaches any output unless `--show-secret` asks for it.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Command;

use crate::common::{cli, command, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[(r"cred-[0-9a-f]{12}", "[CRED_ID]")];

const KEY: &str = "cli-test-key-0123456789abcdef0123456789abcdef";
const SECRET: &str = "cli-vault-s3cr3t-9f8e7d";

/// Runs `cmd` and checks that neither stdout nor stderr contains the secret.
#[track_caller]
fn assert_no_secret(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(SECRET), "secret in output of {cmd:?}:\n{text}");
    }
}

/// An ALLOW ticket from `agent-safe check` for `params`: token and nonce.
fn ticket(dir: &Path, params: &str) -> (String, String) {
    let out = cli(dir)
        .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", params, "--json-output"])
        .args(["--signing-key", KEY])
        .output()
        .unwrap();
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = &decision["ticket"];
    (ticket["token"].as_str().unwrap().to_owned(), ticket["nonce"].as_str().unwrap().to_owned())
}

const DEV_PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

#[test]
fn resolve_shows_metadata_and_the_payload_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (token, _) = ticket(d, DEV_PARAMS);
    let cred = format!("kubernetes={SECRET}");
    let resolve = |extra: &[&str]| {
        let mut cmd = cli(d);
        cmd.args(["credential", "resolve", &token, "--signing-key", KEY, "--vault-cred", &cred]);
        cmd.args(extra);
        cmd
    };
    snap!("resolve_text", d, resolve(&[]));
    snap!("resolve_json", d, resolve(&["--json-output"]));
    assert_no_secret(&mut resolve(&[]));
    assert_no_secret(&mut resolve(&["--json-output"]));
    snap!("resolve_json_show_secret", d, resolve(&["--json-output", "--show-secret"]));
    snap!("resolve_text_show_secret", d, resolve(&["--show-secret"]));
    // Resolving does not consume the ticket: it was resolved six times above.
    let out = resolve(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // From the environment, as the runner does.
    let mut cmd = cli(d);
    cmd.args(["credential", "resolve", &token, "--signing-key", KEY])
        .env("AGENT_SAFE_CRED_KUBERNETES", SECRET);
    assert_no_secret(&mut cmd);
    assert_eq!(cmd.output().unwrap().status.code(), Some(0));
}

#[test]
fn failures_exit_1_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (token, nonce) = ticket(d, DEV_PARAMS);
    let resolve = |token: &str, extra: &[&str]| {
        let mut cmd = cli(d);
        cmd.args(["credential", "resolve", token, "--signing-key", KEY]).args(extra);
        cmd
    };
    snap!("resolve_invalid_ticket", d, resolve("not-a-ticket", &[]));
    snap!("resolve_invalid_ticket_json", d, resolve("not-a-ticket", &["--json-output"]));
    snap!("resolve_vault_not_configured", d, resolve(&token, &[]));
    snap!("resolve_vault_not_configured_json", d, resolve(&token, &["--json-output"]));
    let other_key = "another-key-0123456789abcdef0123456789abcdef";
    let mut wrong_key = cli(d);
    wrong_key.args(["credential", "resolve", &token, "--signing-key", other_key]);
    snap!("resolve_wrong_key", d, wrong_key);

    // A used ticket (recorded in the runner's nonce store) yields no credential.
    let store = d.join("nonces");
    let out = resolve(
        &token,
        &["--nonce-store", store.to_str().unwrap(), "--vault-cred", "kubernetes=x"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let clock = std::sync::Arc::new(agent_safe::SystemClock);
    let nonces = agent_safe_tickets::FileNonceStore::open(&store, clock).unwrap();
    let far = time::macros::datetime!(2100-01-01 0:00 UTC);
    assert!(agent_safe_tickets::NonceStore::check_and_set(&nonces, &nonce, far).unwrap());
    snap!(
        "resolve_used_ticket",
        d,
        resolve(
            &token,
            &["--nonce-store", store.to_str().unwrap(), "--vault-cred", "kubernetes=x"]
        )
    );
}

#[test]
fn usage_and_configuration_errors_exit_2_and_never_echo_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut bad = cli(d);
    bad.args(["credential", "resolve", "x", "--signing-key", KEY, "--vault-cred", SECRET]);
    snap!("resolve_bad_vault_cred", d, bad);
    let mut bad = cli(d);
    bad.args(["credential", "resolve", "x", "--signing-key", KEY, "--vault-cred", SECRET]);
    assert_no_secret(&mut bad);
    let mut no_key = command();
    no_key.current_dir(d).args(["credential", "resolve", "x"]);
    snap!("resolve_no_signing_key", d, no_key);
    let mut both = cli(d);
    both.args(["credential", "test-vault", "--vault-cred", "k=v", "--vault-dir", "x"]);
    snap!("test_vault_conflicting_options", d, both);
}

#[test]
fn file_vault_refuses_readable_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (token, _) = ticket(d, DEV_PARAMS);
    let creds = d.join("creds");
    std::fs::create_dir(&creds).unwrap();
    let file = creds.join("kubernetes.json");
    std::fs::write(&file, format!(r#"{{"token": "{SECRET}"}}"#)).unwrap();
    let resolve = || {
        let mut cmd = cli(d);
        cmd.args(["credential", "resolve", &token, "--signing-key", KEY, "--vault-dir"])
            .arg(&creds);
        cmd
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        snap!("resolve_file_vault_insecure", d, resolve());
        assert_no_secret(&mut resolve());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    snap!("resolve_file_vault", d, resolve());
    assert_no_secret(&mut resolve());
}

#[test]
fn test_vault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cred = format!("kubernetes={SECRET}");
    let mut ok = cli(d);
    ok.args(["credential", "test-vault", "--vault-cred", &cred]);
    snap!("test_vault_ok", d, ok);
    let mut ok = cli(d);
    ok.args(["credential", "test-vault", "--vault-cred", &cred, "--json-output"]);
    snap!("test_vault_ok_json", d, ok);
    let mut ok = cli(d);
    ok.args(["credential", "test-vault", "--vault-cred", &cred, "--json-output"]);
    assert_no_secret(&mut ok);
    let mut missing = cli(d);
    missing.args(["credential", "test-vault", "--cred-type", "aws"]);
    snap!("test_vault_missing", d, missing);
    let mut missing = cli(d);
    missing.args(["credential", "test-vault", "--cred-type", "aws", "--json-output"]);
    snap!("test_vault_missing_json", d, missing);
    snap!("credential_resolve_help", d, command().args(["credential", "resolve", "--help"]));
}
