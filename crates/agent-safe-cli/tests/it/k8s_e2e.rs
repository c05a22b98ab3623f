//! `agent-safe runner execute --executor k8s` end to end across processes, against a loopback
//! HTTP/1.1 server started by the test that plays the Kubernetes API server: check → ticket →
//! execute (the exact API requests, answered with fixture objects) → replay refused without an
//! API call → the audit log verifies with decision, execution and state capture linked; a
//! 403 from the API server reported as FAILURE and audited; and the Kubernetes vault of
//! agent-safe.yaml minting the action's own ServiceAccount token (TokenRequest) that the
//! action then runs on.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use agent_safe_testkit::{Reply, Request, TestServer};
use serde_json::{Value, json};

use crate::common::cli as catalog_cli;

const KEY: &str = "cli-k8s-e2e-key-0123456789abcdef0123456789abcdef";
/// The `kubernetes` credential the vault hands out (the happy path).
const VAULT_TOKEN: &str = "vault-k8s-token-9f3a61c07d";
/// The kubeconfig user's own token (ambient credentials, the 403 case).
const KUBECONFIG_TOKEN: &str = "kubeconfig-token-52c0de17";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/dev/deployments/test-app";
const SCALE: &str = "/apis/apps/v1/namespaces/dev/deployments/test-app/scale";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/dev/horizontalpodautoscalers";
/// The TokenRequest of the action's own ServiceAccount, in the vault's namespace.
const TOKEN_REQUEST: &str =
    "/api/v1/namespaces/agent-safe/serviceaccounts/agent-safe-scale-deployment/token";
/// The token the API server mints for that ServiceAccount.
const MINTED_TOKEN: &str = "minted-sa-token-0d5e8a91b2";

// --- the fake API server ---------------------------------------------------------------------

/// One request as the fake API server received it.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: String,
    path: String,
    /// The raw query string; `None` without a `?`.
    query: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    /// The body as JSON; `None` when empty.
    body: Option<Value>,
}

impl From<&Request> for Req {
    fn from(r: &Request) -> Self {
        Req {
            method: r.method.clone(),
            path: r.path_only().to_owned(),
            query: r.query().map(str::to_owned),
            content_type: r.header("content-type").map(str::to_owned),
            authorization: r.header("authorization").map(str::to_owned),
            body: r.json(),
        }
    }
}

/// A status code and a JSON body.
type Answer = (u16, Value);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The shared loopback test server playing the API server: answers as `answer` says and
/// records every request as a [`Req`].
struct FakeApiServer(TestServer);

impl FakeApiServer {
    fn start(answer: impl Fn(&Req) -> Answer + Send + Sync + 'static) -> Self {
        let server = TestServer::start(move |_, request| {
            let (status, body) = answer(&Req::from(request));
            Reply::Json(status, body)
        });
        FakeApiServer(server.unwrap())
    }

    /// A server playing [`Cluster::new`]`(scale_forbidden)`, and that cluster.
    fn cluster(scale_forbidden: bool) -> (Arc<Cluster>, Self) {
        let cluster = Arc::new(Cluster::new(scale_forbidden));
        let server = Self::start({
            let cluster = cluster.clone();
            move |req| cluster.answer(req)
        });
        (cluster, server)
    }

    fn url(&self) -> String {
        self.0.base_url()
    }

    fn requests(&self) -> Vec<Req> {
        self.0.requests().iter().map(Req::from).collect()
    }

    /// Stops the server; the protocol problems it saw (a connection that broke HTTP/1.1, a
    /// body that is not JSON). The tests assert there are none.
    fn stop(mut self) -> Vec<String> {
        self.0.stop();
        let mut problems = self.0.problems();
        for r in self.0.requests() {
            if !r.body.is_empty() && r.json().is_none() {
                problems.push(format!("{} {}: body is not JSON: {:?}", r.method, r.path, r.body));
            }
        }
        problems
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent-safe-executor-k8s/tests/data")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `Status` object as the API server sends it for a failure.
fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    })
}

const FORBIDDEN: &str = "deployments.apps \"test-app\" is forbidden: User \"system:serviceaccount:agent-safe:executor\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"dev\"";

/// Namespace `dev` of a cluster: deployment `test-app` (the fixture `deployment-web.json`
/// under that name: 3 replicas, all available) and no autoscaler. A PATCH of the deployment's
/// scale subresource sets `spec.replicas` and bumps the generation, as the API server does
/// (the status changes later, when the controller acts), unless RBAC forbids it.
struct Cluster {
    deployment: Mutex<Value>,
    scale_forbidden: bool,
}

