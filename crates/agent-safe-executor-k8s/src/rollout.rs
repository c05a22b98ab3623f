//! Deployment rollouts: `rollout-undo` as `kubectl rollout undo` does it (the pod template of
//! the chosen revision's ReplicaSet patched back into the deployment) and `rollout-status` as
//! `kubectl rollout status` reports it.

use std::collections::BTreeMap;

use agent_safe_core::ExecutionOutcome;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch};
use kube::core::ObjectMeta;
use serde_json::{Value, json};

use crate::error::StepError;
use crate::patch_params;

/// The deployment annotation holding the current revision (also on each ReplicaSet).
pub(crate) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// The label the deployment controller adds to each ReplicaSet's pod template.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Deployment annotations that stay the deployment's own on a rollback (kubectl's
/// `annotationsToSkip`); every other annotation is taken from the ReplicaSet.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// `rollout-undo`: back to `revision`, or to the previous revision when `None`.
///
/// Templates are handled as raw JSON, so fields this build's `k8s-openapi` does not know
/// (a newer cluster's pod spec) survive the rollback.
pub(crate) async fn undo(
    client: kube::Client,
    namespace: &str,
    name: &str,
    revision: Option<i64>,
) -> Result<ExecutionOutcome, StepError> {
    let deployments = ApiResource::erase::<Deployment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &deployments);
    let deployment = api.get(name).await?;
    let spec = &deployment.data["spec"];
    if spec["paused"] == Value::Bool(true) {
        return Err(StepError::Refused(format!(
            "deployment `{namespace}/{name}` is paused; resume it before undoing a rollout"
        )));
    }
    let selector: LabelSelector =
        serde_json::from_value(spec["selector"].clone()).map_err(|e| {
            StepError::Refused(format!(
                "deployment `{namespace}/{name}` has an unreadable selector: {e}"
            ))
        })?;
    let replica_sets = ApiResource::erase::<ReplicaSet>(&());
    let rs_api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &replica_sets);
    let list = rs_api.list(&ListParams::default().labels(&selector_string(&selector))).await?;
    let owned = owned_replica_sets(&deployment.metadata, list.items);
    let (target_revision, target) = choose_revision(&owned, revision).map_err(|message| {
        StepError::Refused(format!("deployment `{namespace}/{name}`: {message}"))
    })?;
    let template = without_hash_label(&target.data["spec"]["template"]);
    if template == without_hash_label(&spec["template"]) {
        return Ok(ExecutionOutcome::success(format!(
            "deployment `{namespace}/{name}`: skipped rollback (current template already matches revision {target_revision})"
        )));
    }
    let annotations = rollback_annotations(&deployment.metadata, &target.metadata);
    let resource_version = deployment.metadata.resource_version.clone().unwrap_or_default();
    let images = images_summary(&template);
    let patch = json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]);
    let patch = serde_json::from_value(patch)
        .map_err(|e| StepError::Invalid(format!("cannot build the rollback patch: {e}")))?;
    api.patch(name, &patch_params(), &Patch::<()>::Json(patch)).await?;
    Ok(ExecutionOutcome::success(format!(
        "deployment `{namespace}/{name}` rolled back to revision {target_revision} ({images})"
    )))
}

/// A pod template without the controller's `pod-template-hash` label (and without the
/// `creationTimestamp: null` the API server adds to templates).
fn without_hash_label(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(meta) = template.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta.get("creationTimestamp") == Some(&Value::Null) {
            meta.remove("creationTimestamp");
        }
        if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(POD_TEMPLATE_HASH);
        }
    }
    template
}

/// The ReplicaSets the deployment controls (owner reference with `controller: true` and
/// the deployment's uid), as kubectl's `deploymentutil.GetAllReplicaSets` filters them.
pub(crate) fn owned_replica_sets<K: kube::Resource>(
    deployment: &ObjectMeta,
    items: Vec<K>,
) -> Vec<K> {
    let Some(uid) = deployment.uid.as_deref() else { return Vec::new() };
    items
        .into_iter()
        .filter(|rs| {
            rs.meta()
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect()
}

/// The revision a ReplicaSet or deployment records, if any.
pub(crate) fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION_ANNOTATION)?.parse().ok()
}

/// Picks the ReplicaSet to roll back to: the one with `wanted` as its revision, or the one
/// with the highest revision below the current (highest) one.
pub(crate) fn choose_revision<K: kube::Resource>(
    owned: &[K],
    wanted: Option<i64>,
) -> Result<(i64, &K), String> {
    let mut with_revision: Vec<(i64, &K)> =
        owned.iter().filter_map(|rs| revision_of(rs.meta()).map(|r| (r, rs))).collect();
    with_revision.sort_by_key(|(r, _)| *r);
    let known = || {
        let list: Vec<String> = with_revision.iter().map(|(r, _)| r.to_string()).collect();
        if list.is_empty() { "none".to_owned() } else { list.join(", ") }
    };
    match wanted {
        Some(wanted) => {
            with_revision.iter().find(|(r, _)| *r == wanted).copied().ok_or_else(|| {
                format!("revision {wanted} is not in the rollout history (revisions: {})", known())
            })
        }
        None => {
            let Some(&(current, _)) = with_revision.last() else {
                return Err("no rollout history found".to_owned());
            };
            with_revision.iter().rev().find(|(r, _)| *r < current).copied().ok_or_else(|| {
                format!("no revision before the current one ({current}) to roll back to")
            })
        }
    }
}

