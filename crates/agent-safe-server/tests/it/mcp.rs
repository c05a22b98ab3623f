//! The MCP tool server driven through its stdio protocol (newline-delimited JSON-RPC over an
//! in-memory duplex): initialize, tools/list against the catalog, every tool, the error cases,
//! and the audit log afterwards.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::sync::Arc;
use std::time::Duration;

use agent_safe::{Decision, ManualClock};
use agent_safe_core::EventType;
use agent_safe_server::mcp::{McpError, McpServer, TOOLS};
use agent_safe_server::{CallerAuth, Server, ServerConfig, Source};
use agent_safe_tickets::{IdentityManager, SigningKey};
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;

use crate::support::SECRET;

const POLICIES: &str = "rules:
  - name: allow-dev
    match: {actions: [restart-deployment, scale-deployment], targets: {environments: [dev]}}
    decision: allow
    reason: dev changes are fine
  - name: approve-staging
    match: {actions: [restart-deployment], targets: {environments: [staging]}}
    decision: require_approval
    reason: staging needs a human
";

/// A temporary project: the catalog's actions and inventory, the policies above.
struct Project {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Project {
    fn new() -> Project {
        let dir = crate::support::project(POLICIES);
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-03-01 9:00 UTC)));
        Project { dir, clock }
    }

    fn server(&self, auth: CallerAuth) -> Server {
        let execute =
            agent_safe::ExecuteOptions { ambient_credentials: true, ..Default::default() };
        let source = Source::new()
            .config_file(self.dir.path().join("agent-safe.yaml"))
            .clock(self.clock.clone());
        Server::new(source, ServerConfig { auth, execute, ..ServerConfig::default() }).unwrap()
    }

    fn token(&self, agent: &str, ttl: time::Duration) -> String {
        let ids = IdentityManager::new(
            SigningKey::hs256_from_str(SECRET).unwrap(),
            "agent-safe",
            self.clock.clone(),
        );
        ids.create_token(agent, agent, &[], &[], ttl).unwrap()
    }

    fn audit_events(&self) -> Vec<agent_safe_core::AuditEvent> {
        agent_safe_audit::read_events(&self.dir.path().join("audit.jsonl"))
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

/// One MCP session over a duplex pipe.
struct Session {
    write: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    task: JoinHandle<Result<(), McpError>>,
    next_id: u64,
}

impl Session {
    async fn start(mcp: McpServer) -> Session {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        let task = tokio::spawn(mcp.serve(server_read, server_write));
        let (read, write) = tokio::io::split(client);
        let mut session = Session { write, lines: BufReader::new(read).lines(), task, next_id: 0 };
        let init = session
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "mcp-test", "version": "0"},
                }),
            )
            .await;
        assert_eq!(init["result"]["serverInfo"]["name"], "agent-safe", "{init}");
        assert!(init["result"]["capabilities"]["tools"].is_object(), "{init}");
        session.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
        session
    }

    async fn send_line(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
        self.write.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("no answer within 30 s")
            .unwrap()
            .expect("the server closed its output");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request and returns the response with its id.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&message.to_string()).await;
        loop {
            let answer = self.recv().await;
            if answer["id"] == json!(id) {
                return answer;
            }
            assert!(answer.get("id").is_none(), "an answer to another request: {answer}");
        }
    }

    /// Calls a tool; returns the `result` (a protocol error fails the test).
    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer =
            self.request("tools/call", json!({"name": tool, "arguments": arguments})).await;
        assert!(answer.get("error").is_none(), "{answer}");
        answer["result"].clone()
    }

    /// Closes the client's side and waits for the server to return.
    async fn close(self) -> Result<(), McpError> {
        drop(self.write);
        drop(self.lines);
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap()
    }
}

fn restart(target: &str) -> Value {
    let (ns, name) = target.split_once('/').unwrap();
    json!({"action": "restart-deployment", "target": target,
           "params": {"namespace": ns, "deployment": name}})
}

