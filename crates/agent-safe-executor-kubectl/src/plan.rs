//! The kubectl command for each action (SPEC §12.4, corrected): every mapping is a valid
//! kubectl invocation that does what the action's YAML says, built from checked params.

use agent_safe_k8s_actions::{
    self as k8s, HpaTarget, K8sAction, Object, Request, configmap_patch, network_policy_manifest,
    scale_hpa_patch,
};
use serde_json::Value;

use super::args::{P, Refusal};

/// What `execute` runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// One kubectl command.
    Run(Cmd),
    /// `update-hpa-limits`: read the autoscaler, then patch its metrics list.
    HpaLimits {
        /// Namespace.
        namespace: String,
        /// Autoscaler name.
        hpa: String,
        /// The utilisation targets to set.
        targets: Vec<HpaTarget>,
    },
}

/// One kubectl command (the arguments after the connection flags).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub(crate) args: Vec<String>,
    /// Written to the process's standard input.
    pub(crate) stdin: Option<String>,
    /// A patch too large for one argument (Linux limits one to 128 KiB): passed with
    /// `--patch-file` from a private temporary file instead of `--patch`.
    pub(crate) patch_file: Option<String>,
    /// How the output becomes the outcome's output.
    pub(crate) output: Output,
}

/// How stdout becomes the outcome's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Trimmed text.
    Text,
    /// `get configmap -o json` → the `data` map as compact JSON.
    ConfigMapData,
    /// `get secret -o json` → `{"keys": [...], "type": ...}`: values never leave the executor.
    SecretKeys,
}

/// Patches up to this size go on the command line.
pub(crate) const INLINE_PATCH_LIMIT: usize = 100 * 1024;

/// The fully qualified resource of autoscalers: `autoscaling/v2`, whatever version the
/// server prefers, because `metrics` exists only there.
pub(crate) const HPA: &str = "horizontalpodautoscalers.v2.autoscaling";

/// Why `port-forward` is not run through kubectl.
const PORT_FORWARD: &str = "`port-forward` is refused by the kubectl executor: it is an open-ended session \
     that binds a port on the runner's machine and lasts until the process is stopped, not a \
     bounded action with an outcome";

/// The call of `action` with its params checked and typed, or why it is refused (an action
/// that is not a Kubernetes action of the catalog, `port-forward`, a bad param).
pub(crate) fn request<'a>(action: &str, p: P<'a>) -> Result<Request<'a>, Refusal> {
    match K8sAction::from_name(action) {
        Some(K8sAction::PortForward) => Err(Refusal(PORT_FORWARD.to_owned())),
        Some(action) => Request::parse(action, &p),
        None => Err(Refusal(format!("no kubectl mapping for action `{action}`"))),
    }
}

fn cmd(args: Vec<String>) -> Cmd {
    Cmd { args, stdin: None, patch_file: None, output: Output::Text }
}

/// A merge patch of `resource` (`configmap/x`), inline or through a patch file.
fn merge_patch(resource: String, namespace: String, patch: &Value) -> Cmd {
    let text = patch.to_string();
    let mut args = vec!["patch".to_owned(), resource, namespace, "--type=merge".to_owned()];
    if text.len() <= INLINE_PATCH_LIMIT {
        args.push(format!("--patch={text}"));
        cmd(args)
    } else {
        Cmd { patch_file: Some(text), ..cmd(args) }
    }
}

/// The plan for `action` with `params`, or why there is none. Nothing is run here.
pub(crate) fn plan(action: &str, p: P<'_>) -> Result<Plan, Refusal> {
    plan_request(&request(action, p)?)
}

