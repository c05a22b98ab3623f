//! `agent-safe runner execute|dry-run`: the end-to-end path across processes (check → ticket →
//! execute → replay refused → audit verifies, with decision, execution and state capture
//! linked), and snapshots of the outputs and exit codes.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::common::{cli, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[
    // Keeps the `…` after a shortened token in this module's snapshots.
    (r"eyJ[A-Za-z0-9_\-\.]+", "[TOKEN]"),
    (r"\b[0-9a-f]{64}\b", "[SHA256]"),
    (r"\d+ ms", "[N] ms"),
    (r#""duration_ms": [0-9.e-]+"#, r#""duration_ms": [N]"#),
];

const KEY: &str = "cli-runner-key-0123456789abcdef0123456789abcdef";
const SECRET: &str = "runner-vault-s3cr3t-41b7c2";

/// An ALLOW ticket from `agent-safe check` (first process): token and the decision's audit id.
fn check(dir: &Path, action: &str, target: &str, params: Value) -> (String, String) {
    let out = cli(dir)
        .args(["check", action, "-t", target, "-c", "deploy-bot", "--json-output"])
        .args(["-p", &params.to_string(), "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["result"], "allow", "{decision}");
    (
        decision["ticket"]["token"].as_str().unwrap().to_owned(),
        decision["audit_id"].as_str().unwrap().to_owned(),
    )
}

/// A fake kubectl holding one deployment `dev/test-app` whose replica count lives in a file.
/// Every call is appended to `argv.log`, and the credential kubeconfig it was given (the
/// first file of `$KUBECONFIG`) to `kubeconfigs.log`.
fn fake_kubectl(dir: &Path) -> PathBuf {
    let script = r#"#!/bin/sh
dir='@DIR@'
printf '%s\n' "$*" >> "$dir/argv.log"
if [ -n "$KUBECONFIG" ]; then cat "${KUBECONFIG%%:*}" >> "$dir/kubeconfigs.log"; echo >> "$dir/kubeconfigs.log"; fi
case " $* " in
  *" get deployment/test-app "*)
    r=$(cat "$dir/replicas")
    printf '{"kind": "Deployment", "metadata": {"name": "test-app", "namespace": "dev"}, "spec": {"replicas": %s}, "status": {"availableReplicas": %s, "readyReplicas": %s}}\n' "$r" "$r" "$r";;
  *" scale deployment/test-app "*)
    for a in "$@"; do case "$a" in --replicas=*) echo "${a#--replicas=}" > "$dir/replicas";; esac; done
    echo "deployment.apps/test-app scaled";;
  *) echo "unexpected call: $*" >&2; exit 1;;
esac
"#
    .replace("@DIR@", dir.to_str().unwrap());
    let path = dir.join("kubectl");
    std::fs::write(&path, script).unwrap();
    std::fs::write(dir.join("replicas"), "2\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn execute(dir: &Path, token: &str, kubectl: &Path) -> Output {
    cli(dir)
        .args(["runner", "execute", token, "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .args(["--executor", "subprocess", "--kubectl-path"])
        .arg(kubectl)
        .args(["--vault-cred", &format!("kubernetes={SECRET}"), "--json-output"])
        .output()
        .unwrap()
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SECRET), "the vault secret was printed");
    }
}

#[test]
fn check_execute_replay_verify_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let kubectl = fake_kubectl(dir);
    let params = json!({"namespace": "dev", "deployment": "test-app", "replicas": 3});
    let (token, decision_id) = check(dir, "scale-deployment", "dev/test-app", params.clone());

    // Second process: executes.
    let out = execute(dir, &token, &kubectl);
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "success");
    assert_eq!(result["output"], "deployment.apps/test-app scaled");
    assert_eq!(result["executor_type"], "kubectl");
    assert_eq!(result["audit_id"], decision_id.as_str());
    assert_eq!(
        result["before_state"],
        json!({"replicas": 2, "available_replicas": 2, "ready_replicas": 2})
    );
    assert_eq!(
        result["after_state"],
        json!({"replicas": 3, "available_replicas": 3, "ready_replicas": 3})
    );
    assert_eq!(result["credential_source"], "vault");
    assert!(result["credential_id"].as_str().unwrap().starts_with("cred-"));
    // kubectl got the vault token through a private kubeconfig, never on its command line.
    let argv = std::fs::read_to_string(dir.join("argv.log")).unwrap();
    assert!(!argv.contains(SECRET));
    assert!(
        argv.contains(
            "--user=agent-safe-credential scale deployment/test-app --namespace=dev --replicas=3"
        ),
        "{argv}"
    );
    assert!(std::fs::read_to_string(dir.join("kubeconfigs.log")).unwrap().contains(SECRET));

    // Third process: the same ticket again is refused, and that refusal is audited too.
    let replay = execute(dir, &token, &kubectl);
    assert_no_secret(&replay);
    assert_eq!(replay.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(refused["status"], "error");
    assert_eq!(
        refused["error"],
        "Ticket validation failed: Ticket has already been used (replay detected)"
    );
    assert_eq!(std::fs::read_to_string(dir.join("replicas")).unwrap().trim(), "3");
    assert_eq!(
        argv.lines().count(),
        std::fs::read_to_string(dir.join("argv.log")).unwrap().lines().count()
    );

    // The audit log verifies and links decision, execution and state capture.
    let verify = cli(dir).args(["audit", "verify", "audit.jsonl"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(!text.contains(SECRET), "the vault secret reached the audit log");
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e["event_type"].as_str().unwrap(), e["correlation_id"].as_str()))
        .collect();
    let d = Some(decision_id.as_str());
    assert_eq!(
        summary,
        [("decision", None), ("execution", d), ("state_capture", d), ("execution", d)]
    );
    assert_eq!(events[0]["event_id"], decision_id.as_str());
    let (execution, capture) = (&events[1]["context"], &events[2]["context"]);
    assert_eq!(execution["status"], "success");
    assert_eq!(execution["state_capture_event_id"], events[2]["event_id"]);
    assert_eq!(capture["execution_event_id"], events[1]["event_id"]);
    assert_eq!(capture["diff"]["changed"]["replicas"], json!({"old": 2, "new": 3}));
    assert_eq!(events[1]["params"], params);
    assert_eq!(
        events[3]["context"]["ticket_error"],
        "Ticket has already been used (replay detected)"
    );
    assert!(dir.join("audit.jsonl.nonces").exists());
}

