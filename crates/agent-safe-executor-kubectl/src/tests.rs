//! Unit tests of the kubectl mappings, checks, connections and state reduction (no process is
//! started here; `tests/kubectl.rs` runs a fake and the real kubectl).

use std::path::PathBuf;

use agent_safe_core::{Credential, CredentialScope, Params, PrecheckSpec, Secret};
use serde_json::{Value, json};

use super::args::P;
use super::*;

/// The object an action works on.
fn kind(action: &str) -> agent_safe_k8s_actions::Object {
    agent_safe_k8s_actions::K8sAction::from_name(action).unwrap().object()
}

fn params(v: Value) -> Params {
    match v {
        Value::Object(m) => m,
        other => panic!("params must be an object: {other}"),
    }
}

#[track_caller]
fn check(action: &str, p: Value, expected: &[&str]) {
    let got = kubectl_argv(&KubectlConfig::default(), action, &params(p));
    assert_eq!(got, Ok(expected.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()), "{action}");
}

#[track_caller]
fn check_refused(action: &str, p: Value, expected: &str) {
    let got = kubectl_argv(&KubectlConfig::default(), action, &params(p));
    assert_eq!(got, Err(expected.to_owned()), "{action}");
}

#[test]
fn the_seventeen_python_mappings_corrected() {
    let d = json!({"namespace": "dev", "deployment": "api"});
    check(
        "restart-deployment",
        d.clone(),
        &["rollout", "restart", "deployment/api", "--namespace=dev"],
    );
    check(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": 3}),
        &["scale", "deployment/api", "--namespace=dev", "--replicas=3"],
    );
    check(
        "delete-pod",
        json!({"namespace": "dev", "pod": "api-7d9f-x2"}),
        &["delete", "pod/api-7d9f-x2", "--namespace=dev"],
    );
    check(
        "delete-pod",
        json!({"namespace": "dev", "pod": "api-7d9f-x2", "grace_period": 0}),
        &["delete", "pod/api-7d9f-x2", "--namespace=dev", "--grace-period=0"],
    );
    check("delete-namespace", json!({"namespace": "old"}), &["delete", "namespace/old"]);
    check("create-namespace", json!({"namespace": "new"}), &["create", "namespace", "new"]);
    check("cordon-node", json!({"node": "node-1.eu"}), &["cordon", "node-1.eu"]);
    check("uncordon-node", json!({"node": "node-1.eu"}), &["uncordon", "node-1.eu"]);
    check(
        "drain-node",
        json!({"node": "node-1"}),
        &[
            "drain",
            "node-1",
            "--ignore-daemonsets=true",
            "--delete-emptydir-data",
            "--timeout=300s",
        ],
    );
    check(
        "drain-node",
        json!({"node": "node-1", "timeout": 60, "ignore_daemonsets": false}),
        &[
            "drain",
            "node-1",
            "--ignore-daemonsets=false",
            "--delete-emptydir-data",
            "--timeout=60s",
        ],
    );
    check("rollout-undo", d.clone(), &["rollout", "undo", "deployment/api", "--namespace=dev"]);
    check(
        "rollout-undo",
        json!({"namespace": "dev", "deployment": "api", "revision": 4}),
        &["rollout", "undo", "deployment/api", "--namespace=dev", "--to-revision=4"],
    );
    check(
        "rollout-status",
        d,
        &["rollout", "status", "deployment/api", "--namespace=dev", "--watch=false"],
    );
    check(
        "get-pod-logs",
        json!({"namespace": "dev", "pod": "api-1"}),
        &["logs", "pod/api-1", "--namespace=dev", "--tail=100"],
    );
    check(
        "get-pod-logs",
        json!({"namespace": "dev", "pod": "api-1", "container": "app", "tail_lines": 20}),
        &["logs", "pod/api-1", "--namespace=dev", "--container=app", "--tail=20"],
    );
    check(
        "get-configmap",
        json!({"namespace": "dev", "configmap": "settings"}),
        &["get", "configmap/settings", "--namespace=dev", "--output=json"],
    );
    check(
        "get-secret",
        json!({"namespace": "dev", "secret": "db"}),
        &["get", "secret/db", "--namespace=dev", "--output=json"],
    );
    check(
        "update-image",
        json!({"namespace": "dev", "deployment": "api", "container": "app",
               "image": "registry.example.com:5000/team/api:1.2.3"}),
        &[
            "set",
            "image",
            "deployment/api",
            "--namespace=dev",
            "app=registry.example.com:5000/team/api:1.2.3",
        ],
    );
    check(
        "scale-hpa",
        json!({"namespace": "dev", "hpa": "api", "min_replicas": 2, "max_replicas": 10}),
        &[
            "patch",
            "horizontalpodautoscalers.v2.autoscaling/api",
            "--namespace=dev",
            "--type=merge",
            r#"--patch={"spec":{"minReplicas":2,"maxReplicas":10}}"#,
        ],
    );
    // First step only: the patch depends on the object read (see below).
    check(
        "update-hpa-limits",
        json!({"namespace": "dev", "hpa": "api", "target_cpu_percent": 60}),
        &["get", "horizontalpodautoscalers.v2.autoscaling/api", "--namespace=dev", "--output=json"],
    );
    check(
        "apply-network-policy",
        json!({"namespace": "dev", "policy_name": "deny-all", "policy": r#"{"podSelector": {}}"#}),
        &[
            "apply",
            "--namespace=dev",
            "--server-side",
            "--field-manager=agent-safe",
            "--filename=-",
        ],
    );
}

#[test]
fn the_three_unmapped_python_actions() {
    check(
        "update-configmap",
        json!({"namespace": "dev", "configmap": "settings", "key": "LOG_LEVEL", "value": "debug \"x\" $(id)"}),
        &[
            "patch",
            "configmap/settings",
            "--namespace=dev",
            "--type=merge",
            r#"--patch={"data":{"LOG_LEVEL":"debug \"x\" $(id)"}}"#,
        ],
    );
    check(
        "exec-pod",
        json!({"namespace": "dev", "pod": "api-1", "command": ["ls", "-la", "/tmp; rm -rf /"]}),
        &["exec", "pod/api-1", "--namespace=dev", "--", "ls", "-la", "/tmp; rm -rf /"],
    );
    check(
        "exec-pod",
        json!({"namespace": "dev", "pod": "api-1", "container": "app", "command": ["date"]}),
        &["exec", "pod/api-1", "--namespace=dev", "--container=app", "--", "date"],
    );
    check_refused(
        "port-forward",
        json!({"namespace": "dev", "pod": "api-1", "local_port": 8080, "remote_port": 80}),
        "`port-forward` is refused by the kubectl executor: it is an open-ended session that binds a port on the runner's machine and lasts until the process is stopped, not a bounded action with an outcome",
    );
    check_refused(
        "ec2-stop-instance",
        json!({}),
        "no kubectl mapping for action `ec2-stop-instance`",
    );
    assert_eq!(SubprocessExecutor::supported_actions().len(), 19);
}

#[test]
fn connection_flags_come_first() {
    let config = KubectlConfig {
        kubectl_path: PathBuf::from("/opt/kubectl"),
        kubeconfig: Some(PathBuf::from("/etc/kube/config")),
        context: Some("prod-eu".to_owned()),
    };
    let got = kubectl_argv(&config, "cordon-node", &params(json!({"node": "n1"})));
    assert_eq!(
        got.unwrap(),
        ["--kubeconfig=/etc/kube/config", "--context=prod-eu", "cordon", "n1"]
    );
}

#[test]
fn injection_attempts_are_refused() {
    let dns = |name: &str, v: &str| {
        format!(
            "param `{name}` must be a DNS-1123 name (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters), got `{v}`"
        )
    };
    let label = |name: &str, v: &str| {
        format!(
            "param `{name}` must be a DNS-1123 label (lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters), got `{v}`"
        )
    };
    let dash = |name: &str, v: &str| {
        format!("param `{name}` must not start with `-` (it would be read as an option), got `{v}`")
    };
    let pod = |v: &str| json!({"namespace": "dev", "pod": v});
    check_refused("delete-pod", pod("x --all"), &dns("pod", "x --all"));
    check_refused("delete-pod", pod("-A"), &dash("pod", "-A"));
    check_refused("delete-pod", pod("--all"), &dash("pod", "--all"));
    check_refused("delete-pod", pod("$(rm -rf /)"), &dns("pod", "$(rm -rf /)"));
    check_refused("delete-pod", pod("`id`"), &dns("pod", "`id`"));
    check_refused(
        "delete-pod",
        pod("x\n--all"),
        "param `pod` must not contain control characters, got `x\\n--all`",
    );
    check_refused("delete-pod", pod("a/b"), &dns("pod", "a/b"));
    check_refused("delete-pod", pod(""), "param `pod` must not be empty");
    check_refused(
        "delete-pod",
        json!({"namespace": "dev", "pod": ["a"]}),
        "param `pod` must be a string, got `[\"a\"]`",
    );
    check_refused("delete-pod", json!({"namespace": "dev"}), "missing param `pod`");
    check_refused(
        "delete-pod",
        json!({"namespace": "dev --all-namespaces", "pod": "p"}),
        &label("namespace", "dev --all-namespaces"),
    );
    check_refused("cordon-node", json!({"node": "-A"}), &dash("node", "-A"));
    check_refused("create-namespace", json!({"namespace": "--help"}), &dash("namespace", "--help"));
    check_refused(
        "delete-pod",
        json!({"namespace": "dev", "pod": "p", "grace_period": "0 --force"}),
        "param `grace_period` must be an integer from 0 to 86400, got `0 --force`",
    );
    check_refused(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": -1}),
        "param `replicas` must be an integer from 0 to 100000, got `-1`",
    );
    check_refused(
        "scale-deployment",
        json!({"namespace": "dev", "deployment": "api", "replicas": 1.5}),
        "param `replicas` must be an integer from 0 to 100000, got `1.5`",
    );
    check_refused(
        "update-image",
        json!({"namespace": "dev", "deployment": "api", "container": "app", "image": "nginx --record"}),
        "param `image` must be an image reference such as `registry/app:1.2`, got `nginx --record`",
    );
    check_refused(
        "update-image",
        json!({"namespace": "dev", "deployment": "api", "container": "app=x", "image": "nginx"}),
        &label("container", "app=x"),
    );
    check_refused(
        "drain-node",
        json!({"node": "n1", "ignore_daemonsets": "yes"}),
        "param `ignore_daemonsets` must be true or false, got `yes`",
    );
    check_refused(
        "update-configmap",
        json!({"namespace": "dev", "configmap": "c", "key": "a b", "value": "v"}),
        "param `key` must be a ConfigMap key (letters, digits, `-`, `_` and `.`, at most 253 characters), got `a b`",
    );
    check_refused(
        "exec-pod",
        json!({"namespace": "dev", "pod": "p", "command": "rm -rf /"}),
        "param `command` must be a non-empty list of at most 256 strings without NUL characters (64 KiB in all)",
    );
    check_refused(
        "exec-pod",
        json!({"namespace": "dev", "pod": "p", "command": []}),
        "param `command` must be a non-empty list of at most 256 strings without NUL characters (64 KiB in all)",
    );
    check_refused(
        "apply-network-policy",
        json!({"namespace": "dev", "policy_name": "p", "policy": "[1]"}),
        "param `policy` must be a JSON object",
    );
    check_refused(
        "update-hpa-limits",
        json!({"namespace": "dev", "hpa": "api"}),
        "give at least one of `target_cpu_percent` and `target_memory_percent`",
    );
    let long = "a".repeat(64);
    check_refused(
        "create-namespace",
        json!({"namespace": long}),
        &label("namespace", &"a".repeat(64)),
    );
    // A context given to the executor cannot smuggle in a second flag either.
    let config = KubectlConfig { context: Some("x\n--all".to_owned()), ..KubectlConfig::default() };
    assert_eq!(
        kubectl_argv(&config, "cordon-node", &params(json!({"node": "n"}))),
        Err("`--context` must be a non-empty value without control characters".to_owned())
    );
}

#[test]
fn large_patches_go_through_a_file() {
    let value = "v".repeat(plan::INLINE_PATCH_LIMIT + 1);
    let p = params(json!({"namespace": "dev", "configmap": "c", "key": "k", "value": value}));
    let Ok(plan::Plan::Run(cmd)) = plan::plan("update-configmap", P(&p)) else { panic!("plan") };
    assert_eq!(cmd.args, ["patch", "configmap/c", "--namespace=dev", "--type=merge"]);
    assert_eq!(
        serde_json::from_str::<Value>(cmd.patch_file.as_deref().unwrap()).unwrap(),
        json!({"data": {"k": value}})
    );
}

#[test]
fn hpa_limits_patch_keeps_other_metrics_and_guards_the_version() {
    let hpa = json!({
        "metadata": {"name": "api", "resourceVersion": "812"},
        "spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}}},
        ]},
    });
    let targets = [
        agent_safe_k8s_actions::HpaTarget { resource: "cpu", percent: 50 },
        agent_safe_k8s_actions::HpaTarget { resource: "memory", percent: 70 },
    ];
    let patch = plan::hpa_limits_patch(&hpa, &targets);
    assert_eq!(
        patch,
        json!({
            "metadata": {"resourceVersion": "812"},
            "spec": {"metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}},
            ]},
        })
    );
}

