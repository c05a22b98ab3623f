//! Every mapped action: happy path, not found, forbidden and conflict, asserting each
//! request's method, path, query, content type and body.

use agent_safe_core::ExecutionStatus;
use serde_json::{Value, json};

use crate::harness::*;

/// One action's happy path and where the error variants strike.
struct Case {
    action: &'static str,
    params: Value,
    steps: Vec<(Req, Reply)>,
    output: &'static str,
    /// The object the action works on, as the API names it in errors (`deployments.apps`).
    resource: &'static str,
    name: &'static str,
    namespace: Option<&'static str>,
    /// The step that writes (where RBAC for the write and conflicts strike); `None` for reads.
    write_step: Option<(usize, &'static str)>,
}

const DEPLOY: &str = "/apis/apps/v1/namespaces/prod/deployments/web";
const WEB_POD: &str = "web-6f7d8c9b5d-x7k2p";

fn cases() -> Vec<Case> {
    let deployment = fixture("deployment-web.json");
    let ok = |body: Value| reply(200, body);
    vec![
        Case {
            action: "restart-deployment",
            params: json!({"namespace": "prod", "deployment": "web"}),
            steps: vec![
                (get(DEPLOY), ok(deployment.clone())),
                (
                    send(
                        "PATCH",
                        &format!("{DEPLOY}?&fieldManager=agent-safe"),
                        STRATEGIC,
                        json!({"spec": {"template": {"metadata": {"annotations": {
                            "kubectl.kubernetes.io/restartedAt": "2026-02-24T12:00:00Z"
                        }}}}}),
                    ),
                    ok(deployment.clone()),
                ),
            ],
            output: "deployment `prod/web` restarted (restartedAt 2026-02-24T12:00:00Z)",
            resource: "deployments.apps",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((1, "patch")),
        },
        Case {
            action: "scale-deployment",
            params: json!({"namespace": "prod", "deployment": "web", "replicas": 5}),
            steps: vec![(
                send(
                    "PATCH",
                    &format!("{DEPLOY}/scale?&fieldManager=agent-safe"),
                    MERGE,
                    json!({"spec": {"replicas": 5}}),
                ),
                ok(fixture("scale-web.json")),
            )],
            output: "deployment `prod/web` scaled to 5 replicas (currently 3)",
            resource: "deployments.apps",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((0, "patch")),
        },
        Case {
            action: "delete-pod",
            params: json!({"namespace": "prod", "pod": WEB_POD, "grace_period": 10}),
            steps: vec![(
                send(
                    "DELETE",
                    &format!("/api/v1/namespaces/prod/pods/{WEB_POD}?"),
                    JSON,
                    json!({"gracePeriodSeconds": 10}),
                ),
                ok(fixture("pod-web.json")),
            )],
            output: "pod `prod/web-6f7d8c9b5d-x7k2p` deleted (grace period 10s)",
            resource: "pods",
            name: WEB_POD,
            namespace: Some("prod"),
            write_step: Some((0, "delete")),
        },
        Case {
            action: "delete-namespace",
            params: json!({"namespace": "staging"}),
            steps: vec![(
                send("DELETE", "/api/v1/namespaces/staging?", JSON, json!({})),
                ok(fixture("namespace-staging-terminating.json")),
            )],
            output: "namespace `staging` deleted (phase Terminating)",
            resource: "namespaces",
            name: "staging",
            namespace: None,
            write_step: Some((0, "delete")),
        },
        Case {
            action: "create-namespace",
            params: json!({"namespace": "staging"}),
            steps: vec![(
                send(
                    "POST",
                    "/api/v1/namespaces?&fieldManager=agent-safe",
                    JSON,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging"}}),
                ),
                reply(201, fixture("namespace-staging.json")),
            )],
            output: "namespace `staging` created",
            resource: "namespaces",
            name: "staging",
            namespace: None,
            write_step: Some((0, "create")),
        },
        Case {
            action: "cordon-node",
            params: json!({"node": "worker-1"}),
            steps: vec![(
                send(
                    "PATCH",
                    "/api/v1/nodes/worker-1?&fieldManager=agent-safe",
                    STRATEGIC,
                    json!({"spec": {"unschedulable": true}}),
                ),
                ok(fixture("node-worker-1-cordoned.json")),
            )],
            output: "node `worker-1` cordoned",
            resource: "nodes",
            name: "worker-1",
            namespace: None,
            write_step: Some((0, "patch")),
        },
        Case {
            action: "uncordon-node",
            params: json!({"node": "worker-1"}),
            steps: vec![(
                send(
                    "PATCH",
                    "/api/v1/nodes/worker-1?&fieldManager=agent-safe",
                    STRATEGIC,
                    json!({"spec": {"unschedulable": false}}),
                ),
                ok(fixture("node-worker-1.json")),
            )],
            output: "node `worker-1` uncordoned",
            resource: "nodes",
            name: "worker-1",
            namespace: None,
            write_step: Some((0, "patch")),
        },
        Case {
            action: "drain-node",
            params: json!({"node": "worker-1"}),
            steps: crate::drain::happy_steps(),
            output: "node `worker-1` cordoned; 3 pods evicted, 1 DaemonSet pod left in place, 1 mirror pod left in place (evicted: `prod/web-6f7d8c9b5d-x7k2p`, `prod/api-58d7c9f6b4-q9w8e`, `default/debug-shell`)",
            resource: "nodes",
            name: "worker-1",
            namespace: None,
            write_step: Some((0, "patch")),
        },
        Case {
            action: "rollout-undo",
            params: json!({"namespace": "prod", "deployment": "web"}),
            steps: crate::rollout::undo_steps(None),
            output: "deployment `prod/web` rolled back to revision 2 (web=nginx:1.26, envoy=envoyproxy/envoy:v1.31.0)",
            resource: "deployments.apps",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((2, "patch")),
        },
        Case {
            action: "rollout-status",
            params: json!({"namespace": "prod", "deployment": "web"}),
            steps: vec![(get(DEPLOY), ok(deployment.clone()))],
            output: "deployment `prod/web`: successfully rolled out (replicas 3, updated 3, ready 3, available 3)",
            resource: "deployments.apps",
            name: "web",
            namespace: Some("prod"),
            write_step: None,
        },
        Case {
            action: "get-pod-logs",
            params: json!({"namespace": "prod", "pod": WEB_POD, "container": "main", "tail_lines": 50}),
            steps: vec![(
                get(&format!(
                    "/api/v1/namespaces/prod/pods/{WEB_POD}/log?&container=main&tailLines=50"
                )),
                text("2026-02-24T11:59:58Z GET /healthz 200\n2026-02-24T11:59:59Z GET / 200\n"),
            )],
            output: "2026-02-24T11:59:58Z GET /healthz 200\n2026-02-24T11:59:59Z GET / 200\n",
            resource: "pods",
            name: WEB_POD,
            namespace: Some("prod"),
            write_step: None,
        },
        Case {
            action: "get-configmap",
            params: json!({"namespace": "prod", "configmap": "app-config"}),
            steps: vec![(
                get("/api/v1/namespaces/prod/configmaps/app-config"),
                ok(fixture("configmap-app-config.json")),
            )],
            output: r#"{"FEATURE_X":"off","LOG_LEVEL":"info"}"#,
            resource: "configmaps",
            name: "app-config",
            namespace: Some("prod"),
            write_step: None,
        },
        Case {
            action: "get-secret",
            params: json!({"namespace": "prod", "secret": "db-credentials"}),
            steps: vec![(
                get("/api/v1/namespaces/prod/secrets/db-credentials"),
                ok(fixture("secret-db-credentials.json")),
            )],
            output: r#"{"keys":["password","username"],"type":"Opaque"}"#,
            resource: "secrets",
            name: "db-credentials",
            namespace: Some("prod"),
            write_step: None,
        },
        Case {
            action: "update-configmap",
            params: json!({"namespace": "prod", "configmap": "app-config", "key": "LOG_LEVEL", "value": "debug"}),
            steps: vec![(
                send(
                    "PATCH",
                    "/api/v1/namespaces/prod/configmaps/app-config?&fieldManager=agent-safe",
                    MERGE,
                    json!({"data": {"LOG_LEVEL": "debug"}}),
                ),
                ok(fixture("configmap-app-config-updated.json")),
            )],
            output: "configmap `prod/app-config`: key `LOG_LEVEL` set",
            resource: "configmaps",
            name: "app-config",
            namespace: Some("prod"),
            write_step: Some((0, "patch")),
        },
        Case {
            action: "update-image",
            params: json!({"namespace": "prod", "deployment": "web", "container": "web", "image": "nginx:1.28"}),
            steps: vec![
                (get(DEPLOY), ok(deployment.clone())),
                (
                    send(
                        "PATCH",
                        &format!("{DEPLOY}?&fieldManager=agent-safe"),
                        STRATEGIC,
                        json!({
                            "metadata": {"resourceVersion": "48211"},
                            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}
                        }),
                    ),
                    ok(deployment.clone()),
                ),
            ],
            output: "deployment `prod/web`: container `web` image `nginx:1.27` -> `nginx:1.28`",
            resource: "deployments.apps",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((1, "patch")),
        },
        Case {
            action: "scale-hpa",
            params: json!({"namespace": "prod", "hpa": "web", "min_replicas": 3, "max_replicas": 12}),
            steps: vec![(
                send(
                    "PATCH",
                    "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web?&fieldManager=agent-safe",
                    MERGE,
                    json!({"spec": {"minReplicas": 3, "maxReplicas": 12}}),
                ),
                ok(fixture("hpa-web.json")),
            )],
            output: "horizontalpodautoscaler `prod/web`: replicas between 3 and 12",
            resource: "horizontalpodautoscalers.autoscaling",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((0, "patch")),
        },
        Case {
            action: "update-hpa-limits",
            params: json!({"namespace": "prod", "hpa": "web", "target_cpu_percent": 60, "target_memory_percent": 80}),
            steps: vec![
                (
                    get("/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web"),
                    ok(fixture("hpa-web.json")),
                ),
                (
                    send(
                        "PATCH",
                        "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web?&fieldManager=agent-safe",
                        MERGE,
                        json!({
                            "metadata": {"resourceVersion": "6120"},
                            "spec": {"metrics": [
                                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                                {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
                                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}
                            ]}
                        }),
                    ),
                    ok(fixture("hpa-web.json")),
                ),
            ],
            output: "horizontalpodautoscaler `prod/web`: utilisation targets cpu 60%, memory 80%",
            resource: "horizontalpodautoscalers.autoscaling",
            name: "web",
            namespace: Some("prod"),
            write_step: Some((1, "patch")),
        },
        Case {
            action: "apply-network-policy",
            params: json!({
                "namespace": "prod",
                "policy_name": "deny-ingress",
                "policy": r#"{"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}"#
            }),
            steps: vec![(
                send(
                    "PATCH",
                    "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies/deny-ingress?&fieldManager=agent-safe&fieldValidation=Strict",
                    APPLY,
                    json!({
                        "apiVersion": "networking.k8s.io/v1",
                        "kind": "NetworkPolicy",
                        "metadata": {"name": "deny-ingress", "namespace": "prod"},
                        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
                    }),
                ),
                ok(fixture("networkpolicy-deny-ingress.json")),
            )],
            output: "networkpolicy `prod/deny-ingress` applied",
            resource: "networkpolicies.networking.k8s.io",
            name: "deny-ingress",
            namespace: Some("prod"),
            write_step: Some((0, "patch")),
        },
    ]
}

