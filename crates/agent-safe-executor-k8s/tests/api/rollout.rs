//! rollout-undo: the ReplicaSet of the previous (or the given) revision, owned by the
//! deployment, has its pod template patched back into the deployment, as kubectl does.

use serde_json::{Value, json};

use crate::harness::*;

const DEPLOY: &str = "/apis/apps/v1/namespaces/prod/deployments/web";
const REPLICA_SETS: &str = "/apis/apps/v1/namespaces/prod/replicasets?&labelSelector=app%3Dweb";

/// The template of the fixture ReplicaSet with `revision`, as the rollback must send it.
fn template_of_revision(revision: &str) -> Value {
    let list = fixture("replicasets-web.json");
    let rs = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision)
        .unwrap();
    let mut template = rs["spec"]["template"].clone();
    template["metadata"].as_object_mut().unwrap().remove("creationTimestamp");
    template["metadata"]["labels"].as_object_mut().unwrap().remove("pod-template-hash");
    template
}

/// The three requests of a rollback to `revision` (2 when `None`).
pub fn undo_steps(revision: Option<&str>) -> Vec<(Req, Reply)> {
    let deployment = fixture("deployment-web.json");
    let rev = revision.unwrap_or("2");
    let mut annotations = json!({
        "deployment.kubernetes.io/revision": "3",
        "kubectl.kubernetes.io/last-applied-configuration": deployment["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
    });
    match rev {
        "2" => {
            annotations["team"] = json!("payments");
            annotations["note"] = json!("canary");
        }
        _ => annotations["team"] = json!("platform"),
    }
    vec![
        (get(DEPLOY), reply(200, deployment.clone())),
        (get(REPLICA_SETS), reply(200, fixture("replicasets-web.json"))),
        (
            send(
                "PATCH",
                &format!("{DEPLOY}?&fieldManager=agent-safe"),
                JSON_PATCH,
                json!([
                    {"op": "replace", "path": "/metadata/resourceVersion", "value": "48211"},
                    {"op": "replace", "path": "/spec/template", "value": template_of_revision(rev)},
                    {"op": "add", "path": "/metadata/annotations", "value": annotations},
                ]),
            ),
            reply(200, deployment),
        ),
    ]
}

async fn run(p: Value, steps: Vec<(Req, Reply)>) -> agent_safe_core::ExecutionOutcome {
    let (api, client) = FakeApi::new();
    for (req, rep) in steps {
        api.on(req, rep);
    }
    let outcome = execute(&executor(client), "rollout-undo", &params(p)).await;
    api.verify();
    outcome
}

#[tokio::test]
async fn without_a_revision_goes_back_to_the_previous_one() {
    // Revisions 1, 2, 3 (current) are the deployment's; revision 9 belongs to an older
    // deployment with the same labels and must be ignored.
    let outcome = run(json!({"namespace": "prod", "deployment": "web"}), undo_steps(None)).await;
    assert_success(
        &outcome,
        "deployment `prod/web` rolled back to revision 2 (web=nginx:1.26, envoy=envoyproxy/envoy:v1.31.0)",
    );
}

#[tokio::test]
async fn with_a_revision_goes_to_that_one() {
    let p = json!({"namespace": "prod", "deployment": "web", "revision": 1});
    let outcome = run(p, undo_steps(Some("1"))).await;
    assert_success(
        &outcome,
        "deployment `prod/web` rolled back to revision 1 (web=nginx:1.25, envoy=envoyproxy/envoy:v1.31.0)",
    );
}

#[tokio::test]
async fn a_revision_of_another_owner_or_missing_is_refused() {
    for revision in [9, 4] {
        let steps = undo_steps(None).into_iter().take(2).collect();
        let p = json!({"namespace": "prod", "deployment": "web", "revision": revision});
        let outcome = run(p, steps).await;
        assert_failure(
            &outcome,
            &format!(
                "deployment `prod/web`: revision {revision} is not in the rollout history (revisions: 1, 2, 3)"
            ),
        );
    }
}

#[tokio::test]
async fn the_current_revision_is_a_no_op() {
    let steps = undo_steps(None).into_iter().take(2).collect();
    let p = json!({"namespace": "prod", "deployment": "web", "revision": 3});
    let outcome = run(p, steps).await;
    assert_success(
        &outcome,
        "deployment `prod/web`: skipped rollback (current template already matches revision 3)",
    );
}

#[tokio::test]
async fn a_paused_deployment_is_refused() {
    let mut paused = fixture("deployment-web.json");
    paused["spec"]["paused"] = json!(true);
    let outcome = run(
        json!({"namespace": "prod", "deployment": "web"}),
        vec![(get(DEPLOY), reply(200, paused))],
    )
    .await;
    assert_failure(&outcome, "deployment `prod/web` is paused; resume it before undoing a rollout");
}

#[tokio::test]
async fn unknown_template_fields_survive_the_rollback() {
    // A newer API server's pod spec field that this build's k8s-openapi does not know.
    let mut list = fixture("replicasets-web.json");
    list["items"][2]["spec"]["template"]["spec"]["futureField"] = json!({"enabled": true});
    let mut steps = undo_steps(None);
    steps[1].1 = reply(200, list);
    let patch = steps[2].0.body.as_mut().unwrap();
    patch[1]["value"]["spec"]["futureField"] = json!({"enabled": true});
    let outcome = run(json!({"namespace": "prod", "deployment": "web"}), steps).await;
    assert_eq!(outcome.status, agent_safe_core::ExecutionStatus::Success);
}
