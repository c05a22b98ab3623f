//! drain-node: cordon, then evictions for every pod but DaemonSet and mirror pods; PDB
//! refusals (429) retried until the timeout; pods that could not be evicted are a failure.

use agent_safe_core::ExecutionStatus;
use serde_json::{Value, json};

use crate::harness::*;

const CORDON: &str = "/api/v1/nodes/worker-1?&fieldManager=agent-safe";
const PODS: &str = "/api/v1/pods?&fieldSelector=spec.nodeName%3Dworker-1";

fn cordon() -> (Req, Reply) {
    (
        send("PATCH", CORDON, STRATEGIC, json!({"spec": {"unschedulable": true}})),
        reply(200, fixture("node-worker-1-cordoned.json")),
    )
}

fn list_pods(fixture_name: &str) -> (Req, Reply) {
    (get(PODS), reply(200, fixture(fixture_name)))
}

/// The Eviction request for one pod: a complete `policy/v1` object.
pub fn eviction(namespace: &str, name: &str) -> Req {
    send(
        "POST",
        &format!("/api/v1/namespaces/{namespace}/pods/{name}/eviction?"),
        JSON,
        json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}
        }),
    )
}

fn evicted() -> Reply {
    reply(201, fixture("eviction-created.json"))
}

fn pdb_refusal() -> Reply {
    reply(429, fixture("status-429-pdb.json"))
}

const WEB: (&str, &str) = ("prod", "web-6f7d8c9b5d-x7k2p");
const API: (&str, &str) = ("prod", "api-58d7c9f6b4-q9w8e");
const DEBUG: (&str, &str) = ("default", "debug-shell");

/// The full happy path (also used by the action matrix).
pub fn happy_steps() -> Vec<(Req, Reply)> {
    vec![
        cordon(),
        list_pods("pods-worker-1.json"),
        (eviction(WEB.0, WEB.1), evicted()),
        (eviction(API.0, API.1), evicted()),
        (eviction(DEBUG.0, DEBUG.1), evicted()),
    ]
}

async fn run(
    p: Value,
    steps: Vec<(Req, Reply)>,
) -> (agent_safe_core::ExecutionOutcome, std::time::Duration) {
    let (api, client) = FakeApi::new();
    for (req, rep) in steps {
        api.on(req, rep);
    }
    let start = tokio::time::Instant::now();
    let outcome = execute(&executor(client), "drain-node", &params(p)).await;
    let took = start.elapsed();
    api.verify();
    (outcome, took)
}

#[tokio::test(start_paused = true)]
async fn leaves_daemonset_and_mirror_pods_and_evicts_the_rest() {
    let (outcome, took) = run(json!({"node": "worker-1"}), happy_steps()).await;
    assert_success(
        &outcome,
        "node `worker-1` cordoned; 3 pods evicted, 1 DaemonSet pod left in place, 1 mirror pod left in place (evicted: `prod/web-6f7d8c9b5d-x7k2p`, `prod/api-58d7c9f6b4-q9w8e`, `default/debug-shell`)",
    );
    assert_eq!(took.as_secs(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_pdb_refusal_that_clears_is_retried() {
    let steps = vec![
        cordon(),
        list_pods("pods-worker-1.json"),
        (eviction(WEB.0, WEB.1), pdb_refusal()),
        (eviction(API.0, API.1), evicted()),
        (eviction(DEBUG.0, DEBUG.1), evicted()),
        (eviction(WEB.0, WEB.1), pdb_refusal()),
        (eviction(WEB.0, WEB.1), evicted()),
    ];
    let (outcome, took) = run(json!({"node": "worker-1", "timeout": 60}), steps).await;
    assert_success(
        &outcome,
        "node `worker-1` cordoned; 3 pods evicted, 1 DaemonSet pod left in place, 1 mirror pod left in place (evicted: `prod/api-58d7c9f6b4-q9w8e`, `default/debug-shell`, `prod/web-6f7d8c9b5d-x7k2p`)",
    );
    assert_eq!(took.as_secs(), 10, "two 5 s pauses before the third attempt");
}

#[tokio::test(start_paused = true)]
async fn a_pdb_refusal_that_never_clears_fails_at_the_timeout() {
    let mut steps = vec![
        cordon(),
        list_pods("pods-worker-1.json"),
        (eviction(WEB.0, WEB.1), pdb_refusal()),
        (eviction(API.0, API.1), evicted()),
        (eviction(DEBUG.0, DEBUG.1), evicted()),
    ];
    // Retries every 5 s: at 5, 10, …, 30 s; the next would start after the 30 s timeout.
    for _ in 0..6 {
        steps.push((eviction(WEB.0, WEB.1), pdb_refusal()));
    }
    let (outcome, took) = run(json!({"node": "worker-1", "timeout": 30}), steps).await;
    assert_eq!(outcome.status, ExecutionStatus::Failure);
    assert_eq!(
        outcome.output,
        "node `worker-1` cordoned; 2 pods evicted, 1 DaemonSet pod left in place, 1 mirror pod left in place (evicted: `prod/api-58d7c9f6b4-q9w8e`, `default/debug-shell`)"
    );
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "node `worker-1` not drained: 1 pod could not be evicted: `prod/web-6f7d8c9b5d-x7k2p` (still refused after 30s: kubernetes API error (429 TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.)"
        )
    );
    assert_eq!(took.as_secs(), 30);
}

#[tokio::test(start_paused = true)]
async fn without_ignore_daemonsets_nothing_is_evicted() {
    let steps = vec![cordon(), list_pods("pods-worker-1.json")];
    let (outcome, _) = run(json!({"node": "worker-1", "ignore_daemonsets": false}), steps).await;
    assert_failure(
        &outcome,
        "node `worker-1` cordoned but not drained: DaemonSet-managed pods cannot be evicted (`kube-system/kube-proxy-8xv2d`); set `ignore_daemonsets` to leave them in place",
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_with_only_daemonset_and_mirror_pods_drains_at_once() {
    let steps = vec![cordon(), list_pods("pods-worker-1-daemonsets-only.json")];
    let (outcome, _) = run(json!({"node": "worker-1"}), steps).await;
    assert_success(
        &outcome,
        "node `worker-1` cordoned; 0 pods evicted, 1 DaemonSet pod left in place, 1 mirror pod left in place",
    );
}

#[tokio::test(start_paused = true)]
async fn gone_pods_count_as_evicted_and_other_refusals_fail() {
    let steps = vec![
        cordon(),
        list_pods("pods-worker-1.json"),
        (eviction(WEB.0, WEB.1), not_found("pods", WEB.1)),
        (eviction(API.0, API.1), forbidden("pods", API.1, "create", Some("prod"))),
        (eviction(DEBUG.0, DEBUG.1), evicted()),
    ];
    let (outcome, took) = run(json!({"node": "worker-1"}), steps).await;
    assert_eq!(outcome.status, ExecutionStatus::Failure);
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            "node `worker-1` not drained: 1 pod could not be evicted: `prod/api-58d7c9f6b4-q9w8e` (kubernetes API error (403 Forbidden): pods \"api-58d7c9f6b4-q9w8e\" is forbidden: User \"system:serviceaccount:agent-safe:executor\" cannot create resource \"pods\" in API group \"\" in the namespace \"prod\")"
        )
    );
    assert_eq!(took.as_secs(), 0, "no retry for anything but 429");
}