/// The plan for a checked call.
pub(crate) fn plan_request(request: &Request<'_>) -> Result<Plan, Refusal> {
    let s = |v: &str| v.to_owned();
    let ns = |namespace: &str| format!("--namespace={namespace}");
    let run = |c: Cmd| Ok(Plan::Run(c));
    match request {
        Request::RestartDeployment { namespace, deployment } => run(cmd(vec![
            s("rollout"),
            s("restart"),
            format!("deployment/{deployment}"),
            ns(namespace),
        ])),
        Request::ScaleDeployment { namespace, deployment, replicas } => run(cmd(vec![
            s("scale"),
            format!("deployment/{deployment}"),
            ns(namespace),
            format!("--replicas={replicas}"),
        ])),
        Request::DeletePod { namespace, pod, grace_period } => {
            let mut args = vec![s("delete"), format!("pod/{pod}"), ns(namespace)];
            if let Some(g) = grace_period {
                args.push(format!("--grace-period={g}"));
            }
            run(cmd(args))
        }
        Request::DeleteNamespace { namespace } => {
            run(cmd(vec![s("delete"), format!("namespace/{namespace}")]))
        }
        // `kubectl create namespace NAME` (the Python `create namespace/NAME` is not valid).
        Request::CreateNamespace { namespace } => {
            run(cmd(vec![s("create"), s("namespace"), s(namespace)]))
        }
        Request::CordonNode { node } => run(cmd(vec![s("cordon"), s(node)])),
        Request::UncordonNode { node } => run(cmd(vec![s("uncordon"), s(node)])),
        Request::DrainNode { node, timeout, ignore_daemonsets } => run(cmd(vec![
            s("drain"),
            s(node),
            format!("--ignore-daemonsets={ignore_daemonsets}"),
            s("--delete-emptydir-data"),
            format!("--timeout={timeout}s"),
        ])),
        Request::RolloutUndo { namespace, deployment, revision } => {
            let mut args =
                vec![s("rollout"), s("undo"), format!("deployment/{deployment}"), ns(namespace)];
            if let Some(r) = revision {
                args.push(format!("--to-revision={r}"));
            }
            run(cmd(args))
        }
        // Reports the current progress and returns (no waiting), like the API executor.
        Request::RolloutStatus { namespace, deployment } => run(cmd(vec![
            s("rollout"),
            s("status"),
            format!("deployment/{deployment}"),
            ns(namespace),
            s("--watch=false"),
        ])),
        Request::GetPodLogs { namespace, pod, container, tail_lines } => {
            let mut args = vec![s("logs"), format!("pod/{pod}"), ns(namespace)];
            if let Some(c) = container {
                args.push(format!("--container={c}"));
            }
            // The action's declared default: 100 lines.
            args.push(format!("--tail={}", tail_lines.unwrap_or(100)));
            run(cmd(args))
        }
        Request::GetConfigmap { namespace, configmap } => run(Cmd {
            output: Output::ConfigMapData,
            ..cmd(vec![
                s("get"),
                format!("configmap/{configmap}"),
                ns(namespace),
                s("--output=json"),
            ])
        }),
        Request::GetSecret { namespace, secret } => run(Cmd {
            output: Output::SecretKeys,
            ..cmd(vec![s("get"), format!("secret/{secret}"), ns(namespace), s("--output=json")])
        }),
        Request::UpdateConfigmap { namespace, configmap, key, value } => run(merge_patch(
            format!("configmap/{configmap}"),
            ns(namespace),
            &configmap_patch(key, value),
        )),
        Request::UpdateImage { namespace, deployment, container, image } => run(cmd(vec![
            s("set"),
            s("image"),
            format!("deployment/{deployment}"),
            ns(namespace),
            format!("{container}={image}"),
        ])),
        Request::ScaleHpa { namespace, hpa, min_replicas, max_replicas } => run(merge_patch(
            format!("{HPA}/{hpa}"),
            ns(namespace),
            &scale_hpa_patch(*min_replicas, *max_replicas),
        )),
        Request::UpdateHpaLimits { namespace, hpa, targets } => {
            Ok(Plan::HpaLimits { namespace: s(namespace), hpa: s(hpa), targets: targets.clone() })
        }
        Request::ApplyNetworkPolicy { namespace, policy_name, spec } => run(Cmd {
            stdin: Some(network_policy_manifest(namespace, policy_name, spec).to_string()),
            ..cmd(vec![
                s("apply"),
                ns(namespace),
                s("--server-side"),
                s("--field-manager=agent-safe"),
                s("--filename=-"),
            ])
        }),
        Request::ExecPod { namespace, pod, container, command } => {
            let mut args = vec![s("exec"), format!("pod/{pod}"), ns(namespace)];
            if let Some(c) = container {
                args.push(format!("--container={c}"));
            }
            args.push(s("--"));
            args.extend(command.iter().map(|c| s(c)));
            run(cmd(args))
        }
        Request::PortForward { .. } => Err(Refusal(PORT_FORWARD.to_owned())),
    }
}

/// The `update-hpa-limits` patch for the autoscaler object `hpa` (as `kubectl get -o json`
/// prints it): see [`agent_safe_k8s_actions::hpa_limits_patch`].
pub(crate) fn hpa_limits_patch(hpa: &Value, targets: &[HpaTarget]) -> Value {
    let metrics = hpa["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    k8s::hpa_limits_patch(metrics, hpa["metadata"]["resourceVersion"].clone(), targets)
}

/// The kubectl resource (`kind/name`) and namespace of the object a call works on.
pub(crate) fn state_resource(request: &Request<'_>) -> (String, Option<String>) {
    let target = request.target();
    (format!("{}/{}", kind(target.object), target.name), target.namespace.map(str::to_owned))
}

/// The kubectl resource type of `object` (autoscalers fully qualified, see [`HPA`]).
pub(crate) fn kind(object: Object) -> &'static str {
    match object {
        Object::HorizontalPodAutoscaler => HPA,
        other => other.kind(),
    }
}
