//! The catalog's Kubernetes actions and the API calls each one makes.

use std::time::Duration;

use agent_safe_core::ExecutionOutcome;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{
    Api, DeleteParams, LogParams, Patch, PatchParams, PostParams, ValidationDirective,
};
use kube::core::ObjectMeta;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::drain::{self, DrainSpec};
use crate::error::StepError;
use crate::params::P;
use crate::{FIELD_MANAGER, patch_params, rollout};
use agent_safe_k8s_actions::{
    HpaTarget, K8sAction, Request, configmap_patch, hpa_limits_patch, network_policy_manifest,
    restart_patch, scale_hpa_patch,
};

/// The action called `name`, if this executor maps it to API calls, else an ERROR-worthy
/// explanation.
pub(crate) fn parse(name: &str) -> Result<K8sAction, StepError> {
    match K8sAction::from_name(name) {
        Some(action) if !action.is_streaming() => Ok(action),
        found => Err(unmapped(name, found.is_some())),
    }
}

/// `exec-pod` and `port-forward` need a streaming connection; other names are not Kubernetes
/// actions of the catalog.
fn unmapped(name: &str, streaming: bool) -> StepError {
    let why =
        if streaming { " (it needs a streaming connection; use the kubectl executor)" } else { "" };
    StepError::Invalid(format!("no Kubernetes API mapping for action `{name}`{why}"))
}

/// What one call works with.
#[derive(Clone)]
pub(crate) struct Ctx<'a> {
    pub(crate) client: kube::Client,
    pub(crate) params: P<'a>,
    pub(crate) now: time::OffsetDateTime,
    pub(crate) retry_interval: Duration,
}

/// Performs `action`.
pub(crate) async fn execute(action: K8sAction, cx: Ctx<'_>) -> Result<ExecutionOutcome, StepError> {
    let request = Request::parse(action, &cx.params)?;
    let client = cx.client.clone();
    let ok = |s: String| Ok(ExecutionOutcome::success(s));
    match request {
        Request::RestartDeployment { namespace: ns, deployment: name } => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let current = api.get(name).await?;
            if current.spec.as_ref().and_then(|s| s.paused) == Some(true) {
                return Err(StepError::Refused(format!(
                    "deployment `{ns}/{name}` is paused; resume it before restarting"
                )));
            }
            let stamp =
                cx.now.replace_nanosecond(0).unwrap_or(cx.now).format(&Rfc3339).map_err(|e| {
                    StepError::Invalid(format!("cannot format the restart time: {e}"))
                })?;
            let patch = restart_patch(&stamp);
            api.patch(name, &patch_params(), &Patch::Strategic(patch)).await?;
            ok(format!("deployment `{ns}/{name}` restarted (restartedAt {stamp})"))
        }
        Request::ScaleDeployment { namespace: ns, deployment: name, replicas } => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let patch = json!({"spec": {"replicas": replicas}});
            let scale = api.patch_scale(name, &patch_params(), &Patch::Merge(patch)).await?;
            let was = scale.status.map(|s| s.replicas).unwrap_or_default();
            ok(format!("deployment `{ns}/{name}` scaled to {replicas} replicas (currently {was})"))
        }
        Request::DeletePod { namespace: ns, pod: name, grace_period: grace } => {
            let api: Api<Pod> = Api::namespaced(client, ns);
            let dp = DeleteParams { grace_period_seconds: grace, ..DeleteParams::default() };
            api.delete(name, &dp).await?;
            let grace = grace.map(|g| format!(" (grace period {g}s)")).unwrap_or_default();
            ok(format!("pod `{ns}/{name}` deleted{grace}"))
        }
        Request::DeleteNamespace { namespace: ns } => {
            let api: Api<Namespace> = Api::all(client);
            let phase = api
                .delete(ns, &DeleteParams::default())
                .await?
                .left()
                .and_then(|n| n.status.and_then(|s| s.phase))
                .map(|phase| format!(" (phase {phase})"))
                .unwrap_or_default();
            ok(format!("namespace `{ns}` deleted{phase}"))
        }
        Request::CreateNamespace { namespace: ns } => {
            let api: Api<Namespace> = Api::all(client);
            let object = Namespace {
                metadata: ObjectMeta { name: Some(ns.to_owned()), ..ObjectMeta::default() },
                ..Namespace::default()
            };
            let pp = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), dry_run: false };
            api.create(&pp, &object).await?;
            ok(format!("namespace `{ns}` created"))
        }
        Request::CordonNode { node } | Request::UncordonNode { node } => {
            let unschedulable = action == K8sAction::CordonNode;
            let api: Api<Node> = Api::all(client);
            let patch = json!({"spec": {"unschedulable": unschedulable}});
            api.patch(node, &patch_params(), &Patch::Strategic(patch)).await?;
            let what = if unschedulable { "cordoned" } else { "uncordoned" };
            ok(format!("node `{node}` {what}"))
        }
        Request::DrainNode { node, timeout, ignore_daemonsets } => {
            let timeout = Duration::from_secs(timeout);
            let spec =
                DrainSpec { node, timeout, ignore_daemonsets, retry_interval: cx.retry_interval };
            drain::drain(client, spec).await
        }
        Request::RolloutUndo { namespace: ns, deployment: name, revision } => {
            rollout::undo(client, ns, name, revision).await
        }
        Request::RolloutStatus { namespace: ns, deployment: name } => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let deployment = api.get(name).await?;
            Ok(rollout::status(&deployment, ns, name))
        }
        Request::GetPodLogs { namespace: ns, pod: name, container, tail_lines } => {
            let lp = LogParams {
                container: container.map(str::to_owned),
                tail_lines,
                ..LogParams::default()
            };
            let api: Api<Pod> = Api::namespaced(client, ns);
            ok(api.logs(name, &lp).await?)
        }
        Request::GetConfigmap { namespace: ns, configmap: name } => {
            let api: Api<ConfigMap> = Api::namespaced(client, ns);
            let cm = api.get(name).await?;
            ok(to_json(&cm.data.unwrap_or_default()))
        }
        Request::GetSecret { namespace: ns, secret: name } => {
            let api: Api<Secret> = Api::namespaced(client, ns);
            let secret = api.get(name).await?;
            ok(to_json(&json!({"keys": secret_keys(&secret), "type": secret.type_})))
        }
        Request::UpdateConfigmap { namespace: ns, configmap: name, key, value } => {
            let api: Api<ConfigMap> = Api::namespaced(client, ns);
            api.patch(name, &patch_params(), &Patch::Merge(configmap_patch(key, value))).await?;
            ok(format!("configmap `{ns}/{name}`: key `{key}` set"))
        }
        Request::UpdateImage { namespace, deployment, container, image } => {
            update_image(client, namespace, deployment, container, image).await
        }
        Request::ScaleHpa { namespace: ns, hpa: name, min_replicas: min, max_replicas: max } => {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
            api.patch(name, &patch_params(), &Patch::Merge(scale_hpa_patch(min, max))).await?;
            ok(format!("horizontalpodautoscaler `{ns}/{name}`: replicas between {min} and {max}"))
        }
        Request::UpdateHpaLimits { namespace, hpa, targets } => {
            update_hpa_limits(client, namespace, hpa, &targets).await
        }
        Request::ApplyNetworkPolicy { namespace: ns, policy_name: name, spec } => {
            let body = network_policy_manifest(ns, name, &spec);
            let api: Api<NetworkPolicy> = Api::namespaced(client, ns);
            let pp = PatchParams {
                field_validation: Some(ValidationDirective::Strict),
                ..PatchParams::apply(FIELD_MANAGER)
            };
            api.patch(name, &pp, &Patch::Apply(body)).await?;
            ok(format!("networkpolicy `{ns}/{name}` applied"))
        }
        // `parse` refuses the streaming actions before a client is built.
        Request::ExecPod { .. } | Request::PortForward { .. } => Err(unmapped(action.name(), true)),
    }
}