#[test]
fn outputs_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let params = json!({"namespace": "dev", "pod": "debug-pod"});
    let (token, _) = check(dir, "get-pod-logs", "dev/debug-pod", params);
    let runner = |args: &[&str]| {
        let mut cmd = cli(dir);
        cmd.args(["runner"]).args(args).args(["--signing-key", KEY, "--audit-log", "audit.jsonl"]);
        cmd
    };
    // Dry runs do not consume the ticket.
    snap!("dry_run_refused_without_vault", dir, runner(&["dry-run", &token]));
    snap!("dry_run", dir, runner(&["dry-run", &token, "--ambient-credentials"]));
    snap!(
        "dry_run_json",
        dir,
        runner(&["dry-run", &token, "--ambient-credentials", "--json-output"])
    );
    // A real executor is gated: without a vault (or --ambient-credentials) a credentialed
    // action is refused before the executor runs (kubectl is never started here).
    snap!(
        "execute_refused_without_vault",
        dir,
        runner(&[
            "execute",
            &token,
            "--executor",
            "kubectl",
            "--kubectl-path",
            "/nonexistent/kubectl"
        ])
    );
    // That refusal used the ticket up: execution is single-attempt.
    snap!("execute_replay", dir, runner(&["execute", &token, "--ambient-credentials"]));
    let (token, _) = check(
        dir,
        "get-pod-logs",
        "dev/debug-pod",
        json!({"namespace": "dev", "pod": "debug-pod"}),
    );
    snap!("execute_dry_run_executor", dir, runner(&["execute", &token, "--ambient-credentials"]));
    // The dry-run executor touches nothing, so it needs no credential: a first run works
    // without a vault (recorded as `credential_source: not_needed`).
    let (token, _) = check(
        dir,
        "get-pod-logs",
        "dev/debug-pod",
        json!({"namespace": "dev", "pod": "debug-pod"}),
    );
    snap!("execute_dry_run_needs_no_vault", dir, runner(&["execute", &token, "--json-output"]));
    snap!(
        "execute_invalid_ticket_json",
        dir,
        runner(&["execute", "not-a-ticket", "--json-output"])
    );
    snap!("execute_bad_timeout", dir, runner(&["execute", "x", "--timeout=0"]));
    snap!("execute_bad_vault_cred", dir, runner(&["execute", "x", "--vault-cred", "oops"]));
    let verify = cli(dir).args(["audit", "verify", "audit.jsonl"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0));
}

#[test]
fn executors_behind_features() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (token, _) = check(
        dir,
        "get-pod-logs",
        "dev/debug-pod",
        json!({"namespace": "dev", "pod": "debug-pod"}),
    );
    // Nothing listens there: a compiled-in executor fails fast.
    std::fs::write(
        dir.join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    for (name, compiled) in [("k8s", cfg!(feature = "k8s")), ("aws", cfg!(feature = "aws"))] {
        let out = cli(dir)
            .args(["runner", "execute", &token, "--executor", name, "--signing-key", KEY])
            .args([
                "--audit-log",
                "audit.jsonl",
                "--ambient-credentials",
                "--kubeconfig",
                "kubeconfig",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = format!("cargo install agent-safe-cli --features {name}");
        if compiled {
            assert!(!stderr.contains(&hint), "{stderr}");
        } else {
            assert_eq!(out.status.code(), Some(2));
            assert!(stderr.contains(&hint), "{stderr}");
        }
    }
}
