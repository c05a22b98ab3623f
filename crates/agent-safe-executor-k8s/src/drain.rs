//! `drain-node`: cordon, then evict every pod on the node except DaemonSet and mirror pods
//! through the Eviction API, retrying PodDisruptionBudget refusals (HTTP 429) until the
//! action's timeout, and reporting every pod that could not be evicted as a failure.

use std::time::Duration;

use agent_safe_core::{ExecutionOutcome, ExecutionStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use kube::api::{Api, ListParams, Patch, PostParams};
use kube::core::ObjectMeta;
use serde_json::json;

use crate::error::StepError;
use crate::patch_params;

/// How long a drain may take when the call gives no `timeout` param (the runner's default).
pub const DEFAULT_DRAIN_TIMEOUT: Duration =
    Duration::from_secs(agent_safe_k8s_actions::DEFAULT_DRAIN_TIMEOUT_SECS);

/// Pause between eviction attempts refused by a disruption budget (kubectl's 5 s).
pub const EVICTION_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// The annotation the kubelet puts on mirror pods of static pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What to drain and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DrainSpec<'a> {
    pub(crate) node: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) ignore_daemonsets: bool,
    pub(crate) retry_interval: Duration,
}

/// The pods on a node, sorted by what a drain does with them.
#[derive(Debug, Default)]
pub(crate) struct Classified {
    pub(crate) evict: Vec<(String, String)>,
    pub(crate) daemonset: Vec<String>,
    pub(crate) mirror: Vec<String>,
    pub(crate) unmanaged: Vec<String>,
}

/// Sorts the node's pods: mirror pods and DaemonSet pods stay; everything else is evicted
/// (pods without a controller too: they are gone for good, which the `unmanaged-pods`
/// precheck reports beforehand).
pub(crate) fn classify(pods: &[Pod]) -> Classified {
    let mut out = Classified::default();
    for pod in pods {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let id = format!("{namespace}/{name}");
        if is_mirror(&pod.metadata) {
            out.mirror.push(id);
            continue;
        }
        match controller_kind(&pod.metadata) {
            Some("DaemonSet") => {
                out.daemonset.push(id);
                continue;
            }
            None => out.unmanaged.push(id),
            Some(_) => {}
        }
        out.evict.push((namespace, name));
    }
    out
}

fn is_mirror(meta: &ObjectMeta) -> bool {
    meta.annotations.as_ref().is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// The kind of the pod's controlling owner, if any.
pub(crate) fn controller_kind(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

/// The pods scheduled on `node`, in all namespaces.
pub(crate) async fn pods_on_node(client: kube::Client, node: &str) -> Result<Vec<Pod>, StepError> {
    let api: Api<Pod> = Api::all(client);
    let list = api.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))).await?;
    Ok(list.items)
}

/// Runs the drain.
pub(crate) async fn drain(
    client: kube::Client,
    spec: DrainSpec<'_>,
) -> Result<ExecutionOutcome, StepError> {
    let node = spec.node;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(node, &patch_params(), &Patch::Strategic(json!({"spec": {"unschedulable": true}})))
        .await?;
    let pods = pods_on_node(client.clone(), node).await?;
    let classified = classify(&pods);
    if !spec.ignore_daemonsets && !classified.daemonset.is_empty() {
        return Err(StepError::Refused(format!(
            "node `{node}` cordoned but not drained: DaemonSet-managed pods cannot be evicted ({}); set `ignore_daemonsets` to leave them in place",
            ticked(&classified.daemonset)
        )));
    }
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut pending = classified.evict.clone();
    let mut evicted = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    loop {
        let mut refused = Vec::new();
        for (namespace, name) in pending {
            match evict(client.clone(), &namespace, &name).await {
                Ok(()) => evicted.push(format!("{namespace}/{name}")),
                // Already gone: what the eviction was for.
                Err(e) if e.is_not_found() => evicted.push(format!("{namespace}/{name}")),
                Err(e) if e.code() == Some(429) => refused.push((namespace, name, e.to_string())),
                Err(e @ StepError::Api(_)) => failed.push(format!("`{namespace}/{name}` ({e})")),
                Err(e) => return Err(e),
            }
        }
        if refused.is_empty() {
            break;
        }
        if tokio::time::Instant::now() + spec.retry_interval > deadline {
            failed.extend(refused.into_iter().map(|(namespace, name, e)| {
                format!(
                    "`{namespace}/{name}` (still refused after {}s: {e})",
                    spec.timeout.as_secs()
                )
            }));
            break;
        }
        tokio::time::sleep(spec.retry_interval).await;
        pending = refused.into_iter().map(|(namespace, name, _)| (namespace, name)).collect();
    }
    let mut output = format!("node `{node}` cordoned; {} evicted", count(evicted.len(), "pod"));
    if !classified.daemonset.is_empty() {
        output +=
            &format!(", {} left in place", count(classified.daemonset.len(), "DaemonSet pod"));
    }
    if !classified.mirror.is_empty() {
        output += &format!(", {} left in place", count(classified.mirror.len(), "mirror pod"));
    }
    if !evicted.is_empty() {
        output += &format!(" (evicted: {})", ticked(&evicted));
    }
    if failed.is_empty() {
        return Ok(ExecutionOutcome::success(output));
    }
    Ok(ExecutionOutcome {
        status: ExecutionStatus::Failure,
        output,
        error: Some(format!(
            "node `{node}` not drained: {} could not be evicted: {}",
            count(failed.len(), "pod"),
            failed.join("; ")
        )),
    })
}

/// Posts a well-formed `policy/v1` Eviction (kube's own helper leaves out apiVersion and kind).
async fn evict(client: kube::Client, namespace: &str, name: &str) -> Result<(), StepError> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let eviction = Eviction {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        delete_options: None,
    };
    api.create_subresource::<Eviction, serde_json::Value>(
        "eviction",
        name,
        &PostParams::default(),
        &eviction,
    )
    .await?;
    Ok(())
}

fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

fn ticked(ids: &[String]) -> String {
    ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
}
