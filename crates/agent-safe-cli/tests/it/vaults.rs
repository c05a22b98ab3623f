//! Vaults configured once: `credentials:` in agent-safe.yaml is read by `credential resolve`,
//! `runner execute`, `serve` and `mcp` (flags override it); `require_scoped` refuses vaults that
//! cannot enforce scope and ambient credentials; a long-running front warns at start when
//! credentialed actions would run on unscoped or ambient credentials.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::common::{bin, catalog};

const KEY: &str = "cli-vaults-key-0123456789abcdef0123456789abcdef";
const SECRET: &str = "vault-file-token-4b9e0c2d71";
const PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

/// A project with the catalog and `credentials` (YAML lines under `credentials:`, or none).
fn project(dir: &Path, credentials: &str) {
    let cat = catalog();
    let section =
        if credentials.is_empty() { String::new() } else { format!("credentials:\n{credentials}") };
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\n{section}",
            cat.join("actions").display(),
            cat.join("policies").display(),
            cat.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
    // A file vault with the `kubernetes` credential, private as the file vault requires.
    let vault = dir.join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    let file = vault.join("kubernetes.json");
    std::fs::write(&file, format!(r#"{{"token": "{SECRET}"}}"#)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().unwrap()
}

fn ticket(dir: &Path) -> String {
    let out = run(
        dir,
        &["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS, "--json-output"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    decision["ticket"]["token"].as_str().unwrap().to_owned()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn credential_resolve_uses_the_configured_vault_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "  vault: {type: file, dir: vault}\n");
    let token = ticket(d);
    let out = run(d, &["credential", "resolve", &token, "--json-output", "--show-secret"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["credential"]["payload"]["token"], SECRET, "from the file vault: {report}");
    // A flag replaces the configured vault.
    let out = bin(d)
        .args(["credential", "resolve", &token, "--vault-env", "--json-output", "--show-secret"])
        .env("AGENT_SAFE_CRED_KUBERNETES", "from-the-env")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["credential"]["payload"]["token"], "from-the-env");
}

#[test]
fn require_scoped_refuses_unscoped_vaults_and_ambient_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "  vault: {type: file, dir: vault}\n  require_scoped: true\n");
    let token = ticket(d);
    let out = run(d, &["credential", "resolve", &token]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("credentials.require_scoped: the `file` vault cannot limit a credential to the action's scope"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(SECRET));
    // runner execute: a real executor's credentialed action is refused by the vault …
    let out = run(
        d,
        &[
            "runner",
            "execute",
            &token,
            "--executor",
            "kubectl",
            "--kubectl-path",
            "/nonexistent/kubectl",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("require_scoped"), "{}", text(&out));
    // … and ambient credentials are a configuration error.
    let token = ticket(d);
    let out =
        run(d, &["runner", "execute", &token, "--executor", "kubectl", "--ambient-credentials"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--ambient-credentials (the executor's own credentials) is refused"),
        "{}",
        text(&out)
    );
}

#[test]
fn sidecars_warn_at_start_about_unscoped_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = {
        project(d, "");
        String::from_utf8(run(d, &["identity", "issue", "deploy-bot"]).stdout).unwrap()
    };
    // `mcp` with stdin closed starts, prints its warnings and ends.
    let start = |credentials: &str, extra: &[&str]| {
        project(d, credentials);
        let out = bin(d)
            .arg("mcp")
            .args(extra)
            .env("AGENT_SAFE_IDENTITY_TOKEN", token.trim())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let ambient = start("", &["--executor", "kubectl", "--ambient-credentials"]);
    assert!(ambient.contains("will run on the executor's own (ambient) credentials"), "{ambient}");
    assert!(ambient.contains("restart-deployment"), "{ambient}");
    let unscoped = start("  vault: {type: file, dir: vault}\n", &["--executor", "kubectl"]);
    assert!(
        unscoped.contains("credentials the `file` vault does not limit to their scope"),
        "{unscoped}"
    );
    // The dry-run executor uses no credentials: nothing to warn about.
    let dry = start("", &["--ambient-credentials"]);
    assert!(!dry.contains("warning"), "{dry}");
}

#[test]
fn bad_vault_settings_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (credentials, message) in [
        ("  vault: {type: vaultx}\n", "unknown vault type `vaultx`"),
        ("  vault: {type: file}\n", "the `file` vault config needs `dir`"),
        ("  vualt: {type: file, dir: vault}\n", "vualt"),
        (
            "  vault: {type: sts, role_arn: nope}\n",
            if cfg!(feature = "aws") { "role_arn" } else { "--features aws" },
        ),
    ] {
        project(d, credentials);
        let out = run(d, &["check", "restart-deployment", "-t", "dev/test-app", "-p", PARAMS]);
        assert_eq!(out.status.code(), Some(2), "{credentials}: {}", text(&out));
        assert!(text(&out).contains(message), "{credentials}: {}", text(&out));
    }
}
