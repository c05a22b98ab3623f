//! What a build has: `agent-safe --version` names the compiled-in backends, and asking a build
//! for a backend it lacks (an executor, a vault, the S3 shipper) exits 2 naming the exact
//! `cargo install` line that adds it. Runs in every feature combination CI builds; each case
//! checks whichever side (present or absent) this build is on.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;
use std::process::Output;

use crate::common::{bin, catalog};

const KEY: &str = "cli-features-key-0123456789abcdef0123456789abcdef";
const K8S: bool = cfg!(feature = "k8s");
const AWS: bool = cfg!(feature = "aws");
const POSTGRES: bool = cfg!(feature = "postgres");

fn project(dir: &Path, extra: &str) {
    let cat = catalog();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\n{extra}",
            cat.join("actions").display(),
            cat.join("policies").display(),
            cat.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn version_names_the_backends_of_this_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let pick = |base: &str, extra: &[(bool, &str)]| {
        let mut all = vec![base.to_owned()];
        all.extend(extra.iter().filter(|(on, _)| *on).map(|(_, n)| (*n).to_owned()));
        all.join(", ")
    };
    let expected = format!(
        "agent-safe {} (executors: {}; vaults: {}; audit shipping: {}; state: {})\n",
        env!("CARGO_PKG_VERSION"),
        pick("dry-run, kubectl", &[(K8S, "k8s"), (AWS, "aws")]),
        pick("env, file", &[(K8S, "kubernetes"), (AWS, "sts")]),
        pick("file, webhook", &[(AWS, "s3")]),
        pick("file", &[(POSTGRES, "postgres")]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn a_missing_executor_names_the_feature_that_adds_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "");
    for (executor, present) in [("k8s", K8S), ("aws", AWS)] {
        let out = bin(d)
            .args(["runner", "execute", "not-a-ticket", "--executor", executor])
            .output()
            .unwrap();
        let line = format!("`cargo install agent-safe-cli --features {executor}`");
        if present {
            // Compiled in: the executor is set up and the (bad) ticket is what fails.
            assert!(!text(&out).contains(&line), "{executor}: {}", text(&out));
        } else {
            assert_eq!(out.status.code(), Some(2), "{executor}: {}", text(&out));
            assert_eq!(
                String::from_utf8_lossy(&out.stderr).trim_end(),
                format!(
                    "error: the `{executor}` executor is not compiled into this agent-safe \
                     binary: install it with {line} (or use `--executor subprocess` for kubectl)"
                )
            );
        }
    }
}

#[test]
fn a_missing_vault_or_s3_shipper_names_the_feature_that_adds_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "credentials:\n  vault: {type: kubernetes, namespace: agent-safe}\n",
            K8S,
            "the `kubernetes` vault is not in this build: install the CLI with `cargo install \
             agent-safe-cli --features k8s`",
        ),
        (
            "credentials:\n  vault: {type: sts, role_arn: \"arn:aws:iam::123456789012:role/x\"}\n",
            AWS,
            "the `sts` vault is not in this build: install the CLI with `cargo install \
             agent-safe-cli --features aws`",
        ),
        (
            "audit_shipping:\n  s3_bucket: audit\n",
            AWS,
            "s3_bucket: this build of agent-safe has no S3 support: install the CLI with `cargo \
             install agent-safe-cli --features aws`",
        ),
        (
            // Nothing listens on port 1: with the backend, a clear connection error.
            "state: {backend: postgres, url: \"postgres://svc:hunter2@127.0.0.1:1/x\"}\n",
            POSTGRES,
            "`state.backend: postgres` is not in this build: install the CLI with `cargo \
             install agent-safe-cli --features postgres`",
        ),
    ];
    for (section, present, message) in cases {
        project(d, section);
        let out = bin(d)
            .args(["check", "get-pod-logs", "-t", "dev/test-app", "-c", "bot"])
            .args(["-p", r#"{"namespace": "dev", "pod": "test-app-0"}"#])
            .output()
            .unwrap();
        assert!(!text(&out).contains("hunter2"), "{section}: {}", text(&out));
        if present {
            assert!(!text(&out).contains("not in this build"), "{section}: {}", text(&out));
            assert!(!text(&out).contains("no S3 support"), "{section}: {}", text(&out));
        } else {
            assert_eq!(out.status.code(), Some(2), "{section}: {}", text(&out));
            assert!(text(&out).contains(message), "{section}: {}", text(&out));
        }
    }
}
