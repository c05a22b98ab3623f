//! Policy-level approval settings (`approvals: {required, approver_roles}`) and the side-effect
//! free re-evaluation used when a request is approved.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::{CallerIdentity, DecisionResult, Params};
use agent_safe_registry::{Inventory, Registry};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::policy::ApprovalSettings;
use crate::{Caller, CumulativeRiskConfig, Pdp, PdpConfig, RateLimitConfig, Request, policy};

const T0: OffsetDateTime = datetime!(2026-02-23 12:00 UTC);

fn pdp(config: PdpConfig, rules: &str) -> Result<Pdp, crate::PolicyLoadError> {
    let actions: &[(&str, &str)] = &[
        (
            "a.yaml",
            "name: read\nversion: 1.0.0\ndescription: d\nrisk_class: low\ntarget_types: [t]\n",
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
        b"targets:\n  - {id: t/prod, type: t, environment: prod, sensitivity: critical}\n",
    )
    .unwrap();
    let rules = policy::load_sources([(PathBuf::from("p.yaml"), rules)])?;
    Pdp::new(Arc::new(registry), Arc::new(inventory), rules, config)
}

fn request<'a>(action: &'a str, caller: &'a CallerIdentity, params: &'a Params) -> Request<'a> {
    Request {
        action,
        target: Some("t/prod"),
        caller: Caller::Unverified(caller),
        params,
        ticket_id: None,
    }
}

const RULES: &str = "rules:
  - name: two-person-nuke
    match: {actions: [nuke]}
    decision: require_approval
    reason: two people
    approvals: {required: 2, approver_roles: [sre]}
  - {name: read-needs-one, match: {actions: [read]}, decision: require_approval, reason: one}
";

#[test]
fn the_matched_rule_carries_its_approval_requirement() {
    let p = pdp(PdpConfig::default(), RULES).unwrap();
    let bot = CallerIdentity::unverified("bot");
    let params = Params::new();
    let e = p.evaluate(&request("nuke", &bot, &params), T0);
    assert_eq!(e.decision.result, DecisionResult::RequireApproval);
    assert_eq!(
        e.approval_requirement,
        Some(ApprovalSettings { required: 2, approver_roles: vec!["sre".into()] })
    );
    let e = p.evaluate(&request("read", &bot, &params), T0);
    assert_eq!(e.decision.result, DecisionResult::RequireApproval);
    assert_eq!(e.approval_requirement, None);
}

#[test]
fn defaults_and_invalid_settings() {
    let ok = |block: &str| {
        let rules = format!(
            "rules:\n  - {{name: r, match: {{}}, decision: require_approval, reason: x, approvals: {block}}}\n"
        );
        pdp(PdpConfig::default(), &rules).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(ok("{}"), Ok(()));
    assert_eq!(ok("{approver_roles: [sre]}"), Ok(()));
    let err = ok("{required: 0}").unwrap_err();
    assert_eq!(err, "p.yaml: rule #0 `r`: `approvals.required` must be at least 1");
    let err = ok("{requried: 2}").unwrap_err();
    assert!(err.contains("unknown field `requried`"), "{err}");
    let err = ok("{required: -1}").unwrap_err();
    assert_eq!(
        err,
        "p.yaml:2: `rules[0].approvals.required`: invalid type: integer `-1`, expected u32"
    );
    let err = pdp(
        PdpConfig::default(),
        "rules:\n  - {name: r, match: {}, decision: allow, reason: x, approvals: {required: 2}}\n",
    )
    .map(|_| ())
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "p.yaml: rule #0 `r`: `approvals` only applies to rules whose decision is `require_approval`"
    );
}

#[test]
fn rules_only_evaluation_neither_counts_nor_is_counted() {
    let config = PdpConfig {
        rate_limit: Some(RateLimitConfig { max_requests: 1, ..RateLimitConfig::default() }),
        cumulative_risk: Some(CumulativeRiskConfig::default()),
        ..PdpConfig::default()
    };
    let p = pdp(config, RULES).unwrap();
    let bot = CallerIdentity::unverified("bot");
    let params = Params::new();
    let first = p.evaluate(&request("nuke", &bot, &params), T0);
    assert_eq!(first.decision.result, DecisionResult::RequireApproval);
    // The rate limit is used up, but re-evaluating the stored request is not a new request.
    for _ in 0..3 {
        let again = p.evaluate_rules_only(&request("nuke", &bot, &params), T0);
        assert_eq!(again.decision.result, DecisionResult::RequireApproval);
        assert_eq!(again.decision.policy_matched.as_deref(), Some("two-person-nuke"));
        assert_eq!(again.decision.cumulative_risk_score, None);
        assert_eq!(again.approval_requirement.map(|a| a.required), Some(2));
    }
    let limited = p.evaluate(&request("nuke", &bot, &params), T0);
    assert_eq!(limited.decision.result, DecisionResult::Deny);
    assert!(limited.decision.reason.contains("Rate limit"), "{}", limited.decision.reason);
}
