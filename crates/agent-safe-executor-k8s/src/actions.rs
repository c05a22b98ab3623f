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

/// The actions this executor maps to API calls, by catalog name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    RestartDeployment,
    ScaleDeployment,
    DeletePod,
    DeleteNamespace,
    CreateNamespace,
    CordonNode,
    UncordonNode,
    DrainNode,
    RolloutUndo,
    RolloutStatus,
    GetPodLogs,
    GetConfigmap,
    GetSecret,
    UpdateConfigmap,
    UpdateImage,
    ScaleHpa,
    UpdateHpaLimits,
    ApplyNetworkPolicy,
}

impl Action {
    /// Every mapped action, in catalog order.
    pub(crate) const ALL: [Action; 18] = [
        Action::RestartDeployment,
        Action::ScaleDeployment,
        Action::DeletePod,
        Action::DeleteNamespace,
        Action::CreateNamespace,
        Action::CordonNode,
        Action::UncordonNode,
        Action::DrainNode,
        Action::RolloutUndo,
        Action::RolloutStatus,
        Action::GetPodLogs,
        Action::GetConfigmap,
        Action::GetSecret,
        Action::UpdateConfigmap,
        Action::UpdateImage,
        Action::ScaleHpa,
        Action::UpdateHpaLimits,
        Action::ApplyNetworkPolicy,
    ];

