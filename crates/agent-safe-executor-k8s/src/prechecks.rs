//! The catalog's prechecks, each a real question to the API server (or to the params).
//! A precheck that cannot be answered through the API says so and does not pass.

use agent_safe_core::{PreCheckResult, PrecheckSpec};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};

use agent_safe_k8s_actions::K8sAction;

use crate::actions::Ctx;
use crate::drain::{classify, pods_on_node};
use crate::error::StepError;
use crate::rollout::{choose_revision, owned_replica_sets, selector_matches, selector_string};

/// Namespaces `delete-namespace` refuses (`not-system-namespace`).
const SYSTEM_NAMESPACES: [&str; 4] = ["kube-system", "kube-public", "kube-node-lease", "default"];

/// Runs each declared precheck in order.
pub(crate) async fn run_all(
    action: K8sAction,
    cx: Ctx<'_>,
    specs: &[PrecheckSpec],
) -> Vec<PreCheckResult> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let (passed, message) = match run(&spec.name, action, &cx).await {
            Ok(result) => result,
            Err(e) => (false, e.to_string()),
        };
        out.push(PreCheckResult {
            name: spec.name.clone(),
            passed,
            message,
            advisory: !spec.blocking,
        });
    }
    out
}

type Verdict = Result<(bool, String), StepError>;

fn pass(message: String) -> Verdict {
    Ok((true, message))
}

fn fail(message: String) -> Verdict {
    Ok((false, message))
}