fn credential(payload: Value) -> Credential {
    Credential {
        credential_id: "cred-0123456789ab".to_owned(),
        kind: "kubernetes".to_owned(),
        payload: Secret::new(params(payload)),
        expires_at: time::macros::datetime!(2026-02-24 12:05 UTC),
        scope: CredentialScope { kind: "kubernetes".to_owned(), fields: Params::new(), ttl: 300 },
        ticket_nonce: "n".to_owned(),
    }
}

#[test]
fn credentials_become_private_temporary_kubeconfigs() {
    let config = KubectlConfig {
        kubeconfig: Some(PathBuf::from("/etc/kube/base")),
        context: Some("base-ctx".to_owned()),
        ..KubectlConfig::default()
    };
    // Content: written to a 0600 file, removed on drop; the configured context is not used.
    let content = "apiVersion: v1\nkind: Config\n";
    let c = credential(json!({"kubeconfig": content, "context": "agent"}));
    let conn = connect::connect(&config, Some(&c)).unwrap();
    let path = conn.temp_path().unwrap().to_path_buf();
    assert_eq!(
        conn.args,
        [format!("--kubeconfig={}", path.display()), "--context=agent".to_owned()]
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop(conn);
    assert!(!path.exists(), "the temporary kubeconfig must be removed");

    // Token and server: a self-contained kubeconfig; the token is never an argument.
    let c = credential(
        json!({"token": "s3cr3t-token", "server": "https://k8s:6443", "insecure_skip_tls_verify": true}),
    );
    let conn = connect::connect(&config, Some(&c)).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(conn.temp_path().unwrap()).unwrap()).unwrap();
    assert_eq!(written["users"][0]["user"]["token"], "s3cr3t-token");
    assert_eq!(written["clusters"][0]["cluster"]["server"], "https://k8s:6443");
    assert_eq!(written["clusters"][0]["cluster"]["insecure-skip-tls-verify"], true);
    assert!(conn.args.iter().all(|a| !a.contains("s3cr3t")), "{:?}", conn.args);

    // Token only: merged in front of the configured kubeconfig, selected with --user.
    let c = credential(json!({"token": "s3cr3t-token"}));
    let conn = connect::connect(&config, Some(&c)).unwrap();
    assert_eq!(conn.args, ["--user=agent-safe-credential", "--context=base-ctx"]);
    let (name, value) = &conn.env[0];
    assert_eq!(name, "KUBECONFIG");
    let files: Vec<PathBuf> = std::env::split_paths(value).collect();
    assert_eq!(files, [conn.temp_path().unwrap().to_path_buf(), PathBuf::from("/etc/kube/base")]);

    let bad = |payload: Value, expected: &str| {
        let got =
            connect::connect(&config, Some(&credential(payload))).map(|_| ()).map_err(|e| e.0);
        assert_eq!(got, Err(expected.to_owned()));
    };
    bad(
        json!({}),
        "credential `cred-0123456789ab`: the payload has neither `kubeconfig` nor `token`",
    );
    bad(
        json!({"kubeconfig": "x", "token": "t"}),
        "credential `cred-0123456789ab`: the payload has `kubeconfig` and `token`; give one",
    );
    bad(
        json!({"kubeconfig": "/no/such/file"}),
        "credential `cred-0123456789ab`: `kubeconfig` must be the path of an existing file, the file's content or an object",
    );
    bad(json!({"token": ""}), "credential `cred-0123456789ab`: `token` must be a non-empty string");
}