/// The text of a tool result's content blocks, joined.
fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_tool_error(result: &Value, needle: &str) {
    assert_eq!(result["isError"], true, "{result}");
    assert!(text(result).contains(needle), "`{needle}` not in {}", text(result));
}

#[tokio::test]
async fn tools_list_is_the_catalog_as_json_schema() {
    let project = Project::new();
    let token = project.token("deploy-bot", time::Duration::hours(1));
    let mcp = McpServer::new(project.server(CallerAuth::Required), Some(token)).unwrap();
    let registry = project.server(CallerAuth::Required).agent_safe().registry().clone();
    let mut session = Session::start(mcp).await;
    let listed = session.request("tools/list", json!({})).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOLS);

    for tool in &tools[1..3] {
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        // Started with an identity token: no `caller` argument.
        assert!(schema["properties"].get("caller").is_none(), "{schema}");
        let actions: Vec<&str> = schema["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let catalog: Vec<&str> = registry.names().collect();
        assert_eq!(actions, catalog);
        assert_eq!(schema["allOf"].as_array().unwrap().len(), catalog.len());
        for action in registry.iter() {
            let def = action.definition();
            let params = &schema["$defs"][def.name.as_str()];
            assert_eq!(params["additionalProperties"], false, "{}", def.name);
            let props = params["properties"].as_object().unwrap();
            assert_eq!(
                props.keys().collect::<Vec<_>>(),
                def.parameters.iter().map(|p| &p.name).collect::<Vec<_>>(),
                "{}",
                def.name
            );
            let required: Vec<&str> =
                def.parameters.iter().filter(|p| p.required).map(|p| p.name.as_str()).collect();
            assert_eq!(params["required"], json!(required), "{}", def.name);
            for p in &def.parameters {
                let s = &props[&p.name];
                assert_eq!(s["type"], p.kind.as_str(), "{}.{}", def.name, p.name);
                let Some(c) = &p.constraints else { continue };
                if let Some(max) = c.max_length {
                    assert_eq!(s["maxLength"], max, "{}.{}", def.name, p.name);
                }
                if let Some(min) = c.min_length {
                    assert_eq!(s["minLength"], min, "{}.{}", def.name, p.name);
                }
                if let Some(min) = c.min_value {
                    assert_eq!(s["minimum"].as_f64(), Some(min), "{}.{}", def.name, p.name);
                }
                if let Some(max) = c.max_value {
                    assert_eq!(s["maximum"].as_f64(), Some(max), "{}.{}", def.name, p.name);
                }
                if let Some(pattern) = &c.pattern {
                    let anchored = format!("^(?:{pattern})$");
                    assert!(
                        s["pattern"] == json!(anchored) || s["x-agent-safe-pattern"] == **pattern,
                        "{}.{}: {s}",
                        def.name,
                        p.name
                    );
                }
                if let Some(allowed) = &c.allowed
                    && p.kind == agent_safe_registry::ParamType::String
                {
                    assert_eq!(s["enum"], json!(allowed), "{}.{}", def.name, p.name);
                }
            }
        }
    }
    // The catalog's scale-deployment: an integer with bounds, strings with a pattern.
    let scale = &tools[1]["inputSchema"]["$defs"]["scale-deployment"]["properties"];
    assert_eq!(scale["replicas"]["type"], "integer");
    assert_eq!(scale["replicas"]["minimum"], 0);
    assert_eq!(scale["replicas"]["maximum"], 100);
    assert_eq!(scale["namespace"]["pattern"], "^(?:^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)$");
    assert_eq!(tools[2]["inputSchema"]["properties"]["dry_run"]["type"], "boolean");
    assert_eq!(tools[2]["annotations"]["destructiveHint"], true);

    // list_actions: the definitions with their params schema.
    let listed = session.call("list_actions", json!({"risk": "medium"})).await;
    let actions = listed["structuredContent"]["actions"].as_array().unwrap();
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|a| a["risk_class"] == "medium"), "{listed}");
    let scale = actions.iter().find(|a| a["name"] == "scale-deployment").unwrap();
    assert_eq!(scale["params_schema"]["properties"]["replicas"]["maximum"], 100);
    assert_tool_error(&session.call("list_actions", json!({"risk": "huge"})).await, "risk");
    session.close().await.unwrap();
}

