//! One rule, every front: the same check with a `sensitive: true` parameter sent through the
//! CLI (`check --json-output`, then `runner execute`), the HTTP server (`serve`, POST
//! `/v1/check` over a socket) and MCP (`mcp`, `check_action` and `execute_action`) records the
//! same redacted params in each decision and execution event, and the secret value reaches no
//! audit log and no output.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};

use crate::common::bin;

const KEY: &str = "cli-redaction-key-0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "hunter2-s3cr3t-9f31c";

/// A project with one action whose `password` parameter is sensitive, allowed on `dev/app`.
fn project(dir: &Path) {
    let files = [
        ("agent-safe.yaml", "registry: actions\npolicies: policies\ninventory: inventory.yaml\n"),
        (
            "actions/set-password.yaml",
            "name: set-password\nversion: \"1.0.0\"\ndescription: Sets a service password\n\
             risk_class: low\ntarget_types: [service]\nparameters:\n\
             \x20 - {name: user, type: string, required: true, description: Account}\n\
             \x20 - {name: password, type: string, required: true, description: New password, sensitive: true}\n",
        ),
        (
            "policies/dev.yaml",
            "rules:\n  - name: allow-dev\n    priority: 100\n    match:\n      targets:\n\
             \x20       environments: [dev]\n    decision: allow\n    reason: dev is open\n",
        ),
        (
            "inventory.yaml",
            "targets:\n  - id: dev/app\n    type: service\n    environment: dev\n    sensitivity: public\n",
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn params() -> Value {
    json!({"user": "svc", "password": PASSWORD})
}

fn token() -> String {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    IdentityManager::new(SigningKey::hs256_from_str(KEY).unwrap(), "agent-safe", clock)
        .create_token("deploy-bot", "deploy-bot", &[], &[], time::Duration::hours(1))
        .unwrap()
}

/// The events of an audit log, after checking that the secret is not in it.
fn events(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!text.contains(PASSWORD), "the secret reached {}: {text}", log.display());
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The params of every event of `kind` in `log`.
fn recorded(log: &Path, kind: &str) -> Vec<Value> {
    events(log)
        .into_iter()
        .filter(|e| e["event_type"] == kind)
        .map(|e| e["params"].clone())
        .collect()
}

/// CLI: `check --json-output` (an ALLOW with a ticket), then `runner execute` of the ticket.
fn through_the_cli(dir: &Path) -> Vec<(String, Value)> {
    let out = bin(dir)
        .args(["check", "set-password", "-t", "dev/app", "-c", "deploy-bot", "--json-output"])
        .args(["-p", &params().to_string(), "--signing-key", KEY, "--audit-log", "cli.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["result"], "allow", "{decision}");
    let ticket = decision["ticket"]["token"].as_str().unwrap();
    let out = bin(dir)
        .args(["runner", "execute", ticket, "--signing-key", KEY, "--audit-log", "cli.jsonl"])
        .args(["--ambient-credentials", "--json-output"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD), "runner output");
    let log = dir.join("cli.jsonl");
    let mut seen = Vec::new();
    seen.extend(recorded(&log, "decision").into_iter().map(|p| ("cli check".to_owned(), p)));
    seen.extend(recorded(&log, "execution").into_iter().map(|p| ("cli runner".to_owned(), p)));
    seen
}

/// HTTP: `serve` on a free port, POST `/v1/check` with a bearer token.
fn through_http(dir: &Path) -> Vec<(String, Value)> {
    let served = crate::common::Served::spawn(
        bin(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--audit-log", "http.jsonl"])
            .args(["--signing-key", KEY]),
    );
    let body = json!({"action": "set-password", "target": "dev/app", "params": params()});
    let body = body.to_string();
    let addr = served.addr.clone();
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /v1/check HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        token(),
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    served.stop();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""result":"allow""#), "{response}");
    let log = dir.join("http.jsonl");
    recorded(&log, "decision").into_iter().map(|p| ("http check".to_owned(), p)).collect()
}

/// MCP: `mcp` on stdio, `check_action` then `execute_action` (dry-run).
fn through_mcp(dir: &Path) -> Vec<(String, Value)> {
    let mut child = bin(dir)
        .args(["mcp", "--signing-key", KEY, "--audit-log", "mcp.jsonl", "--ambient-credentials"])
        .env("AGENT_SAFE_IDENTITY_TOKEN", token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "redaction-test", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "check_action",
            "arguments": {"action": "set-password", "target": "dev/app", "params": params()}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "execute_action",
            "arguments": {"action": "set-password", "target": "dev/app", "params": params()}}}),
    ];
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answers = Vec::new();
    for message in &messages {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
        if message.get("id").is_some() {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            answers.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(answers[1]["result"]["structuredContent"]["result"], "allow", "{}", answers[1]);
    assert_eq!(answers[2]["result"]["isError"], false, "{}", answers[2]);
    let log = dir.join("mcp.jsonl");
    let mut seen = Vec::new();
    seen.extend(recorded(&log, "decision").into_iter().map(|p| ("mcp check".to_owned(), p)));
    seen.extend(recorded(&log, "execution").into_iter().map(|p| ("mcp execute".to_owned(), p)));
    seen
}

#[cfg(unix)]
#[test]
fn every_front_records_the_same_redacted_params() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir);
    let mut seen = through_the_cli(dir);
    seen.extend(through_http(dir));
    seen.extend(through_mcp(dir));
    let fronts: Vec<&str> = seen.iter().map(|(front, _)| front.as_str()).collect();
    assert_eq!(
        fronts,
        [
            "cli check",
            "cli runner",
            "http check",
            "mcp check",
            // `execute_action` checks, then runs: a decision and an execution.
            "mcp check",
            "mcp execute"
        ]
    );
    let expected = json!({"user": "svc", "password": "[redacted]"});
    for (front, params) in &seen {
        assert_eq!(params, &expected, "{front}");
        // Byte for byte the same text on every front (audit lines are canonical: sorted keys).
        assert_eq!(params.to_string(), seen[0].1.to_string(), "{front}");
    }
}
