//! `agent-safe audit show-state|state-coverage` and `agent-safe rollback show|check` across
//! processes: check → runner execute (a fake kubectl) → the runner's state capture → the
//! rollback plan → the rollback checked and linked to the decision in the audit log; plus the
//! outputs and exit codes.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};

use serde_json::{Value, json};

use crate::common::{cli, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[
    // Keeps the `…` after a shortened token in this module's snapshots.
    (r"eyJ[A-Za-z0-9_\-\.]+", "[TOKEN]"),
    (r"duration:  [0-9.]+ ms", "duration:  [N] ms"),
    (r#""capture_duration_ms": [0-9.e-]+"#, r#""capture_duration_ms": [N]"#),
];

const KEY: &str = "cli-change-key-0123456789abcdef0123456789abcdef";

/// `agent-safe check` (its own process): the decision as JSON.
fn check(dir: &Path, action: &str, target: &str, caller: &str, params: Value) -> Value {
    let out = cli(dir)
        .args(["check", action, "-t", target, "-c", caller, "--json-output"])
        .args(["-p", &params.to_string(), "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A fake kubectl holding deployment `dev/test-app` whose replica count lives in a file.
fn fake_kubectl(dir: &Path) -> PathBuf {
    let script = r#"#!/bin/sh
dir='@DIR@'
case " $* " in
  *" get deployment/test-app "*)
    r=$(cat "$dir/replicas")
    printf '{"kind": "Deployment", "spec": {"replicas": %s}, "status": {"availableReplicas": %s, "readyReplicas": %s}}\n' "$r" "$r" "$r";;
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

/// Runs `token` through the runner with the fake kubectl (its own process).
fn execute(dir: &Path, token: &str) {
    let kubectl = fake_kubectl(dir);
    let out = cli(dir)
        .args(["runner", "execute", token, "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .args(["--executor", "subprocess", "--kubectl-path"])
        .arg(kubectl)
        .args(["--ambient-credentials", "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "success", "{result}");
}

fn scale(dir: &Path, replicas: u64) -> Value {
    let params = json!({"namespace": "dev", "deployment": "test-app", "replicas": replicas});
    check(dir, "scale-deployment", "dev/test-app", "deploy-bot", params)
}

#[test]
fn execute_then_show_state_then_roll_back_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let decision = scale(dir, 5);
    assert_eq!(decision["result"], "allow", "{decision}");
    let id = decision["audit_id"].as_str().unwrap().to_owned();
    execute(dir, decision["ticket"]["token"].as_str().unwrap());

    // The runner's capture.
    let out = cli(dir).args(["audit", "show-state", &id, "--json-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let capture: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(capture["audit_id"], id.as_str());
    assert_eq!(capture["before_state"]["replicas"], 2);
    assert_eq!(capture["after_state"]["replicas"], 5);
    assert_eq!(capture["executor_type"], "kubectl");

    // The plan: scale back to the replica count captured before.
    let out = cli(dir).args(["rollback", "show", &id, "--json-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["rollback_action"], "scale-deployment");
    assert_eq!(
        plan["rollback_params"],
        json!({"deployment": "test-app", "namespace": "dev", "replicas": 2})
    );

    // The rollback checked through the policies (dev is open): ALLOW with a ticket, linked to
    // the decision in the audit log.
    let out = cli(dir)
        .args(["rollback", "check", &id, "--signing-key", KEY, "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["plan"]["rollback_params"], plan["rollback_params"]);
    assert_eq!(checked["plan"]["original_audit_id"], id.as_str());
    let rollback = &checked["decision"];
    assert_eq!(rollback["result"], "allow");
    assert_eq!(rollback["caller"], "deploy-bot");
    assert_eq!(rollback["ticket"]["params"]["replicas"], 2);

    // Executing the rollback ticket restores the count; its capture is linked to the
    // rollback decision, which is linked to the original.
    execute(dir, rollback["ticket"]["token"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(dir.join("replicas")).unwrap().trim(), "2");
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let r = rollback["audit_id"].as_str().unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            let id = e["event_id"].as_str().unwrap();
            let label = if id == id_of(&decision) {
                "original"
            } else if id == r {
                "rollback"
            } else {
                e["event_type"].as_str().unwrap()
            };
            (label, e["event_type"].as_str().unwrap(), e["correlation_id"].as_str())
        })
        .collect();
    let (o, r) = (Some(id.as_str()), Some(r));
    assert_eq!(
        summary,
        [
            ("original", "decision", None),
            ("execution", "execution", o),
            ("state_capture", "state_capture", o),
            ("rollback", "decision", o),
            ("execution", "execution", r),
            ("state_capture", "state_capture", r),
        ]
    );
    let verify = cli(dir).args(["audit", "verify", "audit.jsonl"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0));

    // Coverage: both decisions ran and have a capture.
    let out = cli(dir).args(["audit", "state-coverage", "--json-output"]).output().unwrap();
    let coverage: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        coverage,
        json!({"total_decisions": 2, "with_state_capture": 2, "without_state_capture": 0,
               "coverage_percent": 100.0, "allowed_decisions": 2, "allowed_with_state_capture": 2})
    );
}

fn id_of(decision: &Value) -> &str {
    decision["audit_id"].as_str().unwrap()
}

#[test]
fn outputs_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let allowed = scale(dir, 5);
    execute(dir, allowed["ticket"]["token"].as_str().unwrap());
    let id = id_of(&allowed).to_owned();
    // A deny: scaling beyond the catalog's maximum.
    let denied = scale(dir, 500);
    assert_eq!(denied["result"], "deny");
    // An allow that never ran.
    let idle = scale(dir, 4);

    let run = |args: &[&str]| {
        let mut cmd = cli(dir);
        cmd.args(args);
        cmd
    };
    snap!("show_state", dir, run(&["audit", "show-state", &id]));
    snap!("show_state_json", dir, run(&["audit", "show-state", &id, "--json-output"]));
    snap!("show_state_unknown", dir, run(&["audit", "show-state", "evt-000000000000"]));
    snap!(
        "show_state_missing_log",
        dir,
        run(&["audit", "show-state", &id, "--log-file", "nope.jsonl"])
    );
    snap!("state_coverage", dir, run(&["audit", "state-coverage"]));
    snap!("state_coverage_json", dir, run(&["audit", "state-coverage", "--json-output"]));
    snap!("rollback_show", dir, run(&["rollback", "show", &id]));
    snap!("rollback_show_denied", dir, run(&["rollback", "show", id_of(&denied)]));
    snap!("rollback_show_never_ran", dir, run(&["rollback", "show", id_of(&idle)]));
    snap!(
        "rollback_show_unknown_json",
        dir,
        run(&["rollback", "show", "evt-000000000000", "--json-output"])
    );
    snap!(
        "rollback_show_missing_log",
        dir,
        run(&["rollback", "show", &id, "--audit-log", "nope.jsonl"])
    );
    snap!("rollback_check", dir, run(&["rollback", "check", &id, "--signing-key", KEY]));
    // A token of another agent: the rollback is checked as the original caller only.
    let token = token("other-bot");
    snap!(
        "rollback_check_other_caller",
        dir,
        run(&["rollback", "check", &id, "--signing-key", KEY, "--caller", &token])
    );
    snap!("rollback_help", dir, run(&["rollback", "check", "--help"]));
}

/// An identity token for `agent`, minted with the test key.
fn token(agent: &str) -> String {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ids = IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", clock);
    ids.create_token(agent, "", &[], &[], time::Duration::hours(1)).unwrap()
}