#[tokio::test]
async fn every_tool_and_the_audit_log_afterwards() {
    let project = Project::new();
    let token = project.token("deploy-bot", time::Duration::hours(1));
    let mcp = McpServer::new(project.server(CallerAuth::Required), Some(token.clone())).unwrap();
    assert_eq!(mcp.agent_id(), Some("deploy-bot"));
    let mut session = Session::start(mcp).await;
    let mut checks = 0;

    // ALLOW with a ticket: the Decision JSON of `check --json-output`.
    let allow = session.call("check_action", restart("dev/test-app")).await;
    checks += 1;
    assert_eq!(allow["isError"], false, "{allow}");
    let decision = &allow["structuredContent"];
    assert_eq!(decision["result"], "allow", "{decision}");
    assert_eq!(decision["caller"], "deploy-bot");
    assert_eq!(decision["policy_matched"], "allow-dev");
    assert!(decision["ticket"]["token"].as_str().is_some_and(|t| t.split('.').count() == 3));
    let keys: Vec<&str> = decision.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: Decision = serde_json::from_value(decision.clone()).unwrap();
    let cli_json = serde_json::to_value(&expected).unwrap();
    assert_eq!(*decision, cli_json);
    assert_eq!(keys[..3], ["result", "reason", "action"]);
    // The text block carries the same JSON for clients without structured content.
    assert_eq!(serde_json::from_str::<Value>(&text(&allow)).unwrap(), *decision);

    // DENY (no rule matches prod): a value, not an error.
    let deny = session.call("check_action", restart("prod/api-server")).await;
    checks += 1;
    assert_eq!(deny["isError"], false, "{deny}");
    assert_eq!(deny["structuredContent"]["result"], "deny");
    assert!(deny["structuredContent"]["ticket"].is_null());

    // REQUIRE_APPROVAL opens an approval request; its status is pending.
    let approval = session.call("check_action", restart("staging/api-server")).await;
    checks += 1;
    assert_eq!(approval["structuredContent"]["result"], "require_approval", "{approval}");
    let request_id = approval["structuredContent"]["request_id"].as_str().unwrap().to_owned();
    let status = session.call("request_approval_status", json!({"request_id": request_id})).await;
    assert_eq!(status["isError"], false, "{status}");
    assert_eq!(status["structuredContent"]["status"], "pending", "{status}");
    assert_eq!(status["structuredContent"]["request_id"], request_id.as_str());
    assert_tool_error(
        &session.call("request_approval_status", json!({"request_id": "nope"})).await,
        "approval request `nope` not found",
    );

    // execute_action refuses anything not ALLOW, returning the (recorded) decision.
    let refused = session.call("execute_action", restart("staging/api-server")).await;
    checks += 1;
    assert_tool_error(&refused, "not executed: the decision is REQUIRE_APPROVAL");
    assert_eq!(refused["structuredContent"]["executed"], false);
    assert_eq!(refused["structuredContent"]["decision"]["result"], "require_approval");
    let refused = session.call("execute_action", restart("prod/api-server")).await;
    checks += 1;
    assert_tool_error(&refused, "not executed: the decision is DENY");

    // ALLOW: run once through the runner with the dry-run executor, audited.
    let ran = session.call("execute_action", restart("dev/test-app")).await;
    checks += 1;
    assert_eq!(ran["isError"], false, "{ran}");
    let out = &ran["structuredContent"];
    assert_eq!(out["executed"], true);
    assert_eq!(out["decision"]["result"], "allow");
    assert_eq!(out["execution"]["executor_type"], "dry-run", "{out}");
    assert_eq!(out["execution"]["status"], "skipped", "{out}");
    assert_eq!(out["execution"]["dry_run"], false);
    // `dry_run: true`: reported, nothing executed, the ticket left unused.
    let mut args = restart("dev/test-app");
    args["dry_run"] = json!(true);
    let dry = session.call("execute_action", args).await;
    checks += 1;
    assert_eq!(dry["structuredContent"]["executed"], false, "{dry}");
    assert_eq!(dry["structuredContent"]["execution"]["dry_run"], true, "{dry}");

    // Bad input: tool errors with clear messages. A malformed check is still recorded (DENY).
    let unknown = session.call("check_action", json!({"action": "restart-deploymnet"})).await;
    checks += 1;
    assert_tool_error(
        &unknown,
        "unknown action `restart-deploymnet`; did you mean `restart-deployment`?",
    );
    assert_eq!(unknown["structuredContent"]["result"], "deny");
    let mut bad = restart("dev/test-app");
    bad["params"]["namespace"] = json!(7);
    let bad = session.call("check_action", bad).await;
    checks += 1;
    assert_tool_error(&bad, "invalid params for `restart-deployment`: Parameter 'namespace'");
    assert_eq!(bad["structuredContent"]["result"], "deny");
    // Arguments of the wrong shape are refused before anything is decided.
    for (args, needle) in [
        (json!({"action": 5}), "invalid arguments for `check_action`: invalid type"),
        (json!({"target": "dev/test-app"}), "missing field `action`"),
        (json!({"action": "restart-deployment", "params": [1]}), "invalid type: sequence"),
        (json!({"action": "restart-deployment", "verb": "x"}), "unknown field `verb`"),
        (json!({"action": "restart-deployment", "caller": "someone-else"}), "contradicts"),
    ] {
        assert_tool_error(&session.call("check_action", args).await, needle);
    }
    assert_tool_error(
        &session.call("request_approval_status", json!({})).await,
        "missing field `request_id`",
    );

    // An unknown tool is a JSON-RPC error; the session goes on.
    let answer = session.request("tools/call", json!({"name": "rm_rf", "arguments": {}})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("unknown tool `rm_rf`"));

    // Malformed lines: a parse error (-32700) for non-JSON, -32600 for JSON that is not a
    // JSON-RPC message; the server keeps serving.
    session.send_line("{this is not json").await;
    let parse = session.recv().await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], Value::Null);
    session.send_line(r#"{"jsonrpc":"2.0","id":"x","method":5}"#).await;
    let invalid = session.recv().await;
    assert_eq!(invalid["error"]["code"], -32600, "{invalid}");
    let ping = session.request("ping", json!({})).await;
    assert!(ping["result"].is_object(), "{ping}");

    // The identity token expires: calls are refused (nothing recorded), not a crash.
    project.clock.advance(time::Duration::hours(2));
    assert_tool_error(
        &session.call("check_action", restart("dev/test-app")).await,
        "no longer verifies",
    );
    session.close().await.unwrap();

    // One decision event per check (plus, as in the CLI, one per approval request opened),
    // all for the token's agent; the log verifies.
    let events = project.audit_events();
    let (opened, decisions): (Vec<_>, Vec<_>) = events
        .iter()
        .filter(|e| e.event_type == EventType::Decision)
        .partition(|e| e.reason.starts_with("Approval requested: "));
    assert_eq!(decisions.len(), checks, "{decisions:#?}");
    assert_eq!(opened.len(), 2, "{opened:#?}");
    assert!(decisions.iter().all(|e| e.caller == "deploy-bot"));
    assert_eq!(events.iter().filter(|e| e.event_type == EventType::Execution).count(), 1);
    let report = project.server(CallerAuth::Required).agent_safe().verify_audit().unwrap().unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.entries, events.len());
}

