//! State capture: the fields an action declares in `state_fields`, under the names of the
//! action YAML (so rollback sources such as `before_state.replicas` resolve), read from the
//! object the action changes. Counts the API omits when zero are reported as 0.

use std::collections::BTreeMap;

use agent_safe_core::StateMap;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use serde_json::{Value, json};

use agent_safe_k8s_actions::{K8sAction, Object};

use crate::actions::{Ctx, secret_keys};
use crate::drain::{controller_kind, pods_on_node};
use crate::error::StepError;
use crate::rollout::revision_of;

/// What a Secret's values are replaced by: values never leave the executor.
pub use agent_safe_core::REDACTED;

/// Reads the declared `fields` of the object `action` works on. An object that does not
/// exist yields only `exists: false` (when declared); undeclared fields are never returned;
/// declared fields the object does not have are left out.
pub(crate) async fn read(
    action: K8sAction,
    cx: Ctx<'_>,
    fields: &[String],
) -> Result<StateMap, StepError> {
    if fields.is_empty() {
        return Ok(StateMap::new());
    }
    let wants = |f: &str| fields.iter().any(|x| x == f);
    let all = match read_all(action, &cx, &wants).await {
        Ok(all) => all,
        Err(e) if e.is_not_found() => BTreeMap::from([("exists".to_owned(), Value::Bool(false))]),
        Err(e) => return Err(e),
    };
    let mut out = StateMap::new();
    for field in fields {
        if let Some(v) = all.get(field) {
            out.insert(field.clone(), v.clone());
        }
    }
    Ok(out)
}

type Fields = BTreeMap<String, Value>;

async fn read_all(
    action: K8sAction,
    cx: &Ctx<'_>,
    wants: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Fields, StepError> {
    let p = cx.params;
    let client = cx.client.clone();
    let mut f = Fields::new();
    let mut put = |k: &str, v: Value| {
        f.insert(k.to_owned(), v);
    };
    match action.object() {
        Object::Deployment => {
            let api: Api<Deployment> = Api::namespaced(client, p.str("namespace")?);
            let d = api.get(p.str("deployment")?).await?;
            let spec = d.spec.unwrap_or_default();
            let st = d.status.unwrap_or_default();
            put("exists", json!(true));
            put("replicas", json!(spec.replicas.unwrap_or(1)));
            put("paused", json!(spec.paused.unwrap_or(false)));
            if let Some(g) = d.metadata.generation {
                put("generation", json!(g));
            }
            if let Some(g) = st.observed_generation {
                put("observed_generation", json!(g));
            }
            put("available_replicas", json!(st.available_replicas.unwrap_or(0)));
            put("ready_replicas", json!(st.ready_replicas.unwrap_or(0)));
            put("updated_replicas", json!(st.updated_replicas.unwrap_or(0)));
            if let Some(r) = revision_of(&d.metadata) {
                put("revision", json!(r));
            }
            let pod_spec = spec.template.spec.unwrap_or_default();
            let images: serde_json::Map<String, Value> = pod_spec
                .init_containers
                .iter()
                .flatten()
                .chain(pod_spec.containers.iter())
                .map(|c| (c.name.clone(), json!(c.image)))
                .collect();
            put("images", Value::Object(images));
        }
        Object::Pod => {
            let api: Api<Pod> = Api::namespaced(client, p.str("namespace")?);
            let pod = api.get(p.str("pod")?).await?;
            put("exists", json!(true));
            if let Some(phase) = pod.status.and_then(|s| s.phase) {
                put("phase", json!(phase));
            }
            if let Some(owner) =
                pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true))
            {
                put("owner", json!(format!("{}/{}", owner.kind, owner.name)));
            }
            if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                put("node", json!(node));
            }
        }
        Object::Namespace => {
            let api: Api<Namespace> = Api::all(client);
            let ns = api.get(p.str("namespace")?).await?;
            put("exists", json!(true));
            if let Some(phase) = ns.status.and_then(|s| s.phase) {
                put("phase", json!(phase));
            }
        }
        Object::Node => {
            let name = p.str("node")?;
            let api: Api<Node> = Api::all(client.clone());
            let node = api.get(name).await?;
            put("exists", json!(true));
            put("unschedulable", json!(node.spec.and_then(|s| s.unschedulable).unwrap_or(false)));
            if wants("pod_count") {
                let pods = pods_on_node(client, name).await?;
                put("pod_count", json!(pods.len()));
                let managed =
                    pods.iter().filter(|p| controller_kind(&p.metadata).is_some()).count();
                put("unmanaged_pod_count", json!(pods.len() - managed));
            }
        }
        Object::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client, p.str("namespace")?);
            let cm = api.get(p.str("configmap")?).await?;
            let data = cm.data.unwrap_or_default();
            put("exists", json!(true));
            if let Some(v) = p.opt_str("key")?.and_then(|key| data.get(key)) {
                put("previous_value", json!(v));
            }
            put("data", json!(data));
        }
        Object::Secret => {
            let api: Api<Secret> = Api::namespaced(client, p.str("namespace")?);
            let secret = api.get(p.str("secret")?).await?;
            let keys = secret_keys(&secret);
            put("exists", json!(true));
            let redacted: serde_json::Map<String, Value> =
                keys.iter().map(|k| (k.clone(), json!(REDACTED))).collect();
            put("data", Value::Object(redacted));
            put("keys", json!(keys));
            if let Some(t) = secret.type_ {
                put("type", json!(t));
            }
        }
        Object::HorizontalPodAutoscaler => {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, p.str("namespace")?);
            let hpa = api.get(p.str("hpa")?).await?;
            let spec = hpa.spec.unwrap_or_default();
            put("exists", json!(true));
            put("min_replicas", json!(spec.min_replicas.unwrap_or(1)));
            put("max_replicas", json!(spec.max_replicas));
            put(
                "current_replicas",
                json!(hpa.status.and_then(|s| s.current_replicas).unwrap_or(0)),
            );
            for metric in spec.metrics.iter().flatten() {
                let Some(resource) = metric.resource.as_ref() else { continue };
                let Some(pct) = resource.target.average_utilization else { continue };
                match resource.name.as_str() {
                    "cpu" => put("target_cpu_percent", json!(pct)),
                    "memory" => put("target_memory_percent", json!(pct)),
                    _ => {}
                }
            }
        }
        Object::NetworkPolicy => {
            let api: Api<NetworkPolicy> = Api::namespaced(client, p.str("namespace")?);
            let policy = api.get(p.str("policy_name")?).await?;
            put("exists", json!(true));
            if let Some(spec) = policy.spec {
                put("spec", serde_json::to_value(spec).unwrap_or(Value::Null));
            }
        }
    }
    Ok(f)
}
