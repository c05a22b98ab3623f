//! State capture and prechecks from `kubectl get … --output=json`: the object is reduced to the
//! fields the action declares in `state_fields`, under the same names the Kubernetes API
//! executor uses (so `before_state.replicas` rollback sources resolve with either executor).
//! Secret values never leave this module: a Secret yields its key names and `[redacted]`.

use std::collections::BTreeMap;

use agent_safe_core::{PreCheckResult, PrecheckSpec, StateMap};
use serde_json::{Value, json};

use agent_safe_k8s_actions::{K8sAction, Object};

use super::args::P;
use agent_safe_registry::REDACTED;

/// All fields this module can report for an object of `kind` (`None` when it does not
/// exist).
pub(crate) fn fields(kind: Object, p: P<'_>, object: Option<&Value>) -> BTreeMap<String, Value> {
    let mut f = BTreeMap::new();
    let Some(o) = object else {
        f.insert("exists".to_owned(), json!(false));
        return f;
    };
    let mut put = |k: &str, v: Value| {
        f.insert(k.to_owned(), v);
    };
    put("exists", json!(true));
    let spec = &o["spec"];
    let status = &o["status"];
    match kind {
        Object::Deployment => {
            put("replicas", json!(spec["replicas"].as_i64().unwrap_or(1)));
            put("paused", json!(spec["paused"].as_bool().unwrap_or(false)));
            if let Some(g) = o["metadata"]["generation"].as_i64() {
                put("generation", json!(g));
            }
            if let Some(g) = status["observedGeneration"].as_i64() {
                put("observed_generation", json!(g));
            }
            for (name, key) in [
                ("available_replicas", "availableReplicas"),
                ("ready_replicas", "readyReplicas"),
                ("updated_replicas", "updatedReplicas"),
            ] {
                put(name, json!(status[key].as_i64().unwrap_or(0)));
            }
            let revision = o["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse::<i64>().ok());
            if let Some(r) = revision {
                put("revision", json!(r));
            }
            let pod = &spec["template"]["spec"];
            let images: serde_json::Map<String, Value> = containers(pod)
                .filter_map(|c| Some((c["name"].as_str()?.to_owned(), c["image"].clone())))
                .collect();
            put("images", Value::Object(images));
        }
        Object::Pod => {
            if let Some(phase) = status["phase"].as_str() {
                put("phase", json!(phase));
            }
            if let Some(owner) = controller(o) {
                put("owner", json!(owner));
            }
            if let Some(node) = spec["nodeName"].as_str() {
                put("node", json!(node));
            }
        }
        Object::Namespace => {
            if let Some(phase) = status["phase"].as_str() {
                put("phase", json!(phase));
            }
        }
        Object::Node => {
            put("unschedulable", json!(spec["unschedulable"].as_bool().unwrap_or(false)));
        }
        Object::ConfigMap => {
            let data = o.get("data").cloned().filter(Value::is_object).unwrap_or(json!({}));
            let key = p.0.get("key").and_then(Value::as_str);
            if let Some(v) = key.and_then(|k| data.get(k)) {
                put("previous_value", v.clone());
            }
            put("data", data);
        }
        Object::Secret => {
            let keys = secret_keys(o);
            let redacted: serde_json::Map<String, Value> =
                keys.iter().map(|k| (k.clone(), json!(REDACTED))).collect();
            put("data", Value::Object(redacted));
            put("keys", json!(keys));
            if let Some(t) = o["type"].as_str() {
                put("type", json!(t));
            }
        }
        Object::HorizontalPodAutoscaler => {
            put("min_replicas", json!(spec["minReplicas"].as_i64().unwrap_or(1)));
            put("max_replicas", spec["maxReplicas"].clone());
            put("current_replicas", json!(status["currentReplicas"].as_i64().unwrap_or(0)));
            for m in spec["metrics"].as_array().into_iter().flatten() {
                let Some(pct) = m["resource"]["target"]["averageUtilization"].as_i64() else {
                    continue;
                };
                match m["resource"]["name"].as_str() {
                    Some("cpu") => put("target_cpu_percent", json!(pct)),
                    Some("memory") => put("target_memory_percent", json!(pct)),
                    _ => {}
                }
            }
        }
        Object::NetworkPolicy if !spec.is_null() => put("spec", spec.clone()),
        Object::NetworkPolicy => {}
    }
    f
}

/// `fields` reduced to the declared names, in declared order.
pub(crate) fn reduce(all: &BTreeMap<String, Value>, declared: &[String]) -> StateMap {
    declared.iter().filter_map(|f| all.get(f).map(|v| (f.clone(), v.clone()))).collect()
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(pod["containers"].as_array().into_iter().flatten())
}

fn controller(o: &Value) -> Option<String> {
    o["metadata"]["ownerReferences"].as_array()?.iter().find(|r| r["controller"] == true).map(|r| {
        format!(
            "{}/{}",
            r["kind"].as_str().unwrap_or_default(),
            r["name"].as_str().unwrap_or_default()
        )
    })
}

/// A Secret's key names (`data` and `stringData`), sorted; never the values.
pub(crate) fn secret_keys(o: &Value) -> Vec<String> {
    let mut keys: Vec<String> = ["data", "stringData"]
        .iter()
        .filter_map(|k| o[*k].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Namespaces `not-system-namespace` refuses.
const SYSTEM_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "default"];

/// Answers the declared prechecks from the action's object (`None` when it does not exist)
/// and the params. A precheck this executor cannot answer does not pass and says so (use the
/// Kubernetes API executor for those).
pub(crate) fn prechecks(
    action: K8sAction,
    p: P<'_>,
    object: Option<&Value>,
    specs: &[PrecheckSpec],
) -> Vec<PreCheckResult> {
    specs
        .iter()
        .map(|spec| {
            let (passed, message) = precheck(&spec.name, action, p, object);
            PreCheckResult { name: spec.name.clone(), passed, message, advisory: !spec.blocking }
        })
        .collect()
}

fn precheck(name: &str, action: K8sAction, p: P<'_>, object: Option<&Value>) -> (bool, String) {
    let what = object.map_or_else(
        || describe(action, p),
        |o| {
            let kind = o["kind"].as_str().unwrap_or("object").to_lowercase();
            let n = o["metadata"]["name"].as_str().unwrap_or_default();
            match o["metadata"]["namespace"].as_str() {
                Some(ns) => format!("{kind} `{ns}/{n}`"),
                None => format!("{kind} `{n}`"),
            }
        },
    );
    let exists_check = matches!(
        name,
        "deployment-exists"
            | "pod-exists"
            | "node-exists"
            | "namespace-exists"
            | "configmap-exists"
            | "secret-exists"
            | "hpa-exists"
    );
    match (name, object) {
        ("namespace-absent", None) => (true, format!("{what} does not exist yet")),
        ("namespace-absent", Some(_)) => (false, format!("{what} already exists")),
        ("not-system-namespace", _) => match p.label("namespace") {
            Ok(ns) if SYSTEM_NAMESPACES.contains(&ns) => {
                (false, format!("`{ns}` is a system namespace"))
            }
            Ok(ns) => (true, format!("`{ns}` is not a system namespace")),
            Err(e) => (false, e.0),
        },
        ("bounds-ordered", _) => {
            match (p.int("min_replicas", 0, i64::MAX), p.int("max_replicas", 0, i64::MAX)) {
                (Ok(min), Ok(max)) if min <= max => (true, format!("{min} <= {max}")),
                (Ok(min), Ok(max)) => {
                    (false, format!("min_replicas {min} is above max_replicas {max}"))
                }
                (Err(e), _) | (_, Err(e)) => (false, e.0),
            }
        }
        (_, None)
            if exists_check
                || matches!(
                    name,
                    "enough-replicas"
                        | "container-exists"
                        | "has-controller"
                        | "pod-running"
                        | "node-cordoned"
                        | "metric-present"
                ) =>
        {
            (false, format!("{what} not found"))
        }
        ("deployment-exists", Some(o)) if o["spec"]["paused"] == true => {
            (false, format!("{what} exists but is paused"))
        }
        (_, Some(o)) if exists_check => {
            let phase = o["status"]["phase"].as_str().map(|p| format!(" (phase {p})"));
            (true, format!("{what} exists{}", phase.unwrap_or_default()))
        }
        ("enough-replicas", Some(o)) => {
            let available = o["status"]["availableReplicas"].as_i64().unwrap_or(0);
            (available >= 2, format!("{available} available replicas (2 or more needed)"))
        }
        ("container-exists", Some(o)) => match p.label("container") {
            Ok(c) => {
                let found = containers(&o["spec"]["template"]["spec"]).any(|x| x["name"] == c);
                if found {
                    (true, format!("container `{c}` found"))
                } else {
                    (false, format!("{what} has no container `{c}`"))
                }
            }
            Err(e) => (false, e.0),
        },
        ("has-controller", Some(o)) => match controller(o) {
            Some(owner) => (true, format!("controlled by {owner}")),
            None => (false, format!("{what} has no controller; it will not be recreated")),
        },
        ("pod-running", Some(o)) => match o["status"]["phase"].as_str() {
            Some("Running") => (true, format!("{what} is Running")),
            phase => (false, format!("{what} is {}, not Running", phase.unwrap_or("in no phase"))),
        },
        ("node-cordoned", Some(o)) => {
            if o["spec"]["unschedulable"] == true {
                (true, format!("{what} is cordoned"))
            } else {
                (false, format!("{what} is not cordoned"))
            }
        }
        ("metric-present", Some(o)) => {
            let fields = fields(action.object(), p, Some(o));
            let missing: Vec<&str> =
                [("target_cpu_percent", "cpu"), ("target_memory_percent", "memory")]
                    .into_iter()
                    .filter(|(param, _)| p.0.get(*param).is_some_and(|v| !v.is_null()))
                    .filter(|(param, _)| !fields.contains_key(*param))
                    .map(|(_, resource)| resource)
                    .collect();
            if missing.is_empty() {
                (true, "a resource metric exists for each percentage given".to_owned())
            } else {
                (false, format!("{what} has no {} utilisation metric", missing.join(" or ")))
            }
        }
        _ => (
            false,
            format!(
                "precheck `{name}` cannot be answered by the kubectl executor (the Kubernetes \
                 API executor answers it)"
            ),
        ),
    }
}

/// `deployment `dev/api`` for an object that was not found (its name and namespace as the
/// params give them; the executor has checked them before any read).
fn describe(action: K8sAction, p: P<'_>) -> String {
    let object = action.object();
    let param = |name: &str| p.0.get(name).and_then(Value::as_str);
    let kind = object.kind();
    match (param(object.name_param()), object.is_namespaced()) {
        (Some(name), false) => format!("{kind} `{name}`"),
        (Some(name), true) => match param("namespace") {
            Some(ns) => format!("{kind} `{ns}/{name}`"),
            None => "the object".to_owned(),
        },
        (None, _) => "the object".to_owned(),
    }
}