/// Runs `case` with its happy replies up to `fail_at`, where `error` answers instead.
async fn run_failing(case: &Case, fail_at: usize, error: Reply) {
    let (api, client) = FakeApi::new();
    for (req, rep) in &case.steps[..fail_at] {
        api.on(req.clone(), rep.clone());
    }
    api.on(case.steps[fail_at].0.clone(), error.clone());
    let outcome = execute(&executor(client), case.action, &params(case.params.clone())).await;
    let status: Value = serde_json::from_slice(&error.body).unwrap();
    let expected = format!(
        "kubernetes API error ({} {}): {}",
        status["code"],
        status["reason"].as_str().unwrap(),
        status["message"].as_str().unwrap()
    );
    assert_eq!(
        (outcome.status, outcome.error.as_deref()),
        (ExecutionStatus::Failure, Some(expected.as_str())),
        "{} failing at step {fail_at} with {}",
        case.action,
        status["code"]
    );
    api.verify();
}

#[tokio::test(start_paused = true)]
async fn every_action_happy_path() {
    let cases = cases();
    assert_eq!(cases.len(), agent_safe_executor_k8s::supported_actions().count());
    for case in &cases {
        let (api, client) = FakeApi::new();
        for (req, rep) in &case.steps {
            api.on(req.clone(), rep.clone());
        }
        let outcome = execute(&executor(client), case.action, &params(case.params.clone())).await;
        assert_eq!(
            (outcome.status, outcome.output.as_str(), outcome.error.as_deref()),
            (ExecutionStatus::Success, case.output, None),
            "{}",
            case.action
        );
        api.verify();
    }
}

