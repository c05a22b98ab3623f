//! Hot reload: a valid configuration is swapped in whole, an invalid one leaves the old one
//! serving (and is reported on /readyz), and requests in flight during reloads all succeed, each
//! decided by exactly one configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agent_safe_server::ServerEvent;
use reqwest::{Method, StatusCode};

use crate::support::{Env, POLICIES_A, POLICIES_B, restart};

fn write_policies(env: &Env, text: &str) {
    std::fs::write(env.path("policies/main.yaml"), text).unwrap();
}

#[tokio::test]
async fn valid_reload_swaps_and_invalid_reload_keeps_the_old_config() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let rev_a = env.server.current().revision.clone();

    write_policies(&env, POLICIES_B);
    let rev_b = tokio::task::spawn_blocking({
        let s = env.server.clone();
        move || s.reload()
    })
    .await
    .unwrap()
    .unwrap();
    assert_ne!(rev_a, rev_b);
    let (_, revision, d) =
        env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app"))).await;
    assert_eq!(
        (d["result"].as_str(), d["policy_matched"].as_str()),
        (Some("deny"), Some("deny-dev-b"))
    );
    assert_eq!(revision.as_deref(), Some(rev_b.as_str()));

    // A broken policy file: the reload fails, B keeps serving, /readyz says why.
    write_policies(&env, "rules:\n  - name: broken\n    decision: maybe\n");
    let err = tokio::task::spawn_blocking({
        let s = env.server.clone();
        move || s.reload()
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("main.yaml"), "{err}");
    let (_, revision, d) =
        env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app"))).await;
    assert_eq!(d["policy_matched"], "deny-dev-b");
    assert_eq!(revision.as_deref(), Some(rev_b.as_str()));
    let (status, ready) = env.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["policy_revision"], rev_b.as_str());
    assert_eq!(ready["last_reload"]["ok"], false);
    assert!(ready["last_reload"]["error"].as_str().unwrap().contains("main.yaml"), "{ready}");
    // Over HTTP, the same failure is a 422 for the admin.
    let admin = env.token("ops", &["agent-safe-admin"]);
    let (status, body) = env.post("/v1/admin/reload", Some(&admin), serde_json::json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reload_failed"))
    );
    let events = env.events.lock().unwrap().clone();
    assert!(events.contains(&ServerEvent::Reloaded { revision: rev_b.clone() }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, ServerEvent::ReloadFailed { .. })), "{events:?}");
    let metrics =
        env.client.get(format!("{}/metrics", env.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("agent_safe_reloads_total 1\n"), "{metrics}");
    assert!(metrics.contains("agent_safe_reload_failures_total 2\n"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_during_reloads_all_succeed_on_one_config() {
    let env = Arc::new(Env::start().await);
    let token = env.token("deploy-bot", &[]);
    let rev_a = env.server.current().revision.clone();
    // What each revision decides for a dev restart.
    let expected: HashMap<String, &str> = HashMap::from([
        (rev_a.clone(), "allow-dev-a"),
        (agent_safe_revision_of(&env, POLICIES_B).await, "deny-dev-b"),
    ]);
    write_policies(&env, POLICIES_A);

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let env = env.clone();
            let token = token.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) || seen.len() < 5 {
                    let (status, revision, d) = env
                        .call(
                            Method::POST,
                            "/v1/check",
                            Some(&token),
                            Some(restart("dev/test-app")),
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "{d}");
                    seen.push((
                        revision.unwrap(),
                        d["policy_matched"].as_str().unwrap().to_owned(),
                        d["audit_id"].as_str().unwrap().to_owned(),
                    ));
                }
                seen
            })
        })
        .collect();
    for round in 0..12 {
        let text = match round % 3 {
            0 => POLICIES_B,
            1 => "rules: [ this is not yaml",
            _ => POLICIES_A,
        };
        write_policies(&env, text);
        let s = env.server.clone();
        let outcome = tokio::task::spawn_blocking(move || s.reload()).await.unwrap();
        assert_eq!(outcome.is_ok(), round % 3 != 1, "round {round}: {outcome:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for client in clients {
        answers
            .extend(tokio::time::timeout(Duration::from_secs(60), client).await.unwrap().unwrap());
    }
    // Every client has its answers: every decision is in the log now.
    let mut answered = 0;
    let events: HashMap<String, String> = env
        .decision_events()
        .into_iter()
        .map(|e| {
            (
                e.event_id.to_string(),
                e.context.unwrap()["policy_revision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (revision, matched, audit_id) in answers {
        answered += 1;
        // Decided by exactly the configuration the revision names, and recorded with it.
        assert_eq!(expected.get(&revision).copied(), Some(matched.as_str()), "{revision}");
        assert_eq!(events.get(&audit_id), Some(&revision), "{audit_id}");
    }
    assert!(answered >= 40, "{answered}");
}

/// The revision a policy text gets: writes it and reloads the server with it.
async fn agent_safe_revision_of(env: &Env, policies: &str) -> String {
    write_policies(env, policies);
    let s = env.server.clone();
    tokio::task::spawn_blocking(move || s.reload()).await.unwrap().unwrap()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads() {
    let env = Env::start().await;
    env.server.reload_on_sighup().unwrap();
    write_policies(&env, POLICIES_B);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let done = env
                .events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, ServerEvent::Reloaded { .. }));
            if done {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(reloaded.is_ok(), "no reload after SIGHUP");
    let token = env.token("deploy-bot", &[]);
    let (_, d) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    assert_eq!(d["policy_matched"], "deny-dev-b");
}

/// Replaces the policy file in one step (the watcher never sees half a file).
fn replace_policies(env: &Env, text: &str) {
    let tmp = env.path("policies/main.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, env.path("policies/main.yaml")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_watched_file_reloads_and_a_bad_one_keeps_the_old_config() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let rev_a = env.server.current().revision.clone();
    let watcher = env.server.reload_on_change(Duration::from_millis(20));
    let is_reload = |e: &ServerEvent| matches!(e, ServerEvent::Reloaded { .. });
    let is_failure = |e: &ServerEvent| matches!(e, ServerEvent::ReloadFailed { .. });

    replace_policies(&env, POLICIES_B);
    let ServerEvent::Reloaded { revision: rev_b } = env.wait_event(1, is_reload).await else {
        unreachable!()
    };
    assert_ne!(rev_b, rev_a);
    let (_, revision, d) =
        env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app"))).await;
    assert_eq!(d["policy_matched"], "deny-dev-b");
    assert_eq!(revision.as_deref(), Some(rev_b.as_str()));

    // A broken file: reported once, B keeps serving.
    replace_policies(&env, "rules:\n  - name: broken\n    decision: maybe\n");
    let ServerEvent::ReloadFailed { error } = env.wait_event(1, is_failure).await else {
        unreachable!()
    };
    assert!(error.contains("main.yaml"), "{error}");
    let (_, revision, d) =
        env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app"))).await;
    assert_eq!(d["policy_matched"], "deny-dev-b");
    assert_eq!(revision.as_deref(), Some(rev_b.as_str()));
    let (_, ready) = env.get("/readyz", None).await;
    assert_eq!(ready["policy_revision"], rev_b.as_str());
    assert_eq!(ready["last_reload"]["ok"], false, "{ready}");

    // Fixed: A again.
    replace_policies(&env, POLICIES_A);
    let again = env.wait_event(2, is_reload).await;
    assert_eq!(again, ServerEvent::Reloaded { revision: rev_a.clone() });
    let (_, d) = env.post("/v1/check", Some(&token), restart("dev/test-app")).await;
    assert_eq!(d["policy_matched"], "allow-dev-a");
    watcher.abort();
    let events = env.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| is_failure(e)).count(), 1, "{events:?}");
}

/// A reload (SIGHUP, the admin endpoint) fails on a bad file that is gone again before the
/// watcher looks: the watcher reloads the files that serve, once, and `/readyz` no longer
/// reports the failure of a file that no longer exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_undone_between_two_polls_is_cleared_on_readyz() {
    let env = Env::start().await;
    let rev_a = env.server.current().revision.clone();
    let bad = env.path("policies/bad.yaml");
    std::fs::write(&bad, "rules: [").unwrap();
    let failed = tokio::task::spawn_blocking({
        let s = env.server.clone();
        move || s.reload()
    })
    .await
    .unwrap();
    assert!(failed.is_err());
    std::fs::remove_file(&bad).unwrap();
    let (_, ready) = env.get("/readyz", None).await;
    assert_eq!(ready["last_reload"]["ok"], false, "{ready}");

    // The watcher starts on files that are those serving, and answers the failure.
    let watcher = env.server.reload_on_change(Duration::from_millis(20));
    let is_reload = |e: &ServerEvent| matches!(e, ServerEvent::Reloaded { .. });
    let reloaded = env.wait_event(1, is_reload).await;
    assert_eq!(reloaded, ServerEvent::Reloaded { revision: rev_a.clone() });
    let (_, ready) = env.get("/readyz", None).await;
    assert_eq!(ready["last_reload"]["ok"], true, "{ready}");
    assert_eq!(ready["policy_revision"], rev_a.as_str());
    // Once: the next polls reload nothing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    watcher.abort();
    let events = env.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| is_reload(e)).count(), 1, "{events:?}");
}

