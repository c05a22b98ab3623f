//! The catalog's Kubernetes actions by name, and the object each one works on.

/// A Kubernetes action of the catalog (`catalog/actions/*.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum K8sAction {
    /// `restart-deployment`.
    RestartDeployment,
    /// `scale-deployment`.
    ScaleDeployment,
    /// `delete-pod`.
    DeletePod,
    /// `delete-namespace`.
    DeleteNamespace,
    /// `create-namespace`.
    CreateNamespace,
    /// `cordon-node`.
    CordonNode,
    /// `uncordon-node`.
    UncordonNode,
    /// `drain-node`.
    DrainNode,
    /// `rollout-undo`.
    RolloutUndo,
    /// `rollout-status`.
    RolloutStatus,
    /// `get-pod-logs`.
    GetPodLogs,
    /// `get-configmap`.
    GetConfigmap,
    /// `get-secret`.
    GetSecret,
    /// `update-configmap`.
    UpdateConfigmap,
    /// `update-image`.
    UpdateImage,
    /// `scale-hpa`.
    ScaleHpa,
    /// `update-hpa-limits`.
    UpdateHpaLimits,
    /// `apply-network-policy`.
    ApplyNetworkPolicy,
    /// `exec-pod` (a streaming connection to the API server).
    ExecPod,
    /// `port-forward` (an open-ended streaming session).
    PortForward,
}

impl K8sAction {
    /// Every Kubernetes action of the catalog: the eighteen with a plain request/response
    /// mapping first, then the two streaming ones (`exec-pod`, `port-forward`).
    pub const ALL: [K8sAction; 20] = [
        K8sAction::RestartDeployment,
        K8sAction::ScaleDeployment,
        K8sAction::DeletePod,
        K8sAction::DeleteNamespace,
        K8sAction::CreateNamespace,
        K8sAction::CordonNode,
        K8sAction::UncordonNode,
        K8sAction::DrainNode,
        K8sAction::RolloutUndo,
        K8sAction::RolloutStatus,
        K8sAction::GetPodLogs,
        K8sAction::GetConfigmap,
        K8sAction::GetSecret,
        K8sAction::UpdateConfigmap,
        K8sAction::UpdateImage,
        K8sAction::ScaleHpa,
        K8sAction::UpdateHpaLimits,
        K8sAction::ApplyNetworkPolicy,
        K8sAction::ExecPod,
        K8sAction::PortForward,
    ];

    /// The catalog name (`scale-deployment`).
    pub const fn name(self) -> &'static str {
        match self {
            K8sAction::RestartDeployment => "restart-deployment",
            K8sAction::ScaleDeployment => "scale-deployment",
            K8sAction::DeletePod => "delete-pod",
            K8sAction::DeleteNamespace => "delete-namespace",
            K8sAction::CreateNamespace => "create-namespace",
            K8sAction::CordonNode => "cordon-node",
            K8sAction::UncordonNode => "uncordon-node",
            K8sAction::DrainNode => "drain-node",
            K8sAction::RolloutUndo => "rollout-undo",
            K8sAction::RolloutStatus => "rollout-status",
            K8sAction::GetPodLogs => "get-pod-logs",
            K8sAction::GetConfigmap => "get-configmap",
            K8sAction::GetSecret => "get-secret",
            K8sAction::UpdateConfigmap => "update-configmap",
            K8sAction::UpdateImage => "update-image",
            K8sAction::ScaleHpa => "scale-hpa",
            K8sAction::UpdateHpaLimits => "update-hpa-limits",
            K8sAction::ApplyNetworkPolicy => "apply-network-policy",
            K8sAction::ExecPod => "exec-pod",
            K8sAction::PortForward => "port-forward",
        }
    }

    /// The action called `name`; `None` for a name that is not a Kubernetes action of the
    /// catalog.
    pub fn from_name(name: &str) -> Option<K8sAction> {
        K8sAction::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the action needs a streaming connection (`exec-pod`, `port-forward`) rather
    /// than requests with answers.
    pub const fn is_streaming(self) -> bool {
        matches!(self, K8sAction::ExecPod | K8sAction::PortForward)
    }

    /// The object the action works on: the one whose state is captured and whose existence
    /// the prechecks test.
    pub const fn object(self) -> Object {
        match self {
            K8sAction::RestartDeployment
            | K8sAction::ScaleDeployment
            | K8sAction::RolloutUndo
            | K8sAction::RolloutStatus
            | K8sAction::UpdateImage => Object::Deployment,
            K8sAction::DeletePod
            | K8sAction::GetPodLogs
            | K8sAction::ExecPod
            | K8sAction::PortForward => Object::Pod,
            K8sAction::DeleteNamespace | K8sAction::CreateNamespace => Object::Namespace,
            K8sAction::CordonNode | K8sAction::UncordonNode | K8sAction::DrainNode => Object::Node,
            K8sAction::GetConfigmap | K8sAction::UpdateConfigmap => Object::ConfigMap,
            K8sAction::GetSecret => Object::Secret,
            K8sAction::ScaleHpa | K8sAction::UpdateHpaLimits => Object::HorizontalPodAutoscaler,
            K8sAction::ApplyNetworkPolicy => Object::NetworkPolicy,
        }
    }
}

