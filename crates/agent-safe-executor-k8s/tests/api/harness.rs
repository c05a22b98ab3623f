//! A scripted fake Kubernetes API server for the executor tests: a stateful
//! `tower::service_fn` handed to `kube::Client::new` that records every request (method,
//! path and query, content type, JSON body) and answers from a script of fixture responses.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use agent_safe_core::{
    ActionCall, ExecutionOutcome, ExecutionStatus, Executor, ExecutorError, ManualClock, Params,
    PreCheckResult, PrecheckSpec, StateMap,
};
use agent_safe_executor_k8s::K8sExecutor;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use time::macros::datetime;

/// One request as the fake API server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    pub method: String,
    pub uri: String,
    pub content_type: Option<String>,
    pub body: Option<Value>,
    /// The `Accept` header when it asks for something other than plain JSON.
    pub accept: Option<String>,
}

/// A GET (or any body-less request).
pub fn get(uri: &str) -> Req {
    Req { method: "GET".into(), uri: uri.into(), content_type: None, body: None, accept: None }
}

/// A request with a JSON body and its content type.
pub fn send(method: &str, uri: &str, content_type: &str, body: Value) -> Req {
    Req {
        method: method.into(),
        uri: uri.into(),
        content_type: Some(content_type.into()),
        body: Some(body),
        accept: None,
    }
}

pub const JSON: &str = "application/json";
pub const MERGE: &str = "application/merge-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// A JSON answer.
pub fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body: body.to_string().into_bytes(), content_type: JSON }
}

/// A plain-text answer (pod logs).
pub fn text(body: &str) -> Reply {
    Reply { status: 200, body: body.as_bytes().to_vec(), content_type: "text/plain" }
}

#[derive(Default)]
struct Script {
    expected: Vec<Req>,
    replies: VecDeque<Reply>,
    seen: Vec<Req>,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    script: Arc<Mutex<Script>>,
}

impl FakeApi {
    /// A fake and a client talking to it.
    pub fn new() -> (Self, kube::Client) {
        let fake = FakeApi::default();
        let script = fake.script.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let script = script.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body = if bytes.is_empty() {
                    None
                } else {
                    Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    }))
                };
                let seen = Req {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body,
                    accept: parts
                        .headers
                        .get(http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .filter(|v| *v != "application/json")
                        .map(str::to_owned),
                };
                let mut script = script.lock().unwrap();
                script.seen.push(seen.clone());
                let reply = script.replies.pop_front().unwrap_or_else(|| {
                    reply(
                        500,
                        status(
                            500,
                            "InternalError",
                            &format!("unexpected request {seen:?}"),
                            json!({}),
                        ),
                    )
                });
                let response = Response::builder()
                    .status(reply.status)
                    .header(http::header::CONTENT_TYPE, reply.content_type)
                    .body(Body::from(reply.body))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        let client = kube::Client::new(service, "default");
        (fake, client)
    }

    /// Expects `request` next and answers it with `reply`.
    pub fn on(&self, request: Req, reply: Reply) -> &Self {
        let mut script = self.script.lock().unwrap();
        script.expected.push(request);
        script.replies.push_back(reply);
        self
    }

    /// Asserts that exactly the expected requests were made, in order.
    #[track_caller]
    pub fn verify(&self) {
        let script = self.script.lock().unwrap();
        assert_eq!(script.seen, script.expected, "requests sent (left) vs expected (right)");
    }
}

/// A fixture file from `tests/data/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A `Status` object exactly as the API server sends it for a failure.
pub fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
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

/// The API server's 404 for `resource` (e.g. `deployments.apps`) called `name`.
pub fn not_found(resource: &str, name: &str) -> Reply {
    let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
    reply(
        404,
        status(
            404,
            "NotFound",
            &format!("{resource} \"{name}\" not found"),
            json!({"name": name, "group": group, "kind": kind}),
        ),
    )
}

/// The API server's 403 for the executor's service account.
pub fn forbidden(resource: &str, name: &str, verb: &str, namespace: Option<&str>) -> Reply {
    let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
    let scope = match namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_owned(),
    };
    reply(
        403,
        status(
            403,
            "Forbidden",
            &format!(
                "{resource} \"{name}\" is forbidden: User \"system:serviceaccount:agent-safe:executor\" cannot {verb} resource \"{kind}\" in API group \"{group}\"{scope}"
            ),
            json!({"name": name, "group": group, "kind": kind}),
        ),
    )
}

/// The API server's 409 for a stale resourceVersion.
pub fn conflict(resource: &str, name: &str) -> Reply {
    let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
    reply(
        409,
        status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            json!({"name": name, "group": group, "kind": kind}),
        ),
    )
}

/// An executor on `client` with the clock at 2026-02-24 12:00:00 UTC.
pub fn executor(client: kube::Client) -> K8sExecutor {
    K8sExecutor::with_client(
        client,
        Arc::new(ManualClock::new(datetime!(2026-02-24 12:00:00.25 UTC))),
    )
}

/// Params from a JSON object.
pub fn params(value: Value) -> Params {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object, got {other}"),
    }
}

fn call<'a>(action: &'a str, params: &'a Params, fields: &'a [String]) -> ActionCall<'a> {
    ActionCall { action, target: "test-target", params, credential: None, state_fields: fields }
}

pub async fn execute(ex: &K8sExecutor, action: &str, p: &Params) -> ExecutionOutcome {
    ex.execute(call(action, p, &[])).await
}

pub async fn get_state(
    ex: &K8sExecutor,
    action: &str,
    p: &Params,
    fields: &[&str],
) -> Result<StateMap, ExecutorError> {
    let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    ex.get_state(call(action, p, &fields)).await
}

pub async fn prechecks(
    ex: &K8sExecutor,
    action: &str,
    p: &Params,
    names: &[&str],
) -> Vec<PreCheckResult> {
    let specs: Vec<PrecheckSpec> = names
        .iter()
        .map(|n| PrecheckSpec {
            name: (*n).to_owned(),
            description: String::new(),
            blocking: false,
        })
        .collect();
    ex.run_prechecks(call(action, p, &[]), &specs).await
}

/// Asserts a success with `output`.
#[track_caller]
pub fn assert_success(outcome: &ExecutionOutcome, output: &str) {
    assert_eq!(
        (outcome.status, outcome.output.as_str(), outcome.error.as_deref()),
        (ExecutionStatus::Success, output, None)
    );
}

/// Asserts a failure (the API or the cluster refused) with `error`.
#[track_caller]
pub fn assert_failure(outcome: &ExecutionOutcome, error: &str) {
    assert_eq!((outcome.status, outcome.error.as_deref()), (ExecutionStatus::Failure, Some(error)));
}
