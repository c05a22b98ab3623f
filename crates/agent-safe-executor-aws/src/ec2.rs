//! EC2: stop, start, reboot and terminate one instance; its state (`state`,
//! `instance_type`); prechecks on the instance state and termination protection.

use agent_safe_core::StateMap;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{InstanceAttributeName, InstanceStateChange};
use serde_json::{Value, json};

use crate::error::CallError;
use crate::request::Ec2Op;

/// Runs `op` on `id`; the output names the state transition.
pub(crate) async fn execute(client: &Client, op: Ec2Op, id: &str) -> Result<Value, CallError> {
    let changes: Vec<InstanceStateChange> = match op {
        Ec2Op::Stop => client
            .stop_instances()
            .instance_ids(id)
            .send()
            .await?
            .stopping_instances
            .unwrap_or_default(),
        Ec2Op::Start => client
            .start_instances()
            .instance_ids(id)
            .send()
            .await?
            .starting_instances
            .unwrap_or_default(),
        Ec2Op::Terminate => client
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await?
            .terminating_instances
            .unwrap_or_default(),
        Ec2Op::Reboot => {
            client.reboot_instances().instance_ids(id).send().await?;
            return Ok(json!({"instance_id": id, "rebooting": true}));
        }
    };
    let change = changes.iter().find(|c| c.instance_id() == Some(id)).or(changes.first());
    let name = |s: Option<&aws_sdk_ec2::types::InstanceState>| {
        s.and_then(|s| s.name()).map(|n| n.as_str().to_owned())
    };
    Ok(json!({
        "instance_id": id,
        "previous_state": change.and_then(|c| name(c.previous_state())),
        "current_state": change.and_then(|c| name(c.current_state())),
    }))
}

/// `state` (instance state name) and `instance_type`.
pub(crate) async fn state(client: &Client, id: &str) -> Result<StateMap, CallError> {
    let out = client.describe_instances().instance_ids(id).send().await?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(|| CallError::NotFound(format!("EC2 instance `{id}` not found")))?;
    let mut state = StateMap::new();
    state
        .insert("state".into(), instance.state().and_then(|s| s.name()).map(|n| n.as_str()).into());
    state.insert("instance_type".into(), instance.instance_type().map(|t| t.as_str()).into());
    Ok(state)
}

/// The prechecks: `instance-running`, `instance-stopped`, `instance-exists`,
/// `termination-protection-off`.
pub(crate) async fn precheck(
    client: &Client,
    id: &str,
    name: &str,
) -> Option<Result<(bool, String), CallError>> {
    let current = || async move {
        match state(client, id).await {
            Ok(s) => {
                Ok(Some(s.get("state").and_then(Value::as_str).unwrap_or("unknown").to_owned()))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    };
    let judge = |current: Result<Option<String>, CallError>, ok: fn(&str) -> bool| {
        current.map(|c| match c {
            Some(c) => (ok(&c), format!("instance `{id}` is {c}")),
            None => (false, format!("instance `{id}` does not exist")),
        })
    };
    Some(match name {
        "instance-running" => judge(current().await, |c| c == "running"),
        "instance-stopped" => judge(current().await, |c| c == "stopped"),
        "instance-exists" => {
            judge(current().await, |c| !matches!(c, "terminated" | "shutting-down"))
        }
        "termination-protection-off" => termination_protection(client, id).await,
        _ => return None,
    })
}

async fn termination_protection(client: &Client, id: &str) -> Result<(bool, String), CallError> {
    let out = client
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(InstanceAttributeName::DisableApiTermination)
        .send()
        .await?;
    let on = out.disable_api_termination().and_then(|v| v.value()).unwrap_or(false);
    let message = if on {
        format!("termination protection is on for instance `{id}`")
    } else {
        format!("termination protection is off for instance `{id}`")
    };
    Ok((!on, message))
}