#[tokio::test]
async fn a_reload_keeps_the_rate_limit_windows() {
    let env = Env::start().await;
    let token = env.token("deploy-bot", &[]);
    let reload = || {
        let s = env.server.clone();
        async move { tokio::task::spawn_blocking(move || s.reload()).await.unwrap().unwrap() }
    };
    let config = env.path("agent-safe.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}rate_limit: {{max_requests: 2, window_seconds: 60}}\n"))
        .unwrap();
    reload().await;
    let check = || env.call(Method::POST, "/v1/check", Some(&token), Some(restart("dev/test-app")));
    for _ in 0..2 {
        assert_eq!(check().await.2["result"], "allow");
    }
    let (_, _, d) = check().await;
    assert_eq!(d["result"], "deny", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("Rate limit"), "{d}");

    // Another revision of the policies: deploy-bot's window carries over, so it stays limited
    // (a reload that reset the windows would let it through again).
    write_policies(&env, &format!("{POLICIES_A}# revision c\n"));
    reload().await;
    let (_, _, d) = check().await;
    assert_eq!(d["result"], "deny", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("Rate limit"), "{d}");
    // Other callers have their own window.
    let other = env.token("other-bot", &[]);
    let (_, _, d) =
        env.call(Method::POST, "/v1/check", Some(&other), Some(restart("dev/test-app"))).await;
    assert_eq!(d["result"], "allow", "{d}");
}