    /// The catalog name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Action::RestartDeployment => "restart-deployment",
            Action::ScaleDeployment => "scale-deployment",
            Action::DeletePod => "delete-pod",
            Action::DeleteNamespace => "delete-namespace",
            Action::CreateNamespace => "create-namespace",
            Action::CordonNode => "cordon-node",
            Action::UncordonNode => "uncordon-node",
            Action::DrainNode => "drain-node",
            Action::RolloutUndo => "rollout-undo",
            Action::RolloutStatus => "rollout-status",
            Action::GetPodLogs => "get-pod-logs",
            Action::GetConfigmap => "get-configmap",
            Action::GetSecret => "get-secret",
            Action::UpdateConfigmap => "update-configmap",
            Action::UpdateImage => "update-image",
            Action::ScaleHpa => "scale-hpa",
            Action::UpdateHpaLimits => "update-hpa-limits",
            Action::ApplyNetworkPolicy => "apply-network-policy",
        }
    }

    /// The action called `name`, or an ERROR-worthy explanation.
    pub(crate) fn parse(name: &str) -> Result<Action, StepError> {
        Action::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
            let why = match name {
                "exec-pod" | "port-forward" => {
                    " (it needs a streaming connection; use the kubectl executor)"
                }
                _ => "",
            };
            StepError::Invalid(format!("no Kubernetes API mapping for action `{name}`{why}"))
        })
    }
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
pub(crate) async fn execute(action: Action, cx: Ctx<'_>) -> Result<ExecutionOutcome, StepError> {
    let p = cx.params;
    let client = cx.client.clone();
    let ok = |s: String| Ok(ExecutionOutcome::success(s));
    match action {
        Action::RestartDeployment => {
            let (ns, name) = (p.str("namespace")?, p.str("deployment")?);
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
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": stamp
            }}}}});
            api.patch(name, &patch_params(), &Patch::Strategic(patch)).await?;
            ok(format!("deployment `{ns}/{name}` restarted (restartedAt {stamp})"))
        }
        Action::ScaleDeployment => {
            let (ns, name, replicas) =
                (p.str("namespace")?, p.str("deployment")?, p.int32("replicas")?);
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let patch = json!({"spec": {"replicas": replicas}});
            let scale = api.patch_scale(name, &patch_params(), &Patch::Merge(patch)).await?;
            let was = scale.status.map(|s| s.replicas).unwrap_or_default();
            ok(format!("deployment `{ns}/{name}` scaled to {replicas} replicas (currently {was})"))
        }
        Action::DeletePod => {
            let (ns, name) = (p.str("namespace")?, p.str("pod")?);
            let grace = match p.opt_int("grace_period")? {
                None => None,
                Some(g) => Some(u32::try_from(g).map_err(|_| {
                    StepError::Invalid(format!("param `grace_period` is out of range: `{g}`"))
                })?),
            };
            let api: Api<Pod> = Api::namespaced(client, ns);
            let dp = DeleteParams { grace_period_seconds: grace, ..DeleteParams::default() };
            api.delete(name, &dp).await?;
            let grace = grace.map(|g| format!(" (grace period {g}s)")).unwrap_or_default();
            ok(format!("pod `{ns}/{name}` deleted{grace}"))
        }
        Action::DeleteNamespace => {
            let ns = p.str("namespace")?;
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
        Action::CreateNamespace => {
            let ns = p.str("namespace")?;
            let api: Api<Namespace> = Api::all(client);
            let object = Namespace {
                metadata: ObjectMeta { name: Some(ns.to_owned()), ..ObjectMeta::default() },
                ..Namespace::default()
            };
            let pp = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), dry_run: false };
            api.create(&pp, &object).await?;
            ok(format!("namespace `{ns}` created"))
        }
        Action::CordonNode | Action::UncordonNode => {
            let node = p.str("node")?;
            let unschedulable = action == Action::CordonNode;
            let api: Api<Node> = Api::all(client);
            let patch = json!({"spec": {"unschedulable": unschedulable}});
            api.patch(node, &patch_params(), &Patch::Strategic(patch)).await?;
            let what = if unschedulable { "cordoned" } else { "uncordoned" };
            ok(format!("node `{node}` {what}"))
        }
        Action::DrainNode => {
            let node = p.str("node")?;
            let timeout = match p.opt_int("timeout")? {
                None => drain::DEFAULT_DRAIN_TIMEOUT,
                Some(t) => Duration::from_secs(u64::try_from(t).map_err(|_| {
                    StepError::Invalid(format!("param `timeout` is out of range: `{t}`"))
                })?),
            };
            let ignore_daemonsets = p.bool_or("ignore_daemonsets", true)?;
            let spec =
                DrainSpec { node, timeout, ignore_daemonsets, retry_interval: cx.retry_interval };
            drain::drain(client, spec).await
        }
        Action::RolloutUndo => {
            let (ns, name) = (p.str("namespace")?, p.str("deployment")?);
            rollout::undo(client, ns, name, p.opt_int("revision")?).await
        }
        Action::RolloutStatus => {
            let (ns, name) = (p.str("namespace")?, p.str("deployment")?);
            let api: Api<Deployment> = Api::namespaced(client, ns);
            let deployment = api.get(name).await?;
            Ok(rollout::status(&deployment, ns, name))
        }
        Action::GetPodLogs => {
            let (ns, name) = (p.str("namespace")?, p.str("pod")?);
            let lp = LogParams {
                container: p.opt_str("container")?.map(str::to_owned),
                tail_lines: p.opt_int("tail_lines")?,
                ..LogParams::default()
            };
            let api: Api<Pod> = Api::namespaced(client, ns);
            ok(api.logs(name, &lp).await?)
        }
        Action::GetConfigmap => {
            let (ns, name) = (p.str("namespace")?, p.str("configmap")?);
            let api: Api<ConfigMap> = Api::namespaced(client, ns);
            let cm = api.get(name).await?;
            ok(to_json(&cm.data.unwrap_or_default()))
        }
        Action::GetSecret => {
            let (ns, name) = (p.str("namespace")?, p.str("secret")?);
            let api: Api<Secret> = Api::namespaced(client, ns);
            let secret = api.get(name).await?;
            ok(to_json(&json!({"keys": secret_keys(&secret), "type": secret.type_})))
        }
        Action::UpdateConfigmap => {
            let (ns, name) = (p.str("namespace")?, p.str("configmap")?);
            let (key, value) = (p.str("key")?, value_param(p)?);
            let api: Api<ConfigMap> = Api::namespaced(client, ns);
            let patch = json!({"data": {key: value}});
            api.patch(name, &patch_params(), &Patch::Merge(patch)).await?;
            ok(format!("configmap `{ns}/{name}`: key `{key}` set"))
        }
        Action::UpdateImage => update_image(client, p).await,
        Action::ScaleHpa => {
            let (ns, name) = (p.str("namespace")?, p.str("hpa")?);
            let (min, max) = (p.int32("min_replicas")?, p.int32("max_replicas")?);
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
            let patch = json!({"spec": {"minReplicas": min, "maxReplicas": max}});
            api.patch(name, &patch_params(), &Patch::Merge(patch)).await?;
            ok(format!("horizontalpodautoscaler `{ns}/{name}`: replicas between {min} and {max}"))
        }
        Action::UpdateHpaLimits => update_hpa_limits(client, p).await,
        Action::ApplyNetworkPolicy => {
            let (ns, name, policy) = (p.str("namespace")?, p.str("policy_name")?, p.str("policy")?);
            let spec: Value = serde_json::from_str(policy).map_err(|e| {
                StepError::Invalid(format!("param `policy` is not valid JSON: {e}"))
            })?;
            if !spec.is_object() {
                return Err(StepError::Invalid(
                    "param `policy` must be a JSON object (the NetworkPolicy spec)".to_owned(),
                ));
            }
            let body = json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            });
            let api: Api<NetworkPolicy> = Api::namespaced(client, ns);
            let pp = PatchParams {
                field_validation: Some(ValidationDirective::Strict),
                ..PatchParams::apply(FIELD_MANAGER)
            };
            api.patch(name, &pp, &Patch::Apply(body)).await?;
            ok(format!("networkpolicy `{ns}/{name}` applied"))
        }
    }
}

