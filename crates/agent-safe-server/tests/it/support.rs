//! A server on 127.0.0.1:0 over a temporary project (the catalog's actions and inventory, small
//! policies of the test's own), a manual clock, and helpers to call it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_safe::ManualClock;
use agent_safe_server::{CallerAuth, Server, ServerConfig, ServerError, ServerEvent, Source};
use agent_safe_tickets::{IdentityManager, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "server-test-secret-0123456789abcdef0123";

/// Policies revision "A": dev restarts allowed by `allow-dev-a`, staging needs approval.
pub const POLICIES_A: &str = "rules:
  - name: allow-dev-a
    match: {actions: [restart-deployment], targets: {environments: [dev]}}
    decision: allow
    reason: dev restarts are fine (a)
  - name: approve-staging
    match: {actions: [restart-deployment], targets: {environments: [staging]}}
    decision: require_approval
    reason: staging needs a human
";

/// Policies revision "B": the dev rule is renamed and denies.
pub const POLICIES_B: &str = "rules:
  - name: deny-dev-b
    match: {actions: [restart-deployment], targets: {environments: [dev]}}
    decision: deny
    reason: dev restarts are frozen (b)
";

/// A temporary project: the catalog's actions and inventory, `policies`, and an
/// `agent-safe.yaml` with an audit log, [`SECRET`] as the signing key and an approval store.
pub fn project(policies: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&catalog().join("actions"), &dir.path().join("actions"));
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/main.yaml"), policies).unwrap();
    std::fs::copy(catalog().join("inventory.yaml"), dir.path().join("inventory.yaml")).unwrap();
    std::fs::write(
        dir.path().join("agent-safe.yaml"),
        format!(
            "registry: actions\npolicies: policies\ninventory: inventory.yaml\n\
             audit_log: audit.jsonl\nsigning_key: {SECRET}\naudit_durability: buffered\n\
             approvals:\n  store: approvals.jsonl\n"
        ),
    )
    .unwrap();
    dir
}

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A running server and what a test needs around it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub ids: IdentityManager,
    pub events: Arc<std::sync::Mutex<Vec<ServerEvent>>>,
    /// Signalled after every event.
    pub event_seen: Arc<tokio::sync::Notify>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

/// Settings a test changes.
pub fn config() -> ServerConfig {
    ServerConfig::default()
}

impl Env {
    pub async fn start() -> Env {
        Env::with(config()).await
    }

    pub async fn with(config: ServerConfig) -> Env {
        Env::with_policies(config, POLICIES_A).await
    }

    pub async fn with_policies(config: ServerConfig, policies: &str) -> Env {
        Env::with_setup(config, policies, |_| {}).await
    }

    /// [`Env::with_policies`], with `setup` run on the project directory before the server
    /// loads it.
    pub async fn with_setup(
        mut config: ServerConfig,
        policies: &str,
        setup: impl FnOnce(&Path),
    ) -> Env {
        let dir = project(policies);
        setup(dir.path());
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-03-01 9:00 UTC)));
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let event_seen = Arc::new(tokio::sync::Notify::new());
        let (sink, seen) = (events.clone(), event_seen.clone());
        config.events = Some(agent_safe_server::EventSink(Arc::new(move |e: &ServerEvent| {
            sink.lock().unwrap().push(e.clone());
            seen.notify_waiters();
        })));
        let source =
            Source::new().config_file(dir.path().join("agent-safe.yaml")).clock(clock.clone());
        let server = Server::new(source, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let s = server.clone();
        let task = tokio::spawn(async move {
            s.serve(listener, async {
                let _ = rx.await;
            })
            .await
        });
        let ids = IdentityManager::new(
            SigningKey::hs256_from_str(SECRET).unwrap(),
            "agent-safe",
            clock.clone(),
        );
        Env {
            dir,
            server,
            addr,
            base: format!("{scheme}://{addr}"),
            client: agent_safe_http::builder().unwrap().build().unwrap(),
            clock,
            ids,
            events,
            event_seen,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// An identity token for `agent` with `roles`, valid for an hour of the manual clock.
    pub fn token(&self, agent: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.ids.create_token(agent, agent, &roles, &[], time::Duration::hours(1)).unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Calls the API; returns the status, the revision header and the body as JSON (`Null`
    /// when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let revision = resp
            .headers()
            .get("x-agent-safe-policy-revision")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        (status, revision, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::POST, path, token, Some(body)).await;
        (s, v)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (s, _, v) = self.call(Method::GET, path, token, None).await;
        (s, v)
    }

    /// Waits (at most 30 s) for the `n`th event (counting from 1) that `pred` accepts.
    pub async fn wait_event(&self, n: usize, pred: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let notified = self.event_seen.notified();
                if let Some(e) = self.events.lock().unwrap().iter().filter(|e| pred(e)).nth(n - 1) {
                    return e.clone();
                }
                notified.await;
            }
        })
        .await;
        let events = self.events.lock().unwrap().clone();
        assert!(found.is_ok(), "no such event within 30 s; events: {events:?}");
        found.unwrap()
    }

    /// Stops the server (graceful) and waits for `serve` to return.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task).await.unwrap().unwrap().unwrap();
        }
    }

    /// The decision events of the audit log.
    pub fn decision_events(&self) -> Vec<agent_safe_core::AuditEvent> {
        agent_safe_audit::read_events(&self.path("audit.jsonl"))
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .filter(|e| e.event_type == agent_safe_core::EventType::Decision)
            .collect()
    }
}

/// A check of `restart-deployment` on `target` (namespace and deployment from it).
pub fn restart(target: &str) -> Value {
    let (ns, name) = target.split_once('/').unwrap();
    serde_json::json!({
        "action": "restart-deployment",
        "target": target,
        "params": {"namespace": ns, "deployment": name},
    })
}

/// The server with tokens optional.
pub fn anonymous() -> ServerConfig {
    ServerConfig { auth: CallerAuth::AllowAnonymous, ..config() }
}

/// Asserts an error body's code.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
}
