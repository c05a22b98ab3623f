//! Audit shipping through the SDK: decisions never wait for a shipper (a hanging or dead
//! webhook on loopback), events arrive after recovery, configuration from the builder and
//! from `agent-safe.yaml`, and a restart that ships nothing twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_safe_core::{BoxFuture, DecisionResult, ManualClock};
use agent_safe_testkit::{Reply, TestServer};
use time::macros::datetime;
use tokio::sync::Semaphore;

use super::{ShipperConfig, Sleeper};
use crate::{AgentSafe, BuildError, Builder, CheckRequest, DurabilityMode};

const WAIT: Duration = Duration::from_secs(60);

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog")
}

fn builder(dir: &Path) -> Builder {
    AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .inventory(catalog().join("inventory.yaml"))
        .audit_log(dir.join("audit.jsonl"))
        .durability(DurabilityMode::Buffered)
        .clock(Arc::new(ManualClock::new(datetime!(2026-02-24 12:00 UTC))))
}

fn restart_dev() -> CheckRequest {
    CheckRequest::new("restart-deployment")
        .target("dev/test-app")
        .caller("deploy-bot")
        .param("namespace", "dev")
        .param("deployment", "test-app")
}

fn webhook(server: &TestServer, timeout: f64) -> ShipperConfig {
    ShipperConfig {
        webhook_url: Some(server.url()),
        webhook_timeout: Some(timeout),
        ..ShipperConfig::default()
    }
}

/// Waits out the backoff only when the test opens it.
#[derive(Debug)]
struct Gate {
    permits: Arc<Semaphore>,
    waits: Mutex<usize>,
}

impl Sleeper for Gate {
    fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
        *self.waits.lock().unwrap() += 1;
        let permits = self.permits.clone();
        Box::pin(async move {
            if let Ok(p) = permits.acquire().await {
                p.forget();
            }
        })
    }
}

/// The median of `n` checks, in microseconds.
fn median_check_us(safe: &AgentSafe, n: usize) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(safe.check(&restart_dev()).unwrap().result, DecisionResult::Allow);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn audit_ids(dir: &Path) -> Vec<String> {
    agent_safe_audit::read_events(&dir.join("audit.jsonl"))
        .unwrap()
        .into_iter()
        .map(|e| e.event.event_id.as_str().to_owned())
        .collect()
}

#[test]
fn a_hanging_webhook_does_not_slow_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let baseline =
        builder(dir.path()).audit_log(dir.path().join("baseline.jsonl")).build().unwrap();
    let plain_us = median_check_us(&baseline, 200);
    // The first POST never gets an answer (until released); the timeout is an hour.
    let server =
        TestServer::start(|n, _| if n == 0 { Reply::Hold } else { Reply::Status(200) }).unwrap();
    let safe = builder(dir.path()).audit_shippers(webhook(&server, 3600.0)).build().unwrap();
    safe.check(&restart_dev()).unwrap();
    assert!(server.wait_holding(1, WAIT));
    let hanging_us = median_check_us(&safe, 200);
    // 201 decisions returned while the first shipment was still in flight.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(audit_ids(dir.path()).len(), 201);
    assert_eq!(safe.audit_shipping().unwrap().lag(), Some(201));
    eprintln!(
        "median check: {plain_us:.1} µs without shippers, {hanging_us:.1} µs with a hanging webhook"
    );
    server.release();
    assert!(safe.flush_audit_shipping(WAIT));
    let got: Vec<String> = server.requests().iter().map(|r| r.event_id().unwrap()).collect();
    assert_eq!(got, audit_ids(dir.path()));
    assert_eq!(safe.audit_shipping().unwrap().lag(), Some(0));
}