/// `update-configmap`'s `value` may be an empty string (unlike names).
fn value_param(p: P<'_>) -> Result<&str, StepError> {
    match p.0.get("value") {
        Some(Value::String(s)) => Ok(s),
        Some(other) => {
            Err(StepError::Invalid(format!("param `value` must be a string, got `{other}`")))
        }
        None => Err(StepError::Invalid("missing param `value`".to_owned())),
    }
}

async fn update_image(client: kube::Client, p: P<'_>) -> Result<ExecutionOutcome, StepError> {
    let (ns, name) = (p.str("namespace")?, p.str("deployment")?);
    let (container, image) = (p.str("container")?, p.str("image")?);
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

async fn update_hpa_limits(client: kube::Client, p: P<'_>) -> Result<ExecutionOutcome, StepError> {
    let (ns, name) = (p.str("namespace")?, p.str("hpa")?);
    let targets: Vec<(&str, i32)> = [
        ("cpu", p.opt_int32("target_cpu_percent")?),
        ("memory", p.opt_int32("target_memory_percent")?),
    ]
    .into_iter()
    .filter_map(|(resource, pct)| pct.map(|pct| (resource, pct)))
    .collect();
    if targets.is_empty() {
        return Err(StepError::Invalid(
            "give at least one of `target_cpu_percent` and `target_memory_percent`".to_owned(),
        ));
    }
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
    let hpa = api.get(name).await?;
    let metrics = hpa.spec.as_ref().and_then(|s| s.metrics.clone()).unwrap_or_default();
    let mut metrics: Vec<Value> = metrics.iter().map(to_value).collect();
    for (resource, pct) in &targets {
        let target = json!({"type": "Utilization", "averageUtilization": pct});
        let existing = metrics
            .iter_mut()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == *resource);
        match existing {
            Some(metric) => metric["resource"]["target"] = target,
            None => metrics.push(json!({
                "type": "Resource",
                "resource": {"name": resource, "target": target},
            })),
        }
    }
    // `metrics` is an atomic list: the patch carries the whole list, guarded by the
    // resourceVersion it was computed from.
    let patch = json!({
        "metadata": {"resourceVersion": hpa.metadata.resource_version},
        "spec": {"metrics": metrics},
    });
    api.patch(name, &patch_params(), &Patch::Merge(patch)).await?;
    let set: Vec<String> = targets.iter().map(|(r, pct)| format!("{r} {pct}%")).collect();
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
