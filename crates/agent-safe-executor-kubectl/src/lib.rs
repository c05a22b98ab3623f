//! The kubectl executor (SPEC §12.4, corrected): the catalog's Kubernetes actions as `kubectl`
//! processes, never through a shell, one argument per value. See `docs/executors/kubectl.md`
//! for every mapping.
//!
//! [`SubprocessExecutor`] implements [`agent_safe_core::Executor`] (`kind() == "kubectl"`);
//! the runner (`agent-safe-runner`) drives it like any other executor. `plan` maps actions to
//! argument lists from checked params, `connect` turns credentials into private temporary
//! kubeconfigs, `state` reduces `kubectl get` output and answers prechecks.
//!
//! ```
//! use agent_safe_core::Executor;
//! use agent_safe_executor_kubectl::{KubectlConfig, SubprocessExecutor, kubectl_argv};
//!
//! let config = KubectlConfig { context: Some("staging".into()), ..KubectlConfig::default() };
//! let params = serde_json::json!({"node": "node-1"}).as_object().cloned().unwrap_or_default();
//! assert_eq!(
//!     kubectl_argv(&config, "cordon-node", &params),
//!     Ok(vec!["--context=staging".to_owned(), "cordon".to_owned(), "node-1".to_owned()])
//! );
//! assert_eq!(SubprocessExecutor::new(config).kind(), "kubectl");
//! ```

mod args;
mod connect;
mod plan;
mod state;

use std::path::PathBuf;

use agent_safe_core::{
    ActionCall, BoxFuture, ExecutionOutcome, Executor, ExecutorError, PreCheckResult, PrecheckSpec,
    StateMap,
};
use agent_safe_k8s_actions::{HpaTarget, K8sAction, Object};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use args::{P, Refusal};
use connect::Connection;
use plan::{Cmd, Output, Plan};

/// Settings of the kubectl executor (the CLI's `--kubectl-path`, `--kubeconfig`, `--context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlConfig {
    /// The kubectl binary: a path, or a name looked up in `PATH` (default `kubectl`).
    pub kubectl_path: PathBuf,
    /// `--kubeconfig` for calls without a credential (default: kubectl's own lookup,
    /// `$KUBECONFIG` or `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context` for calls without a credential.
    pub context: Option<String>,
}

impl Default for KubectlConfig {
    fn default() -> Self {
        Self { kubectl_path: PathBuf::from("kubectl"), kubeconfig: None, context: None }
    }
}

/// Runs the catalog's Kubernetes actions with `kubectl` (kind `kubectl`).
///
/// - Every param value is checked (names are DNS-1123 names, nothing starts with `-`) and
///   becomes exactly one argument; the process is started directly, never through a shell,
///   and nothing is started when a check fails.
/// - A credential's kubeconfig or token is written to a private temporary kubeconfig that
///   is removed when the call ends, however it ends; secrets never appear in the argument
///   list.
/// - State is `kubectl get … --output=json` reduced to the action's declared `state_fields`;
///   Secret values are never captured (only key names).
/// - Timeouts are the runner's: a cancelled call kills the kubectl process.
#[derive(Debug, Clone, Default)]
pub struct SubprocessExecutor {
    config: KubectlConfig,
}

/// The actions this executor maps, in catalog order: every Kubernetes action but
/// `port-forward`, which is refused.
const SUPPORTED: [&str; 19] = {
    let mut names = [""; 19];
    let (mut i, mut n) = (0, 0);
    while i < K8sAction::ALL.len() {
        if !matches!(K8sAction::ALL[i], K8sAction::PortForward) {
            names[n] = K8sAction::ALL[i].name();
            n += 1;
        }
        i += 1;
    }
    names
};

/// What one kubectl process did.
struct Ran {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The error text of a failed process: its stderr, else its exit status.
    fn error(&self) -> String {
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            return stderr.to_owned();
        }
        match self.code {
            Some(code) => format!("kubectl exited with status {code}"),
            None => "kubectl was terminated by a signal".to_owned(),
        }
    }

    /// Whether kubectl reported that the object does not exist.
    fn not_found(&self) -> bool {
        self.stderr.contains("(NotFound)")
    }
}

impl SubprocessExecutor {
    /// An executor with `config`.
    pub fn new(config: KubectlConfig) -> Self {
        Self { config }
    }

    /// The settings.
    pub fn config(&self) -> &KubectlConfig {
        &self.config
    }

