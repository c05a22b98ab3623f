//! S3 actions against moto (path-style addressing, as for any custom endpoint).

use agent_safe_core::ExecutionStatus;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};

use crate::support::{Moto, REGION, assert_failure, assert_success, moto, output, precheck};

const BUCKET: &str = "reports-bucket";

async fn bucket(m: &Moto) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&m.sdk).force_path_style(true).build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("2026/report.txt")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    s3
}

fn policy(effect: &str, action: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "t", "Effect": effect, "Principal": "*",
           "Action": action, "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]})
    .to_string()
}

fn put(policy: &str) -> Value {
    json!({"bucket": BUCKET, "policy": policy, "region": REGION})
}

#[tokio::test]
async fn delete_object() {
    let Some(m) = moto("s3 delete").await else { return };
    bucket(&m).await;
    let p = json!({"bucket": BUCKET, "key": "2026/report.txt", "region": REGION});
    let run = m.run("s3-delete-object", p.clone()).await;
    assert_success(&run);
    assert_eq!(
        run.before,
        *json!({"content_length": 5, "content_type": "text/plain", "version_id": null})
            .as_object()
            .unwrap()
    );
    assert_eq!(output(&run.outcome)["key"], "2026/report.txt");
    assert!(run.after.is_empty(), "the object is gone: {run:?}");
    let err = m.state("s3-delete-object", p.clone()).await.unwrap_err();
    assert!(err.starts_with("AWS API error: "), "{err}");
    let checks = m.prechecks("s3-delete-object", p).await;
    assert!(!precheck(&checks, "object-exists").passed, "{checks:?}");
}

#[tokio::test]
async fn put_bucket_policy_then_rollback_restores_the_old_one() {
    let Some(m) = moto("s3 policy").await else { return };
    bucket(&m).await;
    // A bucket without a policy reports `policy: null`.
    let first = policy("Deny", "s3:PutObject");
    let run = m.run("s3-put-bucket-policy", put(&first)).await;
    assert_success(&run);
    assert_eq!(run.before, *json!({"policy": null}).as_object().unwrap());
    assert_eq!(run.after["policy"], first.as_str());

    let second = policy("Deny", "s3:GetObject");
    let run = m.run("s3-put-bucket-policy", put(&second)).await;
    assert_success(&run);
    assert_eq!(run.after["policy"], second.as_str());
    let (_, params, rollback) = m.rollback("s3-put-bucket-policy", put(&second), &run).await;
    assert_eq!(params, put(&first));
    assert_success(&rollback);
    assert_eq!(rollback.after["policy"], first.as_str());
}

#[tokio::test]
async fn a_malformed_policy_is_refused_before_any_call() {
    let Some(m) = moto("s3 bad policy").await else { return };
    bucket(&m).await;
    // moto would store it (it does not validate); the executor never sends it.
    let p = put(r#"{"Version": "2012-10-17"}"#);
    let run = m.run("s3-put-bucket-policy", p).await;
    assert_eq!(run.outcome.status, ExecutionStatus::Error, "{run:?}");
    assert_eq!(run.outcome.error.as_deref(), Some("the bucket policy has no `Statement`"));
    let check = precheck(&run.prechecks, "policy-well-formed");
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "the bucket policy has no `Statement`")
    );
    let state = m.state("s3-put-bucket-policy", put("{}")).await.unwrap();
    assert_eq!(state["policy"], Value::Null);
}

#[tokio::test]
async fn access_denied_by_a_bucket_policy() {
    let Some(m) = moto("s3 access denied").await else { return };
    let s3 = bucket(&m).await;
    s3.put_bucket_policy()
        .bucket(BUCKET)
        .policy(policy("Deny", "s3:DeleteObject"))
        .send()
        .await
        .unwrap();
    let p = json!({"bucket": BUCKET, "key": "2026/report.txt", "region": REGION});
    let outcome = m.execute("s3-delete-object", p).await;
    assert_failure(&outcome, "403");
}

#[tokio::test]
async fn unknown_bucket() {
    let Some(m) = moto("s3 not found").await else { return };
    let p = put(&policy("Deny", "s3:GetObject"));
    let run = m.run("s3-put-bucket-policy", p).await;
    assert_failure(&run.outcome, "NoSuchBucket");
    let check = precheck(&run.prechecks, "bucket-exists");
    assert_eq!(
        (check.passed, check.message.as_str()),
        (false, "bucket `reports-bucket` does not exist")
    );
    let p = json!({"bucket": "no-such-bucket", "key": "k", "region": REGION});
    assert_failure(&m.execute("s3-delete-object", p).await, "NoSuchBucket");
}
