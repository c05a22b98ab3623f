//! The S3 shipper against moto's S3 (cargo feature `s3`): key layout, body and content
//! type, a missing bucket retried after it is created, and the worker shipping in the
//! background. moto comes from `agent_safe_testkit::moto` (`AGENT_SAFE_MOTO_ENDPOINT` from
//! `cargo xtask ci`, else a server started from `target/moto-venv`; without either the tests
//! are skipped loudly).

#![cfg(test)]

use std::sync::Arc;
use std::time::Duration;

use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability};
use agent_safe_audit_ship::{
    ReplayOptions, RetryPolicy, S3Options, S3Shipper, Shipper, ShippingOptions, ShippingWorker,
    replay_async,
};
use agent_safe_testkit::moto::moto;
use aws_config::SdkConfig;

fn client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build(),
    )
}

fn unique_bucket(name: &str) -> String {
    format!("agent-safe-{name}-{}", agent_safe_core::random::hex(12))
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: AuditLog,
}

fn fixture(n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(
        &dir.path().join("audit.jsonl"),
        AuditOptions { durability: Durability::Buffered },
    )
    .unwrap();
    for i in 0..n {
        log.append(&sample_event(i)).unwrap();
    }
    Fixture { _dir: dir, log }
}

fn shipper(endpoint: &str, sdk: SdkConfig, bucket: &str) -> Arc<S3Shipper> {
    let options =
        S3Options { endpoint_url: Some(endpoint.to_owned()), region: Some("us-east-1".into()) };
    Arc::new(S3Shipper::with_sdk_config(bucket, "audit-logs/", options, sdk))
}

/// `(key, body, content type)` of every object in `bucket`, by key.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, String, String)> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_owned();
        let got = s3.get_object().bucket(bucket).key(&key).send().await.unwrap();
        let content_type = got.content_type().unwrap_or("").to_owned();
        let body = got.body.collect().await.unwrap().into_bytes();
        out.push((key, String::from_utf8(body.to_vec()).unwrap(), content_type));
    }
    out.sort();
    out
}

fn expected(f: &Fixture) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(f.log.path()).unwrap();
    let mut out: Vec<(String, String, String)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let id = sample_event(i).event_id;
            (
                format!("audit-logs/2026-11-26/{id}.json"),
                line.to_owned(),
                "application/json".to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn replay_puts_one_object_per_entry_and_resumes_after_the_bucket_appears() {
    let Some(moto) = moto("replay_puts_one_object_per_entry").await.unwrap() else { return };
    let (endpoint, sdk) = (moto.endpoint(), moto.sdk_config().await);
    let s3 = client(&sdk);
    let bucket = unique_bucket("replay");
    let f = fixture(6);
    let shipper = shipper(endpoint, sdk.clone(), &bucket);
    assert_eq!(shipper.destination(), format!("s3://{bucket}/audit-logs/ at {endpoint}"));
    let options = ReplayOptions {
        retry: RetryPolicy { attempts: Some(1), ..RetryPolicy::REPLAY },
        ..ReplayOptions::default()
    };
    // No bucket yet: the first entry fails, nothing is recorded.
    let report = replay_async(f.log.path(), shipper.clone(), &options).await.unwrap();
    assert_eq!(report.shipped, 0);
    let err = report.error.unwrap().to_string();
    assert!(err.contains("via s3 failed: PutObject to bucket"), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let report = replay_async(f.log.path(), shipper.clone(), &options).await.unwrap();
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.shipped, 6);
    assert_eq!(objects(&s3, &bucket).await, expected(&f));
    // Resumes from the cursor: nothing again.
    let again = replay_async(f.log.path(), shipper, &options).await.unwrap();
    assert_eq!(again.shipped, 0);
}

#[tokio::test]
async fn the_worker_ships_to_s3_in_the_background() {
    let Some(moto) = moto("the_worker_ships_to_s3_in_the_background").await.unwrap() else {
        return;
    };
    let (endpoint, sdk) = (moto.endpoint(), moto.sdk_config().await);
    let s3 = client(&sdk);
    let bucket = unique_bucket("worker");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let f = fixture(3);
    let worker = ShippingWorker::start(
        f.log.path(),
        vec![shipper(endpoint, sdk, &bucket)],
        ShippingOptions::default(),
    )
    .unwrap();
    for i in 3..10 {
        f.log.append(&sample_event(i)).unwrap();
        worker.notify();
    }
    let flushed = tokio::task::spawn_blocking(move || worker.shutdown(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(flushed);
    assert_eq!(objects(&s3, &bucket).await, expected(&f));
}
