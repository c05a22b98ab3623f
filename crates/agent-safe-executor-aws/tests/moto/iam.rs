//! IAM role policy actions against moto (customer-managed policies: moto does not load the
//! AWS-managed ones by default).

use serde_json::{Value, json};

use crate::support::{Moto, REGION, assert_failure, assert_success, moto, precheck};

const ROLE: &str = "deployer";

/// A role and a policy; the policy's ARN.
async fn role_and_policy(m: &Moto) -> String {
    let iam = aws_sdk_iam::Client::new(&m.sdk);
    iam.create_role()
        .role_name(ROLE)
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let out = iam
        .create_policy()
        .policy_name("read-reports")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                   "Action": "s3:GetObject", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    out.policy().unwrap().arn().unwrap().to_owned()
}

fn params(policy_arn: &str) -> Value {
    json!({"role_name": ROLE, "policy_arn": policy_arn, "region": REGION})
}

#[tokio::test]
async fn attach_then_rollback_detaches() {
    let Some(m) = moto("iam attach").await else { return };
    let arn = role_and_policy(&m).await;
    let run = m.run("iam-attach-role-policy", params(&arn)).await;
    assert_success(&run);
    assert_eq!(run.before, *json!({"attached_policies": []}).as_object().unwrap());
    assert_eq!(run.after, *json!({"attached_policies": [arn]}).as_object().unwrap());
    let checks = m.prechecks("iam-attach-role-policy", params(&arn)).await;
    let check = precheck(&checks, "policy-exists");
    assert!(!check.passed && check.message.contains("already attached"), "{check:?}");

    let (action, rollback_params, rollback) =
        m.rollback("iam-attach-role-policy", params(&arn), &run).await;
    assert_eq!((action.as_str(), &rollback_params), ("iam-detach-role-policy", &params(&arn)));
    assert_success(&rollback);
    assert_eq!(rollback.after, *json!({"attached_policies": []}).as_object().unwrap());

    let checks = m.prechecks("iam-detach-role-policy", params(&arn)).await;
    assert!(!precheck(&checks, "policy-attached").passed, "{checks:?}");
}

#[tokio::test]
async fn detach_then_rollback_attaches_again() {
    let Some(m) = moto("iam detach").await else { return };
    let arn = role_and_policy(&m).await;
    assert_success(&m.run("iam-attach-role-policy", params(&arn)).await);
    let run = m.run("iam-detach-role-policy", params(&arn)).await;
    assert_success(&run);
    assert_eq!(run.before["attached_policies"], json!([arn]));
    assert_eq!(run.after["attached_policies"], json!([]));
    let (action, _, rollback) = m.rollback("iam-detach-role-policy", params(&arn), &run).await;
    assert_eq!(action, "iam-attach-role-policy");
    assert_success(&rollback);
    assert_eq!(rollback.after["attached_policies"], json!([arn]));
}

#[tokio::test]
async fn unknown_role_and_policy() {
    let Some(m) = moto("iam not found").await else { return };
    let arn = role_and_policy(&m).await;
    let p = json!({"role_name": "nobody", "policy_arn": arn, "region": REGION});
    let run = m.run("iam-attach-role-policy", p).await;
    assert_failure(&run.outcome, "NoSuchEntity");
    let check = precheck(&run.prechecks, "role-exists");
    assert_eq!((check.passed, check.message.as_str()), (false, "role `nobody` does not exist"));

    let missing = "arn:aws:iam::123456789012:policy/missing";
    let run = m.run("iam-attach-role-policy", params(missing)).await;
    assert_failure(&run.outcome, "NoSuchEntity");
    let check = precheck(&run.prechecks, "policy-exists");
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "policy `arn:aws:iam::123456789012:policy/missing` does not exist")
    );
}