#[tokio::test]
async fn identity_rules_at_start_up_and_anonymous_callers() {
    let project = Project::new();
    // Required by default: no token, or a forged or expired one, does not start.
    let required = project.server(CallerAuth::Required);
    assert!(matches!(McpServer::new(required.clone(), None), Err(McpError::IdentityRequired)));
    let forged = IdentityManager::new(
        SigningKey::hs256_from_str("another-secret-0123456789abcdef01234567").unwrap(),
        "agent-safe",
        project.clock.clone(),
    )
    .create_token("mallory", "mallory", &[], &[], time::Duration::hours(1))
    .unwrap();
    let err = McpServer::new(required.clone(), Some(forged)).unwrap_err();
    assert!(matches!(err, McpError::InvalidToken(_)), "{err}");
    let expired = project.token("deploy-bot", time::Duration::seconds(-60));
    assert!(matches!(McpServer::new(required, Some(expired)), Err(McpError::InvalidToken(_))));

    // Anonymous allowed: the tools take a `caller` argument, used as in the CLI.
    let mcp = McpServer::new(project.server(CallerAuth::AllowAnonymous), None).unwrap();
    let mut session = Session::start(mcp).await;
    let listed = session.request("tools/list", json!({})).await;
    assert_eq!(
        listed["result"]["tools"][1]["inputSchema"]["properties"]["caller"]["type"],
        "string"
    );
    let mut args = restart("dev/test-app");
    args["caller"] = json!("ci-bot");
    let decided = session.call("check_action", args).await;
    assert_eq!(decided["structuredContent"]["caller"], "ci-bot", "{decided}");
    assert_eq!(decided["structuredContent"]["result"], "allow");
    session.close().await.unwrap();
}

