//! CLI snapshots: stdout, stderr and exit code of every command and its error paths.
//! Random ids, tokens, nonces, times and temporary paths are redacted.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;

use crate::common::{bin, catalog, cli, command, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[
    (r"\b[0-9a-f]{16}\.\.\.", "[HASH16]..."),
    (r"agent-safe-demo-\w+", "agent-safe-demo-[RANDOM]"),
];

const DEV_PARAMS: &str = r#"{"namespace": "dev", "deployment": "test-app"}"#;

#[test]
fn check_decisions_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!(
        "check_allow",
        d,
        cli(d).args([
            "check",
            "restart-deployment",
            "-t",
            "dev/test-app",
            "-c",
            "bot",
            "-p",
            DEV_PARAMS
        ])
    );
    snap!(
        "check_deny_json",
        d,
        cli(d).args(["check", "drop-database", "-t", "prod/api-server", "--json-output"])
    );
    // An action on a target of a type it does not declare (a pod is not a deployment): DENY
    // before any rule, the reason naming both types.
    snap!(
        "check_deny_target_type",
        d,
        cli(d).args([
            "check",
            "restart-deployment",
            "-t",
            "dev/debug-pod",
            "-p",
            r#"{"namespace": "dev", "deployment": "debug-pod"}"#,
            "--json-output"
        ])
    );
    snap!(
        "check_require_approval",
        d,
        cli(d).args([
            "check",
            "restart-deployment",
            "-t",
            "prod/api-server",
            "-p",
            r#"{"namespace": "prod", "deployment": "api-server"}"#
        ])
    );
    snap!(
        "check_with_signing_key",
        d,
        cli(d)
            .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", DEV_PARAMS])
            .env("AGENT_SAFE_SIGNING_KEY", "cli-test-key-0123456789abcdef0123456789abcdef")
    );
    snap!(
        "check_invalid_params_json",
        d,
        cli(d).args(["check", "restart-deployment", "-p", "{not json"])
    );
    snap!(
        "check_params_not_object",
        d,
        cli(d).args(["check", "restart-deployment", "-p", "[1, 2]"])
    );
    // Every decision above (not the usage errors) went to ./audit.jsonl.
    let log = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 5, "{log}");
}

#[test]
fn configuration_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!("check_missing_registry", d, bin(d).args(["check", "restart-deployment"]));
    snap!("config_not_found", d, bin(d).args(["--config", "nope.yaml", "check", "x"]));
    std::fs::write(d.join("agent-safe.yaml"), "registry: actions\npolices: policies\n").unwrap();
    snap!("config_unknown_key", d, bin(d).args(["check", "x"]));
    snap!("usage_error", d, bin(d).args(["check"]));
}

#[test]
fn list_actions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!("list_actions_all", d, cli(d).args(["list-actions"]));
    snap!(
        "list_actions_filtered",
        d,
        cli(d).args(["list-actions", "--tag", "aws", "--risk", "critical"])
    );
    snap!("list_actions_none", d, cli(d).args(["list-actions", "--tag", "no-such-tag"]));
}

fn copy_catalog(to: &Path) {
    for sub in ["actions", "policies"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for entry in std::fs::read_dir(catalog().join(sub)).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(catalog().join("inventory.yaml"), to.join("inventory.yaml")).unwrap();
}

#[test]
fn validate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!("validate_catalog", d, cli(d).args(["validate"]));

    copy_catalog(d);
    std::fs::write(
        d.join("policies/typo.yaml"),
        "rules:\n  - name: typo\n    priority: 5\n    match: {actions: [restart-deploymnet]}\n    decision: allow\n    reason: x\n",
    )
    .unwrap();
    snap!("validate_warnings", d, bin(d).args(["validate"]));

    std::fs::write(d.join("actions/broken.yaml"), "name: broken\nversion: 1.0\n").unwrap();
    snap!("validate_broken_action", d, bin(d).args(["validate"]));
    snap!("validate_broken_action_json", d, bin(d).args(["validate", "--json-output"]));

    let empty = tempfile::tempdir().unwrap();
    snap!("validate_missing_paths", empty.path(), bin(empty.path()).args(["validate"]));
}