    /// The actions this executor runs (19 of the 20 catalog Kubernetes actions; `port-forward`
    /// is refused: it is a session, not an action with an outcome).
    pub fn supported_actions() -> &'static [&'static str] {
        &SUPPORTED
    }

    /// Runs `cmd`; `Err` when kubectl could not be started or waited for.
    async fn run(&self, conn: &Connection, cmd: &Cmd) -> Result<Ran, String> {
        let mut args = conn.args.clone();
        args.extend(cmd.args.iter().cloned());
        // Kept alive until the process has finished, then removed.
        let patch = match &cmd.patch_file {
            Some(text) => {
                let file = connect::patch_file(text).map_err(|e| e.0)?;
                let path = file.path().to_str().map(str::to_owned).ok_or_else(|| {
                    "the temporary directory's path is not valid UTF-8".to_owned()
                })?;
                args.push(format!("--patch-file={path}"));
                Some(file)
            }
            None => None,
        };
        let mut command = tokio::process::Command::new(&self.config.kubectl_path);
        command
            .args(&args)
            .envs(conn.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let path = self.config.kubectl_path.display();
        let mut child = command.spawn().map_err(|e| format!("cannot run `{path}`: {e}"))?;
        // Fed from its own task while the output is read, so neither pipe can fill up and
        // stall the other.
        let feed = match (child.stdin.take(), cmd.stdin.clone()) {
            (Some(mut pipe), Some(input)) => Some(tokio::spawn(async move {
                // A write error shows up as kubectl's own error (it read a short input).
                let _ = pipe.write_all(input.as_bytes()).await;
                let _ = pipe.shutdown().await;
            })),
            _ => None,
        };
        let output = child.wait_with_output().await;
        if let Some(feed) = feed {
            let _ = feed.await;
        }
        drop(patch);
        let output = output.map_err(|e| format!("waiting for `{path}` failed: {e}"))?;
        Ok(Ran {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    async fn run_outcome(&self, conn: &Connection, cmd: &Cmd) -> ExecutionOutcome {
        let ran = match self.run(conn, cmd).await {
            Ok(ran) => ran,
            Err(e) => return ExecutionOutcome::error(e),
        };
        if !ran.success {
            return ExecutionOutcome::failure(ran.error());
        }
        match cmd.output {
            Output::Text => ExecutionOutcome::success(ran.stdout.trim()),
            Output::ConfigMapData | Output::SecretKeys => {
                // The stdout of `get secret` holds the secret: it is parsed, never quoted.
                let Ok(object) = serde_json::from_str::<Value>(&ran.stdout) else {
                    return ExecutionOutcome::error("kubectl did not print a JSON object");
                };
                let out = if cmd.output == Output::SecretKeys {
                    json!({"keys": state::secret_keys(&object), "type": object["type"]})
                } else {
                    object.get("data").cloned().unwrap_or_else(|| json!({}))
                };
                ExecutionOutcome::success(out.to_string())
            }
        }
    }

    /// `kubectl get <resource> --output=json`: the object, `None` when it does not exist.
    async fn get(
        &self,
        conn: &Connection,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<Option<Value>, String> {
        let mut args = vec!["get".to_owned(), resource.to_owned()];
        if let Some(ns) = namespace {
            args.push(format!("--namespace={ns}"));
        }
        args.push("--output=json".to_owned());
        let cmd = Cmd { args, stdin: None, patch_file: None, output: Output::Text };
        let ran = self.run(conn, &cmd).await?;
        if ran.success {
            serde_json::from_str(&ran.stdout)
                .map(Some)
                .map_err(|_| format!("`kubectl get {resource}` did not print a JSON object"))
        } else if ran.not_found() {
            Ok(None)
        } else {
            Err(ran.error())
        }
    }

    async fn hpa_limits(
        &self,
        conn: &Connection,
        namespace: &str,
        hpa: &str,
        targets: &[HpaTarget],
    ) -> ExecutionOutcome {
        let resource = format!("{}/{hpa}", plan::HPA);
        let object = match self.get(conn, &resource, Some(namespace)).await {
            Ok(Some(object)) => object,
            Ok(None) => {
                return ExecutionOutcome::failure(format!(
                    "horizontalpodautoscaler `{namespace}/{hpa}` not found"
                ));
            }
            Err(e) => return ExecutionOutcome::failure(e),
        };
        let patch = plan::hpa_limits_patch(&object, targets).to_string();
        let cmd = Cmd {
            args: vec![
                "patch".to_owned(),
                resource,
                format!("--namespace={namespace}"),
                "--type=merge".to_owned(),
                format!("--patch={patch}"),
            ],
            stdin: None,
            patch_file: None,
            output: Output::Text,
        };
        let outcome = self.run_outcome(conn, &cmd).await;
        if outcome.status != agent_safe_core::ExecutionStatus::Success {
            return outcome;
        }
        let set: Vec<String> =
            targets.iter().map(|t| format!("{} {}%", t.resource, t.percent)).collect();
        ExecutionOutcome::success(format!(
            "horizontalpodautoscaler `{namespace}/{hpa}`: utilisation targets {}",
            set.join(", ")
        ))
    }

    async fn state(&self, call: ActionCall<'_>) -> Result<StateMap, ExecutorError> {
        if call.state_fields.is_empty() {
            return Ok(StateMap::new());
        }
        let p = P(call.params);
        let invalid = |e: Refusal| ExecutorError::new(e.0);
        // A call that could not be executed starts no process at all, not even a read.
        let request = plan::request(call.action, p).map_err(invalid)?;
        plan::plan_request(&request).map_err(invalid)?;
        let (resource, ns) = plan::state_resource(&request);
        let conn = connect::connect(&self.config, call.credential).map_err(invalid)?;
        let object = self.get(&conn, &resource, ns.as_deref()).await.map_err(ExecutorError::new)?;
        let target = request.target();
        let mut all = state::fields(target.object, p, object.as_ref());
        let wants_pods = call.state_fields.iter().any(|f| f == "pod_count");
        if wants_pods && object.is_some() && target.object == Object::Node {
            let (count, unmanaged) = self.pods_on_node(&conn, target.name).await?;
            all.insert("pod_count".to_owned(), json!(count));
            all.insert("unmanaged_pod_count".to_owned(), json!(unmanaged));
        }
        Ok(state::reduce(&all, call.state_fields))
    }

    /// `(pods on node, pods without a controller)`.
    async fn pods_on_node(
        &self,
        conn: &Connection,
        node: &str,
    ) -> Result<(usize, usize), ExecutorError> {
        let cmd = Cmd {
            args: vec![
                "get".to_owned(),
                "pods".to_owned(),
                "--all-namespaces".to_owned(),
                format!("--field-selector=spec.nodeName={node}"),
                "--output=json".to_owned(),
            ],
            stdin: None,
            patch_file: None,
            output: Output::Text,
        };
        let ran = self.run(conn, &cmd).await.map_err(ExecutorError::new)?;
        if !ran.success {
            return Err(ExecutorError::new(ran.error()));
        }
        let list: Value = serde_json::from_str(&ran.stdout)
            .map_err(|_| ExecutorError::new("`kubectl get pods` did not print a JSON object"))?;
        let items = list["items"].as_array().map(Vec::as_slice).unwrap_or_default();
        let unmanaged = items
            .iter()
            .filter(|pod| {
                !pod["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["controller"] == true))
            })
            .count();
        Ok((items.len(), unmanaged))
    }

    async fn prechecks(&self, call: ActionCall<'_>, specs: &[PrecheckSpec]) -> Vec<PreCheckResult> {
        if specs.is_empty() {
            return Vec::new();
        }
        let p = P(call.params);
        let fail_all = |message: String| {
            specs
                .iter()
                .map(|s| PreCheckResult {
                    name: s.name.clone(),
                    passed: false,
                    message: message.clone(),
                    advisory: !s.blocking,
                })
                .collect()
        };
        let request = match plan::request(call.action, p) {
            Ok(request) => request,
            Err(e) => return fail_all(e.0),
        };
        if let Err(e) = plan::plan_request(&request) {
            return fail_all(e.0);
        }
        let (resource, ns) = plan::state_resource(&request);
        let conn = match connect::connect(&self.config, call.credential) {
            Ok(conn) => conn,
            Err(e) => return fail_all(e.0),
        };
        let object = match self.get(&conn, &resource, ns.as_deref()).await {
            Ok(object) => object,
            Err(e) => return fail_all(e),
        };
        state::prechecks(request.action(), p, object.as_ref(), specs)
    }
}

impl Executor for SubprocessExecutor {
    fn kind(&self) -> &'static str {
        "kubectl"
    }

    fn execute<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, ExecutionOutcome> {
        Box::pin(async move {
            // Everything is checked before any process starts.
            let plan = match plan::plan(call.action, P(call.params)) {
                Ok(plan) => plan,
                Err(e) => return ExecutionOutcome::error(e.0),
            };
            let conn = match connect::connect(&self.config, call.credential) {
                Ok(conn) => conn,
                Err(e) => return ExecutionOutcome::error(e.0),
            };
            match plan {
                Plan::Run(cmd) => self.run_outcome(&conn, &cmd).await,
                Plan::HpaLimits { namespace, hpa, targets } => {
                    self.hpa_limits(&conn, &namespace, &hpa, &targets).await
                }
            }
        })
    }

    fn get_state<'a>(
        &'a self,
        call: ActionCall<'a>,
    ) -> BoxFuture<'a, Result<StateMap, ExecutorError>> {
        Box::pin(self.state(call))
    }

    fn run_prechecks<'a>(
        &'a self,
        call: ActionCall<'a>,
        prechecks: &'a [PrecheckSpec],
    ) -> BoxFuture<'a, Vec<PreCheckResult>> {
        Box::pin(self.prechecks(call, prechecks))
    }
}

/// The argument list `execute` would run for `action` with `params` and no credential, or why
/// it would refuse, without running anything (for documentation and tests). `update-hpa-limits`
/// gives its first step (`get`); its patch depends on the object read.
pub fn kubectl_argv(
    config: &KubectlConfig,
    action: &str,
    params: &agent_safe_core::Params,
) -> Result<Vec<String>, String> {
    let conn = connect::connect(config, None).map_err(|e| e.0)?;
    let mut args = conn.args;
    match plan::plan(action, P(params)).map_err(|e| e.0)? {
        Plan::Run(cmd) => {
            args.extend(cmd.args);
            if cmd.patch_file.is_some() {
                args.push("--patch-file=<temporary file>".to_owned());
            }
        }
        Plan::HpaLimits { namespace, hpa, .. } => args.extend([
            "get".to_owned(),
            format!("{}/{hpa}", plan::HPA),
            format!("--namespace={namespace}"),
            "--output=json".to_owned(),
        ]),
    }
    Ok(args)
}

#[cfg(test)]
mod tests;
