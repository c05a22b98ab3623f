//! One output, three fronts: the same run through `runner execute|dry-run --json-output`,
//! `POST /v1/execute` (of `agent-safe serve`, over a socket) and MCP `execute_action` (of
//! `agent-safe mcp`, over its stdio) gives the same JSON text, and the same delegation through
//! `delegation create --json-output` and `POST /v1/delegations` too. Only the per-run ids,
//! nonces, tokens and times are masked; every other key, its place and its value must match.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};

use crate::common::{Served, cli};

const KEY: &str = "cli-fronts-key-0123456789abcdef0123456789abcdef";

/// The run every front makes: the catalog's restart in dev, allowed for `deploy-bot`.
const ACTION: &str = "restart-deployment";
const TARGET: &str = "dev/test-app";

fn params() -> Value {
    json!({"namespace": "dev", "deployment": "test-app"})
}

/// An identity token for `agent` with `roles`, valid for an hour (the binary uses the system
/// clock).
fn token(agent: &str, roles: &[&str]) -> String {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", clock)
        .create_token(agent, agent, &roles, &[], time::Duration::hours(1))
        .unwrap()
}

/// `value` with the per-run values replaced: ids, nonces and times (when set; a `null` stays
/// `null`, so a front that leaves one out still differs) and the wall time.
fn masked(mut value: Value, keys: &[&str]) -> Value {
    let map = value.as_object_mut().expect("a JSON object");
    for key in keys {
        if let Some(v) = map.get_mut(*key)
            && !v.is_null()
        {
            *v = json!(format!("[{key}]"));
        }
    }
    value
}

/// The per-run parts of a run report.
const RUN_KEYS: &[&str] = &[
    "audit_id",
    "ticket_nonce",
    "duration_ms",
    "executed_at",
    "execution_audit_id",
    "state_capture_id",
    "credential_id",
];

#[track_caller]
fn assert_same_text(fronts: &[(&str, &Value)]) {
    let (first, expected) = fronts[0];
    let expected = serde_json::to_string_pretty(expected).unwrap();
    for (name, value) in &fronts[1..] {
        assert_eq!(
            serde_json::to_string_pretty(value).unwrap(),
            expected,
            "`{name}` differs from `{first}`"
        );
    }
}

