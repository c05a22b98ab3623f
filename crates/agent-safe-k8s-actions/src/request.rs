//! One call's params parsed into a typed request, through the executor's own param checks.

use serde_json::{Map, Value};

use crate::action::{K8sAction, Object};

/// `drain-node`'s `timeout` when the call gives none, in seconds.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 300;

/// The error for an `update-hpa-limits` call without a percentage.
pub const NO_HPA_TARGET: &str =
    "give at least one of `target_cpu_percent` and `target_memory_percent`";

/// A param of the catalog's Kubernetes actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[expect(missing_docs, reason = "each variant is the param of the same name")]
pub enum Param {
    Namespace,
    Deployment,
    Pod,
    Node,
    Configmap,
    Secret,
    Hpa,
    PolicyName,
    Container,
    Image,
    Key,
    Value,
    Policy,
    Command,
    Replicas,
    GracePeriod,
    Timeout,
    IgnoreDaemonsets,
    Revision,
    TailLines,
    MinReplicas,
    MaxReplicas,
    TargetCpuPercent,
    TargetMemoryPercent,
    LocalPort,
    RemotePort,
}

impl Param {
    /// The name in the action YAML (`policy_name`).
    pub const fn name(self) -> &'static str {
        match self {
            Param::Namespace => "namespace",
            Param::Deployment => "deployment",
            Param::Pod => "pod",
            Param::Node => "node",
            Param::Configmap => "configmap",
            Param::Secret => "secret",
            Param::Hpa => "hpa",
            Param::PolicyName => "policy_name",
            Param::Container => "container",
            Param::Image => "image",
            Param::Key => "key",
            Param::Value => "value",
            Param::Policy => "policy",
            Param::Command => "command",
            Param::Replicas => "replicas",
            Param::GracePeriod => "grace_period",
            Param::Timeout => "timeout",
            Param::IgnoreDaemonsets => "ignore_daemonsets",
            Param::Revision => "revision",
            Param::TailLines => "tail_lines",
            Param::MinReplicas => "min_replicas",
            Param::MaxReplicas => "max_replicas",
            Param::TargetCpuPercent => "target_cpu_percent",
            Param::TargetMemoryPercent => "target_memory_percent",
            Param::LocalPort => "local_port",
            Param::RemotePort => "remote_port",
        }
    }

    /// Whether the param names an object (a DNS-1123 subdomain: deployments, pods, nodes,
    /// configmaps, secrets, autoscalers, network policies), as opposed to a namespace or a
    /// container (DNS-1123 labels) or a value.
    pub const fn is_object_name(self) -> bool {
        matches!(
            self,
            Param::Deployment
                | Param::Pod
                | Param::Node
                | Param::Configmap
                | Param::Secret
                | Param::Hpa
                | Param::PolicyName
        )
    }
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an executor reads and checks one param, and words what is wrong with it. A param that
/// is absent or `null` is missing; the `opt_` methods return `None` for it.
///
/// [`Request::parse`] decides which params an action reads, in which order, their types,
/// defaults and the rules between them; the reader decides what a valid value is for its
/// executor (the kubectl executor refuses anything that could be read as a command-line
/// option; the API executor accepts any value of the right JSON type).
pub trait ParamReader<'a> {
    /// The executor's error.
    type Error;
    /// A required string.
    fn string(&self, param: Param) -> Result<&'a str, Self::Error>;
    /// An optional string.
    fn opt_string(&self, param: Param) -> Result<Option<&'a str>, Self::Error>;
    /// A required integer.
    fn int(&self, param: Param) -> Result<i64, Self::Error>;
    /// An optional integer.
    fn opt_int(&self, param: Param) -> Result<Option<i64>, Self::Error>;
    /// An optional boolean with its default.
    fn bool_or(&self, param: Param, default: bool) -> Result<bool, Self::Error>;
    /// A JSON object given as a string (`apply-network-policy`'s `policy`).
    fn json_object(&self, param: Param) -> Result<Map<String, Value>, Self::Error>;
    /// A list of strings (`exec-pod`'s `command`).
    fn strings(&self, param: Param) -> Result<Vec<&'a str>, Self::Error>;
    /// The error for an integer the reader accepted that does not fit the request's field
    /// (`replicas` is an `i32`, `grace_period` a `u32`…).
    fn out_of_range(&self, param: Param, value: i64) -> Self::Error;
    /// The error for a rule between params (e.g. [`NO_HPA_TARGET`]).
    fn invalid(&self, message: &str) -> Self::Error;
}

