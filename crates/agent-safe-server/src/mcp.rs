//! The Model Context Protocol tool server behind `agent-safe mcp`: `list_actions`,
//! `check_action`, `execute_action` and `request_approval_status` over stdio (rmcp), on the
//! same loaded configuration, hot reload, executor and identity rules as `agent-safe serve`.
//! See `docs/mcp.md`.
//!
//! ```no_run
//! use agent_safe_server::mcp::McpServer;
//! use agent_safe_server::{Server, ServerConfig, Source};
//!
//! # async fn run() -> Result<(), agent_safe_server::mcp::McpError> {
//! let server = Server::new(Source::new(), ServerConfig::default())?;
//! let token = std::env::var("AGENT_SAFE_IDENTITY_TOKEN").ok();
//! McpServer::new(server, token)?.serve_stdio().await
//! # }
//! ```

mod framing;
pub mod schema;

use std::fmt;
use std::sync::Arc;

use agent_safe::approvals::{ApprovalError, StoreError};
use agent_safe::report::ExecuteActionReport;
use agent_safe::{CheckRequest, Decision, Error, Params, RequestCaller};
use agent_safe_core::{DecisionResult, ExecutionStatus, REDACTED, RiskClass};
use agent_safe_tickets::VerifiedIdentity;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::source::Loaded;
use crate::{CallerAuth, Server, ServerError};

/// The tools, in the order `tools/list` gives them.
pub const TOOLS: [&str; 4] =
    ["list_actions", "check_action", "execute_action", "request_approval_status"];

/// How long the end of a session waits for audit shipping.
const SHIPPING_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the MCP server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// Identity is required and no identity token was given.
    #[error(
        "`agent-safe mcp` needs the agent's identity token: set `AGENT_SAFE_IDENTITY_TOKEN` or \
         pass --identity-token (or --allow-anonymous for local development)"
    )]
    IdentityRequired,
    /// The identity token given at start-up does not verify.
    #[error("the identity token does not verify: {0}")]
    InvalidToken(String),
    /// An identity token was given but no signing key is configured to verify it.
    #[error(
        "an identity token was given but no signing key is configured to verify it: set \
         `signing_key` or `signing_key_file` in agent-safe.yaml"
    )]
    NoSigningKey,
    /// The client did not complete the MCP initialization.
    #[error("the MCP client did not initialize the session: {0}")]
    Initialize(String),
    /// The audit log could not be synced at the end of the session.
    #[error("cannot sync the audit log: {0}")]
    AuditSync(#[source] agent_safe_audit::AuditError),
    /// Reading from or writing to the client failed.
    #[error("stdio: {0}")]
    Io(#[source] std::io::Error),
}

/// The verified identity token of the agent this server speaks for.
#[derive(Clone)]
struct Identity {
    token: String,
    agent_id: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("token", &REDACTED)
            .field("agent_id", &self.agent_id)
            .finish()
    }
}

/// The MCP tool server: one agent's session over one stdio connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct McpServer {
    server: Server,
    identity: Option<Identity>,
}

impl McpServer {
    /// Wraps a loaded [`Server`] for the agent whose identity token is `identity_token`.
    /// The token is verified now (and again, for expiry, on every call). Without a token the
    /// server must allow anonymous callers ([`CallerAuth::AllowAnonymous`]); the tools then
    /// take a `caller` argument, used as in the CLI.
    pub fn new(server: Server, identity_token: Option<String>) -> Result<Self, McpError> {
        let token = identity_token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let identity = match token {
            None if server.shared.config.auth == CallerAuth::Required => {
                return Err(McpError::IdentityRequired);
            }
            None => None,
            Some(token) => {
                let loaded = server.current();
                let identity = verify(&loaded, &token).map_err(|e| match e {
                    TokenProblem::NoKey => McpError::NoSigningKey,
                    TokenProblem::Invalid(m) => McpError::InvalidToken(m),
                })?;
                Some(Identity { token, agent_id: identity.agent_id.to_string() })
            }
        };
        Ok(Self { server, identity })
    }

