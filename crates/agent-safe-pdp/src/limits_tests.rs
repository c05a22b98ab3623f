//! Rate limit, circuit breaker and cumulative risk through the PDP, on a manual timeline.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::{CallerIdentity, DecisionResult, Params, RiskClass};
use agent_safe_registry::{Inventory, Registry};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::{Caller, CumulativeRiskConfig, Pdp, PdpConfig, RateLimitConfig, Request, policy};

const T0: OffsetDateTime = datetime!(2026-02-23 12:00 UTC);

fn pdp(config: PdpConfig, rules: &str) -> Pdp {
    let actions: &[(&str, &str)] = &[
        (
            "a.yaml",
            "name: read\nversion: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [t]\n",
        ),
        (
            "b.yaml",
            "name: change\nversion: 1.0.0\ndescription: d\nrisk_class: medium\ntarget_types: [t]\n",
        ),
        (
            "c.yaml",
            "name: nuke\nversion: 1.0.0\ndescription: d\nrisk_class: critical\ntarget_types: [t]\n",
        ),
    ];
    let registry =
        Registry::from_sources(actions.iter().map(|(n, t)| (PathBuf::from(n), t.as_bytes())))
            .unwrap();
    let inventory = Inventory::from_source(
        &PathBuf::from("inventory.yaml"),
        b"targets:\n  - {id: t/internal, type: t, environment: staging, sensitivity: internal}\n",
    )
    .unwrap();
    let rules = policy::load_sources([(PathBuf::from("p.yaml"), rules)]).unwrap();
    Pdp::new(Arc::new(registry), Arc::new(inventory), rules, config).unwrap()
}

const ALLOW_ALL: &str = "rules:\n  - {name: all, match: {actions: [read, change]}, decision: allow, reason: ok}\n  - {name: nuke, match: {actions: [nuke]}, decision: require_approval, reason: human}\n";

fn run(p: &Pdp, caller: &CallerIdentity, action: &str, at: OffsetDateTime) -> crate::Evaluation {
    let params = Params::new();
    p.evaluate(
        &Request {
            action,
            target: Some("t/internal"),
            caller: Caller::Unverified(caller),
            params: &params,
            ticket_id: None,
        },
        at,
    )
}

fn limit(max: u64, window: f64, threshold: u64) -> PdpConfig {
    PdpConfig {
        rate_limit: Some(RateLimitConfig {
            max_requests: max,
            window_seconds: window,
            circuit_breaker_threshold: threshold,
            circuit_breaker_window_seconds: 60.0,
            circuit_breaker_cooldown_seconds: 300.0,
        }),
        ..PdpConfig::default()
    }
}

#[test]
fn rate_limit_window_edges() {
    let p = pdp(limit(3, 10.0, 0), ALLOW_ALL);
    let bot = CallerIdentity::unverified("bot");
    for i in 0..3 {
        assert_eq!(
            run(&p, &bot, "read", T0 + Duration::seconds(i)).decision.result,
            DecisionResult::Allow
        );
    }
    let d = run(&p, &bot, "read", T0 + Duration::seconds(3)).decision;
    assert_eq!(
        (d.result, d.reason.as_str(), d.policy_matched),
        (
            DecisionResult::Deny,
            "Rate limit exceeded for caller 'bot': 3 requests per 10s window.",
            None
        )
    );
    // Exactly one window after the first request it still counts (only strictly older drops).
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::seconds(10)).decision.result,
        DecisionResult::Deny
    );
    // Rejected requests were not recorded: just past the window one slot is free again.
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::milliseconds(10_001)).decision.result,
        DecisionResult::Allow
    );
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::milliseconds(10_002)).decision.result,
        DecisionResult::Deny
    );
    // Other callers are not affected.
    let other = CallerIdentity::unverified("other");
    assert_eq!(
        run(&p, &other, "read", T0 + Duration::seconds(5)).decision.result,
        DecisionResult::Allow
    );
}