/// The CLI: a ticket from `check`, then `runner execute` (or `runner dry-run`) with it.
fn cli_run(dir: &Path, dry_run: bool) -> Value {
    let out = cli(dir)
        .args(["check", ACTION, "-t", TARGET, "-c", "deploy-bot", "--json-output"])
        .args(["-p", &params().to_string(), "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ticket = decision["ticket"]["token"].as_str().unwrap();
    let command = if dry_run { "dry-run" } else { "execute" };
    let out = cli(dir)
        .args(["runner", command, ticket, "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .args(["--ambient-credentials", "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `agent-safe serve` in `dir` on a free port, with the dry-run executor and ambient
/// credentials, as the MCP server below.
fn serve(dir: &Path) -> Served {
    Served::spawn(cli(dir).args(["serve", "--listen", "127.0.0.1:0", "--signing-key", KEY]).args([
        "--audit-log",
        "audit.jsonl",
        "--ambient-credentials",
    ]))
}

/// HTTP: a ticket from `POST /v1/check`, then `POST /v1/execute` with it.
fn http_run(served: &Served, bearer: &str, dry_run: bool) -> Value {
    let request = json!({"action": ACTION, "target": TARGET, "params": params()});
    let (status, decision) = served.post("/v1/check", bearer, &request);
    assert!(status.contains(" 200 "), "{status}: {decision}");
    let ticket = decision["ticket"]["token"].as_str().unwrap();
    let (status, outcome) =
        served.post("/v1/execute", bearer, &json!({"ticket": ticket, "dry_run": dry_run}));
    assert!(status.contains(" 200 "), "{status}: {outcome}");
    outcome
}

/// Writes one JSON-RPC message line to the MCP server.
fn send(stdin: &mut impl std::io::Write, message: &Value) {
    writeln!(stdin, "{message}").unwrap();
    stdin.flush().unwrap();
}

/// MCP: `execute_action` in an `agent-safe mcp` session on the binary's stdio; the
/// `execution` of each answer, in order.
fn mcp_runs(dir: &Path, bearer: &str, dry_runs: &[bool]) -> Vec<Value> {
    let mut child = cli(dir)
        .args(["mcp", "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .args(["--ambient-credentials"])
        .env("AGENT_SAFE_IDENTITY_TOKEN", bearer)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut read_answer = |id: usize| -> Value {
        let line = lines.next().expect("an answer").unwrap();
        let answer: Value = serde_json::from_str(&line).expect("only JSON-RPC on stdout");
        assert_eq!(answer["id"], id, "{answer}");
        answer
    };
    let init = json!({"protocolVersion": "2025-06-18", "capabilities": {},
                      "clientInfo": {"name": "fronts-test", "version": "0"}});
    send(&mut stdin, &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}));
    read_answer(0);
    send(&mut stdin, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut runs = Vec::new();
    for (i, dry_run) in dry_runs.iter().enumerate() {
        let id = i + 1;
        let arguments =
            json!({"action": ACTION, "target": TARGET, "params": params(), "dry_run": dry_run});
        let params = json!({"name": "execute_action", "arguments": arguments});
        send(
            &mut stdin,
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}),
        );
        let answer = read_answer(id);
        let result = &answer["result"];
        assert_eq!(result["isError"], false, "{answer}");
        assert_eq!(result["structuredContent"]["executed"], !dry_run, "{answer}");
        runs.push(result["structuredContent"]["execution"].clone());
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    runs
}

#[cfg(unix)]
#[test]
fn cli_http_and_mcp_report_a_run_with_the_same_json() {
    let (cli_dir, http_dir, mcp_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bearer = token("deploy-bot", &[]);

    let cli_execute = cli_run(cli_dir.path(), false);
    let cli_dry_run = cli_run(cli_dir.path(), true);
    let served = serve(http_dir.path());
    let http_execute = http_run(&served, &bearer, false);
    let http_dry_run = http_run(&served, &bearer, true);
    served.stop();
    let mcp = mcp_runs(mcp_dir.path(), &bearer, &[false, true]);

    for (dry_run, runs) in [
        (false, [cli_execute, http_execute, mcp[0].clone()]),
        (true, [cli_dry_run, http_dry_run, mcp[1].clone()]),
    ] {
        let [cli, http, mcp] = runs.map(|r| masked(r, RUN_KEYS));
        // What the run was, so equal outputs are also the right ones.
        assert_eq!(cli["status"], "skipped", "{cli}");
        assert_eq!(cli["executor_type"], "dry-run", "{cli}");
        assert_eq!(cli["caller"], "deploy-bot", "{cli}");
        // A dry run previews what a real executor would need (here: ambient credentials); a
        // run on the dry-run executor needs none.
        let source = if dry_run { "ambient" } else { "not_needed" };
        assert_eq!(cli["credential_source"], source, "{cli}");
        assert_eq!(cli["dry_run"], dry_run, "{cli}");
        // Audited runs say where their execution event is; dry runs record nothing.
        assert_eq!(cli.get("execution_audit_id").is_some(), !dry_run, "{cli}");
        assert_same_text(&[("runner (CLI)", &cli), ("POST /v1/execute", &http), ("MCP", &mcp)]);
    }
}

#[cfg(unix)]
#[test]
fn cli_and_http_report_a_delegation_with_the_same_json() {
    let dir = tempfile::tempdir().unwrap();
    let parent = token("orchestrator", &["deployer", "reader"]);
    // No TTL: the child expires with the parent, so `expires_at` is the same on both fronts.
    let out = cli(dir.path())
        .args(["delegation", "create", &parent, "--child-id", "worker-1", "--roles", "deployer"])
        .args(["--environments", "dev", "--actions", "restart-*", "--max-depth", "1"])
        .args(["--signing-key", KEY, "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let from_cli: Value = serde_json::from_slice(&out.stdout).unwrap();

    let served = serve(dir.path());
    let body = json!({"child_agent_id": "worker-1", "roles": ["deployer"],
                      "environments": ["dev"], "actions": ["restart-*"], "max_depth": 1});
    let (status, from_http) = served.post("/v1/delegations", &parent, &body);
    served.stop();
    assert!(status.contains(" 200 "), "{status}: {from_http}");

    let [cli, http] = [from_cli, from_http].map(|v| masked(v, &["token"]));
    assert_eq!(cli["child_agent_id"], "worker-1", "{cli}");
    assert_eq!(cli["delegation_chain"][0]["agent_id"], "orchestrator", "{cli}");
    assert_eq!(cli["delegation_scope"], json!({"actions": ["restart-*"], "environments": ["dev"]}));
    assert!(cli["expires_at"].is_string(), "{cli}");
    assert_same_text(&[("delegation create (CLI)", &cli), ("POST /v1/delegations", &http)]);
}
