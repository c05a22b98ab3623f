//! The kubectl executor against processes: a fake `kubectl` script that records the exact
//! argument list, input and kubeconfig of every call (and answers from canned files), and the
//! real `kubectl` binary, which must accept every argument list the executor builds.

#![expect(clippy::unwrap_used, clippy::panic, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};
use std::process::Command;

use agent_safe_core::{
    ActionCall, Credential, CredentialScope, ExecutionStatus, Executor, Params, PrecheckSpec,
    Secret,
};
use agent_safe_executor_kubectl::{KubectlConfig, SubprocessExecutor, kubectl_argv};
use serde_json::{Value, json};

/// A fake kubectl in a private directory. Call `i` (from 0) records `calls/i.argv`
/// (NUL-separated), `i.stdin`, the mode and content of a `--kubeconfig=` file, the content of
/// a `--patch-file=`, and `$KUBECONFIG`; it prints `responses/i.out` and `responses/i.err`,
/// exits with `responses/i.rc` (default 0); when the FIFO `ready` exists it writes `ready` to
/// it and never ends.
struct Fake {
    dir: tempfile::TempDir,
}

const SCRIPT: &str = r#"#!/bin/sh
dir='@DIR@'
i=$(cat "$dir/n" 2>/dev/null || echo 0)
echo $((i + 1)) > "$dir/n"
c="$dir/calls/$i"
printf '%s\0' "$@" > "$c.argv"
for a in "$@"; do
  case "$a" in
    --kubeconfig=*) f="${a#--kubeconfig=}"; stat -c %a "$f" > "$c.mode"; cat "$f" > "$c.kubeconfig"; echo "$f" > "$c.kubeconfig-path";;
    --patch-file=*) cat "${a#--patch-file=}" > "$c.patch";;
  esac
done
if [ -n "$KUBECONFIG" ]; then printf '%s' "$KUBECONFIG" > "$c.env"; fi
cat > "$c.stdin"
r="$dir/responses/$i"
if [ -p "$dir/ready" ]; then echo ready > "$dir/ready"; exec tail -f /dev/null; fi
if [ -f "$r.out" ]; then cat "$r.out"; fi
if [ -f "$r.err" ]; then cat "$r.err" >&2; fi
if [ -f "$r.rc" ]; then exit "$(cat "$r.rc")"; fi
exit 0
"#;

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("calls")).unwrap();
        std::fs::create_dir(dir.path().join("responses")).unwrap();
        let script = SCRIPT.replace("@DIR@", dir.path().to_str().unwrap());
        // Written under another name, then copied into place by a child process: this process
        // never holds a writable descriptor of the script, so a child forked meanwhile by
        // another test's thread cannot inherit one and make running it fail with ETXTBSY
        // ("Text file busy").
        let source = dir.path().join("kubectl.src");
        std::fs::write(&source, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let copied = Command::new("cp").arg(&source).arg(dir.path().join("kubectl")).status();
        assert!(copied.unwrap().success(), "cannot copy the fake kubectl into place");
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("kubectl")
    }

    fn executor(&self) -> SubprocessExecutor {
        SubprocessExecutor::new(KubectlConfig {
            kubectl_path: self.path(),
            ..KubectlConfig::default()
        })
    }

    fn respond(&self, call: usize, out: &str, err: &str, rc: i32) {
        let r = self.dir.path().join("responses").join(call.to_string());
        std::fs::write(r.with_extension("out"), out).unwrap();
        std::fs::write(r.with_extension("err"), err).unwrap();
        std::fs::write(r.with_extension("rc"), rc.to_string()).unwrap();
    }

    fn file(&self, call: usize, ext: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("calls").join(format!("{call}.{ext}"))).ok()
    }

    fn calls(&self) -> Vec<Vec<String>> {
        (0..)
            .map_while(|i| self.file(i, "argv"))
            .map(|text| text.split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .collect()
    }
}

fn params(v: Value) -> Params {
    v.as_object().cloned().unwrap()
}

fn call<'a>(
    action: &'a str,
    params: &'a Params,
    credential: Option<&'a Credential>,
    fields: &'a [String],
) -> ActionCall<'a> {
    ActionCall { action, target: "dev/app", params, credential, state_fields: fields }
}

