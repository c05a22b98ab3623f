//! The whole catalog against a real cluster (ignored by default). Run it with a throwaway
//! kind or k3d cluster, as `docs/executors/kubernetes.md` describes:
//!
//! ```text
//! kind create cluster --name agent-safe-e2e --config two-nodes.yaml
//! AGENT_SAFE_E2E_KUBECONFIG=$(mktemp) && kind get kubeconfig --name agent-safe-e2e > $AGENT_SAFE_E2E_KUBECONFIG
//! AGENT_SAFE_E2E_KUBECONFIG=$AGENT_SAFE_E2E_KUBECONFIG cargo test -p agent-safe-executor-k8s --test api -- --ignored
//! ```
//!
//! It creates and finally deletes the namespace `agent-safe-e2e`; `drain-node` runs only
//! when `AGENT_SAFE_E2E_DRAIN_NODE` names a worker node that may be drained.

use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::{ActionCall, ExecutionStatus, Executor, PrecheckSpec, StateMap, SystemClock};
use agent_safe_executor_k8s::{K8sExecutor, K8sSettings, build_client, client_config};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use crate::catalog::{Catalog, load};
use crate::harness::params;

const NS: &str = "agent-safe-e2e";

struct Run {
    executor: K8sExecutor,
    catalog: Catalog,
}

impl Run {
    fn call<'a>(&'a self, action: &'a str, p: &'a agent_safe_core::Params) -> ActionCall<'a> {
        let def = &self.catalog[action];
        ActionCall {
            action,
            target: "e2e",
            params: p,
            credential: None,
            state_fields: &def.state_fields,
        }
    }

    /// Prechecks, before state, execute, after state; the action must succeed.
    async fn act(&self, action: &str, p: Value) -> (StateMap, StateMap) {
        let p = params(p);
        let specs: Vec<PrecheckSpec> = self.catalog[action]
            .prechecks
            .iter()
            .map(|n| PrecheckSpec { name: n.clone(), description: String::new(), blocking: false })
            .collect();
        for r in self.executor.run_prechecks(self.call(action, &p), &specs).await {
            eprintln!("{action}: precheck {} passed={} {}", r.name, r.passed, r.message);
        }
        let before = self.executor.get_state(self.call(action, &p)).await.unwrap_or_default();
        let outcome = self.executor.execute(self.call(action, &p)).await;
        eprintln!("{action}: {outcome:?}");
        assert_eq!(outcome.status, ExecutionStatus::Success, "{action}: {outcome:?}");
        let after = self.executor.get_state(self.call(action, &p)).await.unwrap_or_default();
        eprintln!("{action}: before {before:?} after {after:?}");
        (before, after)
    }

    /// Polls `action`'s state until `done` (real clusters take their time).
    async fn wait(&self, action: &str, p: Value, done: impl Fn(&StateMap) -> bool) {
        let p = params(p);
        for _ in 0..90 {
            let state = self.executor.get_state(self.call(action, &p)).await.unwrap_or_default();
            if done(&state) {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        panic!("{action}: condition not reached in 180 s");
    }
}

fn object<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
#[ignore = "needs a real cluster: set AGENT_SAFE_E2E_KUBECONFIG"]
async fn whole_catalog_against_a_real_cluster() {
    let Some(kubeconfig) = std::env::var_os("AGENT_SAFE_E2E_KUBECONFIG") else {
        panic!("set AGENT_SAFE_E2E_KUBECONFIG to the kubeconfig of a throwaway cluster");
    };
    let settings = K8sSettings { kubeconfig: Some(kubeconfig.into()), ..K8sSettings::default() };
    let client = build_client(client_config(None, &settings).await.unwrap()).unwrap();
    let run = Run { executor: K8sExecutor::new(settings, Arc::new(SystemClock)), catalog: load() };
    let dep = || json!({"namespace": NS, "deployment": "web"});

    run.act("create-namespace", json!({"namespace": NS})).await;
    let pp = PostParams::default();
    let labels = json!({"app": "web"});
    let deployment: Deployment = object(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }));
    Api::<Deployment>::namespaced(client.clone(), NS).create(&pp, &deployment).await.unwrap();
    let cm: ConfigMap =
        object(json!({"metadata": {"name": "app-config"}, "data": {"LOG_LEVEL": "info"}}));
    Api::<ConfigMap>::namespaced(client.clone(), NS).create(&pp, &cm).await.unwrap();
    let secret: Secret =
        object(json!({"metadata": {"name": "db"}, "stringData": {"password": "e2e"}}));
    Api::<Secret>::namespaced(client.clone(), NS).create(&pp, &secret).await.unwrap();
    let hpa: HorizontalPodAutoscaler = object(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}
    }));
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), NS).create(&pp, &hpa).await.unwrap();
    run.wait("rollout-status", dep(), |s| s.get("available_replicas") == Some(&json!(1))).await;

    run.act("rollout-status", dep()).await;
    let (before, after) = run
        .act("scale-deployment", json!({"namespace": NS, "deployment": "web", "replicas": 2}))
        .await;
    assert_eq!((before.get("replicas"), after.get("replicas")), (Some(&json!(1)), Some(&json!(2))));
    run.act("restart-deployment", dep()).await;
    run.wait("update-image", dep(), |s| s.get("revision") == Some(&json!(2))).await;
    run.act("update-image", json!({"namespace": NS, "deployment": "web", "container": "web", "image": "nginx:1.27-alpine"})).await;
    run.wait("update-image", dep(), |s| s.get("revision") == Some(&json!(3))).await;
    run.act("rollout-undo", dep()).await;
    run.wait("update-image", dep(), |s| s["images"]["web"] == json!("nginx:1.27")).await;
    run.act("rollout-undo", json!({"namespace": NS, "deployment": "web", "revision": 3})).await;

    let pods = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let pod = pods.items[0].metadata.name.clone().unwrap();
    run.act("get-pod-logs", json!({"namespace": NS, "pod": pod, "tail_lines": 5})).await;
    run.act("delete-pod", json!({"namespace": NS, "pod": pod, "grace_period": 0})).await;

    run.act("get-configmap", json!({"namespace": NS, "configmap": "app-config"})).await;
    let (before, _) = run
        .act("update-configmap", json!({"namespace": NS, "configmap": "app-config", "key": "LOG_LEVEL", "value": "debug"}))
        .await;
    assert_eq!(before.get("previous_value"), Some(&json!("info")));
    let (secret_state, _) = run.act("get-secret", json!({"namespace": NS, "secret": "db"})).await;
    assert!(!serde_json::to_string(&secret_state).unwrap().contains("e2e"));
    run.act(
        "scale-hpa",
        json!({"namespace": NS, "hpa": "web", "min_replicas": 2, "max_replicas": 4}),
    )
    .await;
    run.act("update-hpa-limits", json!({"namespace": NS, "hpa": "web", "target_cpu_percent": 60, "target_memory_percent": 70})).await;
    let policy = r#"{"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}"#;
    run.act(
        "apply-network-policy",
        json!({"namespace": NS, "policy_name": "deny-ingress", "policy": policy}),
    )
    .await;

    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let node = nodes.items[0].metadata.name.clone().unwrap();
    run.act("cordon-node", json!({"node": node})).await;
    run.act("uncordon-node", json!({"node": node})).await;
    if let Ok(drain) = std::env::var("AGENT_SAFE_E2E_DRAIN_NODE") {
        run.act("drain-node", json!({"node": drain, "timeout": 120})).await;
        run.act("uncordon-node", json!({"node": drain})).await;
    }
    run.act("delete-namespace", json!({"namespace": NS})).await;
}