impl Cluster {
    fn new(scale_forbidden: bool) -> Self {
        let mut deployment = fixture("deployment-web.json");
        deployment["metadata"]["name"] = json!("test-app");
        deployment["metadata"]["namespace"] = json!("dev");
        Self { deployment: Mutex::new(deployment), scale_forbidden }
    }

    fn answer(&self, req: &Req) -> Answer {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", DEPLOYMENT) => (200, lock(&self.deployment).clone()),
            ("GET", HPAS) => (
                200,
                json!({
                    "kind": "HorizontalPodAutoscalerList",
                    "apiVersion": "autoscaling/v2",
                    "metadata": {"resourceVersion": "6121"},
                    "items": [],
                }),
            ),
            ("PATCH", SCALE) if self.scale_forbidden => (
                403,
                status(
                    403,
                    "Forbidden",
                    FORBIDDEN,
                    json!({"name": "test-app", "group": "apps", "kind": "deployments"}),
                ),
            ),
            ("PATCH", SCALE) => self.scale(req),
            ("POST", TOKEN_REQUEST) => {
                let mut answer = req.body.clone().unwrap_or_default();
                answer["status"] =
                    json!({"token": MINTED_TOKEN, "expirationTimestamp": "2030-01-01T00:10:00Z"});
                (201, answer)
            }
            _ => (
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    json!({}),
                ),
            ),
        }
    }

    fn scale(&self, req: &Req) -> Answer {
        let Some(replicas) = req.body.as_ref().and_then(|b| b["spec"]["replicas"].as_i64()) else {
            return (400, status(400, "BadRequest", "spec.replicas is required", json!({})));
        };
        let mut deployment = lock(&self.deployment);
        deployment["spec"]["replicas"] = json!(replicas);
        let generation = deployment["metadata"]["generation"].as_i64().unwrap() + 1;
        deployment["metadata"]["generation"] = json!(generation);
        deployment["metadata"]["resourceVersion"] = json!("48230");
        let mut scale = fixture("scale-web.json");
        scale["metadata"]["name"] = json!("test-app");
        scale["metadata"]["namespace"] = json!("dev");
        scale["spec"]["replicas"] = json!(replicas);
        scale["status"]["replicas"] = deployment["status"]["replicas"].clone();
        (200, scale)
    }
}

/// Every request `runner execute` makes for `scale-deployment` to 5 replicas, in order, each
/// authenticated with `token`.
fn expected_requests(token: &str) -> Vec<Req> {
    let req = |method: &str, path: &str, query: Option<&str>| Req {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        content_type: None,
        authorization: Some(format!("Bearer {token}")),
        body: None,
    };
    vec![
        // Precheck `deployment-exists`.
        req("GET", DEPLOYMENT, None),
        // Precheck `no-autoscaler`: the deployment, then the namespace's autoscalers.
        req("GET", DEPLOYMENT, None),
        req("GET", HPAS, Some("")),
        // The state before.
        req("GET", DEPLOYMENT, None),
        // The action: a merge patch of the scale subresource, with the field manager.
        Req {
            content_type: Some("application/merge-patch+json".to_owned()),
            body: Some(json!({"spec": {"replicas": 5}})),
            ..req("PATCH", SCALE, Some("&fieldManager=agent-safe"))
        },
        // The state after.
        req("GET", DEPLOYMENT, None),
    ]
}

// --- the CLI ---------------------------------------------------------------------------------

/// [`catalog_cli`] without `KUBECONFIG`: only the test's kubeconfig may reach the executor.
fn cli(dir: &Path) -> Command {
    let mut cmd = catalog_cli(dir);
    cmd.env_remove("KUBECONFIG");
    cmd
}

