//! PDP behaviour, case by case (SPEC §2.2, §2.3, §3), plus the index-vs-linear property.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::{AgentId, CallerIdentity, DecisionResult, DelegationLink, Params, RiskClass};
use agent_safe_registry::{Inventory, Registry};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::{Caller, Pdp, PdpConfig, Request, policy};

// Every fixture action applies to deployments and namespaces too (the inventory's types), so the
// rule tests are not decided by the target-type check; `target_types_are_enforced` tests it.
const ACTIONS: &[(&str, &str)] = &[
    (
        "restart-deployment.yaml",
        "name: restart-deployment\nversion: 1.0.0\ndescription: restart\nrisk_class: medium\n\
         target_types: [k8s-deployment, k8s-namespace]\nparameters:\n  - name: namespace\n    type: string\n    required: false\n\
         \x20 - name: deployment\n    type: string\n    required: false\n",
    ),
    (
        "scale-deployment.yaml",
        "name: scale-deployment\nversion: 1.0.0\ndescription: scale\nrisk_class: medium\n\
         target_types: [k8s-deployment, k8s-namespace]\nparameters:\n  - name: replicas\n    type: integer\n\
         \x20   constraints: {min_value: 0, max_value: 100}\n",
    ),
    (
        "get-pod-logs.yaml",
        "name: get-pod-logs\nversion: 1.0.0\ndescription: logs\nrisk_class: low\n\
         target_types: [k8s-pod, k8s-deployment, k8s-namespace]\n",
    ),
    (
        "delete-namespace.yaml",
        "name: delete-namespace\nversion: 1.0.0\ndescription: delete\nrisk_class: critical\n\
         target_types: [k8s-namespace, k8s-deployment]\n",
    ),
    (
        "drain-node.yaml",
        "name: drain-node\nversion: 1.0.0\ndescription: drain\nrisk_class: high\n\
         target_types: [k8s-node, k8s-deployment, k8s-namespace]\n",
    ),
];

const INVENTORY: &str = "targets:
  - {id: dev/app, type: k8s-deployment, environment: dev, sensitivity: public, labels: {team: a}}
  - {id: staging/app, type: k8s-deployment, environment: staging, sensitivity: internal}
  - {id: prod/app, type: k8s-deployment, environment: prod, sensitivity: critical, labels: {team: a, tier: web}}
  - {id: prod/public, type: k8s-namespace, environment: prod, sensitivity: public}
  - {id: dev/bound, type: k8s-deployment, environment: dev, sensitivity: public, params: {namespace: dev}}
";

fn registry() -> Registry {
    Registry::from_sources(
        ACTIONS.iter().map(|(name, text)| (PathBuf::from("actions").join(name), text.as_bytes())),
    )
    .unwrap()
}

fn pdp_with(policies: &[&str], config: PdpConfig) -> Pdp {
    let inventory =
        Inventory::from_source(&PathBuf::from("inventory.yaml"), INVENTORY.as_bytes()).unwrap();
    let sources: Vec<(PathBuf, &str)> = policies
        .iter()
        .enumerate()
        .map(|(i, text)| (PathBuf::from(format!("policies/{i:02}.yaml")), *text))
        .collect();
    let rules = policy::load_sources(sources).unwrap();
    Pdp::new(Arc::new(registry()), Arc::new(inventory), rules, config).unwrap()
}

fn pdp(policies: &[&str]) -> Pdp {
    pdp_with(policies, PdpConfig::default())
}

const MONDAY_NOON: OffsetDateTime = datetime!(2026-02-23 12:00 UTC);

struct Req<'a> {
    action: &'a str,
    target: Option<&'a str>,
    caller: Option<CallerIdentity>,
    verified: bool,
    params: Params,
    ticket: Option<&'a str>,
    at: OffsetDateTime,
}

fn req(action: &str) -> Req<'_> {
    Req {
        action,
        target: None,
        caller: None,
        verified: false,
        params: Params::new(),
        ticket: None,
        at: MONDAY_NOON,
    }
}