    /// The agent id of the identity token, if one was given.
    pub fn agent_id(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.agent_id.as_str())
    }

    /// The tools as `tools/list` describes them, built from the catalog serving now.
    pub fn tools(&self) -> Vec<Tool> {
        let loaded = self.server.current();
        let registry = loaded.safe.registry();
        let caller = self.identity.is_none();
        let summary: String = registry
            .iter()
            .map(|a| {
                let d = a.definition();
                let first = d.description.split(". ").next().unwrap_or_default().trim();
                format!(
                    "\n- {} ({} risk): {}",
                    d.name.as_str(),
                    d.risk_class.as_str(),
                    first.trim_end_matches('.')
                )
            })
            .collect();
        let check =
            schema::action_input_schema(registry, schema::Extras { caller, dry_run: false });
        let execute =
            schema::action_input_schema(registry, schema::Extras { caller, dry_run: true });
        let risks: Vec<&str> = RiskClass::ALL.iter().map(|r| r.as_str()).collect();
        let list = object(json!({
            "type": "object",
            "properties": {
                "tag": {"type": "string", "description": "Only actions carrying this tag"},
                "risk": {"type": "string", "enum": risks, "description": "Only actions of this risk class"},
            },
            "additionalProperties": false,
        }));
        let status = object(json!({
            "type": "object",
            "properties": {
                "request_id": {
                    "type": "string",
                    "description": "The approval request id (`request_id` of a REQUIRE_APPROVAL decision)",
                },
            },
            "required": ["request_id"],
            "additionalProperties": false,
        }));
        vec![
            Tool::new(
                TOOLS[0],
                "The actions this agent may ask for: name, description, risk class, target \
                 types and parameters (types and constraints).",
                list,
            )
            .annotate(ToolAnnotations::new().read_only(true).open_world(false)),
            Tool::new(
                TOOLS[1],
                format!(
                    "Ask whether an action on a target is allowed. Returns the decision (result \
                     allow, deny or require_approval, reason, risk, audit id) and, on allow, \
                     the signed single-use execution ticket. Every check is recorded in the \
                     audit log. Actions:{summary}"
                ),
                check,
            )
            .annotate(ToolAnnotations::new().read_only(true).idempotent(false).open_world(false)),
            Tool::new(
                TOOLS[2],
                format!(
                    "Check an action and, only when the decision is allow, run it once through \
                     the runner with this server's executor. Anything else is refused and the \
                     decision returned. Actions:{summary}"
                ),
                execute,
            )
            .annotate(
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(true)
                    .idempotent(false)
                    .open_world(true),
            ),
            Tool::new(
                TOOLS[3],
                "The status of an approval request (pending, approved, denied, expired) with \
                 its approvals so far.",
                status,
            )
            .annotate(ToolAnnotations::new().read_only(true).open_world(false)),
        ]
    }

    /// Serves one MCP session on newline-delimited JSON-RPC over `input` / `output` until the
    /// client closes `input`.
    pub async fn serve<R, W>(self, input: R, output: W) -> Result<(), McpError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (from_rmcp, to_rmcp) = tokio::io::split(ours);
        let (errors_tx, errors_rx) = tokio::sync::mpsc::channel(64);
        let server = self.server.clone();
        let inbound = tokio::spawn(framing::inbound(input, to_rmcp, errors_tx));
        let outbound = tokio::spawn(framing::outbound(from_rmcp, output, errors_rx));
        let served = match ServiceExt::serve(self, theirs).await {
            Ok(running) => running.waiting().await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        inbound.abort();
        let written = outbound.await;
        // Buffered audit appends become durable before the session ends, and the session's
        // entries get a bounded time to reach the audit shipping destinations (what is left
        // is shipped by the next process: the log is the outbox).
        let loaded = server.current();
        let synced = tokio::task::spawn_blocking(move || {
            let synced = loaded.safe.audit_log().map(|l| l.sync());
            if let Some(checkpoints) = &server.shared.checkpoints
                && let Err(e) = checkpoints.sign_pending()
            {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "agent-safe mcp: audit checkpoint: {e}");
            }
            if let Some(checkpoints) = &server.shared.checkpoints
                && !checkpoints.flush_shipping(SHIPPING_FLUSH)
            {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "agent-safe mcp: checkpoint shipping: not everything was shipped within {}s",
                    SHIPPING_FLUSH.as_secs()
                );
            }
            if !server.flush_audit_shipping(SHIPPING_FLUSH) {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "agent-safe mcp: audit shipping: not every destination has the session's \
                     entries after {}s; the next process that ships sends them",
                    SHIPPING_FLUSH.as_secs()
                );
            }
            synced
        })
        .await;
        if let Ok(Some(Err(e))) = synced {
            return Err(McpError::AuditSync(e));
        }
        if let Ok(Err(e)) = written {
            // The client went away (broken pipe) or the output failed.
            return Err(McpError::Io(e));
        }
        served.map_err(McpError::Initialize)
    }

    /// Serves one MCP session on the process's stdin and stdout.
    pub async fn serve_stdio(self) -> Result<(), McpError> {
        let (input, output) = rmcp::transport::stdio();
        match self.serve(input, output).await {
            // The client closed stdin without initializing (e.g. a probe): not an error.
            Err(McpError::Initialize(m)) if m.contains("connection closed") => Ok(()),
            other => other,
        }
    }

    fn check_request(&self, args: &ActionArgs) -> Result<CheckRequest, String> {
        let mut request =
            CheckRequest::new(args.action.clone()).params(args.params.clone().unwrap_or_default());
        request.target = args.target.clone();
        request.ticket_id = args.ticket_id.clone();
        request.correlation_id = args.correlation_id.clone();
        let caller = match (&self.identity, &args.caller) {
            (None, caller) => caller.clone(),
            (Some(id), Some(c)) if *c != id.token && *c != id.agent_id => {
                return Err(format!(
                    "`caller` `{c}` contradicts the identity token this server was started \
                     with, which is for `{}`; leave `caller` out",
                    id.agent_id
                ));
            }
            (Some(id), _) => Some(id.token.clone()),
        };
        request.caller = caller.as_deref().and_then(RequestCaller::from_input);
        Ok(request)
    }

    /// Re-verifies the start-up identity token (expiry, revocation of the key) against the
    /// configuration serving now.
    fn authenticate(&self, loaded: &Loaded) -> Result<(), String> {
        let Some(identity) = &self.identity else { return Ok(()) };
        verify(loaded, &identity.token).map(|_| ()).map_err(|e| match e {
            TokenProblem::NoKey => {
                "the identity token cannot be verified: no signing key is configured".to_owned()
            }
            TokenProblem::Invalid(m) => format!(
                "the identity token this server was started with no longer verifies ({m}); \
                 restart `agent-safe mcp` with a fresh token"
            ),
        })
    }

    async fn list_actions(&self, args: JsonObject) -> Result<CallToolResult, String> {
        let args: ListArgs = parse(TOOLS[0], args)?;
        let loaded = self.server.current();
        self.authenticate(&loaded)?;
        let risk: Option<RiskClass> = args
            .risk
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| format!("invalid arguments for `list_actions`: risk: {e}"))?;
        let registry = loaded.safe.registry();
        let actions: Vec<Value> = registry
            .iter()
            .filter(|a| args.tag.as_ref().is_none_or(|t| a.definition().tags.contains(t)))
            .filter(|a| risk.is_none_or(|r| a.risk_class() == r))
            .map(|a| {
                let mut value = serde_json::to_value(a.definition()).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("params_schema".into(), schema::params_schema(a.definition()));
                }
                value
            })
            .collect();
        Ok(CallToolResult::structured(json!({ "actions": actions })))
    }

    /// Checks (audited); the decision and whether the request itself was malformed.
    async fn decide(&self, loaded: &Arc<Loaded>, args: &ActionArgs) -> Result<Checked, String> {
        let request = self.check_request(args)?;
        let registry = loaded.safe.registry();
        let invalid = match registry.get(&args.action) {
            None => {
                let names = registry.names();
                let hint = agent_safe_registry::suggest::did_you_mean(&args.action, names)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| "; list_actions shows the catalog".to_owned());
                Some(format!("unknown action `{}`{hint}", args.action))
            }
            Some(action) => {
                let errors = action.validate_params(&request.params);
                (!errors.is_empty())
                    .then(|| format!("invalid params for `{}`: {}", args.action, errors.join("; ")))
            }
        };
        let l = loaded.clone();
        let decision = tokio::task::spawn_blocking(move || l.safe.check(&request))
            .await
            .map_err(|e| format!("the check failed: {e}"))?
            .map_err(|e| format!("the check failed and nothing was decided: {e}"))?;
        self.server.shared.notify_shipping();
        Ok(Checked { decision, invalid })
    }

    async fn check_action(&self, args: JsonObject) -> Result<CallToolResult, String> {
        let args: ActionArgs = parse(TOOLS[1], args)?;
        if args.dry_run.is_some() {
            return Err("invalid arguments for `check_action`: unknown field `dry_run` (it \
                        belongs to execute_action)"
                .to_owned());
        }
        let loaded = self.server.current();
        self.authenticate(&loaded)?;
        let checked = self.decide(&loaded, &args).await?;
        let value = to_value(&checked.decision);
        Ok(match checked.invalid {
            Some(message) => with_message(CallToolResult::structured_error(value), message),
            None => CallToolResult::structured(value),
        })
    }

    async fn execute_action(&self, args: JsonObject) -> Result<CallToolResult, String> {
        let args: ActionArgs = parse(TOOLS[2], args)?;
        let loaded = self.server.current();
        self.authenticate(&loaded)?;
        let checked = self.decide(&loaded, &args).await?;
        let decision = checked.decision;
        let refuse = |message: String, decision: &Decision| {
            let value = to_value(&ExecuteActionReport::refused(decision));
            with_message(CallToolResult::structured_error(value), message)
        };
        if let Some(message) = checked.invalid {
            return Ok(refuse(format!("not executed: {message}"), &decision));
        }
        if decision.result != DecisionResult::Allow {
            let mut message = format!(
                "not executed: the decision is {} ({})",
                decision.result.as_str().to_uppercase(),
                decision.reason
            );
            if let Some(id) = &decision.request_id {
                message.push_str(&format!(
                    "; approval request `{id}` is open: ask request_approval_status, and call \
                     execute_action again once it is approved"
                ));
            }
            return Ok(refuse(message, &decision));
        }
        let Some(ticket) = &decision.ticket else {
            return Ok(refuse(
                "not executed: the decision is ALLOW but no signing key is configured to issue \
                 the execution ticket the runner needs"
                    .to_owned(),
                &decision,
            ));
        };
        let shared = &self.server.shared;
        let options = shared.config.execute;
        let outcome = if args.dry_run.unwrap_or(false) {
            loaded.safe.dry_run(&ticket.token, options).await
        } else {
            loaded.safe.execute(&ticket.token, shared.executor.clone(), options).await
        };
        shared.notify_shipping();
        let outcome = outcome.map_err(|e| match e {
            Error::Execute(agent_safe::ExecuteError::Runner(
                agent_safe_runner::RunnerError::Audit { outcome, source },
            )) => format!(
                "the outcome ({}) could not be written to the audit log (the action may have \
                 been executed): {source}",
                outcome.result.status.as_str()
            ),
            e => format!("the execution failed: {e}"),
        })?;
        // `skipped` is a dry run (the dry-run executor, or `dry_run: true`) or a blocking
        // precheck: reported, not an error.
        let ok = !matches!(
            outcome.result.status,
            ExecutionStatus::Failure | ExecutionStatus::Timeout | ExecutionStatus::Error
        );
        let value = to_value(&ExecuteActionReport::ran(&decision, &outcome));
        Ok(if ok {
            CallToolResult::structured(value)
        } else {
            let message =
                format!("the execution ended with status `{}`", outcome.result.status.as_str());
            with_message(CallToolResult::structured_error(value), message)
        })
    }

    async fn request_approval_status(&self, args: JsonObject) -> Result<CallToolResult, String> {
        let args: StatusArgs = parse(TOOLS[3], args)?;
        let loaded = self.server.current();
        self.authenticate(&loaded)?;
        let l = loaded.clone();
        let id = args.request_id.clone();
        let request = tokio::task::spawn_blocking(move || l.safe.approval_status(&id))
            .await
            .map_err(|e| format!("the lookup failed: {e}"))?
            .map_err(|e| match e {
                Error::Approval(ApprovalError::Store(StoreError::NotFound(_)))
                | Error::Approval(ApprovalError::NotFound(_)) => {
                    format!("approval request `{}` not found", args.request_id)
                }
                e => e.to_string(),
            })?;
        let mut value = to_value(&request);
        if let Some(Value::Object(params)) = value.get_mut("params") {
            *params = loaded.safe.registry().redact_params(request.action.as_str(), params);
        }
        Ok(CallToolResult::structured(value))
    }
}