/// An ALLOW ticket from `agent-safe check` to scale `dev/test-app` to 5 replicas: the token
/// and the decision's audit id.
fn check(dir: &Path) -> (String, String) {
    let params = json!({"namespace": "dev", "deployment": "test-app", "replicas": 5});
    let out = cli(dir)
        .args(["check", "scale-deployment", "-t", "dev/test-app", "-c", "deploy-bot"])
        .args(["-p", &params.to_string(), "--signing-key", KEY, "--audit-log", "audit.jsonl"])
        .arg("--json-output")
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

/// A kubeconfig whose current context points where nothing listens and whose `loopback`
/// context points at `url` (so `--context` must be honoured), with the user's own token.
fn kubeconfig(dir: &Path, url: &str) -> PathBuf {
    // Bound and dropped: nothing listens on that loopback port any more.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: elsewhere\nclusters:\n\
         - name: loopback\n  cluster: {{server: \"{url}\"}}\n\
         - name: elsewhere\n  cluster: {{server: \"http://{dead}\"}}\n\
         users:\n- name: executor\n  user: {{token: {KUBECONFIG_TOKEN}}}\n\
         contexts:\n- name: loopback\n  context: {{cluster: loopback, user: executor}}\n\
         - name: elsewhere\n  context: {{cluster: elsewhere, user: executor}}\n"
    );
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `runner execute TOKEN --executor k8s` on the kubeconfig's `loopback` context, plus `extra`.
fn execute(dir: &Path, token: &str, kubeconfig: &Path, extra: &[&str]) -> Output {
    cli(dir)
        .args(["runner", "execute", token, "--executor", "k8s", "--signing-key", KEY])
        .args(["--audit-log", "audit.jsonl", "--context", "loopback", "--kubeconfig"])
        .arg(kubeconfig)
        .args(extra)
        .output()
        .unwrap()
}

/// The audit log of `dir`, after `agent-safe audit verify` has passed on it.
fn verified_audit_log(dir: &Path) -> Vec<Value> {
    let verify = cli(dir).args(["audit", "verify", "audit.jsonl"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    for token in [VAULT_TOKEN, KUBECONFIG_TOKEN, MINTED_TOKEN] {
        assert!(!text.contains(token), "a token was audited");
    }
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[track_caller]
fn assert_no_token(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for token in [VAULT_TOKEN, KUBECONFIG_TOKEN, MINTED_TOKEN] {
            assert!(!text.contains(token), "{text}");
        }
    }
}

// --- the tests -------------------------------------------------------------------------------

#[test]
fn check_execute_replay_verify_against_a_loopback_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (cluster, server) = FakeApiServer::cluster(false);
    let kubeconfig = kubeconfig(dir, &server.url());
    let (token, decision_id) = check(dir);
    assert_eq!(server.requests(), [], "`check` does not call the API");

    // Second process: executes with the vault's credential (a bearer token for the cluster of
    // the kubeconfig's context).
    let vault = format!("kubernetes={VAULT_TOKEN}");
    let out = execute(dir, &token, &kubeconfig, &["--vault-cred", &vault, "--json-output"]);
    assert_no_token(&out);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["output"], "deployment `dev/test-app` scaled to 5 replicas (currently 3)");
    assert_eq!(result["error"], Value::Null);
    assert_eq!(result["executor_type"], "k8s");
    assert_eq!(result["audit_id"], decision_id.as_str());
    assert_eq!(
        result["precheck_results"],
        json!([
            {"name": "deployment-exists", "passed": true,
             "message": "deployment `dev/test-app` exists", "advisory": true},
            {"name": "no-autoscaler", "passed": true,
             "message": "no autoscaler manages deployment `dev/test-app`", "advisory": true},
        ])
    );
    assert_eq!(
        result["before_state"],
        json!({"replicas": 3, "available_replicas": 3, "ready_replicas": 3})
    );
    // The API server has accepted the new count; the pods are not there yet.
    assert_eq!(
        result["after_state"],
        json!({"replicas": 5, "available_replicas": 3, "ready_replicas": 3})
    );
    assert_eq!(result["credential_source"], "vault");
    let requests = server.requests();
    assert_eq!(requests, expected_requests(VAULT_TOKEN));
    assert_eq!(lock(&cluster.deployment)["spec"]["replicas"], 5);

    // Third process: the same ticket again is refused before any API call.
    let replay = execute(dir, &token, &kubeconfig, &["--vault-cred", &vault, "--json-output"]);
    assert_no_token(&replay);
    assert_eq!(replay.status.code(), Some(1));
    let refused: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(refused["status"], "error");
    assert_eq!(
        refused["error"],
        "Ticket validation failed: Ticket has already been used (replay detected)"
    );
    assert_eq!(server.requests(), requests, "the replay made API calls");

    // The audit log verifies and links decision, execution and state capture.
    let events = verified_audit_log(dir);
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
    assert_eq!(execution["executor_type"], "k8s");
    assert_eq!(execution["credential_source"], "vault");
    assert_eq!(execution["state_capture_event_id"], events[2]["event_id"]);
    assert_eq!(capture["execution_event_id"], events[1]["event_id"]);
    assert_eq!(capture["before_state"], result["before_state"]);
    assert_eq!(capture["after_state"], result["after_state"]);
    assert_eq!(capture["diff"]["changed"], json!({"replicas": {"old": 3, "new": 5}}));
    assert_eq!(
        events[3]["context"]["ticket_error"],
        "Ticket has already been used (replay detected)"
    );

    assert_eq!(server.stop(), Vec::<String>::new(), "protocol problems");
}

#[test]
fn an_api_refusal_is_a_failure_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (cluster, server) = FakeApiServer::cluster(true);
    let kubeconfig = kubeconfig(dir, &server.url());
    let (token, decision_id) = check(dir);

    // With the kubeconfig user's own token, which may read the deployment but not scale it.
    let out = execute(dir, &token, &kubeconfig, &["--ambient-credentials"]);
    assert_no_token(&out);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = format!("kubernetes API error (403 Forbidden): {FORBIDDEN}");
    assert!(stdout.starts_with("FAILURE — scale-deployment on dev/test-app\n"), "{stdout}");
    assert!(stdout.contains(&format!("\n  error:      {error}\n")), "{stdout}");
    assert!(stdout.contains("\n  executor:   k8s\n"), "{stdout}");
    assert!(stdout.contains("\n  credential: ambient\n"), "{stdout}");
    // The same requests, the PATCH refused; the state is still read afterwards.
    assert_eq!(server.requests(), expected_requests(KUBECONFIG_TOKEN));
    assert_eq!(lock(&cluster.deployment)["spec"]["replicas"], 3);

    let events = verified_audit_log(dir);
    let kinds: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["decision", "execution", "state_capture"]);
    let execution = &events[1];
    assert_eq!(execution["correlation_id"], decision_id.as_str());
    assert_eq!(execution["decision"], "deny");
    assert_eq!(execution["reason"], format!("Execution failure: {error}"));
    assert_eq!(execution["context"]["status"], "failure");
    assert_eq!(execution["context"]["error"], error.as_str());
    assert_eq!(execution["context"]["output"], "");
    assert_eq!(execution["context"]["credential_source"], "ambient");
    assert_eq!(events[2]["context"]["diff"]["changed"], json!({}));
    assert_eq!(events[2]["context"]["after_state"]["replicas"], 3);

    assert_eq!(server.stop(), Vec::<String>::new(), "protocol problems");
}

#[test]
fn the_kubernetes_vault_mints_the_actions_own_token_and_the_action_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (cluster, server) = FakeApiServer::cluster(false);
    kubeconfig(dir, &server.url());
    // One configuration for every front: the vault connects with the kubeconfig's own user
    // (which may create tokens), `require_scoped` refuses anything but a scoped credential.
    let catalog = crate::common::catalog();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {KEY}\ncredentials:\n  require_scoped: true\n  vault:\n    \
             type: kubernetes\n    kubeconfig: kubeconfig.yaml\n    context: loopback\n    \
             namespace: agent-safe\n    audiences: [https://kubernetes.default.svc]\n",
            catalog.join("actions").display(),
            catalog.join("policies").display(),
            catalog.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
    let agent_safe = |args: &[&str]| {
        let mut cmd = crate::common::bin(dir);
        cmd.env_remove("KUBECONFIG").args(args);
        cmd.output().unwrap()
    };
    let params = json!({"namespace": "dev", "deployment": "test-app", "replicas": 5});
    let out = agent_safe(&[
        "check",
        "scale-deployment",
        "-t",
        "dev/test-app",
        "-c",
        "deploy-bot",
        "-p",
        &params.to_string(),
        "--json-output",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = decision["ticket"]["token"].as_str().unwrap();

    let out = agent_safe(&[
        "runner",
        "execute",
        token,
        "--executor",
        "k8s",
        "--kubeconfig",
        "kubeconfig.yaml",
        "--context",
        "loopback",
        "--json-output",
    ]);
    assert_no_token(&out);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "success", "{result}");
    assert_eq!(result["credential_source"], "vault");

    // First the vault's TokenRequest, as the vault's own identity: the action's
    // ServiceAccount, the configured audience, the API server's minimum lifetime (the
    // catalog's TTL is 300 s). Then every call of the action on the minted token.
    let requests = server.requests();
    assert_eq!(
        requests[0],
        Req {
            method: "POST".to_owned(),
            path: TOKEN_REQUEST.to_owned(),
            query: Some(String::new()),
            content_type: Some("application/json".to_owned()),
            authorization: Some(format!("Bearer {KUBECONFIG_TOKEN}")),
            body: Some(json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "metadata": {},
                "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 600},
            })),
        }
    );
    assert_eq!(requests[1..], expected_requests(MINTED_TOKEN));
    assert_eq!(lock(&cluster.deployment)["spec"]["replicas"], 5);
    let events = verified_audit_log(dir);
    assert_eq!(events[1]["context"]["credential_source"], "vault");

    assert_eq!(server.stop(), Vec::<String>::new(), "protocol problems");
}