impl<'a> Req<'a> {
    fn on(mut self, target: &'a str) -> Self {
        self.target = Some(target);
        self
    }
    fn by(mut self, agent: &str) -> Self {
        self.caller = Some(CallerIdentity::unverified(agent));
        self
    }
    fn with_roles(mut self, agent: &str, roles: &[&str], groups: &[&str]) -> Self {
        self.caller = Some(CallerIdentity {
            roles: roles.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            ..CallerIdentity::unverified(agent)
        });
        self.verified = true;
        self
    }
    fn delegated(mut self, agent: &str, chain: &[&str]) -> Self {
        let mut c = CallerIdentity::unverified(agent);
        c.delegation_chain = chain
            .iter()
            .map(|a| DelegationLink {
                agent_id: AgentId::new(*a),
                agent_name: String::new(),
                roles: vec![],
                groups: vec![],
                delegated_at: None,
            })
            .collect();
        c.delegation_depth = chain.len() as u32;
        self.caller = Some(c);
        self.verified = true;
        self
    }
    fn param(mut self, k: &str, v: serde_json::Value) -> Self {
        self.params.insert(k.to_owned(), v);
        self
    }
    fn ticket(mut self, t: &'a str) -> Self {
        self.ticket = Some(t);
        self
    }
    fn at(mut self, t: OffsetDateTime) -> Self {
        self.at = t;
        self
    }
    fn eval(&self, pdp: &Pdp) -> crate::Evaluation {
        let caller = match &self.caller {
            None => Caller::Anonymous,
            Some(c) if self.verified => Caller::Verified(c),
            Some(c) => Caller::Unverified(c),
        };
        pdp.evaluate(
            &Request {
                action: self.action,
                target: self.target,
                caller,
                params: &self.params,
                ticket_id: self.ticket,
            },
            self.at,
        )
    }
}

/// Asserts the result and the matched rule (None = no rule).
#[track_caller]
fn check(pdp: &Pdp, r: Req<'_>, result: DecisionResult, policy: Option<&str>) {
    let d = r.eval(pdp).decision;
    assert_eq!((d.result, d.policy_matched.as_deref()), (result, policy), "reason: {}", d.reason);
}

use DecisionResult::{Allow, Deny, RequireApproval};

fn rule(name: &str, priority: i64, matcher: &str, decision: &str) -> String {
    format!(
        "  - name: {name}\n    priority: {priority}\n    match: {matcher}\n    decision: {decision}\n    reason: because {name}\n"
    )
}

fn file(rules: &[String]) -> String {
    format!("rules:\n{}", rules.concat())
}

#[test]
fn default_deny_and_first_match_by_priority() {
    let p = pdp(&[&file(&[
        rule("low", 10, "{}", "allow"),
        rule("high", 100, "{actions: [restart-deployment]}", "deny"),
    ])]);
    check(&p, req("restart-deployment").on("dev/app"), Deny, Some("high"));
    check(&p, req("get-pod-logs").on("dev/app"), Allow, Some("low"));
    let empty = pdp(&["rules: []\n"]);
    let d = req("get-pod-logs").on("dev/app").eval(&empty).decision;
    assert_eq!((d.result, d.reason.as_str()), (Deny, "No matching policy (default deny)"));
}

#[test]
fn equal_priorities_keep_file_then_rule_order() {
    let first = file(&[rule("a1", 5, "{}", "deny"), rule("a2", 5, "{}", "allow")]);
    let second = file(&[rule("b1", 5, "{}", "allow")]);
    let p = pdp(&[&first, &second]);
    check(&p, req("get-pod-logs"), Deny, Some("a1"));
    let p = pdp(&[&second, &first]);
    check(&p, req("get-pod-logs"), Allow, Some("b1"));
    // Default priority is 0.
    let p = pdp(&[&format!(
        "rules:\n  - {{name: nopri, match: {{}}, decision: deny, reason: r}}\n{}",
        rule("neg", -1, "{}", "allow")
    )]);
    check(&p, req("get-pod-logs"), Deny, Some("nopri"));
}

#[test]
fn action_globs_follow_fnmatch() {
    let cases: &[(&str, &str, bool)] = &[
        ("['*']", "drain-node", true),
        ("['restart-*']", "restart-deployment", true),
        ("['restart-*']", "drain-node", false),
        ("['?rain-node']", "drain-node", true),
        ("['[sr]*']", "restart-deployment", true),
        ("['[!sr]*']", "restart-deployment", false),
        ("['[!sr]*']", "drain-node", true),
        ("['Drain-node']", "drain-node", false),
        ("[]", "drain-node", false),
    ];
    for &(pattern, action, matches) in cases {
        let p = pdp(&[&file(&[rule("r", 1, &format!("{{actions: {pattern}}}"), "allow")])]);
        let expected = if matches { (Allow, Some("r")) } else { (Deny, None) };
        let d = req(action).eval(&p).decision;
        assert_eq!((d.result, d.policy_matched.as_deref()), expected, "{pattern} vs {action}");
    }
}