#[test]
fn policy_tests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cases.yaml"),
        "tests:\n  - name: dev allowed\n    action: restart-deployment\n    target: dev/test-app\n    params: {namespace: dev, deployment: test-app}\n    expect: allow\n    expect_policy: allow-dev-all\n  - name: wrong on purpose\n    action: restart-deployment\n    target: prod/api-server\n    params: {namespace: prod, deployment: api-server}\n    expect: allow\n    expect_reason: nope\n",
    )
    .unwrap();
    snap!("test_with_failure", d, cli(d).args(["test", "cases.yaml"]));
    let out = cli(d).arg("test").arg(catalog().join("policy-tests")).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("test(s) passed.") && !stdout.contains("FAIL"), "{stdout}");
    snap!("test_missing_path", d, cli(d).args(["test", "nowhere"]));
    std::fs::write(d.join("bad.yaml"), "tests:\n  - name: x\n    action: y\n    expect: perhaps\n")
        .unwrap();
    snap!("test_bad_file", d, cli(d).args(["test", "bad.yaml"]));
}

#[test]
fn audit_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!("audit_verify_missing", d, cli(d).args(["audit", "verify"]));
    for target in ["dev/test-app", "prod/api-server"] {
        let out = cli(d)
            .args(["check", "restart-deployment", "-t", target, "-p", DEV_PARAMS])
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "{out:?}");
    }
    snap!("audit_verify_valid", d, cli(d).args(["audit", "verify"]));
    snap!("audit_show", d, cli(d).args(["audit", "show", "--last", "5"]));
    snap!("audit_show_json", d, cli(d).args(["audit", "show", "--json-output", "--last", "1"]));

    let log = d.join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(d.join("tampered.jsonl"), text.replacen("\"deny\"", "\"allow\"", 1)).unwrap();
    snap!("audit_verify_tampered", d, cli(d).args(["audit", "verify", "tampered.jsonl"]));

    // A crash mid-append leaves a torn final line: reported, then repaired without losing entries.
    let torn = format!("{text}{{\"action\": \"restart-depl");
    std::fs::write(d.join("torn.jsonl"), &torn).unwrap();
    snap!("audit_verify_torn", d, cli(d).args(["audit", "verify", "torn.jsonl"]));
    snap!("audit_repair_torn", d, cli(d).args(["audit", "repair", "torn.jsonl"]));
    assert_eq!(std::fs::read_to_string(d.join("torn.jsonl")).unwrap(), text);
    snap!("audit_repair_clean", d, cli(d).args(["audit", "repair", "torn.jsonl"]));
}

#[test]
fn init_scaffolds_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = bin(d).args(["init", "proj"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("agent-safe.yaml") && stdout.contains("actions/restart-deployment.yaml"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(d.join("proj/agent-safe.yaml")).unwrap();
    assert!(config.contains("signing_key: \""), "{config}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.join("proj/agent-safe.yaml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "config with the signing key must not be group/world readable");
    }
    // The scaffold validates and decides.
    let proj = d.join("proj");
    let out = bin(&proj).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let out = bin(&proj)
        .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", DEV_PARAMS])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ticket:"),
        "a signing key was scaffolded"
    );
    snap!("init_again_skips", d, bin(d).args(["init", "proj"]));
    let out = bin(d).args(["init", "proj", "--json-output"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["created"], serde_json::json!([]));
    assert!(report["skipped"].as_array().unwrap().len() >= 37, "{report}");
}

#[test]
fn demo_runs_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).arg("demo").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("VALID=true — 8 entries, 0 error(s)"), "{stdout}");
    assert!(stdout.contains("\"tampered_entries_detected\":1"), "{stdout}");
    assert_eq!(stdout.matches("\nALLOW — ").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("\nREQUIRE_APPROVAL — ").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("\nDENY — ").count(), 5, "{stdout}");
    // Nothing is left in the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let out = bin(dir.path()).args(["demo", "--json-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["decisions"].as_array().unwrap().len(), 8);
    assert_eq!(report["audit"], serde_json::json!({"valid": true, "entries": 8}));
    assert_eq!(report["tampered_copy_errors"].as_array().unwrap().len(), 1);
}

#[test]
fn help_documents_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    snap!("help", dir.path(), command().arg("--help"));
    snap!("check_help", dir.path(), command().args(["check", "--help"]));
}