async fn update_image(
    client: kube::Client,
    ns: &str,
    name: &str,
    container: &str,
    image: &str,
) -> Result<ExecutionOutcome, StepError> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let deployment = api.get(name).await?;
    let pod_spec = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let containers = pod_spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init = pod_spec.and_then(|s| s.init_containers.as_deref()).unwrap_or_default();
    let (list, old) = if let Some(c) = containers.iter().find(|c| c.name == container) {
        ("containers", c.image.clone())
    } else if let Some(c) = init.iter().find(|c| c.name == container) {
        ("initContainers", c.image.clone())
    } else {
        let names: Vec<String> =
            containers.iter().chain(init).map(|c| format!("`{}`", c.name)).collect();
        return Err(StepError::Refused(format!(
            "deployment `{ns}/{name}` has no container `{container}` (containers: {})",
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        )));
    };
    // The resourceVersion makes the patch conditional: if the deployment changed since it
    // was read (the container may be gone), the API server answers 409 Conflict.
    let patch = json!({
        "metadata": {"resourceVersion": deployment.metadata.resource_version},
        "spec": {"template": {"spec": {list: [{"name": container, "image": image}]}}},
    });
    api.patch(name, &patch_params(), &Patch::Strategic(patch)).await?;
    Ok(ExecutionOutcome::success(format!(
        "deployment `{ns}/{name}`: container `{container}` image `{}` -> `{image}`",
        old.unwrap_or_default()
    )))
}

async fn update_hpa_limits(
    client: kube::Client,
    ns: &str,
    name: &str,
    targets: &[HpaTarget],
) -> Result<ExecutionOutcome, StepError> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
    let hpa = api.get(name).await?;
    let metrics = hpa.spec.as_ref().and_then(|s| s.metrics.clone()).unwrap_or_default();
    let metrics: Vec<Value> = metrics.iter().map(to_value).collect();
    // `metrics` is an atomic list: the patch carries the whole list, guarded by the
    // resourceVersion it was computed from.
    let patch = hpa_limits_patch(metrics, json!(hpa.metadata.resource_version), targets);
    api.patch(name, &patch_params(), &Patch::Merge(patch)).await?;
    let set: Vec<String> =
        targets.iter().map(|t| format!("{} {}%", t.resource, t.percent)).collect();
    Ok(ExecutionOutcome::success(format!(
        "horizontalpodautoscaler `{ns}/{name}`: utilisation targets {}",
        set.join(", ")
    )))
}

/// The key names of a Secret (`data` and `stringData`), never the values.
pub(crate) fn secret_keys(secret: &Secret) -> Vec<String> {
    let mut keys: Vec<String> = secret.data.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.extend(secret.string_data.iter().flatten().map(|(k, _)| k.clone()));
    keys.sort();
    keys.dedup();
    keys
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
