//! Property: no policy, action or inventory document makes loading or evaluation panic.
//! Documents are generated from a grammar that mixes valid shapes with wrong types, odd
//! values and unknown keys, so both the error paths and the evaluation paths run.

use std::path::PathBuf;
use std::sync::Arc;

use agent_safe_core::{CallerIdentity, Params};
use agent_safe_pdp::{Caller, Pdp, PdpConfig, Request, policy};
use agent_safe_registry::{Inventory, Registry};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;

fn scalar() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-1",
        "23",
        "24",
        "1e309",
        "true",
        "yes",
        "null",
        "~",
        "''",
        "\"x\"",
        "'*'",
        "'[!a]'",
        "'['",
        "dev",
        "prod",
        "critical",
        "low",
        "Europe/Berlin",
        "Mars/Olympus",
        "[]",
        "{}",
        "[0, 6, 7]",
        "[dev, staging]",
        "[critical]",
        "{team: a}",
        "'\\u0000'",
        "9999999999999999999999",
    ])
    .prop_map(str::to_owned)
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "actions",
        "targets",
        "callers",
        "risk_classes",
        "time_windows",
        "require_ticket",
        "environments",
        "sensitivities",
        "types",
        "labels",
        "agent_ids",
        "roles",
        "groups",
        "delegated_from",
        "max_delegation_depth",
        "require_delegation",
        "days",
        "start_hour",
        "end_hour",
        "timezone",
        "bogus",
    ])
}

/// A flow mapping of up to three keys, nested up to two levels.
fn mapping(depth: u32) -> BoxedStrategy<String> {
    let leaf = scalar().boxed();
    let value =
        if depth == 0 { leaf } else { prop_oneof![3 => scalar(), 1 => mapping(depth - 1)].boxed() };
    prop::collection::vec((key(), value), 0..4)
        .prop_map(|kv| {
            let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", body.join(", "))
        })
        .boxed()
}

/// Match conditions: a few distinct well-formed ones (with edge values), sometimes a broken one.
fn conditions() -> impl Strategy<Value = Vec<String>> {
    let well_formed: Vec<(&str, &str)> = vec![
        ("actions", "actions: ['*']"),
        ("actions", "actions: [act]"),
        ("actions", "actions: ['a?t', '[!x]*']"),
        ("actions", "actions: []"),
        ("targets", "targets: {environments: [dev, prod]}"),
        ("targets", "targets: {}"),
        ("targets", "targets: {labels: {team: a}}"),
        ("targets", "targets: {sensitivities: [critical], types: [k8s-deployment]}"),
        ("targets", "targets: {environments: []}"),
        ("callers", "callers: {roles: [r]}"),
        ("callers", "callers: {}"),
        ("callers", "callers: {agent_ids: [a, b]}"),
        ("callers", "callers: {max_delegation_depth: 0, require_delegation: false}"),
        ("callers", "callers: {delegated_from: [x]}"),
        ("risk_classes", "risk_classes: [critical, high]"),
        ("risk_classes", "risk_classes: []"),
        ("require_ticket", "require_ticket: yes"),
        ("require_ticket", "require_ticket: false"),
        ("time_windows", "time_windows: [{start_hour: 22, end_hour: 2}]"),
        ("time_windows", "time_windows: [{days: [0, 6]}]"),
        ("time_windows", "time_windows: [{timezone: Europe/Berlin, start_hour: 0, end_hour: 23}]"),
        ("time_windows", "time_windows: []"),
    ];
    let valid = prop::sample::subsequence(well_formed, 0..4).prop_map(|picked| {
        let mut seen = std::collections::HashSet::new();
        picked
            .into_iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(_, c)| c.to_owned())
            .collect::<Vec<_>>()
    });
    prop_oneof![
        18 => valid,
        1 => (key(), scalar()).prop_map(|(k, v)| vec![format!("{k}: {v}")]),
        1 => mapping(2).prop_map(|m| vec![format!("targets: {m}")]),
    ]
}

fn rule() -> impl Strategy<Value = String> {
    (
        0u32..5,
        conditions(),
        prop_oneof![30 => prop::sample::select(vec!["allow", "deny", "require_approval"]), 1 => Just("maybe")],
        prop_oneof![20 => (-3i64..3).prop_map(|p| p.to_string()), 1 => scalar()],
    )
        .prop_map(|(i, conds, d, p)| {
            format!("  - {{name: r{i}, priority: {p}, match: {{{}}}, decision: {d}, reason: x}}\n", conds.join(", "))
        })
}