#[test]
fn events_decided_while_the_webhook_is_down_arrive_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::ok().unwrap();
    server.stop();
    let gate = Arc::new(Gate { permits: Arc::new(Semaphore::new(0)), waits: Mutex::new(0) });
    let safe = builder(dir.path())
        .audit_shippers(webhook(&server, 10.0))
        .audit_shipping_sleeper(gate.clone())
        .build()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(safe.check(&restart_dev()).unwrap().result, DecisionResult::Allow);
    }
    assert!(!safe.flush_audit_shipping(Duration::from_millis(1)));
    // Wait (bounded, without sleeping) until the worker has actually tried the dead webhook;
    // restarting the server before that made this test depend on thread scheduling.
    let deadline = std::time::Instant::now() + WAIT;
    while safe.audit_shipping().unwrap().status()[0].failures == 0 {
        assert!(std::time::Instant::now() < deadline, "the worker never tried the dead webhook");
        std::thread::yield_now();
    }
    server.restart().unwrap();
    gate.permits.add_permits(Semaphore::MAX_PERMITS);
    assert!(safe.flush_audit_shipping(WAIT));
    let got: Vec<String> = server.requests().iter().map(|r| r.event_id().unwrap()).collect();
    assert_eq!(got, audit_ids(dir.path()));
    let status = &safe.audit_shipping().unwrap().status()[0];
    assert!(status.failures >= 1, "{status:?}");
    assert!(status.last_error.as_deref().unwrap().contains("cannot connect"), "{status:?}");
    assert!(*gate.waits.lock().unwrap() >= 1);
}

#[test]
fn shippers_need_an_audit_log() {
    let err = AgentSafe::builder()
        .registry(catalog().join("actions"))
        .policies(catalog().join("policies"))
        .audit_shippers(ShipperConfig {
            filesystem_path: Some("copy.jsonl".into()),
            ..ShipperConfig::default()
        })
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Shipping(super::ShippingError::WithoutAuditLog)), "{err}");
    assert_eq!(err.to_string(), "audit shippers require an audit log");
    // An empty configuration starts nothing.
    let dir = tempfile::tempdir().unwrap();
    let safe = builder(dir.path()).audit_shippers(ShipperConfig::default()).build().unwrap();
    assert!(safe.audit_shipping().is_none());
    assert!(safe.flush_audit_shipping(Duration::ZERO));
}

#[test]
fn audit_shipping_from_the_config_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent-safe.yaml");
    std::fs::write(
        &config,
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\naudit_log: audit.jsonl\n\
             audit_durability: buffered\n\
             audit_shipping:\n  filesystem_path: copy.jsonl\n  retry_max_backoff: 5\n",
            catalog().join("actions").display(),
            catalog().join("policies").display(),
            catalog().join("inventory.yaml").display(),
        ),
    )
    .unwrap();
    let start = || AgentSafe::builder().config_file(&config).unwrap().build().unwrap();
    let safe = start();
    for _ in 0..10 {
        safe.check(&restart_dev()).unwrap();
    }
    assert!(safe.flush_audit_shipping(WAIT));
    // The path is relative to the config file.
    let copy = dir.path().join("copy.jsonl");
    let log = dir.path().join("audit.jsonl");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&log).unwrap());
    // Stop without flushing, decide more, start again: the copy is complete, nothing twice.
    for _ in 0..5 {
        safe.check(&restart_dev()).unwrap();
    }
    drop(safe);
    let safe = start();
    safe.check(&restart_dev()).unwrap();
    assert!(safe.flush_audit_shipping(WAIT));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&log).unwrap());
    assert_eq!(audit_ids(dir.path()).len(), 16);

    std::fs::write(&config, "audit_log: a.jsonl\naudit_shipping:\n  webhok_url: http://x\n")
        .unwrap();
    let err = AgentSafe::builder().config_file(&config).unwrap_err().to_string();
    assert!(err.contains("unknown field `webhok_url`"), "{err}");
    std::fs::write(
        &config,
        format!(
            "registry: {}\npolicies: {}\naudit_log: a.jsonl\naudit_shipping:\n  webhook_url: ftp://x\n",
            catalog().join("actions").display(),
            catalog().join("policies").display(),
        ),
    )
    .unwrap();
    let err = AgentSafe::builder().config_file(&config).unwrap().build().unwrap_err().to_string();
    assert_eq!(err, "audit_shipping: webhook_url: `ftp://x` is not an http:// or https:// URL");
}
