//! A soak test bounded in time and count: 50 concurrent clients on loopback (2,000 requests by
//! default; `AGENT_SAFE_SOAK_SECS=30` runs for 30 seconds instead), then the audit log verifies
//! and holds exactly one decision event per answered request, and no request was lost.

use std::time::Duration;

use agent_safe_server::bench::{LoadPlan, run};

use crate::support::{Env, restart};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_fifty_clients() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let seconds: Option<u64> =
        std::env::var("AGENT_SAFE_SOAK_SECS").ok().and_then(|s| s.parse().ok());
    let plan = LoadPlan {
        connections: 50,
        total: if seconds.is_some() { u64::MAX } else { 2_000 },
        duration: seconds.map(Duration::from_secs),
        path: "/v1/check".to_owned(),
        body: restart("dev/test-app").to_string(),
        token: Some(token),
    };
    let report = run(env.addr, &plan).await;
    assert_eq!(report.failed_connections, 0, "{report:?}");
    assert_eq!(report.statuses.keys().copied().collect::<Vec<_>>(), [200], "{report:?}");
    if seconds.is_none() {
        assert_eq!(report.answered, 2_000, "a request was lost: {report:?}");
    }
    let verify = agent_safe_audit::verify(&env.path("audit.jsonl")).unwrap();
    assert!(verify.errors.is_empty(), "{:?}", verify.errors);
    assert_eq!(env.decision_events().len() as u64, report.answered);
    eprintln!(
        "soak: {} answers in {:?} ({:.0}/s), p50 {:?}, p99 {:?}",
        report.answered,
        report.elapsed,
        report.per_second(),
        report.p50,
        report.p99
    );
}