#[tokio::test(start_paused = true)]
async fn every_action_not_found() {
    for case in &cases() {
        run_failing(case, 0, not_found(case.resource, case.name)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn every_action_forbidden() {
    for case in &cases() {
        let (step, verb) = case.write_step.unwrap_or((0, "get"));
        run_failing(case, step, forbidden(case.resource, case.name, verb, case.namespace)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn every_writing_action_conflict() {
    for case in &cases() {
        let Some((step, _)) = case.write_step else { continue };
        let error = match case.action {
            "create-namespace" => reply(409, fixture("status-409-namespace-exists.json")),
            "apply-network-policy" => reply(409, fixture("status-409-apply-conflict.json")),
            _ => conflict(case.resource, case.name),
        };
        run_failing(case, step, error).await;
    }
}

#[tokio::test]
async fn invalid_values_are_rejected_by_the_server_as_failures() {
    let (api, client) = FakeApi::new();
    let hpa = "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web?&fieldManager=agent-safe";
    api.on(
        send("PATCH", hpa, MERGE, json!({"spec": {"minReplicas": 5, "maxReplicas": 2}})),
        reply(422, fixture("status-422-hpa-bounds.json")),
    );
    let p =
        params(json!({"namespace": "prod", "hpa": "web", "min_replicas": 5, "max_replicas": 2}));
    let outcome = execute(&executor(client), "scale-hpa", &p).await;
    assert_failure(
        &outcome,
        "kubernetes API error (422 Invalid): HorizontalPodAutoscaler.autoscaling \"web\" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
    );
    api.verify();
}

#[tokio::test]
async fn update_image_fails_when_the_container_does_not_exist() {
    let (api, client) = FakeApi::new();
    api.on(get(DEPLOY), reply(200, fixture("deployment-web.json")));
    let p = params(
        json!({"namespace": "prod", "deployment": "web", "container": "nginx", "image": "nginx:1.28"}),
    );
    let outcome = execute(&executor(client), "update-image", &p).await;
    assert_failure(
        &outcome,
        "deployment `prod/web` has no container `nginx` (containers: `web`, `envoy`)",
    );
    api.verify();
}

#[tokio::test]
async fn restart_refuses_a_paused_deployment() {
    let (api, client) = FakeApi::new();
    let mut paused = fixture("deployment-web.json");
    paused["spec"]["paused"] = json!(true);
    api.on(get(DEPLOY), reply(200, paused));
    let p = params(json!({"namespace": "prod", "deployment": "web"}));
    let outcome = execute(&executor(client), "restart-deployment", &p).await;
    assert_failure(&outcome, "deployment `prod/web` is paused; resume it before restarting");
    api.verify();
}

#[test]
fn rollout_status_reports_progress_and_deadlines() {
    #[track_caller]
    fn check(status: Value, generation: i64, expected: (ExecutionStatus, &str, Option<&str>)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (api, client) = FakeApi::new();
            let mut d = fixture("deployment-web.json");
            d["status"] = status;
            d["metadata"]["generation"] = json!(generation);
            api.on(get(DEPLOY), reply(200, d));
            let p = params(json!({"namespace": "prod", "deployment": "web"}));
            let o = execute(&executor(client), "rollout-status", &p).await;
            assert_eq!((o.status, o.output.as_str(), o.error.as_deref()), expected);
            api.verify();
        });
    }
    let s = ExecutionStatus::Success;
    check(
        json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3}),
        4,
        (
            s,
            "deployment `prod/web`: rollout in progress: 1 of 3 new replicas have been updated (replicas 4, updated 1, ready 3, available 3)",
            None,
        ),
    );
    check(
        json!({"observedGeneration": 4, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}),
        4,
        (
            s,
            "deployment `prod/web`: rollout in progress: 1 old replicas are pending termination (replicas 4, updated 3, ready 3, available 3)",
            None,
        ),
    );
    check(
        json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2}),
        4,
        (
            s,
            "deployment `prod/web`: rollout in progress: 0 of 3 updated replicas are available (replicas 3, updated 3, ready 2, available 0)",
            None,
        ),
    );
    check(
        json!({"observedGeneration": 3, "replicas": 3}),
        4,
        (
            s,
            "deployment `prod/web`: waiting for the spec update to be observed (replicas 3, updated 0, ready 0, available 0)",
            None,
        ),
    );
    check(
        json!({"observedGeneration": 4, "replicas": 3, "updatedReplicas": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-6f7d8c9b5d\" has timed out progressing."}
        ]}),
        4,
        (
            ExecutionStatus::Failure,
            "replicas 3, updated 1, ready 0, available 0",
            Some("deployment `prod/web` exceeded its progress deadline"),
        ),
    );
}

