//! A first run that works: in a fresh `agent-safe init` project, with no flag beyond the
//! command itself, an ALLOWed action runs end to end on the dry-run executor from `runner
//! execute`, from `serve` (`POST /v1/execute`) and from `mcp` (`execute_action`). The dry-run
//! executor touches nothing, so it needs no credential (`credential_source: not_needed`); a
//! real executor stays gated (see `runner::outputs_and_exit_codes`).

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Served, bin, mcp_calls};

fn params() -> Value {
    json!({"namespace": "dev", "deployment": "test-app"})
}

fn issue(dir: &Path, agent: &str) -> String {
    let out = bin(dir).args(["identity", "issue", agent, "--role", "deployer"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn runner_serve_and_mcp_run_an_allowed_action_in_a_fresh_project() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).args(["init", "my-project"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let d = &dir.path().join("my-project");
    let token = issue(d, "deploy-bot");

    // runner execute
    let out = bin(d)
        .args(["check", "restart-deployment", "-t", "dev/test-app", "-c", &token])
        .args(["-p", &params().to_string(), "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = decision["ticket"]["token"].as_str().unwrap();
    let out = bin(d).args(["runner", "execute", ticket, "--json-output"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&run["status"], &run["credential_source"]),
        (&json!("skipped"), &json!("not_needed"))
    );

    // serve
    let served = Served::spawn(bin(d).args(["serve", "--listen", "127.0.0.1:0"]));
    let body =
        json!({"action": "restart-deployment", "target": "dev/test-app", "params": params()});
    let (status, decision) = served.post("/v1/check", &token, &body);
    assert!(status.contains(" 200 "), "{status}: {decision}");
    let ticket = decision["ticket"]["token"].as_str().unwrap().to_owned();
    let (status, run) = served.post("/v1/execute", &token, &json!({"ticket": ticket}));
    served.stop();
    assert!(status.contains(" 200 "), "{status}: {run}");
    assert_eq!(
        (&run["status"], &run["credential_source"]),
        (&json!("skipped"), &json!("not_needed"))
    );

    // mcp
    let mut mcp = bin(d);
    mcp.arg("mcp").env("AGENT_SAFE_IDENTITY_TOKEN", &token);
    let results = mcp_calls(
        &mut mcp,
        &[json!({"name": "execute_action", "arguments": {"action": "restart-deployment",
                  "target": "dev/test-app", "params": params()}})],
    );
    assert_eq!(results[0]["isError"], false, "{}", results[0]);
    let execution = &results[0]["structuredContent"]["execution"];
    assert_eq!(execution["status"], "skipped", "{}", results[0]);
    assert_eq!(execution["credential_source"], "not_needed", "{}", results[0]);

    let verify = bin(d).args(["audit", "verify"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}
