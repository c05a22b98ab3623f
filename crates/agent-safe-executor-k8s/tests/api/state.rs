//! get_state: exactly the declared state fields, under the action YAML's names, in the
//! declared order; secrets never carry values.

use serde_json::{Value, json};

use crate::harness::*;

const DEPLOY: &str = "/apis/apps/v1/namespaces/prod/deployments/web";
const POD: &str = "/api/v1/namespaces/prod/pods/web-6f7d8c9b5d-x7k2p";

/// Reads `fields` of `action` with the fake answering `steps`, and compares the JSON text
/// (so the order of the fields counts too).
#[track_caller]
fn check(action: &str, p: Value, fields: &[&str], steps: Vec<(Req, Reply)>, expected: Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (api, client) = FakeApi::new();
        for (req, rep) in steps {
            api.on(req, rep);
        }
        let state = get_state(&executor(client), action, &params(p), fields).await.unwrap();
        assert_eq!(Value::Object(state).to_string(), expected.to_string(), "{action} {fields:?}");
        api.verify();
    });
}

fn ok(name: &str) -> Reply {
    reply(200, fixture(name))
}

#[test]
fn deployment_fields() {
    let p = || json!({"namespace": "prod", "deployment": "web"});
    let d = || vec![(get(DEPLOY), ok("deployment-web.json"))];
    check(
        "scale-deployment",
        p(),
        &["replicas", "available_replicas", "ready_replicas"],
        d(),
        json!({"replicas": 3, "available_replicas": 3, "ready_replicas": 3}),
    );
    check(
        "restart-deployment",
        p(),
        &["generation", "observed_generation", "available_replicas"],
        d(),
        json!({"generation": 4, "observed_generation": 4, "available_replicas": 3}),
    );
    check(
        "rollout-status",
        p(),
        &["updated_replicas", "ready_replicas", "available_replicas"],
        d(),
        json!({"updated_replicas": 3, "ready_replicas": 3, "available_replicas": 3}),
    );
    let images = json!({"web": "nginx:1.27", "envoy": "envoyproxy/envoy:v1.31.0"});
    check(
        "rollout-undo",
        p(),
        &["revision", "images"],
        d(),
        json!({"revision": 3, "images": images}),
    );
    check(
        "update-image",
        p(),
        &["images", "revision"],
        d(),
        json!({"images": images, "revision": 3}),
    );
    // Only what is declared, and nothing for names the executor does not know.
    check("scale-deployment", p(), &["colour", "replicas"], d(), json!({"replicas": 3}));
}

#[test]
fn counts_the_api_omits_when_zero_are_zero() {
    let mut scaled_down = fixture("deployment-web.json");
    scaled_down["spec"]["replicas"] = json!(0);
    scaled_down["status"] = json!({"observedGeneration": 5});
    check(
        "scale-deployment",
        json!({"namespace": "prod", "deployment": "web"}),
        &["replicas", "available_replicas", "ready_replicas"],
        vec![(get(DEPLOY), reply(200, scaled_down))],
        json!({"replicas": 0, "available_replicas": 0, "ready_replicas": 0}),
    );
}

#[test]
fn pod_fields_and_no_fields() {
    check(
        "delete-pod",
        json!({"namespace": "prod", "pod": "web-6f7d8c9b5d-x7k2p"}),
        &["phase", "owner"],
        vec![(get(POD), ok("pod-web.json"))],
        json!({"phase": "Running", "owner": "ReplicaSet/web-6f7d8c9b5d"}),
    );
    // get-pod-logs declares no state fields: no request at all.
    check("get-pod-logs", json!({"namespace": "prod", "pod": "p"}), &[], vec![], json!({}));
}

#[test]
fn namespace_fields_and_absent_objects() {
    let ns = "/api/v1/namespaces/staging";
    let p = || json!({"namespace": "staging"});
    check(
        "create-namespace",
        p(),
        &["exists", "phase"],
        vec![(get(ns), not_found("namespaces", "staging"))],
        json!({"exists": false}),
    );
    check(
        "create-namespace",
        p(),
        &["exists", "phase"],
        vec![(get(ns), ok("namespace-staging.json"))],
        json!({"exists": true, "phase": "Active"}),
    );
    check(
        "delete-namespace",
        p(),
        &["phase"],
        vec![(get(ns), ok("namespace-staging-terminating.json"))],
        json!({"phase": "Terminating"}),
    );
    check(
        "delete-namespace",
        p(),
        &["phase"],
        vec![(get(ns), not_found("namespaces", "staging"))],
        json!({}),
    );
}

