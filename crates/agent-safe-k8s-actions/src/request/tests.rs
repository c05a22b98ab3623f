//! The typed parser: every catalog Kubernetes action parsed from its params, and the errors
//! for wrong and missing params (through a plain reader; each executor's own reader has its
//! own tests of its wording).

use serde_json::{Map, Value, json};

use super::*;

/// A reader with plain checks: strings, integers, booleans by JSON type.
struct Plain(Map<String, Value>);

impl Plain {
    fn get(&self, param: Param) -> Option<&Value> {
        self.0.get(param.name()).filter(|v| !v.is_null())
    }
}

impl<'a> ParamReader<'a> for &'a Plain {
    type Error = String;

    fn string(&self, param: Param) -> Result<&'a str, String> {
        self.opt_string(param)?.ok_or_else(|| format!("missing param `{param}`"))
    }

    fn opt_string(&self, param: Param) -> Result<Option<&'a str>, String> {
        match self.get(param) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("param `{param}` must be a string, got `{other}`")),
        }
    }

    fn int(&self, param: Param) -> Result<i64, String> {
        self.opt_int(param)?.ok_or_else(|| format!("missing param `{param}`"))
    }

    fn opt_int(&self, param: Param) -> Result<Option<i64>, String> {
        match self.get(param) {
            None => Ok(None),
            Some(v) => {
                v.as_i64().map(Some).ok_or_else(|| format!("param `{param}` must be an integer"))
            }
        }
    }

    fn bool_or(&self, param: Param, default: bool) -> Result<bool, String> {
        match self.get(param) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| format!("param `{param}` must be a boolean")),
        }
    }

    fn json_object(&self, param: Param) -> Result<Map<String, Value>, String> {
        match serde_json::from_str(self.string(param)?) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(format!("param `{param}` must be a JSON object")),
        }
    }

    fn strings(&self, param: Param) -> Result<Vec<&'a str>, String> {
        let bad = || format!("param `{param}` must be a list of strings");
        let items = self.get(param).and_then(Value::as_array).ok_or_else(bad)?;
        items.iter().map(|v| v.as_str().ok_or_else(bad)).collect()
    }

    fn out_of_range(&self, param: Param, value: i64) -> String {
        format!("param `{param}` is out of range: `{value}`")
    }

    fn invalid(&self, message: &str) -> String {
        message.to_owned()
    }
}

fn plain(params: Value) -> Plain {
    Plain(params.as_object().cloned().unwrap_or_default())
}

#[track_caller]
fn check(action: &str, params: Value, expected: Result<Request<'_>, &str>) {
    let action = K8sAction::from_name(action).unwrap();
    let reader = plain(params);
    let got = Request::parse(action, &&reader);
    assert_eq!(got, expected.map_err(str::to_owned), "{action}");
    if let Ok(request) = &got {
        assert_eq!(request.action(), action);
        assert_eq!(request.target().object, action.object());
    }
}

#[test]
fn every_catalog_action_parses_from_its_params() {
    use Request as R;
    let d = json!({"namespace": "dev", "deployment": "api"});
    check(
        "restart-deployment",
        d.clone(),
        Ok(R::RestartDeployment { namespace: "dev", deployment: "api" }),
    );
    check(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": 3}),
        Ok(R::ScaleDeployment { namespace: "dev", deployment: "api", replicas: 3 }),
    );
    check(
        "delete-pod",
        json!({"namespace": "dev", "pod": "p", "grace_period": 0}),
        Ok(R::DeletePod { namespace: "dev", pod: "p", grace_period: Some(0) }),
    );
    check(
        "delete-pod",
        json!({"namespace": "dev", "pod": "p", "grace_period": null}),
        Ok(R::DeletePod { namespace: "dev", pod: "p", grace_period: None }),
    );
    check(
        "delete-namespace",
        json!({"namespace": "old"}),
        Ok(R::DeleteNamespace { namespace: "old" }),
    );
    check(
        "create-namespace",
        json!({"namespace": "new"}),
        Ok(R::CreateNamespace { namespace: "new" }),
    );
    check("cordon-node", json!({"node": "n1"}), Ok(R::CordonNode { node: "n1" }));
    check("uncordon-node", json!({"node": "n1"}), Ok(R::UncordonNode { node: "n1" }));
    check(
        "drain-node",
        json!({"node": "n1"}),
        Ok(R::DrainNode {
            node: "n1",
            timeout: DEFAULT_DRAIN_TIMEOUT_SECS,
            ignore_daemonsets: true,
        }),
    );
    check(
        "drain-node",
        json!({"node": "n1", "timeout": 60, "ignore_daemonsets": false}),
        Ok(R::DrainNode { node: "n1", timeout: 60, ignore_daemonsets: false }),
    );
    check(
        "rollout-undo",
        json!({"namespace": "dev", "deployment": "api", "revision": 4}),
        Ok(R::RolloutUndo { namespace: "dev", deployment: "api", revision: Some(4) }),
    );
    check("rollout-status", d, Ok(R::RolloutStatus { namespace: "dev", deployment: "api" }));
    check(
        "get-pod-logs",
        json!({"namespace": "dev", "pod": "p", "container": "app", "tail_lines": 20}),
        Ok(R::GetPodLogs {
            namespace: "dev",
            pod: "p",
            container: Some("app"),
            tail_lines: Some(20),
        }),
    );
    check(
        "get-configmap",
        json!({"namespace": "dev", "configmap": "c"}),
        Ok(R::GetConfigmap { namespace: "dev", configmap: "c" }),
    );
    check(
        "get-secret",
        json!({"namespace": "dev", "secret": "s"}),
        Ok(R::GetSecret { namespace: "dev", secret: "s" }),
    );
    check(
        "update-configmap",
        json!({"namespace": "dev", "configmap": "c", "key": "K", "value": ""}),
        Ok(R::UpdateConfigmap { namespace: "dev", configmap: "c", key: "K", value: "" }),
    );
    check(
        "update-image",
        json!({"namespace": "dev", "deployment": "api", "container": "app", "image": "nginx:1"}),
        Ok(R::UpdateImage {
            namespace: "dev",
            deployment: "api",
            container: "app",
            image: "nginx:1",
        }),
    );
    check(
        "scale-hpa",
        json!({"namespace": "dev", "hpa": "h", "min_replicas": 2, "max_replicas": 10}),
        Ok(R::ScaleHpa { namespace: "dev", hpa: "h", min_replicas: 2, max_replicas: 10 }),
    );
    check(
        "update-hpa-limits",
        json!({"namespace": "dev", "hpa": "h", "target_memory_percent": 70, "target_cpu_percent": 50}),
        Ok(R::UpdateHpaLimits {
            namespace: "dev",
            hpa: "h",
            targets: vec![
                HpaTarget { resource: "cpu", percent: 50 },
                HpaTarget { resource: "memory", percent: 70 },
            ],
        }),
    );
    let spec = json!({"podSelector": {}}).as_object().cloned().unwrap();
    check(
        "apply-network-policy",
        json!({"namespace": "dev", "policy_name": "deny", "policy": "{\"podSelector\": {}}"}),
        Ok(R::ApplyNetworkPolicy { namespace: "dev", policy_name: "deny", spec }),
    );
    check(
        "exec-pod",
        json!({"namespace": "dev", "pod": "p", "command": ["ls", "-la"]}),
        Ok(R::ExecPod { namespace: "dev", pod: "p", container: None, command: vec!["ls", "-la"] }),
    );
    check(
        "port-forward",
        json!({"namespace": "dev", "pod": "p", "local_port": 8080, "remote_port": 80}),
        Ok(R::PortForward { namespace: "dev", pod: "p", local_port: 8080, remote_port: 80 }),
    );
}

