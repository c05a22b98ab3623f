//! Prechecks: each declared name answered with API reads (or from the params), advisory
//! unless declared blocking; not found is a failed precheck with a clear message.

use serde_json::{Value, json};

use crate::harness::*;

const DEPLOY: &str = "/apis/apps/v1/namespaces/prod/deployments/web";

#[track_caller]
fn check(
    action: &str,
    p: Value,
    name: &str,
    steps: Vec<(Req, Reply)>,
    passed: bool,
    message: &str,
) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (api, client) = FakeApi::new();
        for (req, rep) in steps {
            api.on(req, rep);
        }
        let results = prechecks(&executor(client), action, &params(p), &[name]).await;
        assert_eq!(results.len(), 1);
        let r = &results[0];
        assert_eq!(
            (r.name.as_str(), r.passed, r.message.as_str(), r.advisory),
            (name, passed, message, true)
        );
        api.verify();
    });
}

fn ok(name: &str) -> Reply {
    reply(200, fixture(name))
}

fn list(kind: &str, api_version: &str, items: Vec<Value>) -> Reply {
    reply(
        200,
        json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}

#[test]
fn deployment_prechecks() {
    let p = || json!({"namespace": "prod", "deployment": "web", "container": "envoy"});
    let d = || (get(DEPLOY), ok("deployment-web.json"));
    check(
        "scale-deployment",
        p(),
        "deployment-exists",
        vec![d()],
        true,
        "deployment `prod/web` exists",
    );
    check(
        "scale-deployment",
        p(),
        "deployment-exists",
        vec![(get(DEPLOY), not_found("deployments.apps", "web"))],
        false,
        "deployment `prod/web` not found",
    );
    let mut paused = fixture("deployment-web.json");
    paused["spec"]["paused"] = json!(true);
    check(
        "restart-deployment",
        p(),
        "deployment-exists",
        vec![(get(DEPLOY), reply(200, paused))],
        false,
        "deployment `prod/web` exists but is paused",
    );
    check(
        "restart-deployment",
        p(),
        "enough-replicas",
        vec![d()],
        true,
        "3 available replicas (2 or more needed)",
    );
    check("update-image", p(), "container-exists", vec![d()], true, "container `envoy` found");
    check(
        "scale-deployment",
        p(),
        "no-autoscaler",
        vec![
            d(),
            (
                get("/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers?"),
                ok("hpalist-prod.json"),
            ),
        ],
        false,
        "autoscaler `web` manages deployment `prod/web` and may override the replica count",
    );
    check(
        "rollout-undo",
        p(),
        "revision-exists",
        vec![
            d(),
            (
                get("/apis/apps/v1/namespaces/prod/replicasets?&labelSelector=app%3Dweb"),
                ok("replicasets-web.json"),
            ),
        ],
        true,
        "revision 2 is in the rollout history",
    );
}

#[test]
fn pod_and_namespace_prechecks() {
    let pod = "/api/v1/namespaces/prod/pods/web-6f7d8c9b5d-x7k2p";
    let p = || json!({"namespace": "prod", "pod": "web-6f7d8c9b5d-x7k2p"});
    check(
        "delete-pod",
        p(),
        "pod-exists",
        vec![(get(pod), ok("pod-web.json"))],
        true,
        "pod `prod/web-6f7d8c9b5d-x7k2p` exists (phase Running)",
    );
    check(
        "delete-pod",
        p(),
        "has-controller",
        vec![(get(pod), ok("pod-web.json"))],
        true,
        "controlled by ReplicaSet/web-6f7d8c9b5d",
    );
    let ns = || json!({"namespace": "staging"});
    check(
        "create-namespace",
        ns(),
        "namespace-absent",
        vec![(get("/api/v1/namespaces/staging"), not_found("namespaces", "staging"))],
        true,
        "namespace `staging` does not exist yet",
    );
    check(
        "create-namespace",
        ns(),
        "namespace-absent",
        vec![(get("/api/v1/namespaces/staging"), ok("namespace-staging.json"))],
        false,
        "namespace `staging` already exists",
    );
    check(
        "delete-namespace",
        json!({"namespace": "kube-system"}),
        "not-system-namespace",
        vec![],
        false,
        "`kube-system` is a system namespace",
    );
    check(
        "delete-namespace",
        ns(),
        "not-system-namespace",
        vec![],
        true,
        "`staging` is not a system namespace",
    );
}

#[test]
fn node_prechecks() {
    let p = || json!({"node": "worker-1"});
    let node = "/api/v1/nodes/worker-1";
    check(
        "cordon-node",
        p(),
        "node-exists",
        vec![(get(node), ok("node-worker-1.json"))],
        true,
        "node `worker-1` is registered (Ready: true)",
    );
    check(
        "uncordon-node",
        p(),
        "node-cordoned",
        vec![(get(node), ok("node-worker-1.json"))],
        false,
        "node `worker-1` is not cordoned",
    );
    let mut other = fixture("node-worker-1.json");
    other["metadata"]["name"] = json!("worker-2");
    check(
        "cordon-node",
        p(),
        "spare-capacity",
        vec![(
            get("/api/v1/nodes?"),
            list("NodeList", "v1", vec![fixture("node-worker-1.json"), other]),
        )],
        true,
        "1 other schedulable Ready nodes",
    );
    let pods =
        || (get("/api/v1/pods?&fieldSelector=spec.nodeName%3Dworker-1"), ok("pods-worker-1.json"));
    check(
        "drain-node",
        p(),
        "unmanaged-pods",
        vec![pods()],
        false,
        "pods without a controller are lost for good when evicted: `default/debug-shell`",
    );
    let pdb = |name: &str, app: &str, allowed: i64| {
        json!({
            "kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": app}}},
            "status": {"currentHealthy": 2, "desiredHealthy": 2, "disruptionsAllowed": allowed, "expectedPods": 2}
        })
    };
    check(
        "drain-node",
        p(),
        "disruption-budgets",
        vec![
            pods(),
            (
                get("/apis/policy/v1/poddisruptionbudgets?"),
                list(
                    "PodDisruptionBudgetList",
                    "policy/v1",
                    vec![
                        pdb("web-pdb", "web", 0),
                        pdb("api-pdb", "api", 1),
                        pdb("db-pdb", "db", 0),
                    ],
                ),
            ),
        ],
        false,
        "disruption budgets allow no evictions right now: `prod/web-pdb`",
    );
}