#[test]
fn node_fields() {
    let node = "/api/v1/nodes/worker-1";
    let p = || json!({"node": "worker-1"});
    check(
        "cordon-node",
        p(),
        &["unschedulable"],
        vec![(get(node), ok("node-worker-1.json"))],
        json!({"unschedulable": false}),
    );
    check(
        "uncordon-node",
        p(),
        &["unschedulable"],
        vec![(get(node), ok("node-worker-1-cordoned.json"))],
        json!({"unschedulable": true}),
    );
    check(
        "drain-node",
        p(),
        &["unschedulable", "pod_count"],
        vec![
            (get(node), ok("node-worker-1.json")),
            (get("/api/v1/pods?&fieldSelector=spec.nodeName%3Dworker-1"), ok("pods-worker-1.json")),
        ],
        json!({"unschedulable": false, "pod_count": 5}),
    );
}

#[test]
fn configmap_fields() {
    let cm = "/api/v1/namespaces/prod/configmaps/app-config";
    let data = json!({"FEATURE_X": "off", "LOG_LEVEL": "info"});
    check(
        "get-configmap",
        json!({"namespace": "prod", "configmap": "app-config"}),
        &["data"],
        vec![(get(cm), ok("configmap-app-config.json"))],
        json!({"data": data}),
    );
    let p = |key: &str| json!({"namespace": "prod", "configmap": "app-config", "key": key, "value": "x"});
    check(
        "update-configmap",
        p("LOG_LEVEL"),
        &["data", "previous_value"],
        vec![(get(cm), ok("configmap-app-config.json"))],
        json!({"data": data, "previous_value": "info"}),
    );
    check(
        "update-configmap",
        p("NEW_KEY"),
        &["data", "previous_value"],
        vec![(get(cm), ok("configmap-app-config.json"))],
        json!({"data": data}),
    );
}

#[test]
fn secret_values_never_leave_the_executor() {
    check(
        "get-secret",
        json!({"namespace": "prod", "secret": "db-credentials"}),
        &["data", "keys", "type"],
        vec![(
            get("/api/v1/namespaces/prod/secrets/db-credentials"),
            ok("secret-db-credentials.json"),
        )],
        json!({
            "data": {"password": "[redacted]", "username": "[redacted]"},
            "keys": ["password", "username"],
            "type": "Opaque"
        }),
    );
}

#[test]
fn hpa_fields() {
    let hpa = "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web";
    let p = || json!({"namespace": "prod", "hpa": "web"});
    check(
        "scale-hpa",
        p(),
        &["min_replicas", "max_replicas", "current_replicas"],
        vec![(get(hpa), ok("hpa-web.json"))],
        json!({"min_replicas": 2, "max_replicas": 10, "current_replicas": 3}),
    );
    // No memory metric: the field is absent, as the action YAML says.
    check(
        "update-hpa-limits",
        p(),
        &["target_cpu_percent", "target_memory_percent"],
        vec![(get(hpa), ok("hpa-web.json"))],
        json!({"target_cpu_percent": 70}),
    );
}

#[test]
fn network_policy_fields() {
    let np = "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies/deny-ingress";
    let p = || json!({"namespace": "prod", "policy_name": "deny-ingress", "policy": "{}"});
    check(
        "apply-network-policy",
        p(),
        &["exists", "spec"],
        vec![(get(np), not_found("networkpolicies.networking.k8s.io", "deny-ingress"))],
        json!({"exists": false}),
    );
    check(
        "apply-network-policy",
        p(),
        &["exists", "spec"],
        vec![(get(np), ok("networkpolicy-deny-ingress.json"))],
        json!({"exists": true, "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}),
    );
}

#[tokio::test]
async fn api_refusals_are_errors() {
    let (api, client) = FakeApi::new();
    api.on(get(DEPLOY), forbidden("deployments.apps", "web", "get", Some("prod")));
    let p = params(json!({"namespace": "prod", "deployment": "web"}));
    let err =
        get_state(&executor(client), "scale-deployment", &p, &["replicas"]).await.unwrap_err();
    assert_eq!(
        err.message,
        "kubernetes API error (403 Forbidden): deployments.apps \"web\" is forbidden: User \"system:serviceaccount:agent-safe:executor\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"prod\""
    );
    api.verify();
}