#[test]
fn circuit_breaker_opens_and_cools_down() {
    let p = pdp(limit(100, 60.0, 2), ALLOW_ALL);
    let bot = CallerIdentity::unverified("bot");
    assert_eq!(run(&p, &bot, "bogus", T0).decision.reason, "Unknown action: bogus");
    assert_eq!(run(&p, &bot, "bogus", T0).decision.result, DecisionResult::Deny);
    let d = run(&p, &bot, "read", T0).decision;
    assert_eq!(
        d.reason,
        "Circuit breaker open for caller 'bot': too many denied requests. Auto-resumes in 300s."
    );
    let d = run(&p, &bot, "read", T0 + Duration::milliseconds(299_400)).decision;
    assert!(d.reason.ends_with("Auto-resumes in 1s."), "{}", d.reason);
    // Breaker denies are not counted as denies: after the cooldown the caller is clean.
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::seconds(300)).decision.result,
        DecisionResult::Allow
    );
    assert_eq!(
        run(&p, &bot, "bogus", T0 + Duration::seconds(301)).decision.result,
        DecisionResult::Deny
    );
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::seconds(302)).decision.result,
        DecisionResult::Allow
    );
    // Denies outside the breaker window do not add up.
    assert_eq!(
        run(&p, &bot, "bogus", T0 + Duration::seconds(400)).decision.result,
        DecisionResult::Deny
    );
    assert_eq!(
        run(&p, &bot, "read", T0 + Duration::seconds(401)).decision.result,
        DecisionResult::Allow
    );
}