/// Every mapped action: params and the exact argument list kubectl receives.
fn table() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    vec![
        (
            "restart-deployment",
            json!({"namespace": "dev", "deployment": "api"}),
            vec!["rollout", "restart", "deployment/api", "--namespace=dev"],
        ),
        (
            "scale-deployment",
            json!({"namespace": "dev", "deployment": "api", "replicas": 3}),
            vec!["scale", "deployment/api", "--namespace=dev", "--replicas=3"],
        ),
        (
            "delete-pod",
            json!({"namespace": "dev", "pod": "api-1", "grace_period": 10}),
            vec!["delete", "pod/api-1", "--namespace=dev", "--grace-period=10"],
        ),
        ("delete-namespace", json!({"namespace": "old"}), vec!["delete", "namespace/old"]),
        ("create-namespace", json!({"namespace": "new"}), vec!["create", "namespace", "new"]),
        ("cordon-node", json!({"node": "node-1"}), vec!["cordon", "node-1"]),
        ("uncordon-node", json!({"node": "node-1"}), vec!["uncordon", "node-1"]),
        (
            "drain-node",
            json!({"node": "node-1", "timeout": 120}),
            vec![
                "drain",
                "node-1",
                "--ignore-daemonsets=true",
                "--delete-emptydir-data",
                "--timeout=120s",
            ],
        ),
        (
            "rollout-undo",
            json!({"namespace": "dev", "deployment": "api", "revision": 2}),
            vec!["rollout", "undo", "deployment/api", "--namespace=dev", "--to-revision=2"],
        ),
        (
            "rollout-status",
            json!({"namespace": "dev", "deployment": "api"}),
            vec!["rollout", "status", "deployment/api", "--namespace=dev", "--watch=false"],
        ),
        (
            "get-pod-logs",
            json!({"namespace": "dev", "pod": "api-1", "container": "app", "tail_lines": 5}),
            vec!["logs", "pod/api-1", "--namespace=dev", "--container=app", "--tail=5"],
        ),
        (
            "get-configmap",
            json!({"namespace": "dev", "configmap": "settings"}),
            vec!["get", "configmap/settings", "--namespace=dev", "--output=json"],
        ),
        (
            "get-secret",
            json!({"namespace": "dev", "secret": "db"}),
            vec!["get", "secret/db", "--namespace=dev", "--output=json"],
        ),
        (
            "update-configmap",
            json!({"namespace": "dev", "configmap": "settings", "key": "MODE", "value": "a b; $(id)"}),
            vec![
                "patch",
                "configmap/settings",
                "--namespace=dev",
                "--type=merge",
                r#"--patch={"data":{"MODE":"a b; $(id)"}}"#,
            ],
        ),
        (
            "update-image",
            json!({"namespace": "dev", "deployment": "api", "container": "app", "image": "nginx:1.27"}),
            vec!["set", "image", "deployment/api", "--namespace=dev", "app=nginx:1.27"],
        ),
        (
            "scale-hpa",
            json!({"namespace": "dev", "hpa": "api", "min_replicas": 2, "max_replicas": 8}),
            vec![
                "patch",
                "horizontalpodautoscalers.v2.autoscaling/api",
                "--namespace=dev",
                "--type=merge",
                r#"--patch={"spec":{"minReplicas":2,"maxReplicas":8}}"#,
            ],
        ),
        (
            "apply-network-policy",
            json!({"namespace": "dev", "policy_name": "deny", "policy": "{\"podSelector\": {}}"}),
            vec![
                "apply",
                "--namespace=dev",
                "--server-side",
                "--field-manager=agent-safe",
                "--filename=-",
            ],
        ),
        (
            "exec-pod",
            json!({"namespace": "dev", "pod": "api-1", "command": ["sh", "-c", "echo $HOME"]}),
            vec!["exec", "pod/api-1", "--namespace=dev", "--", "sh", "-c", "echo $HOME"],
        ),
    ]
}