#[test]
fn target_selectors() {
    let cases: &[(&str, &str, bool)] = &[
        ("{environments: [dev]}", "dev/app", true),
        ("{environments: [dev]}", "prod/app", false),
        ("{environments: []}", "dev/app", false),
        ("{sensitivities: [critical, restricted]}", "prod/app", true),
        ("{sensitivities: [critical]}", "staging/app", false),
        ("{types: [k8s-namespace]}", "prod/public", true),
        ("{types: [k8s-namespace]}", "prod/app", false),
        ("{labels: {team: a}}", "dev/app", true),
        ("{labels: {team: a, tier: web}}", "dev/app", false),
        ("{labels: {team: a, tier: web}}", "prod/app", true),
        ("{labels: {}}", "staging/app", true),
        ("{}", "staging/app", true),
        ("{environments: [prod], labels: {team: a}}", "prod/app", true),
    ];
    for &(selector, target, matches) in cases {
        let p = pdp(&[&file(&[rule("r", 1, &format!("{{targets: {selector}}}"), "allow")])]);
        let d = req("get-pod-logs").on(target).eval(&p).decision;
        assert_eq!(d.result == Allow, matches, "{selector} vs {target}");
    }
    // A target selector, even `{}`, never matches a request without a resolved target.
    let p = pdp(&[&file(&[rule("r", 1, "{targets: {}}", "allow")])]);
    check(&p, req("get-pod-logs"), Deny, None);
    check(&p, req("get-pod-logs").on("not/in-inventory"), Deny, None);
}

#[test]
fn unknown_target_keeps_id_and_counts_as_critical() {
    let p = pdp(&[&file(&[rule("any", 1, "{}", "allow")])]);
    let d = req("get-pod-logs").on("nowhere/x").eval(&p).decision;
    assert_eq!(d.target.as_str(), "nowhere/x");
    assert_eq!((d.risk_class, d.effective_risk), (RiskClass::Low, RiskClass::High));
    let d = req("get-pod-logs").eval(&p).decision;
    assert_eq!(d.target.as_str(), "unknown");
}

#[test]
fn caller_selectors() {
    let m = |sel: &str| pdp(&[&file(&[rule("r", 1, &format!("{{callers: {sel}}}"), "allow")])]);
    let allowed = |p: &Pdp, r: Req<'_>| r.eval(p).decision.result == Allow;

    let p = m("{agent_ids: [bot-a, bot-b]}");
    assert!(allowed(&p, req("get-pod-logs").by("bot-b")));
    assert!(!allowed(&p, req("get-pod-logs").by("bot-c")));
    assert!(!allowed(&p, req("get-pod-logs")));

    let p = m("{roles: [deployer, admin]}");
    assert!(allowed(&p, req("get-pod-logs").with_roles("x", &["reader", "admin"], &[])));
    assert!(!allowed(&p, req("get-pod-logs").with_roles("x", &["reader"], &[])));
    assert!(!allowed(&p, req("get-pod-logs").by("deployer")), "a plain id has no roles");

    let p = m("{groups: [platform]}");
    assert!(allowed(&p, req("get-pod-logs").with_roles("x", &[], &["platform"])));
    assert!(!allowed(&p, req("get-pod-logs").with_roles("x", &["platform"], &[])));

    let p = m("{delegated_from: [orchestrator]}");
    assert!(allowed(&p, req("get-pod-logs").delegated("w", &["root", "orchestrator"])));
    assert!(!allowed(&p, req("get-pod-logs").delegated("w", &["root"])));
    assert!(!allowed(&p, req("get-pod-logs").by("orchestrator")));

    let p = m("{max_delegation_depth: 1}");
    assert!(allowed(&p, req("get-pod-logs").by("direct")));
    assert!(allowed(&p, req("get-pod-logs").delegated("w", &["a"])));
    assert!(!allowed(&p, req("get-pod-logs").delegated("w", &["a", "b"])));

    let p = m("{require_delegation: true}");
    assert!(allowed(&p, req("get-pod-logs").delegated("w", &["a"])));
    assert!(!allowed(&p, req("get-pod-logs").by("direct")));
    let p = m("{require_delegation: false}");
    assert!(!allowed(&p, req("get-pod-logs").delegated("w", &["a"])));
    assert!(allowed(&p, req("get-pod-logs").by("direct")));

    let p = m("{}");
    assert!(allowed(&p, req("get-pod-logs").by("anyone")));
    assert!(!allowed(&p, req("get-pod-logs")), "callers present never matches anonymous");
}

#[test]
fn risk_classes_match_effective_risk() {
    let p = pdp(&[&file(&[rule("crit", 1, "{risk_classes: [critical]}", "require_approval")])]);
    // medium action on a critical target → critical effective risk.
    check(&p, req("restart-deployment").on("prod/app"), RequireApproval, Some("crit"));
    // medium on public → low.
    check(&p, req("restart-deployment").on("dev/app"), Deny, None);
    // critical action on a public prod target → high, so the rule does not apply.
    check(&p, req("delete-namespace").on("prod/public"), Deny, None);
    // No target → critical column.
    check(&p, req("get-pod-logs"), Deny, None);
    check(&p, req("restart-deployment"), RequireApproval, Some("crit"));
}

