//! The request bodies both Kubernetes executors send, written once: the kubectl executor
//! passes them to `kubectl patch --patch=…` or `kubectl apply --filename=-`, the API executor
//! sends them as the body of its `PATCH`.

use serde_json::{Map, Value, json};

use crate::request::HpaTarget;

/// The pod-template annotation whose change makes a Deployment roll its pods (what
/// `kubectl rollout restart` sets).
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// The `restart-deployment` patch: [`RESTARTED_AT_ANNOTATION`] set to `stamp` (RFC 3339).
pub fn restart_patch(stamp: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}})
}

/// The `scale-hpa` merge patch.
pub fn scale_hpa_patch(min_replicas: i32, max_replicas: i32) -> Value {
    json!({"spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas}})
}

/// The `update-configmap` merge patch: one key set.
pub fn configmap_patch(key: &str, value: &str) -> Value {
    json!({"data": {key: value}})
}

/// The `apply-network-policy` manifest (applied server-side by the field manager
/// `agent-safe`).
pub fn network_policy_manifest(namespace: &str, name: &str, spec: &Map<String, Value>) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// The `update-hpa-limits` merge patch for an autoscaler whose `spec.metrics` are `metrics`
/// (in `autoscaling/v2` JSON) at `resource_version`: the whole `metrics` list (it is an atomic
/// list) with each target's utilisation set, a `Resource` metric added where the autoscaler
/// has none for that resource, the other metrics kept; guarded by the `resourceVersion` it was
/// computed from, so a concurrent change makes the patch fail instead of being overwritten.
pub fn hpa_limits_patch(
    metrics: Vec<Value>,
    resource_version: Value,
    targets: &[HpaTarget],
) -> Value {
    let mut metrics = metrics;
    for t in targets {
        let target = json!({"type": "Utilization", "averageUtilization": t.percent});
        let existing = metrics
            .iter_mut()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == t.resource);
        match existing {
            Some(metric) => metric["resource"]["target"] = target,
            None => metrics.push(json!({
                "type": "Resource",
                "resource": {"name": t.resource, "target": target},
            })),
        }
    }
    json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"metrics": metrics},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_limits_patch_adds_missing_metrics() {
        // An autoscaler without metrics and without a version: the metric is added, the guard
        // is `null` (the API server then applies the patch unconditionally, as before).
        let targets = [HpaTarget { resource: "memory", percent: 70 }];
        assert_eq!(
            hpa_limits_patch(Vec::new(), Value::Null, &targets).to_string(),
            r#"{"metadata":{"resourceVersion":null},"spec":{"metrics":[{"type":"Resource","resource":{"name":"memory","target":{"type":"Utilization","averageUtilization":70}}}]}}"#
        );
        // A metric of the same name but another type is left alone.
        let pods = json!({"type": "Pods", "pods": {"metric": {"name": "cpu"}}});
        let targets = [HpaTarget { resource: "cpu", percent: 50 }];
        let patch = hpa_limits_patch(vec![pods.clone()], json!("7"), &targets);
        assert_eq!(patch["spec"]["metrics"][0], pods);
        assert_eq!(patch["spec"]["metrics"][1]["resource"]["name"], "cpu");
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn patches_and_manifest() {
        assert_eq!(
            restart_patch("2026-02-24T12:00:00Z"),
            json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-02-24T12:00:00Z"}}}}})
        );
        assert_eq!(
            scale_hpa_patch(2, 10).to_string(),
            r#"{"spec":{"minReplicas":2,"maxReplicas":10}}"#
        );
        assert_eq!(configmap_patch("LOG", "debug").to_string(), r#"{"data":{"LOG":"debug"}}"#);
        let spec = json!({"podSelector": {}});
        let spec = spec.as_object().cloned().unwrap_or_default();
        assert_eq!(
            network_policy_manifest("dev", "deny-all", &spec).to_string(),
            r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"deny-all","namespace":"dev"},"spec":{"podSelector":{}}}"#
        );
    }
}
