//! ECS: update or scale a service, stop a task; service state (`desired_count`,
//! `running_count`, `pending_count`, `status`) and task state (`last_status`,
//! `desired_status`); prechecks `service-active` and `task-running`.

use agent_safe_core::StateMap;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{Failure, Service, Task};
use serde_json::{Value, json};

use crate::error::CallError;

/// `UpdateService` with a new desired count and/or a forced new deployment.
pub(crate) async fn update_service(
    client: &Client,
    cluster: &str,
    service: &str,
    desired_count: Option<i32>,
    force_new_deployment: bool,
) -> Result<Value, CallError> {
    let out = client
        .update_service()
        .cluster(cluster)
        .service(service)
        .set_desired_count(desired_count)
        .set_force_new_deployment(force_new_deployment.then_some(true))
        .send()
        .await?;
    let mut summary = json!({"cluster": cluster, "service": service});
    if let (Some(svc), Some(map)) = (out.service(), summary.as_object_mut()) {
        map.extend(service_fields(svc));
        map.insert("force_new_deployment".into(), force_new_deployment.into());
    }
    Ok(summary)
}

/// `StopTask` with an optional reason.
pub(crate) async fn stop_task(
    client: &Client,
    cluster: &str,
    task: &str,
    reason: Option<&str>,
) -> Result<Value, CallError> {
    let out = client
        .stop_task()
        .cluster(cluster)
        .task(task)
        .set_reason(reason.map(str::to_owned))
        .send()
        .await?;
    let mut summary = json!({"cluster": cluster, "task": task});
    if let (Some(t), Some(map)) = (out.task(), summary.as_object_mut()) {
        map.extend(task_fields(t));
    }
    Ok(summary)
}

fn service_fields(svc: &Service) -> StateMap {
    let mut state = StateMap::new();
    state.insert("desired_count".into(), svc.desired_count().into());
    state.insert("running_count".into(), svc.running_count().into());
    state.insert("pending_count".into(), svc.pending_count().into());
    state.insert("status".into(), svc.status().into());
    state
}

fn task_fields(task: &Task) -> StateMap {
    let mut state = StateMap::new();
    state.insert("last_status".into(), task.last_status().into());
    state.insert("desired_status".into(), task.desired_status().into());
    state
}

fn failure_text(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("{} ({})", f.reason().unwrap_or("unknown"), f.arn().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The service's state; not found when ECS reports it missing.
pub(crate) async fn service_state(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<StateMap, CallError> {
    let out = client.describe_services().cluster(cluster).services(service).send().await?;
    let svc = out.services().iter().find(|s| s.service_name() == Some(service));
    match svc {
        Some(svc) => Ok(service_fields(svc)),
        None => Err(CallError::NotFound(format!(
            "ECS service `{service}` not found in cluster `{cluster}`: {}",
            failure_text(out.failures())
        ))),
    }
}

/// The task's state; not found when ECS reports it missing.
pub(crate) async fn task_state(
    client: &Client,
    cluster: &str,
    task: &str,
) -> Result<StateMap, CallError> {
    let out = client.describe_tasks().cluster(cluster).tasks(task).send().await?;
    let found = out.tasks().iter().find(|t| {
        t.task_arn().is_some_and(|arn| arn == task || arn.ends_with(&format!("/{task}")))
    });
    match found {
        Some(t) => Ok(task_fields(t)),
        None => Err(CallError::NotFound(format!(
            "ECS task `{task}` not found in cluster `{cluster}`{}",
            match failure_text(out.failures()) {
                f if f.is_empty() => String::new(),
                f => format!(": {f}"),
            }
        ))),
    }
}

/// `service-active`: the service exists and its status is `ACTIVE`.
pub(crate) async fn service_active(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<(bool, String), CallError> {
    match service_state(client, cluster, service).await {
        Ok(state) => {
            let status = state.get("status").and_then(Value::as_str).unwrap_or("unknown");
            Ok((status == "ACTIVE", format!("service `{service}` is {status}")))
        }
        Err(e) if e.is_not_found() => {
            Ok((false, format!("service `{service}` not found in cluster `{cluster}`")))
        }
        Err(e) => Err(e),
    }
}

/// `task-running`: the task exists and has not stopped (or started stopping) yet.
pub(crate) async fn task_running(
    client: &Client,
    cluster: &str,
    task: &str,
) -> Result<(bool, String), CallError> {
    match task_state(client, cluster, task).await {
        Ok(state) => {
            let last = state.get("last_status").and_then(Value::as_str).unwrap_or("unknown");
            let desired = state.get("desired_status").and_then(Value::as_str).unwrap_or("unknown");
            let stopping =
                matches!(last, "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" | "STOPPED")
                    || desired == "STOPPED";
            Ok((!stopping, format!("task `{task}` is {last} (desired {desired})")))
        }
        Err(e) if e.is_not_found() => {
            Ok((false, format!("task `{task}` not found in cluster `{cluster}`")))
        }
        Err(e) => Err(e),
    }
}