#[test]
fn time_windows() {
    let business = "{time_windows: [{days: [0, 1, 2, 3, 4], start_hour: 9, end_hour: 17}]}";
    let night = "{time_windows: [{start_hour: 22, end_hour: 5}]}";
    let berlin = "{time_windows: [{start_hour: 9, end_hour: 9, timezone: Europe/Berlin}]}";
    let cases: &[(&str, OffsetDateTime, bool)] = &[
        (business, datetime!(2026-02-23 09:00 UTC), true),
        (business, datetime!(2026-02-23 17:59 UTC), true),
        (business, datetime!(2026-02-23 18:00 UTC), false),
        (business, datetime!(2026-02-23 08:59 UTC), false),
        (business, datetime!(2026-02-28 12:00 UTC), false), // Saturday
        (night, datetime!(2026-02-23 23:30 UTC), true),
        (night, datetime!(2026-02-23 03:00 UTC), true),
        (night, datetime!(2026-02-23 05:59 UTC), true),
        (night, datetime!(2026-02-23 06:00 UTC), false),
        (night, datetime!(2026-02-23 21:59 UTC), false),
        ("{time_windows: []}", MONDAY_NOON, false),
        // 08:30 UTC is 09:30 in Berlin in winter (UTC+1).
        (berlin, datetime!(2026-02-23 08:30 UTC), true),
        (berlin, datetime!(2026-02-23 09:30 UTC), false),
        // Summer time: UTC+2.
        (berlin, datetime!(2026-07-06 07:15 UTC), true),
    ];
    for &(window, at, matches) in cases {
        let p = pdp(&[&file(&[rule("w", 1, window, "allow")])]);
        let d = req("get-pod-logs").at(at).eval(&p).decision;
        assert_eq!(d.result == Allow, matches, "{window} at {at}");
    }
    // Days apply to the timestamp's own weekday, also after midnight in a wrapped window.
    let p = pdp(&[&file(&[rule(
        "w",
        1,
        "{time_windows: [{days: [0], start_hour: 22, end_hour: 2}]}",
        "allow",
    )])]);
    check(&p, req("get-pod-logs").at(datetime!(2026-02-23 23:00 UTC)), Allow, Some("w"));
    check(&p, req("get-pod-logs").at(datetime!(2026-02-24 01:00 UTC)), Deny, None);
}

#[test]
fn require_ticket_is_tri_state() {
    let p = pdp(&[&file(&[
        rule("needs", 3, "{actions: [restart-deployment], require_ticket: true}", "allow"),
        rule(
            "without",
            2,
            "{actions: [restart-deployment], require_ticket: false}",
            "require_approval",
        ),
    ])]);
    check(&p, req("restart-deployment").ticket("CHG-1"), Allow, Some("needs"));
    check(&p, req("restart-deployment"), RequireApproval, Some("without"));
    check(&p, req("restart-deployment").ticket(""), RequireApproval, Some("without"));
    let d = req("restart-deployment").ticket("CHG-9").eval(&p).decision;
    assert_eq!(d.ticket_id.as_deref(), Some("CHG-9"));
}

#[test]
fn system_denies_come_before_rules() {
    let p = pdp(&[&file(&[rule("all", 1, "{}", "allow")])]);
    let reason = |r: Req<'_>| r.eval(&p).decision.reason;
    assert_eq!(reason(req("nope")), "Unknown action: nope");
    assert_eq!(
        reason(req("scale-deployment").param("replicas", json!(101))),
        "Invalid parameters: Parameter 'replicas': value 101 exceeds maximum 100.0"
    );
    // Required params are enforced even when no params are given (SPEC §17 item 2).
    assert_eq!(
        reason(req("scale-deployment")),
        "Invalid parameters: Missing required parameter: replicas"
    );
    // A target's bound params cannot be contradicted.
    let d = req("restart-deployment")
        .on("dev/bound")
        .param("namespace", json!("prod"))
        .param("deployment", json!("x"))
        .eval(&p)
        .decision;
    assert_eq!(d.result, Deny);
    assert!(d.reason.starts_with("Invalid parameters: "), "{}", d.reason);
    assert!(d.reason.contains("namespace"), "{}", d.reason);
    check(
        &p,
        req("restart-deployment")
            .on("dev/bound")
            .param("namespace", json!("dev"))
            .param("deployment", json!("x")),
        Allow,
        Some("all"),
    );
}

#[test]
fn rejected_and_required_identity() {
    let p = pdp(&[&file(&[rule("all", 1, "{}", "allow")])]);
    let params = Params::new();
    let d = p
        .evaluate(
            &Request {
                action: "get-pod-logs",
                target: None,
                caller: Caller::Rejected("Token has expired"),
                params: &params,
                ticket_id: None,
            },
            MONDAY_NOON,
        )
        .decision;
    assert_eq!(
        (d.result, d.reason.as_str(), d.caller.as_str()),
        (Deny, "Invalid caller identity: Token has expired", "anonymous")
    );

    let strict = pdp_with(
        &[&file(&[rule("all", 1, "{}", "allow")])],
        PdpConfig { identity_required: true, ..PdpConfig::default() },
    );
    check(&strict, req("get-pod-logs").by("plain-id"), Deny, None);
    check(&strict, req("get-pod-logs"), Deny, None);
    check(&strict, req("get-pod-logs").with_roles("verified", &[], &[]), Allow, Some("all"));
}

