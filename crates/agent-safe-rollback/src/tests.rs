//! Planner tests: every catalog action with `rollback_params` against a recorded before-state,
//! missing sources, the error cases over the whole catalog, and the convention mapping.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use agent_safe_audit::state::{CaptureSubject, StateCapture, StateKey, redact_state};
use agent_safe_core::{AuditEvent, AuditId, DecisionResult, EventType, RiskClass, Secret};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;

const AT: OffsetDateTime = datetime!(2026-02-24 12:00 UTC);

fn catalog() -> Registry {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
    Registry::load_dir(&dir).unwrap()
}

fn object(v: Value) -> Params {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn decision(action: &str, params: Value) -> AuditEvent {
    AuditEvent {
        event_id: AuditId::new("evt-0123456789ab"),
        timestamp: AT,
        event_type: EventType::Decision,
        action: action.into(),
        target: "prod/thing".into(),
        caller: "deploy-bot".into(),
        params: object(params),
        decision: DecisionResult::Allow,
        reason: "ok".into(),
        policy_matched: Some("allow".into()),
        risk_class: RiskClass::Medium,
        effective_risk: RiskClass::High,
        correlation_id: None,
        ticket_id: Some("CHG-1".into()),
        context: None,
    }
}

/// A capture as the SDK records it: sensitive state fields digested.
fn capture(registry: &Registry, action: &str, before: Value) -> StateCapture {
    let sensitive: Vec<&str> = registry.get(action).map_or(vec![], |a| {
        a.definition()
            .state_fields
            .iter()
            .filter(|f| f.sensitive)
            .map(|f| f.name.as_str())
            .collect()
    });
    let key = StateKey::new(&Secret::new([1; 32]));
    let before = redact_state(&object(before), &sensitive, Some(&key));
    let subject = CaptureSubject {
        audit_id: AuditId::new("evt-0123456789ab"),
        action: action.into(),
        target: "prod/thing".into(),
        caller: "deploy-bot".into(),
    };
    StateCapture::new(subject, before, StateMap::new(), AT, 0.0, vec![])
}

struct Case {
    action: &'static str,
    params: Value,
    before: Value,
    rollback_action: &'static str,
    rollback_params: Value,
    warnings: &'static [&'static str],
}