fn rollback_annotations(deployment: &ObjectMeta, target: &ObjectMeta) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    if let Some(current) = &deployment.annotations {
        for key in ANNOTATIONS_TO_SKIP {
            if let Some(v) = current.get(key) {
                annotations.insert(key.to_owned(), v.clone());
            }
        }
    }
    for (k, v) in target.annotations.iter().flatten() {
        if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    annotations
}

/// `container=image` pairs of a raw pod template.
fn images_summary(template: &Value) -> String {
    let pairs: Vec<String> = template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!("{}={}", c["name"].as_str().unwrap_or(""), c["image"].as_str().unwrap_or(""))
        })
        .collect();
    pairs.join(", ")
}

/// A label selector in the API's query syntax.
pub(crate) fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> =
        selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions).
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// `rollout-status`: kubectl's rollout status message for the deployment; a rollout that
/// exceeded its progress deadline is a failure.
pub(crate) fn status(deployment: &Deployment, namespace: &str, name: &str) -> ExecutionOutcome {
    let generation = deployment.metadata.generation.unwrap_or_default();
    let st = deployment.status.clone().unwrap_or_default();
    let counts = format!(
        "replicas {}, updated {}, ready {}, available {}",
        st.replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0)
    );
    let id = format!("`{namespace}/{name}`");
    if generation > st.observed_generation.unwrap_or(0) {
        return ExecutionOutcome::success(format!(
            "deployment {id}: waiting for the spec update to be observed ({counts})"
        ));
    }
    let deadline_exceeded = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        let mut outcome =
            ExecutionOutcome::failure(format!("deployment {id} exceeded its progress deadline"));
        outcome.output = counts;
        return outcome;
    }
    let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let message = if updated < desired {
        format!("rollout in progress: {updated} of {desired} new replicas have been updated")
    } else if st.replicas.unwrap_or(0) > updated {
        format!(
            "rollout in progress: {} old replicas are pending termination",
            st.replicas.unwrap_or(0) - updated
        )
    } else if st.available_replicas.unwrap_or(0) < updated {
        format!(
            "rollout in progress: {} of {updated} updated replicas are available",
            st.available_replicas.unwrap_or(0)
        )
    } else {
        "successfully rolled out".to_owned()
    };
    ExecutionOutcome::success(format!("deployment {id}: {message} ({counts})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, revision: Option<&str>, owner_uid: &str, controller: bool) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": revision.map(|r| json!({REVISION_ANNOTATION: r})).unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": owner_uid, "controller": controller}]
            }
        }))
        .unwrap()
    }

    #[track_caller]
    fn check(sets: &[ReplicaSet], wanted: Option<i64>, expected: Result<(i64, &str), &str>) {
        let got = choose_revision(sets, wanted)
            .map(|(r, rs)| (r, rs.metadata.name.clone().unwrap_or_default()));
        let expected = expected.map(|(r, n)| (r, n.to_owned())).map_err(str::to_owned);
        assert_eq!(got, expected);
    }

    #[test]
    fn chooses_the_revision_like_kubectl() {
        let sets = [
            rs("web-3", Some("3"), "u", true),
            rs("web-1", Some("1"), "u", true),
            rs("web-7", Some("7"), "u", true),
            rs("web-x", None, "u", true),
        ];
        check(&sets, None, Ok((3, "web-3")));
        check(&sets, Some(1), Ok((1, "web-1")));
        check(&sets, Some(7), Ok((7, "web-7")));
        check(&sets, Some(2), Err("revision 2 is not in the rollout history (revisions: 1, 3, 7)"));
        check(&sets[2..3], None, Err("no revision before the current one (7) to roll back to"));
        check(&[], None, Err("no rollout history found"));
        check(&[], Some(4), Err("revision 4 is not in the rollout history (revisions: none)"));
    }

    #[test]
    fn only_replica_sets_the_deployment_controls_count() {
        let deployment: Deployment =
            serde_json::from_value(json!({"metadata": {"name": "web", "uid": "u"}})).unwrap();
        let sets = vec![
            rs("mine", Some("1"), "u", true),
            rs("not-controller", Some("2"), "u", false),
            rs("other-owner", Some("3"), "v", true),
        ];
        let owned = owned_replica_sets(&deployment.metadata, sets);
        let names: Vec<_> = owned.iter().filter_map(|r| r.metadata.name.clone()).collect();
        assert_eq!(names, ["mine"]);
    }

    #[test]
    fn selectors_render_and_match() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(selector_string(&selector), "app=web,tier in (a,b),!canary");
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert!(selector_matches(&selector, Some(&labels(&[("app", "web"), ("tier", "a")]))));
        assert!(!selector_matches(&selector, Some(&labels(&[("app", "web"), ("tier", "c")]))));
        assert!(!selector_matches(
            &selector,
            Some(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")]))
        ));
        assert!(!selector_matches(&selector, None));
        assert!(selector_matches(&LabelSelector::default(), None));
    }
}
