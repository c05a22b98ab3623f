//! EC2 instance actions against moto.

use agent_safe_core::ExecutionStatus;
use aws_sdk_ec2::types::{AttributeBooleanValue, InstanceType};
use serde_json::{Value, json};

use crate::support::{Moto, REGION, assert_failure, assert_success, moto, output, precheck};

async fn instance(m: &Moto) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&m.sdk);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_owned()
}

fn params(id: &str) -> Value {
    json!({"instance_id": id, "region": REGION})
}

#[tokio::test]
async fn stop_then_rollback_starts_it_again() {
    let Some(m) = moto("ec2 stop").await else { return };
    let id = instance(&m).await;
    let run = m.run("ec2-stop-instance", params(&id)).await;
    assert_success(&run);
    assert_eq!(
        run.before,
        *json!({"state": "running", "instance_type": "t3.micro"}).as_object().unwrap()
    );
    assert_eq!(output(&run.outcome)["previous_state"], "running");
    assert_eq!(run.after["state"], "stopped");

    let (action, _, rollback) = m.rollback("ec2-stop-instance", params(&id), &run).await;
    assert_eq!(action, "ec2-start-instance");
    assert_success(&rollback);
    assert_eq!(rollback.before["state"], "stopped");
    assert_eq!(rollback.after["state"], "running");
}

#[tokio::test]
async fn start_then_rollback_stops_it_again() {
    let Some(m) = moto("ec2 start").await else { return };
    let id = instance(&m).await;
    // A running instance fails the `instance-stopped` precheck.
    let checks = m.prechecks("ec2-start-instance", params(&id)).await;
    let check = precheck(&checks, "instance-stopped");
    assert!(!check.passed && !check.advisory, "{check:?}");
    assert_eq!(check.message, format!("instance `{id}` is running"));

    assert_eq!(m.execute("ec2-stop-instance", params(&id)).await.status, ExecutionStatus::Success);
    let run = m.run("ec2-start-instance", params(&id)).await;
    assert_success(&run);
    assert_eq!(run.before["state"], "stopped");
    assert_eq!(output(&run.outcome)["current_state"], "pending");
    assert_eq!(run.after["state"], "running");

    let (action, _, rollback) = m.rollback("ec2-start-instance", params(&id), &run).await;
    assert_eq!(action, "ec2-stop-instance");
    assert_success(&rollback);
    assert_eq!(rollback.after["state"], "stopped");
}

#[tokio::test]
async fn reboot_keeps_it_running() {
    let Some(m) = moto("ec2 reboot").await else { return };
    let id = instance(&m).await;
    let run = m.run("ec2-reboot-instance", params(&id)).await;
    assert_success(&run);
    assert_eq!(output(&run.outcome), json!({"instance_id": id, "rebooting": true}));
    assert_eq!((&run.before["state"], &run.after["state"]), (&json!("running"), &json!("running")));
}

#[tokio::test]
async fn terminate_respects_termination_protection() {
    let Some(m) = moto("ec2 terminate").await else { return };
    let id = instance(&m).await;
    let ec2 = aws_sdk_ec2::Client::new(&m.sdk);
    ec2.modify_instance_attribute()
        .instance_id(&id)
        .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .unwrap();
    let checks = m.prechecks("ec2-terminate-instance", params(&id)).await;
    assert!(precheck(&checks, "instance-exists").passed, "{checks:?}");
    let protection = precheck(&checks, "termination-protection-off");
    assert!(!protection.passed, "{protection:?}");
    assert_eq!(protection.message, format!("termination protection is on for instance `{id}`"));

    ec2.modify_instance_attribute()
        .instance_id(&id)
        .disable_api_termination(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    let run = m.run("ec2-terminate-instance", params(&id)).await;
    assert_success(&run);
    assert_eq!(run.after["state"], "terminated");
    let checks = m.prechecks("ec2-terminate-instance", params(&id)).await;
    assert!(!precheck(&checks, "instance-exists").passed, "{checks:?}");
}

#[tokio::test]
async fn unknown_instance_is_a_failure_with_the_aws_code() {
    let Some(m) = moto("ec2 not found").await else { return };
    let p = params("i-0123456789abcdef0");
    let run = m.run("ec2-stop-instance", p.clone()).await;
    assert_failure(&run.outcome, "InvalidInstanceID.NotFound");
    assert!(run.before.is_empty() && run.after.is_empty(), "{run:?}");
    let err = m.state("ec2-stop-instance", p.clone()).await.unwrap_err();
    assert!(err.contains("InvalidInstanceID.NotFound"), "{err}");
    let check = &run.prechecks[0];
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "instance `i-0123456789abcdef0` does not exist")
    );
    let checks = m.prechecks("ec2-terminate-instance", p).await;
    let exists = precheck(&checks, "instance-exists");
    assert_eq!(
        (exists.passed, exists.message.as_str()),
        (false, "instance `i-0123456789abcdef0` does not exist")
    );
}