#[test]
fn rate_limit_is_exact_under_concurrency() {
    let p = pdp(limit(500, 60.0, 0), ALLOW_ALL);
    let allowed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let bot = CallerIdentity::unverified("bot");
                for _ in 0..100 {
                    if run(&p, &bot, "read", T0).decision.result == DecisionResult::Allow {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 500);
}

#[test]
fn invalid_settings_are_rejected() {
    let bad = |config: PdpConfig| {
        let rules = policy::load_sources([(PathBuf::from("p.yaml"), "rules: []\n")]).unwrap();
        Pdp::new(Arc::new(Registry::default()), Arc::new(Inventory::empty()), rules, config)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(limit(0, 1.0, 0)).contains("max_requests"));
    assert!(bad(limit(1, 0.0, 0)).contains("window_seconds"));
    let cumulative =
        CumulativeRiskConfig { escalation_threshold: 80, deny_threshold: 75, ..Default::default() };
    let e = bad(PdpConfig { cumulative_risk: Some(cumulative), ..PdpConfig::default() });
    assert!(e.contains("deny_threshold") && e.contains("75") && e.contains("80"), "{e}");
}

fn cumulative() -> PdpConfig {
    PdpConfig { cumulative_risk: Some(CumulativeRiskConfig::default()), ..PdpConfig::default() }
}

#[test]
fn cumulative_risk_escalates_then_denies() {
    let p = pdp(cumulative(), ALLOW_ALL);
    let bot = CallerIdentity::unverified("bot");
    // `change` on an internal target is medium: 5 points each.
    for i in 1..=5 {
        let d = run(&p, &bot, "change", T0).decision;
        assert_eq!((d.result, d.cumulative_risk_score), (DecisionResult::Allow, Some(5 * i)));
    }
    let e = run(&p, &bot, "change", T0);
    let d = &e.decision;
    assert_eq!(d.result, DecisionResult::RequireApproval);
    assert_eq!(d.reason, "Escalated by cumulative risk (30 >= 30). Original: ok");
    assert_eq!(
        (d.escalated_from, d.cumulative_risk_class),
        (Some(DecisionResult::Allow), Some(RiskClass::High))
    );
    assert_eq!(
        e.audit_context(),
        Some(json!({
            "cumulative_risk_score": 30, "cumulative_risk_class": "high", "cumulative_entry_count": 6,
            "cumulative_window_seconds": 3600.0, "escalated_from": "allow",
        }))
    );
    // nuke is critical on internal → 50 points: 80 ≥ 75 → DENY, escalated from require_approval.
    let d = run(&p, &bot, "nuke", T0).decision;
    assert_eq!(d.result, DecisionResult::Deny);
    assert_eq!(d.reason, "Cumulative risk threshold exceeded (80 >= 75). Original: human");
    assert_eq!(d.escalated_from, Some(DecisionResult::RequireApproval));
    // Policy DENY outcomes are not counted and carry no cumulative fields.
    let d = run(&p, &bot, "bogus", T0).decision;
    assert_eq!((d.result, d.cumulative_risk_score), (DecisionResult::Deny, None));
    // The window slides: an hour later the earlier entries are gone.
    let d = run(&p, &bot, "read", T0 + Duration::seconds(3601)).decision;
    assert_eq!((d.result, d.cumulative_risk_score), (DecisionResult::Allow, Some(1)));
}

#[test]
fn cumulative_risk_bands_and_isolation() {
    let p = pdp(cumulative(), ALLOW_ALL);
    let a = CallerIdentity::unverified("a");
    let b = CallerIdentity::unverified("b");
    // 14 low points: below 30 // 2 = 15 → low; the 15th → medium.
    for _ in 0..14 {
        run(&p, &a, "read", T0);
    }
    assert_eq!(run(&p, &b, "read", T0).decision.cumulative_risk_class, Some(RiskClass::Low));
    let d = run(&p, &a, "read", T0).decision;
    assert_eq!(
        (d.cumulative_risk_score, d.cumulative_risk_class),
        (Some(15), Some(RiskClass::Medium))
    );
    // REQUIRE_APPROVAL between the thresholds stays as it is, without escalated_from.
    let c = CallerIdentity::unverified("c");
    let d = run(&p, &c, "nuke", T0).decision;
    assert_eq!(
        (d.result, d.escalated_from, d.cumulative_risk_score),
        (DecisionResult::RequireApproval, None, Some(50))
    );
}

#[test]
fn delegated_workers_count_for_their_origin() {
    let p = pdp(cumulative(), ALLOW_ALL);
    let worker = |id: &str| {
        let mut c = CallerIdentity::unverified(id);
        c.delegation_depth = 1;
        c.delegation_chain = vec![agent_safe_core::DelegationLink {
            agent_id: "orchestrator".into(),
            agent_name: String::new(),
            roles: vec![],
            groups: vec![],
            delegated_at: None,
        }];
        c
    };
    // Three workers, two medium changes each: 30 points on the orchestrator's account.
    let mut last = None;
    for w in ["w1", "w2", "w3"] {
        for _ in 0..2 {
            last = Some(run(&p, &worker(w), "change", T0).decision);
        }
    }
    let d = last.unwrap();
    assert_eq!((d.result, d.cumulative_risk_score), (DecisionResult::RequireApproval, Some(30)));
    // The orchestrator itself sees the sum too.
    let d = run(&p, &CallerIdentity::unverified("orchestrator"), "read", T0).decision;
    assert_eq!(d.cumulative_risk_score, Some(31));
}

#[test]
fn a_replacing_pdp_continues_the_windows_and_breakers_of_the_old_one() {
    let both = PdpConfig { cumulative_risk: cumulative().cumulative_risk, ..limit(100, 60.0, 2) };
    let old = pdp(both.clone(), ALLOW_ALL);
    let bot = CallerIdentity::unverified("bot");
    // Two denies open bot's breaker; `change` ×5 bring its cumulative risk to 25.
    for _ in 0..5 {
        assert_eq!(run(&old, &bot, "change", T0).decision.result, DecisionResult::Allow);
    }
    run(&old, &bot, "bogus", T0);
    run(&old, &bot, "bogus", T0);
    assert!(run(&old, &bot, "read", T0).decision.reason.starts_with("Circuit breaker open"));

    // A fresh PDP (a reload without carrying over) would forget both.
    let fresh = pdp(both.clone(), ALLOW_ALL);
    assert_eq!(run(&fresh, &bot, "read", T0).decision.result, DecisionResult::Allow);

    let mut reloaded = pdp(both, ALLOW_ALL);
    reloaded.continue_windows_from(&old);
    let d = run(&reloaded, &bot, "read", T0).decision;
    assert!(d.reason.starts_with("Circuit breaker open for caller 'bot'"), "{}", d.reason);
    // After the cooldown, the cumulative window is still there: 25 + 5 = 30 escalates.
    let later = T0 + Duration::seconds(300);
    let d = run(&reloaded, &bot, "change", later).decision;
    assert_eq!((d.result, d.cumulative_risk_score), (DecisionResult::RequireApproval, Some(30)));
    // The state is shared, not copied: what the old PDP still decides counts for the new one.
    run(&old, &bot, "change", later);
    let d = run(&reloaded, &bot, "read", later).decision;
    assert_eq!(d.cumulative_risk_score, Some(36));
    // Another caller's state is untouched.
    let other = CallerIdentity::unverified("other");
    assert_eq!(run(&reloaded, &other, "read", later).decision.cumulative_risk_score, Some(1));
}

/// A [`WindowStore`](crate::WindowStore) in memory, standing in for a database: it keeps only
/// the JSON the PDP hands it, as a shared store does.
#[derive(Debug, Default)]
struct JsonWindows(std::sync::Mutex<std::collections::HashMap<(String, String), String>>);

impl crate::WindowStore for JsonWindows {
    fn update(
        &self,
        kind: &str,
        key: &str,
        update: &mut dyn FnMut(Option<&str>) -> String,
    ) -> Result<(), crate::WindowStoreError> {
        let mut map = self.0.lock().unwrap();
        let slot = (kind.to_owned(), key.to_owned());
        let next = update(map.get(&slot).map(String::as_str));
        map.insert(slot, next);
        Ok(())
    }
}

/// A shared store that is down.
#[derive(Debug)]
struct DownWindows;

impl crate::WindowStore for DownWindows {
    fn update(
        &self,
        _: &str,
        _: &str,
        _: &mut dyn FnMut(Option<&str>) -> String,
    ) -> Result<(), crate::WindowStoreError> {
        Err(crate::WindowStoreError("database postgres://db/x is unavailable: refused".into()))
    }
}

fn limits_and_cumulative() -> PdpConfig {
    PdpConfig {
        rate_limit: Some(RateLimitConfig {
            max_requests: 6,
            window_seconds: 10.0,
            circuit_breaker_threshold: 3,
            circuit_breaker_window_seconds: 20.0,
            circuit_breaker_cooldown_seconds: 15.0,
        }),
        cumulative_risk: Some(CumulativeRiskConfig {
            window_seconds: 30.0,
            ..CumulativeRiskConfig::default()
        }),
        ..PdpConfig::default()
    }
}

/// The windows kept in a shared store follow the same rules as the in-process ones: 2,000
/// pseudo-random requests (three callers, allowed, escalated and unknown actions, gaps from 0
/// to 4 s) get the same decisions from both.
#[test]
fn shared_windows_decide_exactly_as_in_process_ones() {
    let local = pdp(limits_and_cumulative(), ALLOW_ALL);
    let mut shared = pdp(limits_and_cumulative(), ALLOW_ALL);
    shared.set_window_store(Arc::new(JsonWindows::default()));
    let callers: Vec<CallerIdentity> =
        ["a", "b", "c"].iter().map(|c| CallerIdentity::unverified(*c)).collect();
    let actions = ["read", "change", "nuke", "bogus"];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut at = T0;
    let mut kinds = std::collections::HashSet::new();
    for i in 0..2000 {
        at += Duration::milliseconds(i64::try_from(next(4000)).unwrap());
        let caller = &callers[usize::try_from(next(3)).unwrap()];
        let action = actions[usize::try_from(next(4)).unwrap()];
        let (l, s) = (run(&local, caller, action, at), run(&shared, caller, action, at));
        assert!(s.unavailable.is_none());
        let (l, s) = (l.decision, s.decision);
        assert_eq!(
            (l.result, &l.reason, l.cumulative_risk_score, l.escalated_from),
            (s.result, &s.reason, s.cumulative_risk_score, s.escalated_from),
            "request {i}: {} {action} at {at}",
            caller.agent_id
        );
        kinds.insert(l.reason.split(' ').take(2).collect::<Vec<_>>().join(" "));
    }
    // The sequence went through every rule it is meant to compare.
    for kind in
        ["Rate limit", "Circuit breaker", "Escalated by", "Cumulative risk", "Unknown action:"]
    {
        assert!(kinds.contains(kind), "{kind} never happened: {kinds:?}");
    }
}

/// A shared store that cannot be used gives no decision, flagged for the SDK to refuse.
#[test]
fn a_shared_store_that_is_down_gives_no_decision() {
    let mut p = pdp(limits_and_cumulative(), ALLOW_ALL);
    p.set_window_store(Arc::new(DownWindows));
    let e = run(&p, &CallerIdentity::unverified("a"), "read", T0);
    assert_eq!(
        e.unavailable.map(|e| e.to_string()).as_deref(),
        Some("database postgres://db/x is unavailable: refused")
    );
    assert_eq!(e.decision.result, DecisionResult::Deny);
    // Without a rate limit, cumulative risk is the first to need the store.
    let mut p = pdp(cumulative(), ALLOW_ALL);
    p.set_window_store(Arc::new(DownWindows));
    assert!(run(&p, &CallerIdentity::unverified("a"), "read", T0).unavailable.is_some());
}