/// One case per catalog action with `rollback_params`: realistic params and before-state,
/// and the plan expected from them.
fn catalog_cases() -> Vec<Case> {
    let ns = "payments";
    vec![
        Case {
            action: "cordon-node",
            params: json!({"node": "node-1.eu"}),
            before: json!({"unschedulable": false}),
            rollback_action: "uncordon-node",
            rollback_params: json!({"node": "node-1.eu"}),
            warnings: &[],
        },
        Case {
            action: "uncordon-node",
            params: json!({"node": "node-1.eu"}),
            before: json!({"unschedulable": true}),
            rollback_action: "cordon-node",
            rollback_params: json!({"node": "node-1.eu"}),
            warnings: &[],
        },
        Case {
            action: "create-namespace",
            params: json!({"namespace": "team-a"}),
            before: json!({"exists": false}),
            rollback_action: "delete-namespace",
            rollback_params: json!({"namespace": "team-a"}),
            warnings: &[],
        },
        Case {
            action: "ec2-start-instance",
            params: json!({"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}),
            before: json!({"state": "stopped"}),
            rollback_action: "ec2-stop-instance",
            rollback_params: json!({"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}),
            warnings: &[],
        },
        Case {
            action: "ec2-stop-instance",
            params: json!({"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}),
            before: json!({"state": "running", "instance_type": "t3.micro"}),
            rollback_action: "ec2-start-instance",
            rollback_params: json!({"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}),
            warnings: &[],
        },
        Case {
            action: "ecs-scale-service",
            params: json!({"cluster": "prod", "service": "api", "desired_count": 10, "region": "us-east-1"}),
            before: json!({"desired_count": 4, "running_count": 4}),
            rollback_action: "ecs-scale-service",
            rollback_params: json!({"cluster": "prod", "desired_count": 4, "region": "us-east-1", "service": "api"}),
            warnings: &[],
        },
        Case {
            action: "ecs-update-service",
            params: json!({"cluster": "prod", "service": "api", "force_new_deployment": true, "region": "us-east-1"}),
            before: json!({"desired_count": 2, "running_count": 2, "status": "ACTIVE"}),
            rollback_action: "ecs-update-service",
            rollback_params: json!({"cluster": "prod", "desired_count": 2, "region": "us-east-1", "service": "api"}),
            warnings: &[],
        },
        Case {
            action: "iam-attach-role-policy",
            params: json!({"role_name": "ci-role", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess", "region": "us-east-1"}),
            before: json!({"attached_policies": []}),
            rollback_action: "iam-detach-role-policy",
            rollback_params: json!({"policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess", "region": "us-east-1", "role_name": "ci-role"}),
            warnings: &[],
        },
        Case {
            action: "iam-detach-role-policy",
            params: json!({"role_name": "ci-role", "policy_arn": "arn:aws:iam::123456789012:policy/deploy", "region": "us-east-1"}),
            before: json!({"attached_policies": ["arn:aws:iam::123456789012:policy/deploy"]}),
            rollback_action: "iam-attach-role-policy",
            rollback_params: json!({"policy_arn": "arn:aws:iam::123456789012:policy/deploy", "region": "us-east-1", "role_name": "ci-role"}),
            warnings: &[],
        },
        Case {
            // The environment is sensitive: its before-value is only a digest, so the plan
            // leaves it out (the param itself is optional) and says so.
            action: "lambda-update-function-config",
            params: json!({"function_name": "resize", "region": "eu-west-1", "memory_size": 1024,
                           "environment_variables": "[redacted]"}),
            before: json!({"memory_size": 512, "timeout": 30, "runtime": "python3.12",
                           "environment_variables": "{\"DB_PASSWORD\": \"hunter2\"}"}),
            rollback_action: "lambda-update-function-config",
            rollback_params: json!({"function_name": "resize", "memory_size": 512, "region": "eu-west-1", "timeout": 30}),
            warnings: &[
                "Source 'before_state.environment_variables' is a sensitive state field, recorded only as a digest; set it by hand",
            ],
        },
        Case {
            action: "rollout-undo",
            params: json!({"namespace": ns, "deployment": "api"}),
            before: json!({"revision": 7, "images": {"api": "registry.example/api:1.4"}}),
            rollback_action: "rollout-undo",
            rollback_params: json!({"deployment": "api", "namespace": ns}),
            warnings: &[],
        },
        Case {
            action: "s3-put-bucket-policy",
            params: json!({"bucket": "audit-logs", "policy": "{\"Version\": \"2012-10-17\", \"Statement\": []}", "region": "eu-west-1"}),
            before: json!({"policy": "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Deny\"}]}"}),
            rollback_action: "s3-put-bucket-policy",
            rollback_params: json!({"bucket": "audit-logs", "policy": "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Deny\"}]}", "region": "eu-west-1"}),
            warnings: &[],
        },
        Case {
            action: "scale-deployment",
            params: json!({"namespace": ns, "deployment": "api", "replicas": 10}),
            before: json!({"replicas": 3, "available_replicas": 3, "ready_replicas": 2}),
            rollback_action: "scale-deployment",
            rollback_params: json!({"deployment": "api", "namespace": ns, "replicas": 3}),
            warnings: &[],
        },
        Case {
            action: "scale-hpa",
            params: json!({"namespace": ns, "hpa": "api", "min_replicas": 5, "max_replicas": 50}),
            before: json!({"min_replicas": 2, "max_replicas": 10, "current_replicas": 4}),
            rollback_action: "scale-hpa",
            rollback_params: json!({"hpa": "api", "max_replicas": 10, "min_replicas": 2, "namespace": ns}),
            warnings: &[],
        },
        Case {
            action: "update-configmap",
            params: json!({"namespace": ns, "configmap": "app-config", "key": "LOG_LEVEL", "value": "debug"}),
            before: json!({"data": {"LOG_LEVEL": "info"}, "previous_value": "info"}),
            rollback_action: "update-configmap",
            rollback_params: json!({"configmap": "app-config", "key": "LOG_LEVEL", "namespace": ns, "value": "info"}),
            warnings: &[],
        },
        Case {
            action: "update-hpa-limits",
            params: json!({"namespace": ns, "hpa": "api", "target_cpu_percent": 80}),
            before: json!({"target_cpu_percent": 60, "target_memory_percent": 70}),
            rollback_action: "update-hpa-limits",
            rollback_params: json!({"hpa": "api", "namespace": ns, "target_cpu_percent": 60, "target_memory_percent": 70}),
            warnings: &[],
        },
        Case {
            action: "update-image",
            params: json!({"namespace": ns, "deployment": "api", "container": "web", "image": "nginx:1.27"}),
            before: json!({"images": {"web": "nginx:1.26"}, "revision": 4}),
            rollback_action: "rollout-undo",
            rollback_params: json!({"deployment": "api", "namespace": ns}),
            warnings: &[],
        },
    ]
}

#[track_caller]
fn check(registry: &Registry, case: &Case) {
    let d = decision(case.action, case.params.clone());
    let c = capture(registry, case.action, case.before.clone());
    let plan = plan(registry, &d, &c, AT).unwrap_or_else(|e| panic!("{}: {e}", case.action));
    assert_eq!(plan.rollback_action, case.rollback_action, "{}", case.action);
    assert_eq!(
        Value::Object(plan.rollback_params.clone()),
        case.rollback_params,
        "{}",
        case.action
    );
    assert_eq!(plan.warnings, case.warnings, "{}", case.action);
    // The other fields come from the decision and the capture.
    assert_eq!(plan.original_audit_id, "evt-0123456789ab");
    assert_eq!(
        (plan.original_action.as_str(), plan.original_target.as_str()),
        (case.action, "prod/thing")
    );
    assert_eq!(
        (plan.rollback_target.as_str(), plan.rollback_caller.as_str()),
        ("prod/thing", "deploy-bot")
    );
    assert_eq!(plan.original_caller, "deploy-bot");
    assert_eq!(plan.original_params, d.params);
    assert_eq!(plan.before_state, c.before_state);
    assert_eq!(plan.generated_at, AT);
    // Every plan is a valid request for the rollback action.
    let rollback = registry.get(case.rollback_action).unwrap();
    assert_eq!(
        rollback.validate_params(&plan.rollback_params),
        Vec::<String>::new(),
        "{}",
        case.action
    );
}

#[test]
fn every_catalog_action_with_rollback_params_plans_from_its_before_state() {
    let registry = catalog();
    let cases = catalog_cases();
    let declared: BTreeSet<&str> = registry
        .iter()
        .filter(|a| !a.definition().rollback_params.is_empty())
        .map(|a| a.name().as_str())
        .collect();
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.action).collect();
    assert_eq!(covered, declared, "one case per catalog action with rollback_params");
    for case in &cases {
        check(&registry, case);
    }
}

#[test]
fn missing_sources_are_warnings_and_left_out() {
    let registry = catalog();
    for case in catalog_cases() {
        let def = registry.get(case.action).unwrap().definition();
        // Nothing recorded: every declared source is missing.
        let d = decision(case.action, json!({}));
        let c = capture(&registry, case.action, json!({}));
        let plan = plan(&registry, &d, &c, AT).unwrap();
        let expected: Vec<String> = def
            .rollback_params
            .values()
            .map(|s| match s.source.split_once('.') {
                Some(("params", _)) => {
                    format!("Source '{}' not found in original params", s.source)
                }
                _ => format!("Source '{}' not found in before_state", s.source),
            })
            .collect();
        assert_eq!(plan.warnings, expected, "{}", case.action);
        assert!(plan.rollback_params.is_empty(), "{}", case.action);
    }
    // A present key counts even with a null, 0 or "" value (as in Python).
    let registry = catalog();
    let d =
        decision("scale-deployment", json!({"namespace": "", "deployment": null, "replicas": 1}));
    let c = capture(&registry, "scale-deployment", json!({"replicas": 0}));
    let p = plan(&registry, &d, &c, AT).unwrap();
    assert_eq!(
        Value::Object(p.rollback_params),
        json!({"deployment": null, "namespace": "", "replicas": 0})
    );
    assert!(p.warnings.is_empty());
}

fn custom(actions: &[&str]) -> Registry {
    let sources: Vec<(PathBuf, Vec<u8>)> = actions
        .iter()
        .enumerate()
        .map(|(i, yaml)| {
            let text = format!(
                "version: 1.0.0\ndescription: d\nrisk_class: medium\ntarget_types: [x]\n{yaml}"
            );
            (PathBuf::from(format!("a{i}.yaml")), text.into_bytes())
        })
        .collect();
    Registry::from_sources(sources.iter().map(|(p, t)| (p.clone(), t.as_slice()))).unwrap()
}

#[test]
fn bad_sources_are_warnings() {
    // The registry refuses such sources at load; the planner still copes with them.
    let r = custom(&["name: act\nparameters:\n  - {name: a, type: string}\n"]);
    let action = r.get("act").unwrap();
    let d = decision("act", json!({"a": "v"}));
    let before = object(json!({"x": 1, "x.y": 2}));
    let cases: &[(&str, Option<Value>, Option<&str>)] = &[
        ("params.a", Some(json!("v")), None),
        // Split at the first dot: `before_state.x.y` looks up the key `x.y`.
        ("before_state.x.y", Some(json!(2)), None),
        ("nodot", None, Some("Invalid source path: 'nodot' (expected 'namespace.field')")),
        ("state.x", None, Some("Unknown source namespace: 'state'")),
        ("params.", None, Some("Source 'params.' not found in original params")),
    ];
    for (source, value, warning) in cases {
        let mut warnings = Vec::new();
        assert_eq!(&resolve(source, action, &d, &before, &mut warnings), value, "{source}");
        assert_eq!(warnings.first().map(String::as_str), *warning, "{source}");
    }
}

#[test]
fn the_convention_maps_params_when_none_are_declared() {
    let r = custom(&[
        "name: self\nparameters:\n  - {name: n, type: string}\n  - {name: count, type: integer}\n\
         \x20 - {name: token, type: string, sensitive: true}\nreversible: true\nrollback_action: self\n\
         state_fields:\n  - {name: count}\n  - {name: secret, sensitive: true}\n",
        "name: open\nparameters:\n  - {name: n, type: string}\n  - {name: mode, type: string}\n\
         \x20 - {name: token, type: string, sensitive: true}\nreversible: true\nrollback_action: close\n",
        "name: close\nparameters:\n  - {name: n, type: string}\n  - {name: token, type: string, sensitive: true}\n",
    ]);
    let convention = "Using convention-based parameter mapping (no rollback_params declared)";
    // Self-reversible: every original param, overwritten from the before-state.
    let d = decision("self", json!({"n": "a", "count": 5}));
    let c = capture(&r, "self", json!({"count": 2, "other": 1}));
    let p = plan(&r, &d, &c, AT).unwrap();
    assert_eq!(Value::Object(p.rollback_params), json!({"n": "a", "count": 2}));
    assert_eq!(p.warnings, [convention]);
    // Paired: only what the rollback action declares.
    let d = decision("open", json!({"n": "a", "mode": "rw"}));
    let p = plan(&r, &d, &capture(&r, "open", json!({})), AT).unwrap();
    assert_eq!(
        (p.rollback_action.as_str(), Value::Object(p.rollback_params)),
        ("close", json!({"n": "a"}))
    );
    // Redacted params and digested state are never used as values.
    let d = decision("open", json!({"n": "a", "token": "[redacted]"}));
    let p = plan(&r, &d, &capture(&r, "open", json!({})), AT).unwrap();
    assert_eq!(Value::Object(p.rollback_params), json!({"n": "a"}));
    assert_eq!(
        p.warnings,
        [
            convention,
            "Source 'params.token' is a sensitive parameter, not recorded in clear; set it by hand"
        ]
    );
    let d = decision("self", json!({"n": "a", "secret": "x"}));
    let p = plan(&r, &d, &capture(&r, "self", json!({"secret": "old"})), AT).unwrap();
    assert_eq!(Value::Object(p.rollback_params), json!({"n": "a"}));
    assert_eq!(
        p.warnings,
        [
            convention,
            "Source 'before_state.secret' is a sensitive state field, recorded only as a digest; set it by hand"
        ]
    );
}

#[test]
fn actions_that_cannot_be_rolled_back_are_errors() {
    // Over the whole catalog: every action either plans or fails with the expected error.
    let registry = catalog();
    for action in registry.iter() {
        let name = action.name().as_str();
        let def = action.definition();
        let got =
            plan(&registry, &decision(name, json!({})), &capture(&registry, name, json!({})), AT);
        let expected_err = if !def.reversible {
            Some(RollbackError::NotReversible { action: name.into() })
        } else if def.rollback_action.is_none() {
            Some(RollbackError::NoRollbackAction { action: name.into() })
        } else {
            None
        };
        match (got, expected_err) {
            (Err(e), Some(expected)) => assert_eq!(e, expected, "{name}"),
            (Ok(_), None) => {}
            (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
    // The ones the issue names.
    let err = |action: &str| {
        plan(&registry, &decision(action, json!({})), &capture(&registry, action, json!({})), AT)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err("drain-node"), "action `drain-node` is not reversible");
    assert_eq!(err("delete-namespace"), "action `delete-namespace` is not reversible");
    assert_eq!(err("get-configmap"), "action `get-configmap` has no rollback_action defined");
    assert_eq!(err("no-such-action"), "action `no-such-action` not found in registry");
    // Reversibility is checked before the rollback action (SPEC §11): a non-reversible
    // action with a rollback action (Python's drain-node) is still not reversible.
    let r = custom(&[
        "name: drain\nreversible: false\nrollback_action: uncordon\n",
        "name: uncordon\n",
    ]);
    let got = plan(&r, &decision("drain", json!({})), &capture(&r, "drain", json!({})), AT);
    assert_eq!(got.unwrap_err(), RollbackError::NotReversible { action: "drain".into() });
}

#[test]
fn plans_serialise_with_the_python_field_order() {
    let registry = catalog();
    let case = &catalog_cases()[0];
    let p = plan(
        &registry,
        &decision(case.action, case.params.clone()),
        &capture(&registry, case.action, case.before.clone()),
        AT,
    )
    .unwrap();
    let v = serde_json::to_value(&p).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "original_audit_id",
            "original_action",
            "original_target",
            "original_caller",
            "original_params",
            "rollback_action",
            "rollback_params",
            "rollback_target",
            "rollback_caller",
            "before_state",
            "generated_at",
            "warnings"
        ]
    );
    assert_eq!(v["generated_at"], "2026-02-24T12:00:00Z");
    let back: RollbackPlan = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}