fn spec(name: &str) -> PrecheckSpec {
    PrecheckSpec { name: name.to_owned(), description: String::new(), blocking: false }
}

#[test]
fn state_is_reduced_to_declared_fields() {
    let deployment = json!({
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "dev", "generation": 7,
                     "annotations": {"deployment.kubernetes.io/revision": "3"}},
        "spec": {"replicas": 4, "template": {"spec": {"containers": [{"name": "app", "image": "api:1"}]}}},
        "status": {"observedGeneration": 7, "availableReplicas": 4, "readyReplicas": 3},
    });
    let p = params(json!({"namespace": "dev", "deployment": "api"}));
    let all = state::fields(kind("scale-deployment"), P(&p), Some(&deployment));
    let declared =
        ["replicas", "available_replicas", "revision", "images", "missing"].map(String::from);
    assert_eq!(
        Value::Object(state::reduce(&all, &declared)),
        json!({"replicas": 4, "available_replicas": 4, "revision": 3, "images": {"app": "api:1"}})
    );
    let none = state::fields(kind("scale-deployment"), P(&p), None);
    assert_eq!(
        Value::Object(state::reduce(&none, &["exists".to_owned()])),
        json!({"exists": false})
    );

    // Secret values never leave: key names and `[redacted]` only.
    let secret = json!({"kind": "Secret", "type": "Opaque", "data": {"password": "aHVudGVyMg==", "user": "dQ=="}});
    let all = state::fields(kind("get-secret"), P(&p), Some(&secret));
    let got = state::reduce(&all, &["data", "keys", "type"].map(String::from));
    assert_eq!(
        Value::Object(got.clone()),
        json!({"data": {"password": "[redacted]", "user": "[redacted]"}, "keys": ["password", "user"], "type": "Opaque"})
    );
    assert!(!Value::Object(got).to_string().contains("aHVudGVyMg"));

    let cm = json!({"kind": "ConfigMap", "data": {"LOG_LEVEL": "info"}});
    let p =
        params(json!({"namespace": "dev", "configmap": "c", "key": "LOG_LEVEL", "value": "debug"}));
    let all = state::fields(kind("update-configmap"), P(&p), Some(&cm));
    assert_eq!(
        Value::Object(state::reduce(&all, &["data", "previous_value"].map(String::from))),
        json!({"data": {"LOG_LEVEL": "info"}, "previous_value": "info"})
    );

    let hpa = json!({"spec": {"minReplicas": 2, "maxReplicas": 9, "metrics": [
        {"type": "Resource", "resource": {"name": "memory", "target": {"averageUtilization": 75}}}]},
        "status": {"currentReplicas": 3}});
    let p = params(json!({"namespace": "dev", "hpa": "api"}));
    let all = state::fields(kind("update-hpa-limits"), P(&p), Some(&hpa));
    assert_eq!(
        Value::Object(state::reduce(
            &all,
            &["target_cpu_percent", "target_memory_percent", "min_replicas"].map(String::from)
        )),
        json!({"target_memory_percent": 75, "min_replicas": 2})
    );
}