impl std::fmt::Display for K8sAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of object a Kubernetes action works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    /// An `apps/v1` Deployment.
    Deployment,
    /// A Pod.
    Pod,
    /// A Namespace (cluster-scoped).
    Namespace,
    /// A Node (cluster-scoped).
    Node,
    /// A ConfigMap.
    ConfigMap,
    /// A Secret.
    Secret,
    /// An `autoscaling/v2` HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// A `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
}

impl Object {
    /// The param that names the object (`deployment`, `pod`, `namespace`, `node`,
    /// `configmap`, `secret`, `hpa`, `policy_name`).
    pub const fn name_param(self) -> &'static str {
        match self {
            Object::HorizontalPodAutoscaler => "hpa",
            Object::NetworkPolicy => "policy_name",
            other => other.kind(),
        }
    }

    /// The kind in lower case, as kubectl and the executors' messages name it
    /// (`horizontalpodautoscaler`).
    pub const fn kind(self) -> &'static str {
        match self {
            Object::Deployment => "deployment",
            Object::Pod => "pod",
            Object::Namespace => "namespace",
            Object::Node => "node",
            Object::ConfigMap => "configmap",
            Object::Secret => "secret",
            Object::HorizontalPodAutoscaler => "horizontalpodautoscaler",
            Object::NetworkPolicy => "networkpolicy",
        }
    }

    /// Whether the object lives in a namespace (given by the `namespace` param).
    pub const fn is_namespaced(self) -> bool {
        !matches!(self, Object::Namespace | Object::Node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for action in K8sAction::ALL {
            assert_eq!(K8sAction::from_name(action.name()), Some(action));
            assert_eq!(action.to_string(), action.name());
        }
        assert_eq!(K8sAction::from_name("ec2-stop-instance"), None);
        assert_eq!(K8sAction::from_name(""), None);
        let streaming: Vec<_> = K8sAction::ALL.into_iter().filter(|a| a.is_streaming()).collect();
        assert_eq!(streaming, [K8sAction::ExecPod, K8sAction::PortForward]);
    }

    #[test]
    fn objects_are_named_by_one_param() {
        assert_eq!(K8sAction::DrainNode.object(), Object::Node);
        assert!(!Object::Node.is_namespaced());
        assert!(!Object::Namespace.is_namespaced());
        assert!(Object::NetworkPolicy.is_namespaced());
        assert_eq!(K8sAction::ApplyNetworkPolicy.object().name_param(), "policy_name");
        assert_eq!(K8sAction::ScaleHpa.object().kind(), "horizontalpodautoscaler");
    }
}
