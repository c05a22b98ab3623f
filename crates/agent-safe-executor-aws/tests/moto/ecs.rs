//! ECS service and task actions against moto.

use aws_sdk_ecs::types::{ContainerDefinition, LaunchType};
use serde_json::{Value, json};

use crate::support::{Moto, REGION, assert_failure, assert_success, moto, output, precheck};

const CLUSTER: &str = "web";
const SERVICE: &str = "api";

/// A cluster with a service of 2 tasks.
async fn service(m: &Moto) -> aws_sdk_ecs::Client {
    let ecs = aws_sdk_ecs::Client::new(&m.sdk);
    ecs.create_cluster().cluster_name(CLUSTER).send().await.unwrap();
    ecs.register_task_definition()
        .family("api")
        .container_definitions(
            ContainerDefinition::builder().name("api").image("nginx").memory(128).build(),
        )
        .cpu("256")
        .memory("512")
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(CLUSTER)
        .service_name(SERVICE)
        .task_definition("api")
        .desired_count(2)
        .send()
        .await
        .unwrap();
    ecs
}

fn scale(count: i64) -> Value {
    json!({"cluster": CLUSTER, "service": SERVICE, "desired_count": count, "region": REGION})
}

#[tokio::test]
async fn scale_then_rollback_restores_the_previous_count() {
    let Some(m) = moto("ecs scale").await else { return };
    service(&m).await;
    let run = m.run("ecs-scale-service", scale(5)).await;
    assert_success(&run);
    assert_eq!(run.before["desired_count"], 2);
    assert_eq!(run.after["desired_count"], 5);
    assert_eq!(
        run.after.keys().collect::<Vec<_>>(),
        ["desired_count", "running_count"],
        "declared fields only, in declared order"
    );
    assert_eq!(output(&run.outcome)["desired_count"], 5);

    let (action, params, rollback) = m.rollback("ecs-scale-service", scale(5), &run).await;
    assert_eq!(action, "ecs-scale-service");
    assert_eq!(params, scale(2));
    assert_success(&rollback);
    assert_eq!(rollback.after["desired_count"], 2);
}

#[tokio::test]
async fn update_service_with_a_forced_deployment_and_rollback() {
    let Some(m) = moto("ecs update").await else { return };
    service(&m).await;
    let p = json!({"cluster": CLUSTER, "service": SERVICE, "desired_count": 3,
                   "force_new_deployment": true, "region": REGION});
    let run = m.run("ecs-update-service", p.clone()).await;
    assert_success(&run);
    assert_eq!(run.before["status"], "ACTIVE");
    assert_eq!(run.after["desired_count"], 3);
    assert_eq!(output(&run.outcome)["force_new_deployment"], true);

    let (_, params, rollback) = m.rollback("ecs-update-service", p, &run).await;
    assert_eq!(params["desired_count"], 2);
    assert_success(&rollback);
    assert_eq!(rollback.after["desired_count"], 2);
}

#[tokio::test]
async fn stop_task() {
    let Some(m) = moto("ecs stop task").await else { return };
    let ecs = service(&m).await;
    // moto answers RunTask with HTTP 500 unless the launch type is FARGATE.
    let out = ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("api")
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    let arn = out.tasks()[0].task_arn().unwrap();
    let task = arn.rsplit('/').next().unwrap().to_owned();
    let p =
        json!({"cluster": CLUSTER, "task": task, "reason": "agent-safe test", "region": REGION});
    let run = m.run("ecs-stop-task", p.clone()).await;
    assert_success(&run);
    assert_eq!(run.before, *json!({"last_status": "RUNNING"}).as_object().unwrap());
    assert_eq!(run.after["last_status"], "STOPPED");
    let checks = m.prechecks("ecs-stop-task", p).await;
    assert!(!precheck(&checks, "task-running").passed, "{checks:?}");
}

#[tokio::test]
async fn unknown_service_and_task() {
    let Some(m) = moto("ecs not found").await else { return };
    service(&m).await;
    let p = json!({"cluster": CLUSTER, "service": "nope", "desired_count": 1, "region": REGION});
    let run = m.run("ecs-scale-service", p.clone()).await;
    assert_failure(&run.outcome, "ServiceNotFoundException");
    let check = precheck(&run.prechecks, "service-active");
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "service `nope` not found in cluster `web`")
    );
    let err = m.state("ecs-scale-service", p).await.unwrap_err();
    assert!(
        err.starts_with("AWS API error: ECS service `nope` not found in cluster `web`"),
        "{err}"
    );

    let task = "0123456789abcdef0123456789abcdef";
    let p = json!({"cluster": CLUSTER, "task": task, "region": REGION});
    let checks = m.prechecks("ecs-stop-task", p.clone()).await;
    let check = precheck(&checks, "task-running");
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "task `0123456789abcdef0123456789abcdef` not found in cluster `web`")
    );
    let err = m.state("ecs-stop-task", p).await.unwrap_err();
    assert!(err.contains("not found in cluster `web`"), "{err}");
}