#[test]
fn config_secret_hpa_and_policy_prechecks() {
    let cm = || json!({"namespace": "prod", "configmap": "app-config"});
    check(
        "update-configmap",
        cm(),
        "configmap-exists",
        vec![(
            get("/api/v1/namespaces/prod/configmaps/app-config"),
            ok("configmap-app-config.json"),
        )],
        true,
        "configmap `prod/app-config` exists",
    );
    check(
        "update-configmap",
        cm(),
        "consumers",
        vec![(
            get("/api/v1/namespaces/prod/pods?"),
            list("PodList", "v1", vec![fixture("pod-web.json")]),
        )],
        true,
        "pods using configmap `prod/app-config`: `web-6f7d8c9b5d-x7k2p`",
    );
    // Only metadata is fetched for a Secret precheck: its values never travel.
    let mut secret_meta = get("/api/v1/namespaces/prod/secrets/db-credentials");
    secret_meta.accept =
        Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1".into());
    secret_meta.content_type = Some(JSON.into());
    check(
        "get-secret",
        json!({"namespace": "prod", "secret": "db-credentials"}),
        "secret-exists",
        vec![(
            secret_meta,
            reply(
                200,
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "db-credentials", "namespace": "prod"}}),
            ),
        )],
        true,
        "secret `prod/db-credentials` exists",
    );
    let hpa = "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/web";
    check(
        "update-hpa-limits",
        json!({"namespace": "prod", "hpa": "web", "target_cpu_percent": 50, "target_memory_percent": 70}),
        "metric-present",
        vec![(get(hpa), ok("hpa-web.json"))],
        false,
        "no `memory` resource metric yet: one will be added",
    );
    check(
        "scale-hpa",
        json!({"namespace": "prod", "hpa": "web", "min_replicas": 5, "max_replicas": 2}),
        "bounds-ordered",
        vec![],
        false,
        "min_replicas 5 is greater than max_replicas 2",
    );
    check(
        "apply-network-policy",
        json!({"namespace": "prod", "policy_name": "deny-ingress", "policy": r#"{"podSelector": {"matchLabels": {"app": "web"}}}"#}),
        "affected-pods",
        vec![(get("/api/v1/namespaces/prod/pods?"), ok("pods-worker-1.json"))],
        true,
        "1 pods in `prod` selected: `web-6f7d8c9b5d-x7k2p`",
    );
    check(
        "update-image",
        json!({}),
        "image-pullable",
        vec![],
        false,
        "`image-pullable` cannot be answered through the Kubernetes API; not checked",
    );
    check(
        "scale-hpa",
        json!({}),
        "moon-phase",
        vec![],
        false,
        "no precheck `moon-phase` for action `scale-hpa` in the k8s executor; not checked",
    );
}

#[tokio::test]
async fn refusals_fail_the_precheck_and_blocking_is_not_advisory() {
    let (api, client) = FakeApi::new();
    api.on(get("/api/v1/nodes/worker-1"), forbidden("nodes", "worker-1", "get", None));
    let specs = [agent_safe_core::PrecheckSpec {
        name: "node-exists".into(),
        description: String::new(),
        blocking: true,
    }];
    let p = params(json!({"node": "worker-1"}));
    let call = agent_safe_core::ActionCall {
        action: "cordon-node",
        target: "t",
        params: &p,
        credential: None,
        state_fields: &[],
    };
    use agent_safe_core::Executor as _;
    let results = executor(client).run_prechecks(call, &specs).await;
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    assert!(!results[0].advisory);
    assert_eq!(
        results[0].message,
        "kubernetes API error (403 Forbidden): nodes \"worker-1\" is forbidden: User \"system:serviceaccount:agent-safe:executor\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
    );
    api.verify();
}