/// Issue #13: an unsigned (`alg: none`) token is refused as the session identity, and as a
/// tool's `caller` it is a DENY, never a caller named after the token text.
#[tokio::test]
async fn issue_13_alg_none_caller_is_denied_over_mcp() {
    const ALG_NONE: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhZ2VudF9pZCI6ImRlcGxveS1ib3Qi\
LCJyb2xlcyI6WyJkZXBsb3llciJdLCJpc3MiOiJhZ2VudC1zYWZlIiwiaWF0IjoxNzcxOTM0NDAwLCJleHAiOjQxMDI0NDQ4MDB9.";
    let project = Project::new();
    let err = McpServer::new(project.server(CallerAuth::Required), Some(ALG_NONE.to_owned()))
        .unwrap_err();
    assert!(matches!(err, McpError::InvalidToken(_)), "{err}");

    let mcp = McpServer::new(project.server(CallerAuth::AllowAnonymous), None).unwrap();
    let mut session = Session::start(mcp).await;
    let mut args = restart("dev/test-app");
    args["caller"] = json!(ALG_NONE);
    let decided = session.call("check_action", args).await;
    let d = &decided["structuredContent"];
    assert_eq!(
        (d["result"].as_str(), d["caller"].as_str()),
        (Some("deny"), Some("anonymous")),
        "{decided}"
    );
    assert!(d["reason"].as_str().unwrap().starts_with("Invalid caller identity: "), "{decided}");
    session.close().await.unwrap();
}

#[tokio::test]
async fn closing_stdin_before_initializing_ends_the_session() {
    let project = Project::new();
    let token = project.token("deploy-bot", time::Duration::hours(1));
    let mcp = McpServer::new(project.server(CallerAuth::Required), Some(token)).unwrap();
    let (client, server) = tokio::io::duplex(1024);
    let (r, w) = tokio::io::split(server);
    let task = tokio::spawn(mcp.serve(r, w));
    drop(client);
    let result = tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap();
    assert!(matches!(result, Err(McpError::Initialize(_))), "{result:?}");
}
