//! The kubectl command for each action (SPEC §12.4, corrected): every mapping is a valid
//! kubectl invocation that does what the action's YAML says, built from checked params.

use serde_json::{Value, json};

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
        /// `(resource, percent)` to set.
        targets: Vec<(&'static str, i64)>,
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

/// Why an action of the catalog is deliberately not run through kubectl.
pub(crate) fn unsupported(action: &str) -> Option<&'static str> {
    match action {
        "port-forward" => Some(
            "`port-forward` is refused by the kubectl executor: it is an open-ended session \
             that binds a port on the runner's machine and lasts until the process is stopped, \
             not a bounded action with an outcome",
        ),
        _ => None,
    }
}

fn cmd(args: Vec<String>) -> Cmd {
    Cmd { args, stdin: None, patch_file: None, output: Output::Text }
}

fn ns(p: P<'_>) -> Result<String, Refusal> {
    Ok(format!("--namespace={}", p.label("namespace")?))
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
    let s = |v: &str| v.to_owned();
    let run = |c: Cmd| Ok(Plan::Run(c));
    match action {
        "restart-deployment" => run(cmd(vec![
            s("rollout"),
            s("restart"),
            format!("deployment/{}", p.name("deployment")?),
            ns(p)?,
        ])),
        "scale-deployment" => run(cmd(vec![
            s("scale"),
            format!("deployment/{}", p.name("deployment")?),
            ns(p)?,
            format!("--replicas={}", p.int("replicas", 0, 100_000)?),
        ])),
        "delete-pod" => {
            let mut args = vec![s("delete"), format!("pod/{}", p.name("pod")?), ns(p)?];
            if let Some(g) = p.opt_int("grace_period", 0, 86_400)? {
                args.push(format!("--grace-period={g}"));
            }
            run(cmd(args))
        }
        "delete-namespace" => {
            run(cmd(vec![s("delete"), format!("namespace/{}", p.label("namespace")?)]))
        }
        // `kubectl create namespace NAME` (the Python `create namespace/NAME` is not valid).
        "create-namespace" => {
            run(cmd(vec![s("create"), s("namespace"), p.label("namespace")?.to_owned()]))
        }
        "cordon-node" => run(cmd(vec![s("cordon"), p.name("node")?.to_owned()])),
        "uncordon-node" => run(cmd(vec![s("uncordon"), p.name("node")?.to_owned()])),
        "drain-node" => {
            let node = p.name("node")?.to_owned();
            let ignore = p.bool_or("ignore_daemonsets", true)?;
            let timeout = p.opt_int("timeout", 1, 86_400)?.unwrap_or(DEFAULT_DRAIN_TIMEOUT_SECS);
            run(cmd(vec![
                s("drain"),
                node,
                format!("--ignore-daemonsets={ignore}"),
                s("--delete-emptydir-data"),
                format!("--timeout={timeout}s"),
            ]))
        }
        "rollout-undo" => {
            let mut args = vec![
                s("rollout"),
                s("undo"),
                format!("deployment/{}", p.name("deployment")?),
                ns(p)?,
            ];
            if let Some(r) = p.opt_int("revision", 1, i64::from(i32::MAX))? {
                args.push(format!("--to-revision={r}"));
            }
            run(cmd(args))
        }
        // Reports the current progress and returns (no waiting), like the API executor.
        "rollout-status" => run(cmd(vec![
            s("rollout"),
            s("status"),
            format!("deployment/{}", p.name("deployment")?),
            ns(p)?,
            s("--watch=false"),
        ])),
        "get-pod-logs" => {
            let mut args = vec![s("logs"), format!("pod/{}", p.name("pod")?), ns(p)?];
            if let Some(c) = p.opt_label("container")? {
                args.push(format!("--container={c}"));
            }
            // The action's declared default: 100 lines.
            let tail = p.opt_int("tail_lines", 1, 1_000_000)?.unwrap_or(100);
            args.push(format!("--tail={tail}"));
            run(cmd(args))
        }
        "get-configmap" => run(Cmd {
            output: Output::ConfigMapData,
            ..cmd(vec![
                s("get"),
                format!("configmap/{}", p.name("configmap")?),
                ns(p)?,
                s("--output=json"),
            ])
        }),
        "get-secret" => run(Cmd {
            output: Output::SecretKeys,
            ..cmd(vec![
                s("get"),
                format!("secret/{}", p.name("secret")?),
                ns(p)?,
                s("--output=json"),
            ])
        }),
        "update-configmap" => {
            let resource = format!("configmap/{}", p.name("configmap")?);
            let key = p.arg("key")?;
            if key.len() > 253
                || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err(Refusal(format!(
                    "param `key` must be a ConfigMap key (letters, digits, `-`, `_` and `.`, at \
                     most 253 characters), got `{}`",
                    super::args::escape_controls(key)
                )));
            }
            let patch = json!({"data": {key: p.text("value")?}});
            run(merge_patch(resource, ns(p)?, &patch))
        }
        "update-image" => run(cmd(vec![
            s("set"),
            s("image"),
            format!("deployment/{}", p.name("deployment")?),
            ns(p)?,
            format!("{}={}", p.label("container")?, p.image("image")?),
        ])),
        "scale-hpa" => {
            let min = p.int("min_replicas", 1, i64::from(i32::MAX))?;
            let max = p.int("max_replicas", 1, i64::from(i32::MAX))?;
            let patch = json!({"spec": {"minReplicas": min, "maxReplicas": max}});
            run(merge_patch(format!("{HPA}/{}", p.name("hpa")?), ns(p)?, &patch))
        }
        "update-hpa-limits" => {
            let targets: Vec<(&'static str, i64)> = [
                ("cpu", p.opt_int("target_cpu_percent", 1, 100)?),
                ("memory", p.opt_int("target_memory_percent", 1, 100)?),
            ]
            .into_iter()
            .filter_map(|(r, pct)| pct.map(|pct| (r, pct)))
            .collect();
            if targets.is_empty() {
                return Err(Refusal(
                    "give at least one of `target_cpu_percent` and `target_memory_percent`"
                        .to_owned(),
                ));
            }
            Ok(Plan::HpaLimits {
                namespace: p.label("namespace")?.to_owned(),
                hpa: p.name("hpa")?.to_owned(),
                targets,
            })
        }
        "apply-network-policy" => {
            let namespace = p.label("namespace")?;
            let name = p.name("policy_name")?;
            let spec = p.json_object("policy")?;
            let manifest = json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            });
            run(Cmd {
                stdin: Some(manifest.to_string()),
                ..cmd(vec![
                    s("apply"),
                    format!("--namespace={namespace}"),
                    s("--server-side"),
                    s("--field-manager=agent-safe"),
                    s("--filename=-"),
                ])
            })
        }
        "exec-pod" => {
            let mut args = vec![s("exec"), format!("pod/{}", p.name("pod")?), ns(p)?];
            if let Some(c) = p.opt_label("container")? {
                args.push(format!("--container={c}"));
            }
            args.push(s("--"));
            args.extend(p.command("command")?.into_iter().map(str::to_owned));
            run(cmd(args))
        }
        other => Err(Refusal(match unsupported(other) {
            Some(why) => why.to_owned(),
            None => format!("no kubectl mapping for action `{other}`"),
        })),
    }
}