#[tokio::test]
async fn every_mapping_runs_with_its_exact_argv() {
    for (action, p, expected) in table() {
        let fake = Fake::new();
        fake.respond(0, "{\"data\": {\"k\": \"v\"}, \"type\": \"Opaque\"}\n", "", 0);
        let p = params(p);
        let outcome = fake.executor().execute(call(action, &p, None, &[])).await;
        assert_eq!(outcome.status, ExecutionStatus::Success, "{action}: {outcome:?}");
        assert_eq!(fake.calls(), std::slice::from_ref(&expected), "{action}");
        // The pure function documents the same list.
        assert_eq!(
            kubectl_argv(&KubectlConfig::default(), action, &p).unwrap(),
            expected,
            "{action}"
        );
    }
}

#[tokio::test]
async fn outputs() {
    let fake = Fake::new();
    fake.respond(0, "  rolled back  \n", "", 0);
    let p = params(json!({"namespace": "dev", "deployment": "api"}));
    let out = fake.executor().execute(call("rollout-undo", &p, None, &[])).await;
    assert_eq!(
        (out.status, out.output.as_str(), out.error),
        (ExecutionStatus::Success, "rolled back", None)
    );

    // A Secret's values never leave: the output has key names only.
    let fake = Fake::new();
    fake.respond(
        0,
        r#"{"kind": "Secret", "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}"#,
        "",
        0,
    );
    let p = params(json!({"namespace": "dev", "secret": "db"}));
    let out = fake.executor().execute(call("get-secret", &p, None, &[])).await;
    assert_eq!(out.output, r#"{"keys":["password"],"type":"Opaque"}"#);

    let fake = Fake::new();
    fake.respond(0, r#"{"kind": "ConfigMap", "data": {"A": "1"}}"#, "", 0);
    let p = params(json!({"namespace": "dev", "configmap": "c"}));
    let out = fake.executor().execute(call("get-configmap", &p, None, &[])).await;
    assert_eq!(out.output, r#"{"A":"1"}"#);

    // A refusal by the cluster is a FAILURE with kubectl's message.
    let fake = Fake::new();
    fake.respond(0, "", "Error from server (Forbidden): pods \"p\" is forbidden\n", 1);
    let p = params(json!({"namespace": "dev", "pod": "p"}));
    let out = fake.executor().execute(call("delete-pod", &p, None, &[])).await;
    assert_eq!(out.status, ExecutionStatus::Failure);
    assert_eq!(
        out.error.as_deref(),
        Some("Error from server (Forbidden): pods \"p\" is forbidden")
    );

    let fake = Fake::new();
    fake.respond(0, "", "", 3);
    let out = fake.executor().execute(call("delete-pod", &p, None, &[])).await;
    assert_eq!(out.error.as_deref(), Some("kubectl exited with status 3"));

    // A missing binary is an ERROR naming it.
    let missing = SubprocessExecutor::new(KubectlConfig {
        kubectl_path: PathBuf::from("/nonexistent/kubectl"),
        ..KubectlConfig::default()
    });
    let out = missing.execute(call("delete-pod", &p, None, &[])).await;
    assert_eq!(out.status, ExecutionStatus::Error);
    assert!(out.error.unwrap().starts_with("cannot run `/nonexistent/kubectl`: "));
}

#[tokio::test]
async fn network_policies_go_through_stdin() {
    let fake = Fake::new();
    let p = params(
        json!({"namespace": "dev", "policy_name": "deny", "policy": "{\"podSelector\": {}, \"policyTypes\": [\"Ingress\"]}"}),
    );
    fake.executor().execute(call("apply-network-policy", &p, None, &[])).await;
    let manifest: Value = serde_json::from_str(&fake.file(0, "stdin").unwrap()).unwrap();
    assert_eq!(
        manifest,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny", "namespace": "dev"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    );
}

#[tokio::test]
async fn large_patches_go_through_a_private_file_that_is_removed() {
    let fake = Fake::new();
    let value = "x".repeat(200 * 1024);
    let p = params(json!({"namespace": "dev", "configmap": "c", "key": "big", "value": value}));
    let out = fake.executor().execute(call("update-configmap", &p, None, &[])).await;
    assert_eq!(out.status, ExecutionStatus::Success);
    let argv = &fake.calls()[0];
    let file = argv.last().unwrap().strip_prefix("--patch-file=").unwrap();
    assert_eq!(argv[..4], ["patch", "configmap/c", "--namespace=dev", "--type=merge"]);
    let patch: Value = serde_json::from_str(&fake.file(0, "patch").unwrap()).unwrap();
    assert_eq!(patch["data"]["big"].as_str().map(str::len), Some(200 * 1024));
    assert!(!Path::new(file).exists(), "the patch file must be removed");
}

#[tokio::test]
async fn update_hpa_limits_reads_then_patches_with_the_resource_version() {
    let fake = Fake::new();
    fake.respond(
        0,
        r#"{"metadata": {"name": "api", "resourceVersion": "77"}, "spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}"#,
        "",
        0,
    );
    let p = params(json!({"namespace": "dev", "hpa": "api", "target_cpu_percent": 55}));
    let out = fake.executor().execute(call("update-hpa-limits", &p, None, &[])).await;
    assert_eq!(out.output, "horizontalpodautoscaler `dev/api`: utilisation targets cpu 55%");
    let calls = fake.calls();
    assert_eq!(
        calls[0],
        ["get", "horizontalpodautoscalers.v2.autoscaling/api", "--namespace=dev", "--output=json"]
    );
    assert_eq!(
        calls[1],
        [
            "patch",
            "horizontalpodautoscalers.v2.autoscaling/api",
            "--namespace=dev",
            "--type=merge",
            r#"--patch={"metadata":{"resourceVersion":"77"},"spec":{"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":55}}}]}}"#,
        ]
    );

    let fake = Fake::new();
    fake.respond(
        0,
        "",
        "Error from server (NotFound): horizontalpodautoscalers.autoscaling \"api\" not found",
        1,
    );
    let out = fake.executor().execute(call("update-hpa-limits", &p, None, &[])).await;
    assert_eq!(out.status, ExecutionStatus::Failure);
    assert_eq!(out.error.as_deref(), Some("horizontalpodautoscaler `dev/api` not found"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn injection_attempts_start_no_process() {
    let attempts = [
        ("delete-pod", json!({"namespace": "dev", "pod": "x --all"})),
        ("delete-pod", json!({"namespace": "dev", "pod": "-A"})),
        ("delete-pod", json!({"namespace": "-A", "pod": "x"})),
        ("delete-pod", json!({"namespace": "dev", "pod": "$(rm -rf /)"})),
        ("delete-pod", json!({"namespace": "dev", "pod": "x\n--all"})),
        ("delete-pod", json!({"namespace": "dev", "pod": "x", "grace_period": "0 --force"})),
        ("cordon-node", json!({"node": "--selector=x"})),
        ("drain-node", json!({"node": "n1", "timeout": "1s --force"})),
        (
            "update-image",
            json!({"namespace": "dev", "deployment": "api", "container": "app", "image": "-x"}),
        ),
        ("get-pod-logs", json!({"namespace": "dev", "pod": "p", "container": "--all-containers"})),
        ("create-namespace", json!({"namespace": "a; rm -rf /"})),
        ("exec-pod", json!({"namespace": "dev", "pod": "p", "command": "id"})),
        (
            "port-forward",
            json!({"namespace": "dev", "pod": "p", "local_port": 1, "remote_port": 2}),
        ),
    ];
    for (action, p) in attempts {
        let fake = Fake::new();
        let p = params(p);
        let out = fake.executor().execute(call(action, &p, None, &[])).await;
        assert_eq!(out.status, ExecutionStatus::Error, "{action} {p:?}");
        assert!(fake.calls().is_empty(), "{action} {p:?}: a process was started");
        // State reads and prechecks refuse the same values.
        let spec = [PrecheckSpec {
            name: "pod-exists".into(),
            description: String::new(),
            blocking: true,
        }];
        let fields = ["exists".to_owned()];
        let state = fake.executor().get_state(call(action, &p, None, &fields)).await;
        let checks = fake.executor().run_prechecks(call(action, &p, None, &fields), &spec).await;
        assert!(fake.calls().is_empty(), "{action} {p:?}: a process was started for state");
        assert_eq!(state.map_err(|e| e.message), Err(out.error.clone().unwrap()), "{action}");
        assert!(!checks[0].passed);
        assert_eq!(checks[0].message, out.error.unwrap());
    }
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

#[tokio::test]
async fn credential_kubeconfigs_are_private_and_removed() {
    let fake = Fake::new();
    let content = "apiVersion: v1\nkind: Config\ncurrent-context: agent\n";
    let cred = credential(json!({"kubeconfig": content}));
    let p = params(json!({"node": "n1"}));
    let fields = ["unschedulable".to_owned()];
    fake.respond(0, r#"{"kind": "Node", "spec": {"unschedulable": true}}"#, "", 0);
    let state =
        fake.executor().get_state(call("cordon-node", &p, Some(&cred), &fields)).await.unwrap();
    assert_eq!(Value::Object(state), json!({"unschedulable": true}));
    fake.executor().execute(call("cordon-node", &p, Some(&cred), &fields)).await;
    for i in 0..2 {
        assert_eq!(fake.file(i, "mode").unwrap().trim(), "600");
        assert_eq!(fake.file(i, "kubeconfig").unwrap(), content);
        let path = fake.file(i, "kubeconfig-path").unwrap();
        assert!(!Path::new(path.trim()).exists(), "call {i}: temporary kubeconfig left behind");
    }
    assert_eq!(fake.calls()[0][1..], ["get", "node/n1", "--output=json"]);

    // A token never appears in the argument list.
    let fake = Fake::new();
    let cred = credential(json!({"token": "s3cr3t", "server": "https://k8s.example:6443"}));
    fake.executor().execute(call("cordon-node", &p, Some(&cred), &fields)).await;
    assert!(fake.calls()[0].iter().all(|a| !a.contains("s3cr3t")));
    let written: Value = serde_json::from_str(&fake.file(0, "kubeconfig").unwrap()).unwrap();
    assert_eq!(written["users"][0]["user"]["token"], "s3cr3t");
}

#[tokio::test]
async fn a_cancelled_call_removes_the_kubeconfig() {
    let fake = Fake::new();
    let fifo = fake.dir.path().join("ready");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let cred = credential(json!({"kubeconfig": {"apiVersion": "v1", "kind": "Config"}}));
    let p = params(json!({"node": "n1"}));
    let executor = fake.executor();
    let mut run = executor.execute(call("cordon-node", &p, Some(&cred), &[]));
    // Drive the call until kubectl says it is running (it then never ends by itself).
    let ready = tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo));
    tokio::select! {
        out = &mut run => panic!("the call ended by itself: {out:?}"),
        said = ready => assert_eq!(said.unwrap().unwrap(), "ready\n"),
    }
    let path = fake.file(0, "kubeconfig-path").unwrap();
    assert!(Path::new(path.trim()).exists());
    // What the runner's timeout (or a cancelled run) does: drop the call.
    drop(run);
    assert!(!Path::new(path.trim()).exists(), "temporary kubeconfig left behind");
}

#[tokio::test]
async fn state_and_prechecks_read_the_object_once() {
    let fake = Fake::new();
    fake.respond(
        0,
        r#"{"kind": "Deployment", "metadata": {"name": "api", "namespace": "dev"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "api:1"}]}}},
            "status": {"availableReplicas": 2, "readyReplicas": 1}}"#,
        "",
        0,
    );
    let p = params(json!({"namespace": "dev", "deployment": "api", "replicas": 3}));
    let specs = ["deployment-exists", "enough-replicas", "no-autoscaler"].map(|n| PrecheckSpec {
        name: n.into(),
        description: String::new(),
        blocking: false,
    });
    let results =
        fake.executor().run_prechecks(call("scale-deployment", &p, None, &[]), &specs).await;
    assert_eq!(
        results.iter().map(|r| (r.name.as_str(), r.passed)).collect::<Vec<_>>(),
        [("deployment-exists", true), ("enough-replicas", true), ("no-autoscaler", false)]
    );
    assert_eq!(fake.calls(), [["get", "deployment/api", "--namespace=dev", "--output=json"]]);

    // Not found: `exists: false`, not an error.
    let fake = Fake::new();
    fake.respond(0, "", "Error from server (NotFound): deployments.apps \"api\" not found\n", 1);
    let fields = ["exists".to_owned(), "replicas".to_owned()];
    let state =
        fake.executor().get_state(call("scale-deployment", &p, None, &fields)).await.unwrap();
    assert_eq!(Value::Object(state), json!({"exists": false}));

    // Any other error is a state error.
    let fake = Fake::new();
    fake.respond(0, "", "Unable to connect to the server\n", 1);
    let err =
        fake.executor().get_state(call("scale-deployment", &p, None, &fields)).await.unwrap_err();
    assert_eq!(err.message, "Unable to connect to the server");

    // drain-node counts the pods on the node.
    let fake = Fake::new();
    fake.respond(0, r#"{"kind": "Node", "spec": {}}"#, "", 0);
    fake.respond(1, r#"{"items": [{"metadata": {"ownerReferences": [{"controller": true}]}}, {"metadata": {}}]}"#, "", 0);
    let p = params(json!({"node": "n1"}));
    let fields = ["unschedulable".to_owned(), "pod_count".to_owned()];
    let state = fake.executor().get_state(call("drain-node", &p, None, &fields)).await.unwrap();
    assert_eq!(Value::Object(state), json!({"unschedulable": false, "pod_count": 2}));
    assert_eq!(
        fake.calls()[1],
        ["get", "pods", "--all-namespaces", "--field-selector=spec.nodeName=n1", "--output=json"]
    );
}

/// The real kubectl binary, if there is one.
fn real_kubectl() -> Option<PathBuf> {
    let found = Command::new("kubectl").args(["version", "--client"]).output();
    match found {
        Ok(out) if out.status.success() => Some(PathBuf::from("kubectl")),
        _ if std::env::var_os("AGENT_SAFE_REQUIRE_KUBECTL").is_some() => {
            panic!("AGENT_SAFE_REQUIRE_KUBECTL is set but `kubectl version --client` failed")
        }
        _ => {
            eprintln!(
                "SKIPPED: no kubectl on PATH (`cargo xtask ci` installs one; set \
                 AGENT_SAFE_REQUIRE_KUBECTL=1 to make this a failure)"
            );
            None
        }
    }
}

/// Every argument list is one real kubectl accepts: it parses all flags and gets as far as
/// contacting the API server (here an address where nothing listens), or, for
/// `create namespace`, renders the object offline with `--dry-run=client`.
#[test]
fn real_kubectl_accepts_every_argv() {
    let Some(kubectl) = real_kubectl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    let config = KubectlConfig { kubeconfig: Some(kubeconfig.clone()), ..KubectlConfig::default() };
    let mut table = table();
    table.push((
        "update-hpa-limits",
        json!({"namespace": "dev", "hpa": "api", "target_cpu_percent": 50}),
        vec![],
    ));
    for (action, p, _) in table {
        let argv = kubectl_argv(&config, action, &params(p)).unwrap();
        let mut child = Command::new(&kubectl)
            .arg("--request-timeout=2s")
            .args(&argv)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // `apply --filename=-` reads the manifest from standard input.
        let manifest = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "dev"}, "spec": {"podSelector": {}}}"#;
        let mut stdin = child.stdin.take().unwrap();
        if action == "apply-network-policy" {
            std::io::Write::write_all(&mut stdin, manifest.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for bad in [
            "unknown flag",
            "unknown shorthand",
            "unknown command",
            "invalid argument",
            "Usage:",
            "required flag",
        ] {
            assert!(!stderr.contains(bad), "{action}: kubectl rejected {argv:?}: {stderr}");
        }
        assert!(
            stderr.contains("127.0.0.1:1") || stderr.contains("connection refused"),
            "{action}: kubectl did not get as far as the server with {argv:?}: {stderr}"
        );
    }
    // Fully offline: the object `create-namespace` sends.
    let argv =
        kubectl_argv(&config, "create-namespace", &params(json!({"namespace": "team-a"}))).unwrap();
    let out = Command::new(&kubectl)
        .args(&argv)
        .args(["--dry-run=client", "--output=json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let object: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (object["kind"].as_str(), object["metadata"]["name"].as_str()),
        (Some("Namespace"), Some("team-a"))
    );
}