#[test]
fn delegation_context_is_recorded() {
    let p = pdp(&[&file(&[rule("all", 1, "{}", "allow")])]);
    let e = req("get-pod-logs").delegated("worker-1", &["orchestrator"]).eval(&p);
    assert_eq!(
        e.context,
        Some(json!({
            "delegation_depth": 1,
            "delegation_chain": [{"agent_id": "orchestrator", "agent_name": ""}],
            "delegated_roles": [],
            "original_caller": "orchestrator",
        }))
    );
    assert_eq!(req("get-pod-logs").by("direct").eval(&p).context, None);
}

#[test]
fn invalid_rules_are_load_errors() {
    let load = |text: &str| {
        let rules = policy::load_sources([(PathBuf::from("policies/bad.yaml"), text)]);
        rules.and_then(|r| {
            Pdp::new(Arc::new(registry()), Arc::new(Inventory::empty()), r, PdpConfig::default())
        })
    };
    let err = |text: &str| load(text).unwrap_err().to_string();
    assert!(err("rules:\n  - {name: r, match: {time_windows: [{start_hour: 24}]}, decision: allow, reason: x}\n")
        .contains("`time_windows.start_hour` must be between 0 and 23, got 24"));
    assert!(err("rules:\n  - {name: r, match: {time_windows: [{days: [7]}]}, decision: allow, reason: x}\n")
        .contains("got 7"));
    assert!(err("rules:\n  - {name: r, match: {time_windows: [{timezone: Mars/Olympus}]}, decision: allow, reason: x}\n")
        .contains("unknown time zone `Mars/Olympus`"));
    assert!(
        err("rules:\n  - {name: r, match: {actions: ['[a-']}, decision: allow, reason: x}\n")
            .contains("invalid action pattern `[a-`")
    );
    let e =
        err("rules:\n  - name: r\n    match: {action: [x]}\n    decision: allow\n    reason: x\n");
    assert!(e.contains("unknown field `action`"), "{e}");
    assert!(e.contains("policies/bad.yaml"), "{e}");
    let e = err("rules:\n  - name: r\n    decision: allow\n    reason: x\n");
    assert!(e.contains("missing field `match`"), "{e}");
    let e = err("rules:\n  - {name: r, match: {}, decision: maybe, reason: x}\n");
    assert!(e.contains("maybe"), "{e}");
}

#[test]
fn analysis_finds_unknown_actions_and_shadowed_rules() {
    let p = pdp(&[&file(&[
        rule("crit", 1000, "{risk_classes: [critical]}", "require_approval"),
        rule(
            "deny-delete-prod",
            900,
            "{actions: [delete-namespace], targets: {environments: [prod], sensitivities: [critical]}}",
            "deny",
        ),
        rule(
            "deny-delete-any-prod",
            800,
            "{actions: [delete-namespace], targets: {environments: [prod]}}",
            "deny",
        ),
        rule("typo", 10, "{actions: [restart-deploymnet]}", "allow"),
    ])]);
    let warnings: Vec<String> = p.analyse().iter().map(|w| w.to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("`deny-delete-prod`")
            && w.contains("unreachable")
            && w.contains("`crit`")),
        "{warnings:#?}"
    );
    // prod/public makes delete-namespace only high risk there, so this one is reachable.
    assert!(!warnings.iter().any(|w| w.contains("`deny-delete-any-prod`")), "{warnings:#?}");
    assert!(
        warnings.iter().any(|w| w.contains("`restart-deploymnet` matches no registered action")),
        "{warnings:#?}"
    );
}

/// A direct, unindexed evaluation: the reference the index must agree with.
fn linear_first_match(p: &Pdp, r: &Req<'_>) -> Option<String> {
    let e = r.eval(p);
    if e.decision.reason.starts_with("Unknown action") || e.decision.reason.starts_with("Invalid") {
        return None;
    }
    let target = r.target.and_then(|t| p.inventory().get(t));
    let facts = crate::compiled::Facts {
        target,
        caller: r.caller.as_ref(),
        effective_risk: e.decision.effective_risk,
        ticket_id: r.ticket,
        now: r.at,
        utc_hour_day: crate::compiled::utc_hour_day(r.at),
    };
    p.compiled_rules()
        .iter()
        .find(|rule| {
            rule.actions.iter().any(|pat| {
                crate::compiled::action_glob(pat).unwrap().compile_matcher().is_match(r.action)
            }) && rule.matches(&facts)
        })
        .map(|rule| rule.name.clone())
}

mod index_property {
    use super::*;
    use proptest::prelude::*;