/// A check's outcome: the decision (recorded), and why the request was malformed, if it was.
struct Checked {
    decision: Decision,
    invalid: Option<String>,
}

enum TokenProblem {
    NoKey,
    Invalid(String),
}

fn verify(loaded: &Loaded, token: &str) -> Result<VerifiedIdentity, TokenProblem> {
    let manager = loaded.safe.delegations().map_err(|_| TokenProblem::NoKey)?;
    manager.verify(token).map_err(|e| TokenProblem::Invalid(e.to_string()))
}

/// The arguments of `check_action` and `execute_action`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionArgs {
    action: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    params: Option<Params>,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    ticket_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    risk: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    request_id: String,
}

fn parse<T: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<T, String> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| format!("invalid arguments for `{tool}`: {e}"))
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Puts `message` first, before the JSON text of the structured content.
fn with_message(mut result: CallToolResult, message: String) -> CallToolResult {
    result.content.insert(0, ContentBlock::text(message));
    result
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-safe", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "agent-safe governs actions on infrastructure. Call list_actions to see what \
                 you may ask for, check_action before acting (a deny or require_approval is an \
                 answer, not an error), and execute_action to run an allowed action through \
                 agent-safe's runner. Every decision is recorded in a tamper-evident audit log.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "list_actions" => self.list_actions(args).await,
            "check_action" => self.check_action(args).await,
            "execute_action" => self.execute_action(args).await,
            "request_approval_status" => self.request_approval_status(args).await,
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool `{other}`; the tools are {}", TOOLS.join(", ")),
                    None,
                ));
            }
        };
        Ok(result
            .unwrap_or_else(|message| CallToolResult::error(vec![ContentBlock::text(message)]))
            .into())
    }
}