/// A utilisation target of `update-hpa-limits`: `resource` (`cpu`, `memory`) at `percent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpaTarget {
    /// `cpu` or `memory`.
    pub resource: &'static str,
    /// The average utilisation, in percent.
    pub percent: i32,
}

/// The object a request works on: its kind, name and namespace (`None` for cluster-scoped
/// objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The kind.
    pub object: Object,
    /// The namespace, for namespaced objects.
    pub namespace: Option<&'a str>,
    /// The object's name.
    pub name: &'a str,
}

/// One call of a Kubernetes action with its params parsed: field names are the params'.
#[derive(Debug, Clone, PartialEq)]
#[expect(missing_docs, reason = "the fields are the action's params, documented in catalog/")]
pub enum Request<'a> {
    RestartDeployment {
        namespace: &'a str,
        deployment: &'a str,
    },
    ScaleDeployment {
        namespace: &'a str,
        deployment: &'a str,
        replicas: i32,
    },
    DeletePod {
        namespace: &'a str,
        pod: &'a str,
        grace_period: Option<u32>,
    },
    DeleteNamespace {
        namespace: &'a str,
    },
    CreateNamespace {
        namespace: &'a str,
    },
    CordonNode {
        node: &'a str,
    },
    UncordonNode {
        node: &'a str,
    },
    /// `timeout` in seconds ([`DEFAULT_DRAIN_TIMEOUT_SECS`] when not given);
    /// `ignore_daemonsets` defaults to true.
    DrainNode {
        node: &'a str,
        timeout: u64,
        ignore_daemonsets: bool,
    },
    RolloutUndo {
        namespace: &'a str,
        deployment: &'a str,
        revision: Option<i64>,
    },
    RolloutStatus {
        namespace: &'a str,
        deployment: &'a str,
    },
    GetPodLogs {
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        tail_lines: Option<i64>,
    },
    GetConfigmap {
        namespace: &'a str,
        configmap: &'a str,
    },
    GetSecret {
        namespace: &'a str,
        secret: &'a str,
    },
    UpdateConfigmap {
        namespace: &'a str,
        configmap: &'a str,
        key: &'a str,
        value: &'a str,
    },
    UpdateImage {
        namespace: &'a str,
        deployment: &'a str,
        container: &'a str,
        image: &'a str,
    },
    ScaleHpa {
        namespace: &'a str,
        hpa: &'a str,
        min_replicas: i32,
        max_replicas: i32,
    },
    /// At least one target, `cpu` before `memory`.
    UpdateHpaLimits {
        namespace: &'a str,
        hpa: &'a str,
        targets: Vec<HpaTarget>,
    },
    /// `spec` is the `policy` param parsed (the NetworkPolicy spec).
    ApplyNetworkPolicy {
        namespace: &'a str,
        policy_name: &'a str,
        spec: Map<String, Value>,
    },
    ExecPod {
        namespace: &'a str,
        pod: &'a str,
        container: Option<&'a str>,
        command: Vec<&'a str>,
    },
    PortForward {
        namespace: &'a str,
        pod: &'a str,
        local_port: u16,
        remote_port: u16,
    },
}