    fn arb_rule() -> impl Strategy<Value = String> {
        let actions = prop::sample::select(vec![
            "['*']",
            "[restart-deployment]",
            "[scale-*]",
            "['*-node', get-pod-logs]",
            "[delete-namespace]",
            "[]",
        ]);
        let targets = prop::sample::select(vec![
            "",
            "targets: {environments: [dev]}, ",
            "targets: {environments: [prod, staging]}, ",
            "targets: {}, ",
            "targets: {labels: {team: a}}, ",
        ]);
        let callers = prop::sample::select(vec![
            "",
            "callers: {agent_ids: [a1]}, ",
            "callers: {agent_ids: [a2, a1]}, ",
            "callers: {roles: [r]}, ",
        ]);
        let risk = prop::sample::select(vec![
            "",
            "risk_classes: [critical], ",
            "risk_classes: [low, medium], ",
        ]);
        let decision = prop::sample::select(vec!["allow", "deny", "require_approval"]);
        (actions, targets, callers, risk, decision, -3i64..3, 0u32..1000).prop_map(
            |(a, t, c, r, d, pri, id)| {
                format!("  - {{name: r{id}, priority: {pri}, match: {{{t}{c}{r}actions: {a}}}, decision: {d}, reason: x}}\n")
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn index_agrees_with_linear_scan(
            rules in prop::collection::vec(arb_rule(), 0..25),
            action in prop::sample::select(vec!["restart-deployment", "scale-deployment", "drain-node", "get-pod-logs", "delete-namespace", "nope"]),
            target in prop::sample::select(vec![None, Some("dev/app"), Some("staging/app"), Some("prod/app"), Some("zzz")]),
            caller in prop::sample::select(vec![None, Some("a1"), Some("a2"), Some("a3")]),
            roles in any::<bool>(),
        ) {
            let p = pdp(&[&format!("rules:\n{}", rules.concat())]);
            let mut r = req(action).param("replicas", json!(1));
            if action != "scale-deployment" { r.params.clear(); }
            if action == "restart-deployment" {
                r = r.param("namespace", json!("n")).param("deployment", json!("d"));
            }
            r.target = target;
            if let Some(c) = caller {
                r = if roles { r.with_roles(c, &["r"], &[]) } else { r.by(c) };
            }
            let indexed = r.eval(&p).decision.policy_matched;
            prop_assert_eq!(indexed, linear_first_match(&p, &r));
        }
    }
}

/// A caller delegated from `orchestrator`, limited to `actions` and `environments`.
fn scoped_caller(
    actions: Option<&[&str]>,
    environments: Option<&[agent_safe_core::Environment]>,
) -> CallerIdentity {
    let mut c = req("x").delegated("worker-1", &["orchestrator"]).caller.unwrap();
    c.delegation_scope = Some(agent_safe_core::DelegationScope {
        actions: actions.map(|a| a.iter().map(|s| s.to_string()).collect()),
        environments: environments.map(<[_]>::to_vec),
    });
    c
}

#[test]
fn delegation_scope_is_enforced_before_any_rule() {
    use agent_safe_core::Environment::{Dev, Prod, Staging};
    let p = pdp(&[&file(&[
        rule("allow-orchestrated", 2000, "{callers: {delegated_from: [orchestrator]}}", "allow"),
        rule("allow-everything", 1000, "{}", "allow"),
    ])]);
    let cases: Vec<(&str, CallerIdentity, Req<'_>, Result<(), &str>)> = vec![
        (
            "inside the scope",
            scoped_caller(Some(&["get-*", "restart-deployment"]), Some(&[Dev, Staging])),
            req("restart-deployment").on("staging/app"),
            Ok(()),
        ),
        (
            "glob inside the scope",
            scoped_caller(Some(&["get-*"]), Some(&[Dev])),
            req("get-pod-logs").on("dev/app"),
            Ok(()),
        ),
        (
            "action outside the scope",
            scoped_caller(Some(&["get-*", "restart-deployment"]), None),
            req("delete-namespace").on("dev/app"),
            Err("Delegation scope does not allow action `delete-namespace`"),
        ),
        (
            "environment outside the scope",
            scoped_caller(None, Some(&[Dev, Staging])),
            req("restart-deployment").on("prod/app"),
            Err("Delegation scope does not allow environment `prod`"),
        ),
        (
            "unknown target under an environment scope",
            scoped_caller(None, Some(&[Dev])),
            req("restart-deployment").on("dev/not-in-inventory"),
            Err("Delegation scope does not allow target `dev/not-in-inventory`: it is not in the \
                 inventory, so its environment is unknown"),
        ),
        (
            "no target under an environment scope",
            scoped_caller(None, Some(&[Dev, Staging, Prod])),
            req("restart-deployment"),
            Err("Delegation scope does not allow a request without a target"),
        ),
        (
            "no target under an action-only scope",
            scoped_caller(Some(&["restart-*"]), None),
            req("restart-deployment"),
            Ok(()),
        ),
        (
            "empty action list allows nothing",
            scoped_caller(Some(&[]), None),
            req("get-pod-logs").on("dev/app"),
            Err("Delegation scope does not allow action `get-pod-logs`"),
        ),
        (
            "empty environment list allows nothing",
            scoped_caller(None, Some(&[])),
            req("get-pod-logs").on("dev/app"),
            Err("Delegation scope does not allow environment `dev`"),
        ),
        (
            "alternatives and classes",
            scoped_caller(Some(&["{scale,restart}-deployment", "get-[ab]*"]), None),
            req("scale-deployment").on("dev/app").param("replicas", json!(3)),
            Ok(()),
        ),
        (
            "fnmatch is case-sensitive",
            scoped_caller(Some(&["Get-*"]), None),
            req("get-pod-logs").on("dev/app"),
            Err("Delegation scope does not allow action `get-pod-logs`"),
        ),
        (
            "a pattern that does not compile matches nothing",
            scoped_caller(Some(&["get-[pod"]), None),
            req("get-pod-logs").on("dev/app"),
            Err("Delegation scope does not allow action `get-pod-logs`"),
        ),
        (
            "outside the scope comes before unknown action",
            scoped_caller(Some(&["get-*"]), None),
            req("drop-database").on("dev/app"),
            Err("Delegation scope does not allow action `drop-database`"),
        ),
        (
            "inside the scope, the usual system denies follow",
            scoped_caller(Some(&["*"]), None),
            req("scale-deployment").on("dev/app").param("replicas", json!(500)),
            Err("Invalid parameters: Parameter 'replicas': value 500 exceeds maximum 100.0"),
        ),
    ];
    for (name, caller, mut r, expected) in cases {
        r.caller = Some(caller);
        let d = r.eval(&p).decision;
        match expected {
            Ok(()) => assert_eq!(
                (d.result, d.policy_matched.as_deref()),
                (Allow, Some("allow-orchestrated")),
                "case {name}: {}",
                d.reason
            ),
            Err(reason) => {
                assert_eq!((d.result, d.reason.as_str()), (Deny, reason), "case {name}");
                assert_eq!(d.policy_matched, None, "case {name}: no rule was consulted");
            }
        }
    }

    // The scope is recorded with the delegation context of the audit event.
    let mut r = req("get-pod-logs").on("dev/app");
    r.caller = Some(scoped_caller(Some(&["get-*"]), Some(&[Dev])));
    assert_eq!(
        r.eval(&p).context.unwrap()["delegation_scope"],
        json!({"actions": ["get-*"], "environments": ["dev"]})
    );
    // Without a scope, the context has the Python shape (no `delegation_scope` key).
    let plain = req("get-pod-logs").on("dev/app").delegated("worker-1", &["orchestrator"]);
    assert!(plain.eval(&p).context.unwrap().get("delegation_scope").is_none());
}

#[test]
fn compiled_scope_patterns_are_reused_per_pattern_not_per_action() {
    let p = pdp(&[&file(&[rule("all", 1, "{}", "allow")])]);
    let caller = scoped_caller(Some(&["{get,scale}-[dp]*", "drain-[x"]), None);
    let cases = [
        ("get-pod-logs", Allow),
        ("restart-deployment", Deny),
        ("scale-deployment", Allow),
        ("drain-node", Deny),
        ("get-pod-logs", Allow),
        ("drain-node", Deny),
    ];
    for (action, expected) in cases {
        let mut r = req(action).on("dev/app");
        if action == "scale-deployment" {
            r = r.param("replicas", json!(1));
        }
        r.caller = Some(caller.clone());
        let d = r.eval(&p).decision;
        assert_eq!(d.result, expected, "{action}: {}", d.reason);
    }
}

#[test]
fn ticket_pattern_needs_a_whole_match() {
    let p = pdp(&[&file(&[
        rule(
            "well-formed",
            3,
            "{actions: [restart-deployment], ticket_pattern: 'CHG-[0-9]+'}",
            "allow",
        ),
        rule("anchored", 2, "{actions: [get-pod-logs], ticket_pattern: '^INC-[0-9]{3}$'}", "allow"),
        rule("fallback", 1, "{}", "require_approval"),
    ])]);
    let cases: &[(&str, Option<&str>, DecisionResult, &str)] = &[
        ("restart-deployment", Some("CHG-123"), Allow, "well-formed"),
        // Not a whole match: a prefix, a suffix or an embedded id is not enough.
        ("restart-deployment", Some("CHG-123x"), RequireApproval, "fallback"),
        ("restart-deployment", Some("xCHG-123"), RequireApproval, "fallback"),
        ("restart-deployment", Some("see CHG-1 and CHG-2"), RequireApproval, "fallback"),
        ("restart-deployment", Some("chg-123"), RequireApproval, "fallback"),
        ("restart-deployment", Some("CHG-"), RequireApproval, "fallback"),
        // No ticket, or an empty one, never matches a pattern.
        ("restart-deployment", None, RequireApproval, "fallback"),
        ("restart-deployment", Some(""), RequireApproval, "fallback"),
        // Explicit anchors are fine too.
        ("get-pod-logs", Some("INC-042"), Allow, "anchored"),
        ("get-pod-logs", Some("INC-0420"), RequireApproval, "fallback"),
        ("get-pod-logs", Some("INC-042\n"), RequireApproval, "fallback"),
    ];
    for &(action, ticket, result, policy) in cases {
        let mut r = req(action);
        r.ticket = ticket;
        let d = r.eval(&p).decision;
        assert_eq!(
            (d.result, d.policy_matched.as_deref()),
            (result, Some(policy)),
            "{action} with ticket {ticket:?}"
        );
    }
}

#[test]
fn ticket_pattern_combines_with_require_ticket_and_analysis() {
    // `require_ticket: false` and a pattern can never both hold: the rule matches nothing.
    let p = pdp(&[&file(&[
        rule("contradiction", 2, "{require_ticket: false, ticket_pattern: '.*'}", "allow"),
        rule("fallback", 1, "{}", "deny"),
    ])]);
    check(&p, req("get-pod-logs"), Deny, Some("fallback"));
    check(&p, req("get-pod-logs").ticket("CHG-1"), Deny, Some("fallback"));
    // A rule with a pattern does not make a later rule without one unreachable.
    let p = pdp(&[&file(&[
        rule(
            "with-change",
            20,
            "{actions: [restart-deployment], ticket_pattern: 'CHG-[0-9]+'}",
            "allow",
        ),
        rule("without", 10, "{actions: [restart-deployment]}", "require_approval"),
        rule(
            "same-pattern",
            5,
            "{actions: [restart-deployment], ticket_pattern: 'CHG-[0-9]+'}",
            "deny",
        ),
    ])]);
    let warnings: Vec<String> = p.analyse().iter().map(|w| w.to_string()).collect();
    assert!(!warnings.iter().any(|w| w.contains("`without`")), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("`same-pattern`")), "{warnings:#?}");
}

#[test]
fn invalid_ticket_patterns_are_load_errors() {
    let load = |pattern: &str| {
        let text = format!(
            "rules:\n  - {{name: r, match: {{ticket_pattern: '{pattern}'}}, decision: allow, reason: x}}\n"
        );
        let rules = policy::load_sources([(PathBuf::from("policies/bad.yaml"), text.as_str())]);
        rules
            .and_then(|r| {
                Pdp::new(
                    Arc::new(registry()),
                    Arc::new(Inventory::empty()),
                    r,
                    PdpConfig::default(),
                )
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    #[track_caller]
    fn check_err(got: Result<(), String>, expected: &str) {
        let e = got.unwrap_err();
        assert!(e.contains(expected), "{e}");
        assert!(e.starts_with("policies/bad.yaml: rule #0 `r`: "), "{e}");
    }
    check_err(load("CHG-[0-9"), "invalid `ticket_pattern` `CHG-[0-9`: unclosed character class");
    // An unbalanced group cannot escape the anchoring wrapper.
    check_err(load("a)|(b"), "invalid `ticket_pattern` `a)|(b`: unopened group");
    assert_eq!(load("^CHG-[0-9]+$"), Ok(()));
}

#[test]
fn target_types_are_enforced() {
    let inventory = Inventory::from_source(
        &PathBuf::from("inventory.yaml"),
        b"targets:\n  - {id: dev/node-1, type: k8s-node, environment: dev, sensitivity: public}\n",
    )
    .unwrap();
    let rules = policy::load_sources(vec![(
        PathBuf::from("policies/allow.yaml"),
        "rules:\n  - name: allow-all\n    match: {}\n    decision: allow\n    reason: ok\n",
    )])
    .unwrap();
    let pdp =
        Pdp::new(Arc::new(registry()), Arc::new(inventory), rules, PdpConfig::default()).unwrap();
    let ask = |action: &str, target: &str| {
        pdp.evaluate(
            &Request {
                action,
                target: Some(target),
                caller: Caller::Anonymous,
                params: &Params::new(),
                ticket_id: None,
            },
            MONDAY_NOON,
        )
        .decision
    };
    let denied = ask("get-pod-logs", "dev/node-1");
    assert_eq!(denied.result, DecisionResult::Deny);
    assert_eq!(
        denied.reason,
        "Target type mismatch: action `get-pod-logs` applies to k8s-pod, k8s-deployment, \
         k8s-namespace, target `dev/node-1` is a `k8s-node`"
    );
    assert_eq!(denied.policy_matched, None, "decided before any rule");
    assert_eq!(ask("drain-node", "dev/node-1").result, DecisionResult::Allow);
    // A target outside the inventory has no known type: the rules decide (here: allow-all).
    assert_eq!(ask("get-pod-logs", "dev/unlisted").result, DecisionResult::Allow);
}