#[track_caller]
fn check_precheck(
    action: &str,
    p: Value,
    object: Option<Value>,
    name: &str,
    passed: bool,
    message: &str,
) {
    let p = params(p);
    let action = agent_safe_k8s_actions::K8sAction::from_name(action).unwrap();
    let got = state::prechecks(action, P(&p), object.as_ref(), &[spec(name)]);
    assert_eq!((got[0].passed, got[0].message.as_str()), (passed, message), "{name}");
}

#[test]
fn prechecks_are_answered_from_the_object() {
    let d = json!({"namespace": "dev", "deployment": "api"});
    let deployment = |paused: bool, available: i64| {
        Some(json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "dev"},
            "spec": {"paused": paused, "template": {"spec": {"containers": [{"name": "app"}]}}},
            "status": {"availableReplicas": available}}))
    };
    check_precheck(
        "restart-deployment",
        d.clone(),
        deployment(false, 3),
        "deployment-exists",
        true,
        "deployment `dev/api` exists",
    );
    check_precheck(
        "restart-deployment",
        d.clone(),
        deployment(true, 3),
        "deployment-exists",
        false,
        "deployment `dev/api` exists but is paused",
    );
    check_precheck(
        "restart-deployment",
        d.clone(),
        None,
        "deployment-exists",
        false,
        "deployment `dev/api` not found",
    );
    check_precheck(
        "restart-deployment",
        d.clone(),
        deployment(false, 1),
        "enough-replicas",
        false,
        "1 available replicas (2 or more needed)",
    );
    check_precheck(
        "update-image",
        json!({"namespace": "dev", "deployment": "api", "container": "sidecar"}),
        deployment(false, 1),
        "container-exists",
        false,
        "deployment `dev/api` has no container `sidecar`",
    );
    check_precheck(
        "create-namespace",
        json!({"namespace": "new"}),
        None,
        "namespace-absent",
        true,
        "namespace `new` does not exist yet",
    );
    check_precheck(
        "create-namespace",
        json!({"namespace": "new"}),
        Some(json!({"kind": "Namespace", "metadata": {"name": "new"}})),
        "namespace-absent",
        false,
        "namespace `new` already exists",
    );
    check_precheck(
        "delete-namespace",
        json!({"namespace": "kube-system"}),
        None,
        "not-system-namespace",
        false,
        "`kube-system` is a system namespace",
    );
    check_precheck(
        "scale-hpa",
        json!({"namespace": "dev", "hpa": "a", "min_replicas": 5, "max_replicas": 2}),
        None,
        "bounds-ordered",
        false,
        "min_replicas 5 is above max_replicas 2",
    );
    check_precheck(
        "delete-pod",
        json!({"namespace": "dev", "pod": "p"}),
        Some(
            json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "dev", "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]}}),
        ),
        "has-controller",
        true,
        "controlled by ReplicaSet/rs",
    );
    check_precheck(
        "drain-node",
        json!({"node": "n1"}),
        Some(json!({"kind": "Node", "metadata": {"name": "n1"}})),
        "disruption-budgets",
        false,
        "precheck `disruption-budgets` cannot be answered by the kubectl executor (the Kubernetes API executor answers it)",
    );
}