fn target() -> impl Strategy<Value = String> {
    (
        0u32..1_000_000,
        prop_oneof![20 => prop::sample::select(vec!["dev", "staging", "prod"]), 1 => Just("qa")],
        prop_oneof![20 => prop::sample::select(vec!["public", "internal", "restricted", "critical"]), 1 => Just("secret")],
        prop::sample::select(vec!["{}", "{}", "{p: abc}", "{p: 5}", "{q: [1]}"]),
    )
        .prop_map(|(n, env, sens, params)| {
            let id = format!("{env}/t{n}");
            format!("  - {{id: {id}, type: k8s-deployment, environment: {env}, sensitivity: {sens}, labels: {{team: a}}, params: {params}}}\n")
        })
}

fn action() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "low", "medium", "high", "critical", "low", "medium", "high", "critical", "extreme",
        ]),
        prop::sample::select(vec!["string", "integer", "number", "boolean", "array", "object"]),
        prop::sample::select(vec![
            "{}",
            "{min_value: 0, max_value: 10}",
            "{pattern: '^[a-z]+$'}",
            "{pattern: '(?=x)'}",
            "{enum: [a, b]}",
            "{enum: [a, '5', 'True']}",
            "{min_length: 1, max_length: 3}",
            "{enum: [1, 2]}",
        ]),
    )
        .prop_map(|(risk, ty, c)| {
            format!(
                "name: act\nversion: 1.0.0\ndescription: d\nrisk_class: {risk}\ntarget_types: [t]\n\
                 parameters:\n  - {{name: p, type: {ty}, required: false, constraints: {c}}}\n"
            )
        })
}

fn params() -> impl Strategy<Value = Params> {
    prop::sample::select(vec![
        json!({}),
        json!({"p": "abc"}),
        json!({"p": 5}),
        json!({"p": 5.5}),
        json!({"p": true}),
        json!({"p": null}),
        json!({"p": [1, "x"]}),
        json!({"p": {"nested": 1}}),
        json!({"q": 1}),
    ])
    .prop_map(|v| v.as_object().cloned().unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn loading_and_evaluating_never_panics(
        rules in prop::collection::vec(rule(), 0..6),
        targets in prop::collection::vec(target(), 0..4),
        action_doc in action(),
        params in params(),
        requested in prop::sample::select(vec![None, Some(0usize), Some(1), Some(2), Some(99)]),
        at in 0i64..4_000_000_000,
    ) {
        let policies = format!("rules:\n{}", rules.concat());
        let inventory = format!("targets:\n{}", targets.concat());
        let Ok(registry) = Registry::from_sources([(PathBuf::from("actions/act.yaml"), action_doc.as_bytes())]) else { return Ok(()) };
        let Ok(inventory) = Inventory::from_source(&PathBuf::from("inventory.yaml"), inventory.as_bytes()) else { return Ok(()) };
        let ids: Vec<String> = inventory.iter().map(|t| t.id.to_string()).collect();
        let requested = requested.map(|i| ids.get(i).map_or("nope", String::as_str));
        let Ok(rules) = policy::load_sources([(PathBuf::from("policies/p.yaml"), policies.as_str())]) else { return Ok(()) };
        let Ok(pdp) = Pdp::new(Arc::new(registry), Arc::new(inventory), rules, PdpConfig::default()) else { return Ok(()) };
        let caller = CallerIdentity { roles: vec!["r".into()], ..CallerIdentity::unverified("a") };
        let now = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
        for who in [Caller::Anonymous, Caller::Unverified(&caller), Caller::Verified(&caller), Caller::Rejected("bad token")] {
            let d = pdp.evaluate(&Request { action: "act", target: requested, caller: who, params: &params, ticket_id: Some("CHG-1") }, now).decision;
            prop_assert!(!d.reason.is_empty());
        }
        let _ = pdp.analyse();
    }
}

/// The grammar must produce documents that load often enough for evaluation to be exercised.
#[test]
fn grammar_reaches_evaluation() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy =
        (prop::collection::vec(rule(), 0..6), prop::collection::vec(target(), 0..4), action());
    let mut loaded = 0;
    for _ in 0..400 {
        let (rules, targets, action_doc) = strategy.new_tree(&mut runner).unwrap().current();
        let a = Registry::from_sources([(PathBuf::from("a.yaml"), action_doc.as_bytes())]);
        let i = Inventory::from_source(
            &PathBuf::from("i.yaml"),
            format!("targets:\n{}", targets.concat()).as_bytes(),
        );
        let p = policy::load_sources([(
            PathBuf::from("p.yaml"),
            format!("rules:\n{}", rules.concat()).as_str(),
        )]);
        if std::env::var_os("DEBUG_GRAMMAR").is_some() {
            eprintln!(
                "{:?} | {:?} | {:?}",
                a.as_ref().err().map(ToString::to_string),
                i.as_ref().err().map(ToString::to_string),
                p.as_ref().err().map(ToString::to_string)
            );
        }
        let ok = a.is_ok() && i.is_ok() && p.is_ok();
        loaded += usize::from(ok);
    }
    assert!(loaded >= 100, "only {loaded} of 400 generated document sets load");
}