/// `Ok(None)` when the object does not exist.
async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, StepError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(k) => Ok(Some(k)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn run(name: &str, action: K8sAction, cx: &Ctx<'_>) -> Verdict {
    let p = cx.params;
    let client = cx.client.clone();
    match name {
        "deployment-exists" | "enough-replicas" | "container-exists" | "revision-exists"
        | "no-autoscaler" => {
            let (ns, d) = (p.str("namespace")?, p.str("deployment")?);
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let Some(deployment) = get_opt(&api, d).await? else {
                return fail(format!("deployment `{ns}/{d}` not found"));
            };
            let spec = deployment.spec.clone().unwrap_or_default();
            match name {
                "deployment-exists" if spec.paused == Some(true) => {
                    fail(format!("deployment `{ns}/{d}` exists but is paused"))
                }
                "deployment-exists" => pass(format!("deployment `{ns}/{d}` exists")),
                "enough-replicas" => {
                    let available =
                        deployment.status.and_then(|s| s.available_replicas).unwrap_or(0);
                    let message = format!("{available} available replicas (2 or more needed)");
                    if available >= 2 { pass(message) } else { fail(message) }
                }
                "container-exists" => {
                    let c = p.str("container")?;
                    let pod = spec.template.spec.unwrap_or_default();
                    let found = pod
                        .containers
                        .iter()
                        .chain(pod.init_containers.iter().flatten())
                        .any(|x| x.name == c);
                    if found {
                        pass(format!("container `{c}` found"))
                    } else {
                        fail(format!("deployment `{ns}/{d}` has no container `{c}`"))
                    }
                }
                "revision-exists" => {
                    let rs_api: Api<ReplicaSet> = Api::namespaced(client, ns);
                    let lp = ListParams::default().labels(&selector_string(&spec.selector));
                    let owned =
                        owned_replica_sets(&deployment.metadata, rs_api.list(&lp).await?.items);
                    match choose_revision(&owned, p.opt_int("revision")?) {
                        Ok((r, _)) => pass(format!("revision {r} is in the rollout history")),
                        Err(message) => fail(message),
                    }
                }
                _ => {
                    let hpa_api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
                    let hpas = hpa_api.list(&ListParams::default()).await?.items;
                    let managing: Vec<String> = hpas
                        .iter()
                        .filter(|h| {
                            h.spec.as_ref().is_some_and(|s| {
                                s.scale_target_ref.kind == "Deployment"
                                    && s.scale_target_ref.name == d
                            })
                        })
                        .filter_map(|h| h.metadata.name.clone())
                        .collect();
                    if managing.is_empty() {
                        pass(format!("no autoscaler manages deployment `{ns}/{d}`"))
                    } else {
                        fail(format!(
                            "autoscaler `{}` manages deployment `{ns}/{d}` and may override the replica count",
                            managing.join("`, `")
                        ))
                    }
                }
            }
        }
        "pod-exists" | "has-controller" | "pod-running" => {
            let (ns, pod) = (p.str("namespace")?, p.str("pod")?);
            let api: Api<Pod> = Api::namespaced(client, ns);
            let Some(found) = get_opt(&api, pod).await? else {
                return fail(format!("pod `{ns}/{pod}` not found"));
            };
            let phase = found.status.and_then(|s| s.phase).unwrap_or_default();
            match name {
                "pod-exists" => pass(format!("pod `{ns}/{pod}` exists (phase {phase})")),
                "pod-running" if phase == "Running" => pass(format!("pod `{ns}/{pod}` is Running")),
                "pod-running" => fail(format!("pod `{ns}/{pod}` is {phase}, not Running")),
                _ => match found
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true))
                {
                    Some(o) => pass(format!("controlled by {}/{}", o.kind, o.name)),
                    None => fail(format!(
                        "pod `{ns}/{pod}` has no controller: it will not be recreated"
                    )),
                },
            }
        }
        "not-system-namespace" => {
            let ns = p.str("namespace")?;
            if SYSTEM_NAMESPACES.contains(&ns) {
                fail(format!("`{ns}` is a system namespace"))
            } else {
                pass(format!("`{ns}` is not a system namespace"))
            }
        }
        "namespace-exists" | "namespace-absent" => {
            let ns = p.str("namespace")?;
            let api: Api<Namespace> = Api::all(client);
            let found = get_opt(&api, ns).await?;
            match (name, found) {
                ("namespace-exists", Some(_)) => pass(format!("namespace `{ns}` exists")),
                ("namespace-exists", None) => fail(format!("namespace `{ns}` not found")),
                (_, None) => pass(format!("namespace `{ns}` does not exist yet")),
                (_, Some(_)) => fail(format!("namespace `{ns}` already exists")),
            }
        }
        "resource-inventory" => {
            let ns = p.str("namespace")?;
            let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let secrets: Api<Secret> = Api::namespaced(client, ns);
            let lp = ListParams::default();
            let (p, d) = (pods.list_metadata(&lp).await?, deployments.list_metadata(&lp).await?);
            let (c, s) = (cms.list_metadata(&lp).await?, secrets.list_metadata(&lp).await?);
            pass(format!(
                "namespace `{ns}` holds {} pods, {} deployments, {} configmaps, {} secrets",
                p.items.len(),
                d.items.len(),
                c.items.len(),
                s.items.len()
            ))
        }
        "node-exists" | "node-cordoned" => {
            let node = p.str("node")?;
            let api: Api<Node> = Api::all(client);
            let Some(found) = get_opt(&api, node).await? else {
                return fail(format!("node `{node}` not found"));
            };
            let cordoned = found.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
            let ready = node_ready(&found);
            match name {
                "node-exists" => pass(format!("node `{node}` is registered (Ready: {ready})")),
                _ if cordoned => pass(format!("node `{node}` is cordoned")),
                _ => fail(format!("node `{node}` is not cordoned")),
            }
        }
        "spare-capacity" => {
            let node = p.str("node")?;
            let api: Api<Node> = Api::all(client);
            let nodes = api.list(&ListParams::default()).await?.items;
            let others = nodes
                .iter()
                .filter(|n| n.metadata.name.as_deref() != Some(node))
                .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true))
                .filter(|n| node_ready(n))
                .count();
            let message = format!("{others} other schedulable Ready nodes");
            if others > 0 { pass(message) } else { fail(message) }
        }
        "unmanaged-pods" | "disruption-budgets" => {
            let node = p.str("node")?;
            let pods = pods_on_node(client.clone(), node).await?;
            let classified = classify(&pods);
            if name == "unmanaged-pods" {
                return if classified.unmanaged.is_empty() {
                    pass(format!("every pod on node `{node}` has a controller"))
                } else {
                    fail(format!(
                        "pods without a controller are lost for good when evicted: `{}`",
                        classified.unmanaged.join("`, `")
                    ))
                };
            }
            let api: Api<PodDisruptionBudget> = Api::all(client);
            let pdbs = api.list(&ListParams::default()).await?.items;
            let blocking: Vec<String> = pdbs
                .iter()
                .filter(|pdb| pdb.status.as_ref().is_some_and(|s| s.disruptions_allowed < 1))
                .filter(|pdb| {
                    let ns = pdb.metadata.namespace.as_deref();
                    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                        return false;
                    };
                    pods.iter().any(|pod| {
                        pod.metadata.namespace.as_deref() == ns
                            && classified.evict.iter().any(|(pns, pname)| {
                                Some(pns.as_str()) == ns
                                    && pod.metadata.name.as_deref() == Some(pname.as_str())
                            })
                            && selector_matches(selector, pod.metadata.labels.as_ref())
                    })
                })
                .map(|pdb| {
                    format!(
                        "{}/{}",
                        pdb.metadata.namespace.as_deref().unwrap_or_default(),
                        pdb.metadata.name.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            if blocking.is_empty() {
                pass(format!("no disruption budget blocks evictions from node `{node}`"))
            } else {
                fail(format!(
                    "disruption budgets allow no evictions right now: `{}`",
                    blocking.join("`, `")
                ))
            }
        }
        "configmap-exists" | "consumers" => {
            let (ns, cm) = (p.str("namespace")?, p.str("configmap")?);
            if name == "configmap-exists" {
                let api: Api<ConfigMap> = Api::namespaced(client, ns);
                return match get_opt(&api, cm).await? {
                    Some(_) => pass(format!("configmap `{ns}/{cm}` exists")),
                    None => fail(format!("configmap `{ns}/{cm}` not found")),
                };
            }
            let api: Api<Pod> = Api::namespaced(client, ns);
            let pods = api.list(&ListParams::default()).await?.items;
            let users: Vec<String> = pods
                .iter()
                .filter(|pod| uses_configmap(pod, cm))
                .filter_map(|pod| pod.metadata.name.clone())
                .collect();
            pass(if users.is_empty() {
                format!("no pod uses configmap `{ns}/{cm}`")
            } else {
                format!("pods using configmap `{ns}/{cm}`: `{}`", users.join("`, `"))
            })
        }
        "secret-exists" => {
            let (ns, s) = (p.str("namespace")?, p.str("secret")?);
            let api: Api<Secret> = Api::namespaced(client, ns);
            // Metadata only: the values never travel for a precheck.
            match api.get_metadata(s).await {
                Ok(_) => pass(format!("secret `{ns}/{s}` exists")),
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    fail(format!("secret `{ns}/{s}` not found"))
                }
                Err(e) => Err(e.into()),
            }
        }
        "hpa-exists" | "metric-present" => {
            let (ns, h) = (p.str("namespace")?, p.str("hpa")?);
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client, ns);
            let Some(hpa) = get_opt(&api, h).await? else {
                return fail(format!("horizontalpodautoscaler `{ns}/{h}` not found"));
            };
            if name == "hpa-exists" {
                return pass(format!("horizontalpodautoscaler `{ns}/{h}` exists"));
            }
            let metrics = hpa.spec.and_then(|s| s.metrics).unwrap_or_default();
            let has =
                |r: &str| metrics.iter().any(|m| m.resource.as_ref().is_some_and(|x| x.name == r));
            let missing: Vec<&str> =
                [("target_cpu_percent", "cpu"), ("target_memory_percent", "memory")]
                    .into_iter()
                    .filter(|(param, _)| p.0.get(*param).is_some_and(|v| !v.is_null()))
                    .filter(|(_, r)| !has(r))
                    .map(|(_, r)| r)
                    .collect();
            if missing.is_empty() {
                pass("a resource metric exists for each target given".to_owned())
            } else {
                fail(format!(
                    "no `{}` resource metric yet: one will be added",
                    missing.join("`, `")
                ))
            }
        }
        "bounds-ordered" => {
            let (min, max) = (p.int("min_replicas")?, p.int("max_replicas")?);
            if min <= max {
                pass(format!("min_replicas {min} <= max_replicas {max}"))
            } else {
                fail(format!("min_replicas {min} is greater than max_replicas {max}"))
            }
        }
        "affected-pods" => {
            let ns = p.str("namespace")?;
            let spec: serde_json::Value = serde_json::from_str(p.str("policy")?).map_err(|e| {
                StepError::Invalid(format!("param `policy` is not valid JSON: {e}"))
            })?;
            let selector = serde_json::from_value(spec["podSelector"].clone()).map_err(|e| {
                StepError::Invalid(format!("param `policy` has no valid `podSelector`: {e}"))
            })?;
            let api: Api<Pod> = Api::namespaced(client, ns);
            let pods = api.list(&ListParams::default()).await?.items;
            let selected: Vec<String> = pods
                .iter()
                .filter(|pod| selector_matches(&selector, pod.metadata.labels.as_ref()))
                .filter_map(|pod| pod.metadata.name.clone())
                .collect();
            pass(format!(
                "{} pods in `{ns}` selected{}",
                selected.len(),
                if selected.is_empty() {
                    String::new()
                } else {
                    format!(": `{}`", selected.join("`, `"))
                }
            ))
        }
        "image-pullable" | "cni-enforces-policies" => {
            fail(format!("`{name}` cannot be answered through the Kubernetes API; not checked"))
        }
        other => fail(format!(
            "no precheck `{other}` for action `{}` in the k8s executor; not checked",
            action.name()
        )),
    }
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn uses_configmap(pod: &Pod, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let in_volumes = spec.volumes.iter().flatten().any(|v| {
        v.config_map.as_ref().is_some_and(|c| c.name == name)
            || v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .iter()
                    .flatten()
                    .any(|s| s.config_map.as_ref().is_some_and(|c| c.name == name))
            })
    });
    let in_env = spec.containers.iter().chain(spec.init_containers.iter().flatten()).any(|c| {
        c.env_from
            .iter()
            .flatten()
            .any(|e| e.config_map_ref.as_ref().is_some_and(|r| r.name == name))
            || c.env.iter().flatten().any(|e| {
                e.value_from
                    .as_ref()
                    .and_then(|v| v.config_map_key_ref.as_ref())
                    .is_some_and(|r| r.name == name)
            })
    });
    in_volumes || in_env
}