#[test]
fn wrong_and_missing_params_are_precise_errors() {
    check(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api"}),
        Err("missing param `replicas`"),
    );
    check(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": "3"}),
        Err("param `replicas` must be an integer"),
    );
    check(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": 3_000_000_000_i64}),
        Err("param `replicas` is out of range: `3000000000`"),
    );
    check(
        "delete-pod",
        json!({"namespace": "dev", "pod": "p", "grace_period": -1}),
        Err("param `grace_period` is out of range: `-1`"),
    );
    check(
        "drain-node",
        json!({"node": "n", "timeout": -5}),
        Err("param `timeout` is out of range: `-5`"),
    );
    check(
        "drain-node",
        json!({"node": "n", "ignore_daemonsets": "yes"}),
        Err("param `ignore_daemonsets` must be a boolean"),
    );
    check("cordon-node", json!({}), Err("missing param `node`"));
    check("cordon-node", json!({"node": null}), Err("missing param `node`"));
    check(
        "get-secret",
        json!({"namespace": 7, "secret": "s"}),
        Err("param `namespace` must be a string, got `7`"),
    );
    // Namespace first, then the object's name.
    check("restart-deployment", json!({}), Err("missing param `namespace`"));
    check("update-hpa-limits", json!({"namespace": "dev", "hpa": "h"}), Err(NO_HPA_TARGET));
    check(
        "update-hpa-limits",
        json!({"namespace": "dev", "hpa": "h", "target_cpu_percent": 1_i64 << 40}),
        Err("param `target_cpu_percent` is out of range: `1099511627776`"),
    );
    check(
        "apply-network-policy",
        json!({"namespace": "dev", "policy_name": "p", "policy": "[1]"}),
        Err("param `policy` must be a JSON object"),
    );
    check(
        "exec-pod",
        json!({"namespace": "dev", "pod": "p", "command": "ls"}),
        Err("param `command` must be a list of strings"),
    );
    check(
        "port-forward",
        json!({"namespace": "dev", "pod": "p", "local_port": 70000, "remote_port": 80}),
        Err("param `local_port` is out of range: `70000`"),
    );
}

#[test]
fn targets_name_the_object() {
    let reader =
        plain(json!({"namespace": "dev", "hpa": "web", "min_replicas": 1, "max_replicas": 2}));
    let request = Request::parse(K8sAction::ScaleHpa, &&reader).unwrap();
    assert_eq!(
        request.target(),
        Target { object: Object::HorizontalPodAutoscaler, namespace: Some("dev"), name: "web" }
    );
    let reader = plain(json!({"namespace": "old"}));
    let request = Request::parse(K8sAction::DeleteNamespace, &&reader).unwrap();
    assert_eq!(
        request.target(),
        Target { object: Object::Namespace, namespace: None, name: "old" }
    );
    assert_eq!(request.namespace(), Some("old"));
    let reader = plain(json!({"node": "n1"}));
    let request = Request::parse(K8sAction::DrainNode, &&reader).unwrap();
    assert_eq!(request.target(), Target { object: Object::Node, namespace: None, name: "n1" });
    assert_eq!(request.namespace(), None);
}

#[test]
fn no_params_never_panic() {
    for action in K8sAction::ALL {
        for params in [json!({}), json!({"namespace": [], "node": {}, "pod": 1.5}), json!(null)] {
            let reader = plain(params);
            assert!(Request::parse(action, &&reader).is_err(), "{action}");
        }
    }
}
