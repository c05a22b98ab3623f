//! The S3 shipper against moto's S3 (cargo feature `s3`): key layout, body and content
//! type, a missing bucket retried after it is created, and the worker shipping in the
//! background. The server comes from `AGENT_SAFE_MOTO_ENDPOINT` (set by `cargo xtask ci`)
//! or is started from `target/moto-venv`; without either the tests are skipped loudly.
//! Buckets get unique names and moto is never reset, so other users of the server are not
//! disturbed.

#![cfg(test)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use agent_safe_audit::bench::sample_event;
use agent_safe_audit::{AuditLog, AuditOptions, Durability};
use agent_safe_audit_ship::{
    ReplayOptions, RetryPolicy, S3Options, S3Shipper, Shipper, ShippingOptions, ShippingWorker,
    replay_async,
};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

const ENV_ENDPOINT: &str = "AGENT_SAFE_MOTO_ENDPOINT";
static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// moto's endpoint, or `None` after a loud message.
fn moto(test: &str) -> Option<String> {
    match SERVER.get_or_init(find_or_start) {
        Ok(endpoint) => Some(endpoint.clone()),
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED {test}: no moto server ({why}). Run `cargo xtask ci`, or create the \
                 venv with `python3 -m venv target/moto-venv && target/moto-venv/bin/pip install \
                 'moto[server]==5.2.5'`, or set {ENV_ENDPOINT}. ***\n"
            );
            None
        }
    }
}

fn find_or_start() -> Result<String, String> {
    if let Ok(endpoint) = std::env::var(ENV_ENDPOINT) {
        return Ok(endpoint);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let bin = target.join("moto-venv/bin/moto_server");
    if !bin.is_file() {
        return Err(format!("{ENV_ENDPOINT} is not set and `{}` does not exist", bin.display()));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The shell kills moto when this process exits (its stdin, our pipe, closes).
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" 2>&1 & pid=$!; cat >/dev/null; kill -9 "$pid""#)
        .arg(&bin)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Running on")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| format!("moto_server did not start on port {port}"))?;
    std::mem::forget(child);
    Ok(format!("http://127.0.0.1:{port}"))
}

async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTESTING",
            "testing",
            None,
            None,
            "tests",
        )))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await
}

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
    let Some(endpoint) = moto("replay_puts_one_object_per_entry") else { return };
    let sdk = sdk(&endpoint).await;
    let s3 = client(&sdk);
    let bucket = unique_bucket("replay");
    let f = fixture(6);
    let shipper = shipper(&endpoint, sdk.clone(), &bucket);
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
    let Some(endpoint) = moto("the_worker_ships_to_s3_in_the_background") else { return };
    let sdk = sdk(&endpoint).await;
    let s3 = client(&sdk);
    let bucket = unique_bucket("worker");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let f = fixture(3);
    let worker = ShippingWorker::start(
        f.log.path(),
        vec![shipper(&endpoint, sdk, &bucket)],
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