#[test]
fn malformed_calls_are_errors_and_send_nothing() {
    #[track_caller]
    fn check(action: &str, p: Value, error: &str) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (api, client) = FakeApi::new();
            let o = execute(&executor(client), action, &params(p)).await;
            assert_eq!((o.status, o.error.as_deref()), (ExecutionStatus::Error, Some(error)));
            api.verify();
        });
    }
    check(
        "exec-pod",
        json!({}),
        "no Kubernetes API mapping for action `exec-pod` (it needs a streaming connection; use the kubectl executor)",
    );
    check("reboot-cluster", json!({}), "no Kubernetes API mapping for action `reboot-cluster`");
    check(
        "scale-deployment",
        json!({"namespace": "prod", "deployment": "web"}),
        "missing param `replicas`",
    );
    check(
        "scale-deployment",
        json!({"namespace": "prod", "deployment": "web", "replicas": "5"}),
        "param `replicas` must be an integer, got `\"5\"`",
    );
    check(
        "scale-deployment",
        json!({"namespace": "prod", "deployment": "web", "replicas": 1e12}),
        "param `replicas` must be an integer, got `1000000000000.0`",
    );
    check(
        "delete-pod",
        json!({"namespace": "prod", "pod": "p", "grace_period": -1}),
        "param `grace_period` is out of range: `-1`",
    );
    check(
        "update-hpa-limits",
        json!({"namespace": "prod", "hpa": "web"}),
        "give at least one of `target_cpu_percent` and `target_memory_percent`",
    );
    check(
        "apply-network-policy",
        json!({"namespace": "prod", "policy_name": "p", "policy": "{not json}"}),
        "param `policy` is not valid JSON: key must be a string at line 1 column 2",
    );
    check(
        "apply-network-policy",
        json!({"namespace": "prod", "policy_name": "p", "policy": "[1]"}),
        "param `policy` must be a JSON object (the NetworkPolicy spec)",
    );
    check("cordon-node", json!({"node": ""}), "param `node` is empty");
    check(
        "drain-node",
        json!({"node": "n", "ignore_daemonsets": "yes"}),
        "param `ignore_daemonsets` must be a boolean, got `\"yes\"`",
    );
}

