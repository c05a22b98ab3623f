//! `agent-safe mcp` through the real binary: an MCP session on its stdin/stdout (initialize,
//! tools/list, check_action, execute_action, a malformed line), nothing but JSON-RPC on
//! stdout, the audit log verifying afterwards, and the start-up refusals (exit 2).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};

use crate::common::cli;

const KEY: &str = "cli-mcp-key-0123456789abcdef0123456789abcdef";

/// An identity token for `agent`, valid for an hour (the binary uses the system clock).
fn token(agent: &str) -> String {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", clock)
        .create_token(agent, agent, &[], &[], time::Duration::hours(1))
        .unwrap()
}

struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Session {
    fn start(dir: &Path, token: &str) -> Session {
        let mut child = cli(dir)
            .args(["mcp", "--signing-key", KEY, "--audit-log", "audit.jsonl"])
            .args(["--ambient-credentials"])
            .env("AGENT_SAFE_IDENTITY_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Session { child, stdin, lines, next_id: 0 }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn recv(&self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).expect("no answer in 60 s");
        serde_json::from_str(&line).expect("only JSON-RPC on stdout")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&message.to_string());
        let answer = self.recv();
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        answer["result"].clone()
    }
}

#[test]
fn a_session_over_the_binarys_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::start(dir.path(), &token("deploy-bot"));
    let init = s.request(
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "cli-test", "version": "0"}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "agent-safe", "{init}");
    s.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    let tools = s.request("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["list_actions", "check_action", "execute_action", "request_approval_status"]
    );
    let actions = &tools["result"]["tools"][1]["inputSchema"]["properties"]["action"]["enum"];
    assert!(actions.as_array().unwrap().contains(&json!("restart-deployment")), "{actions}");

    let restart = |target: &str| {
        let (ns, name) = target.split_once('/').unwrap();
        json!({"action": "restart-deployment", "target": target,
               "params": {"namespace": ns, "deployment": name}})
    };
    let allow = s.call("check_action", restart("dev/test-app"));
    assert_eq!(allow["structuredContent"]["result"], "allow", "{allow}");
    assert_eq!(allow["structuredContent"]["caller"], "deploy-bot");
    assert!(allow["structuredContent"]["ticket"]["token"].is_string(), "{allow}");
    // No deployer role: staging restarts are denied.
    let deny = s.call("check_action", restart("staging/api-server"));
    assert_eq!(deny["structuredContent"]["result"], "deny", "{deny}");
    let refused = s.call("execute_action", restart("staging/api-server"));
    assert_eq!(refused["isError"], true, "{refused}");
    let ran = s.call("execute_action", restart("dev/test-app"));
    assert_eq!(ran["isError"], false, "{ran}");
    assert_eq!(ran["structuredContent"]["execution"]["executor_type"], "dry-run", "{ran}");

    // A malformed line gets a parse error; the process keeps serving.
    s.send_line("not json at all");
    assert_eq!(s.recv()["error"]["code"], -32700);
    assert!(s.request("ping", json!({}))["result"].is_object());

    // Closing stdin ends the process cleanly; stdout held nothing but protocol messages.
    drop(s.stdin.take());
    let out = s.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("serving agent `deploy-bot` on stdio"), "{stderr}");
    assert!(s.lines.try_recv().is_err(), "unexpected output after the last answer");

    // Four checks, four decisions; the chain verifies.
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let events: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let decisions = events.iter().filter(|e| e["event_type"] == "decision").count();
    assert_eq!(decisions, 4, "{log}");
    let verify = cli(dir.path()).args(["audit", "verify", "audit.jsonl"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn start_up_refusals_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], token: Option<&str>| {
        let mut cmd = cli(dir.path());
        cmd.args(["mcp", "--audit-log", "audit.jsonl"]).args(args).stdin(Stdio::null());
        if let Some(t) = token {
            cmd.env("AGENT_SAFE_IDENTITY_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        assert!(out.stdout.is_empty(), "stdout is the protocol");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--signing-key", KEY], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs the agent's identity token"), "{err}");
    let (code, err) = run(&["--signing-key", KEY], Some("not-a-token"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the identity token does not verify"), "{err}");
    let other = "another-key-0123456789abcdef0123456789abcdef";
    let (code, err) = run(&["--signing-key", other], Some(&token("deploy-bot")));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not verify"), "{err}");
    // Anonymous: stdin closed at once ends the process cleanly.
    let (code, err) = run(&["--allow-anonymous"], None);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("anonymous callers"), "{err}");
}