/// Issue #13: `check --caller <alg:none token with an empty signature>` on a dev target of the
/// `init` project was an ALLOW for a plain caller named by the token text. It is a DENY (exit 1)
/// with the reason, like every other forged token.
#[test]
fn issue_13_alg_none_caller_is_denied() {
    const ALG_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhZ2VudF9pZCI6ImRlcGxveS1ib3Qi\
LCJyb2xlcyI6WyJkZXBsb3llciJdLCJpc3MiOiJhZ2VudC1zYWZlIiwiaWF0IjoxNzcxOTM0NDAwLCJleHAiOjQxMDI0NDQ4MDB9.";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = bin(d).args(["init", "proj"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let proj = d.join("proj");
    let check = |caller: &str| {
        let out = bin(&proj)
            .args(["check", "restart-deployment", "-t", "dev/test-app", "-p", DEV_PARAMS])
            .args(["--caller", caller, "--json-output"])
            .output()
            .unwrap();
        let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), decision)
    };
    for token in
        [ALG_NONE.to_owned(), format!("{ALG_NONE}."), ALG_NONE.trim_end_matches('.').to_owned()]
    {
        let (code, decision) = check(&token);
        assert_eq!(code, Some(1), "{decision}");
        assert_eq!(decision["result"], "deny", "{decision}");
        assert_eq!(decision["caller"], "anonymous", "{decision}");
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.starts_with("Invalid caller identity: "), "{reason}");
    }
    // The same request as a plain id is allowed: the token was the only difference.
    let (code, decision) = check("deploy-bot");
    assert_eq!((code, &decision["result"]), (Some(0), &serde_json::json!("allow")), "{decision}");
}

/// A library error that quotes its cause and also returns it as its source is printed with the
/// cause once (the quickstart's missing key file said "No such file or directory" twice).
#[test]
fn a_missing_key_file_is_named_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cat = catalog();
    std::fs::write(
        d.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\nsigning_key_file: agent-safe.key\n",
            cat.join("actions").display(),
            cat.join("policies").display()
        ),
    )
    .unwrap();
    let out = bin(d).args(["check", "restart-deployment", "-t", "dev/test-app"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let key = d.join("agent-safe.key");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: cannot load configuration: {}: No such file or directory (os error 2)",
            key.display()
        )
    );
}

/// Completion scripts for every shell clap_complete knows, and a man page per command.
#[test]
fn completions_and_man_pages_come_from_the_command_definition() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _agent__safe"),
        ("zsh", "#compdef agent-safe"),
        ("fish", "complete -c agent-safe"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[agent-safe]"),
    ] {
        let out = bin(dir.path()).args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: no `{marker}`");
        // Every subcommand is offered, nested ones too.
        assert!(script.contains("approval") && script.contains("state-coverage"), "{shell}");
    }
    let out = bin(dir.path()).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let man = dir.path().join("man");
    let out = bin(dir.path()).arg("man-pages").arg(&man).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(man.join("agent-safe-audit-verify.1")).unwrap();
    assert!(page.contains(".TH agent-safe-audit-verify 1"), "{page}");
    let main = std::fs::read_to_string(man.join("agent-safe.1")).unwrap();
    assert!(main.contains("completions"), "the main page lists the subcommands");
    // The hidden generator has no page of its own.
    assert!(!man.join("agent-safe-man-pages.1").exists());
}

/// `schemas/` holds exactly what `agent-safe schema` prints (regenerate with `agent-safe schema
/// KIND > schemas/KIND.schema.json`), and `init` writes the same schemas into the project with
/// a `# yaml-language-server: $schema=` line at the top of every file it scaffolds.
#[test]
fn schemas_are_generated_committed_and_scaffolded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    for (kind, file) in [
        ("action", "action.schema.json"),
        ("policy", "policy.schema.json"),
        ("inventory", "inventory.schema.json"),
        ("policy-test", "policy-test.schema.json"),
        ("config", "config.schema.json"),
    ] {
        let out = bin(d).args(["schema", kind]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{kind}");
        let printed = String::from_utf8(out.stdout).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{kind}");
        let committed = std::fs::read_to_string(repo.join(file)).unwrap_or_default();
        assert!(
            committed == printed,
            "schemas/{file} differs from `agent-safe schema {kind}`: regenerate it with \
             `cargo run -p agent-safe-cli -- schema {kind} > schemas/{file}`"
        );
    }

    let out = bin(d).args(["init", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let p = d.join("p");
    for (file, schema) in [
        ("actions/restart-deployment.yaml", "../.agent-safe/schemas/action.schema.json"),
        ("policies/default.yaml", "../.agent-safe/schemas/policy.schema.json"),
        ("inventory.yaml", ".agent-safe/schemas/inventory.schema.json"),
        ("policy-tests/default-policy.yaml", "../.agent-safe/schemas/policy-test.schema.json"),
        ("agent-safe.yaml", ".agent-safe/schemas/config.schema.json"),
    ] {
        let text = std::fs::read_to_string(p.join(file)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(first, format!("# yaml-language-server: $schema={schema}"), "{file}");
        let target = p.join(file).parent().unwrap().join(schema);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            std::fs::read_to_string(repo.join(Path::new(schema).file_name().unwrap())).unwrap(),
            "{file}"
        );
    }
    // The scaffolded project still loads, and its policy tests pass.
    let out = bin(&p).args(["test", "policy-tests/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}