#[tokio::test]
async fn connection_errors_are_errors() {
    // A client whose transport fails, as when the API server cannot be reached.
    let service = tower::service_fn(|_req: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let client = kube::Client::new(service, "default");
    let p = params(json!({"node": "worker-1"}));
    let o = execute(&executor(client), "cordon-node", &p).await;
    assert_eq!(o.status, ExecutionStatus::Error);
    assert!(o.error.as_deref().unwrap_or("").starts_with("kubernetes client error: "), "{o:?}");
    assert!(o.error.as_deref().unwrap_or("").contains("connection refused"), "{o:?}");
}

#[test]
fn the_matrix_uses_only_the_catalog_params_and_every_required_one() {
    let catalog = crate::catalog::load();
    for case in cases() {
        let def = &catalog[case.action];
        let declared: Vec<&str> = def.parameters.iter().map(|p| p.name.as_str()).collect();
        let given: Vec<&str> =
            case.params.as_object().unwrap().keys().map(String::as_str).collect();
        for name in &given {
            assert!(declared.contains(name), "{}: `{name}` is not a catalog param", case.action);
        }
        for p in def.parameters.iter().filter(|p| p.required) {
            assert!(
                given.contains(&p.name.as_str()),
                "{}: required `{}` missing",
                case.action,
                p.name
            );
        }
    }
}