impl<'a> Request<'a> {
    /// Parses the params of a call of `action` through `reader`. The params are read in the
    /// action's order (namespace, then the object's name, then the rest as the action YAML
    /// lists them); the first one that is wrong is the error.
    pub fn parse<R: ParamReader<'a>>(action: K8sAction, reader: &R) -> Result<Self, R::Error> {
        let r = reader;
        let ns = || r.string(Param::Namespace);
        let fit = |param: Param, n: i64| i32::try_from(n).map_err(|_| r.out_of_range(param, n));
        Ok(match action {
            K8sAction::RestartDeployment => Request::RestartDeployment {
                namespace: ns()?,
                deployment: r.string(Param::Deployment)?,
            },
            K8sAction::ScaleDeployment => Request::ScaleDeployment {
                namespace: ns()?,
                deployment: r.string(Param::Deployment)?,
                replicas: fit(Param::Replicas, r.int(Param::Replicas)?)?,
            },
            K8sAction::DeletePod => Request::DeletePod {
                namespace: ns()?,
                pod: r.string(Param::Pod)?,
                grace_period: match r.opt_int(Param::GracePeriod)? {
                    None => None,
                    Some(g) => {
                        Some(u32::try_from(g).map_err(|_| r.out_of_range(Param::GracePeriod, g))?)
                    }
                },
            },
            K8sAction::DeleteNamespace => Request::DeleteNamespace { namespace: ns()? },
            K8sAction::CreateNamespace => Request::CreateNamespace { namespace: ns()? },
            K8sAction::CordonNode => Request::CordonNode { node: r.string(Param::Node)? },
            K8sAction::UncordonNode => Request::UncordonNode { node: r.string(Param::Node)? },
            K8sAction::DrainNode => Request::DrainNode {
                node: r.string(Param::Node)?,
                timeout: match r.opt_int(Param::Timeout)? {
                    None => DEFAULT_DRAIN_TIMEOUT_SECS,
                    Some(t) => u64::try_from(t).map_err(|_| r.out_of_range(Param::Timeout, t))?,
                },
                ignore_daemonsets: r.bool_or(Param::IgnoreDaemonsets, true)?,
            },
            K8sAction::RolloutUndo => Request::RolloutUndo {
                namespace: ns()?,
                deployment: r.string(Param::Deployment)?,
                revision: r.opt_int(Param::Revision)?,
            },
            K8sAction::RolloutStatus => Request::RolloutStatus {
                namespace: ns()?,
                deployment: r.string(Param::Deployment)?,
            },
            K8sAction::GetPodLogs => Request::GetPodLogs {
                namespace: ns()?,
                pod: r.string(Param::Pod)?,
                container: r.opt_string(Param::Container)?,
                tail_lines: r.opt_int(Param::TailLines)?,
            },
            K8sAction::GetConfigmap => {
                Request::GetConfigmap { namespace: ns()?, configmap: r.string(Param::Configmap)? }
            }
            K8sAction::GetSecret => {
                Request::GetSecret { namespace: ns()?, secret: r.string(Param::Secret)? }
            }
            K8sAction::UpdateConfigmap => Request::UpdateConfigmap {
                namespace: ns()?,
                configmap: r.string(Param::Configmap)?,
                key: r.string(Param::Key)?,
                value: r.string(Param::Value)?,
            },
            K8sAction::UpdateImage => Request::UpdateImage {
                namespace: ns()?,
                deployment: r.string(Param::Deployment)?,
                container: r.string(Param::Container)?,
                image: r.string(Param::Image)?,
            },
            K8sAction::ScaleHpa => Request::ScaleHpa {
                namespace: ns()?,
                hpa: r.string(Param::Hpa)?,
                min_replicas: fit(Param::MinReplicas, r.int(Param::MinReplicas)?)?,
                max_replicas: fit(Param::MaxReplicas, r.int(Param::MaxReplicas)?)?,
            },
            K8sAction::UpdateHpaLimits => {
                let (namespace, hpa) = (ns()?, r.string(Param::Hpa)?);
                let mut targets = Vec::new();
                for (param, resource) in
                    [(Param::TargetCpuPercent, "cpu"), (Param::TargetMemoryPercent, "memory")]
                {
                    if let Some(pct) = r.opt_int(param)? {
                        targets.push(HpaTarget { resource, percent: fit(param, pct)? });
                    }
                }
                if targets.is_empty() {
                    return Err(r.invalid(NO_HPA_TARGET));
                }
                Request::UpdateHpaLimits { namespace, hpa, targets }
            }
            K8sAction::ApplyNetworkPolicy => Request::ApplyNetworkPolicy {
                namespace: ns()?,
                policy_name: r.string(Param::PolicyName)?,
                spec: r.json_object(Param::Policy)?,
            },
            K8sAction::ExecPod => Request::ExecPod {
                namespace: ns()?,
                pod: r.string(Param::Pod)?,
                container: r.opt_string(Param::Container)?,
                command: r.strings(Param::Command)?,
            },
            K8sAction::PortForward => {
                let port = |param: Param| -> Result<u16, R::Error> {
                    let n = r.int(param)?;
                    u16::try_from(n).map_err(|_| r.out_of_range(param, n))
                };
                Request::PortForward {
                    namespace: ns()?,
                    pod: r.string(Param::Pod)?,
                    local_port: port(Param::LocalPort)?,
                    remote_port: port(Param::RemotePort)?,
                }
            }
        })
    }

    /// The action this is a call of.
    pub fn action(&self) -> K8sAction {
        match self {
            Request::RestartDeployment { .. } => K8sAction::RestartDeployment,
            Request::ScaleDeployment { .. } => K8sAction::ScaleDeployment,
            Request::DeletePod { .. } => K8sAction::DeletePod,
            Request::DeleteNamespace { .. } => K8sAction::DeleteNamespace,
            Request::CreateNamespace { .. } => K8sAction::CreateNamespace,
            Request::CordonNode { .. } => K8sAction::CordonNode,
            Request::UncordonNode { .. } => K8sAction::UncordonNode,
            Request::DrainNode { .. } => K8sAction::DrainNode,
            Request::RolloutUndo { .. } => K8sAction::RolloutUndo,
            Request::RolloutStatus { .. } => K8sAction::RolloutStatus,
            Request::GetPodLogs { .. } => K8sAction::GetPodLogs,
            Request::GetConfigmap { .. } => K8sAction::GetConfigmap,
            Request::GetSecret { .. } => K8sAction::GetSecret,
            Request::UpdateConfigmap { .. } => K8sAction::UpdateConfigmap,
            Request::UpdateImage { .. } => K8sAction::UpdateImage,
            Request::ScaleHpa { .. } => K8sAction::ScaleHpa,
            Request::UpdateHpaLimits { .. } => K8sAction::UpdateHpaLimits,
            Request::ApplyNetworkPolicy { .. } => K8sAction::ApplyNetworkPolicy,
            Request::ExecPod { .. } => K8sAction::ExecPod,
            Request::PortForward { .. } => K8sAction::PortForward,
        }
    }

    /// The namespace param, for actions that have one.
    pub fn namespace(&self) -> Option<&'a str> {
        match *self {
            Request::CordonNode { .. }
            | Request::UncordonNode { .. }
            | Request::DrainNode { .. } => None,
            Request::RestartDeployment { namespace, .. }
            | Request::ScaleDeployment { namespace, .. }
            | Request::DeletePod { namespace, .. }
            | Request::DeleteNamespace { namespace }
            | Request::CreateNamespace { namespace }
            | Request::RolloutUndo { namespace, .. }
            | Request::RolloutStatus { namespace, .. }
            | Request::GetPodLogs { namespace, .. }
            | Request::GetConfigmap { namespace, .. }
            | Request::GetSecret { namespace, .. }
            | Request::UpdateConfigmap { namespace, .. }
            | Request::UpdateImage { namespace, .. }
            | Request::ScaleHpa { namespace, .. }
            | Request::UpdateHpaLimits { namespace, .. }
            | Request::ApplyNetworkPolicy { namespace, .. }
            | Request::ExecPod { namespace, .. }
            | Request::PortForward { namespace, .. } => Some(namespace),
        }
    }

    /// The object the call works on ([`K8sAction::object`], with its name and namespace).
    pub fn target(&self) -> Target<'a> {
        let object = self.action().object();
        let name = match *self {
            Request::RestartDeployment { deployment, .. }
            | Request::ScaleDeployment { deployment, .. }
            | Request::RolloutUndo { deployment, .. }
            | Request::RolloutStatus { deployment, .. }
            | Request::UpdateImage { deployment, .. } => deployment,
            Request::DeletePod { pod, .. }
            | Request::GetPodLogs { pod, .. }
            | Request::ExecPod { pod, .. }
            | Request::PortForward { pod, .. } => pod,
            Request::DeleteNamespace { namespace } | Request::CreateNamespace { namespace } => {
                namespace
            }
            Request::CordonNode { node }
            | Request::UncordonNode { node }
            | Request::DrainNode { node, .. } => node,
            Request::GetConfigmap { configmap, .. }
            | Request::UpdateConfigmap { configmap, .. } => configmap,
            Request::GetSecret { secret, .. } => secret,
            Request::ScaleHpa { hpa, .. } | Request::UpdateHpaLimits { hpa, .. } => hpa,
            Request::ApplyNetworkPolicy { policy_name, .. } => policy_name,
        };
        let namespace = if object.is_namespaced() { self.namespace() } else { None };
        Target { object, namespace, name }
    }
}

#[cfg(test)]
mod tests;