/// `drain --timeout` when the action gives none: 300 s, as the API executor.
pub(crate) const DEFAULT_DRAIN_TIMEOUT_SECS: i64 = 300;

/// The `update-hpa-limits` patch for the autoscaler object `hpa` (as `kubectl get -o json`
/// prints it): the whole `metrics` list with the targets set (added when missing), guarded
/// by the object's `resourceVersion` so a concurrent change makes the patch fail.
pub(crate) fn hpa_limits_patch(hpa: &Value, targets: &[(&str, i64)]) -> Value {
    let mut metrics: Vec<Value> = hpa["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    for (resource, pct) in targets {
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
    json!({
        "metadata": {"resourceVersion": hpa["metadata"]["resourceVersion"]},
        "spec": {"metrics": metrics},
    })
}

/// The state resource of `action`: `(kind/name, namespace)` for `kubectl get`, or `None`
/// when the action works on no single object.
pub(crate) fn state_resource(
    action: &str,
    p: P<'_>,
) -> Result<Option<(String, Option<String>)>, Refusal> {
    let namespaced =
        |kind: &str, param: &str| -> Result<Option<(String, Option<String>)>, Refusal> {
            Ok(Some((format!("{kind}/{}", p.name(param)?), Some(p.label("namespace")?.to_owned()))))
        };
    match action {
        "restart-deployment" | "scale-deployment" | "rollout-undo" | "rollout-status"
        | "update-image" => namespaced("deployment", "deployment"),
        "delete-pod" | "get-pod-logs" | "exec-pod" | "port-forward" => namespaced("pod", "pod"),
        "delete-namespace" | "create-namespace" => {
            Ok(Some((format!("namespace/{}", p.label("namespace")?), None)))
        }
        "cordon-node" | "uncordon-node" | "drain-node" => {
            Ok(Some((format!("node/{}", p.name("node")?), None)))
        }
        "get-configmap" | "update-configmap" => namespaced("configmap", "configmap"),
        "get-secret" => namespaced("secret", "secret"),
        "scale-hpa" | "update-hpa-limits" => namespaced(HPA, "hpa"),
        "apply-network-policy" => namespaced("networkpolicy", "policy_name"),
        _ => Ok(None),
    }
}
