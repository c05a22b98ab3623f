//! The agent-safe rollback planner (SPEC §11): from a recorded decision and the state captured
//! before it ran, the compensating action to request and its params.
//!
//! A plan is only a proposal: the rollback is requested like any other action and goes through
//! the policy decision point (the SDK's `check_rollback` does that, under the original
//! caller's identity, linked to the original decision in the audit log).
//!
//! ```
//! use std::path::PathBuf;
//! use agent_safe_audit::state::{CaptureSubject, StateCapture};
//! use agent_safe_core::{AuditEvent, AuditId, DecisionResult, EventType, RiskClass};
//! use agent_safe_registry::Registry;
//! use serde_json::json;
//! use time::macros::datetime;
//!
//! let yaml = b"name: scale\nversion: 1.0.0\ndescription: d\nrisk_class: medium\n\
//!     target_types: [k8s-deployment]\nparameters:\n  - {name: deployment, type: string}\n\
//!     \x20 - {name: replicas, type: integer}\nreversible: true\nrollback_action: scale\n\
//!     rollback_params:\n  deployment: {source: params.deployment}\n\
//!     \x20 replicas: {source: before_state.replicas}\n";
//! let registry = Registry::from_sources([(PathBuf::from("scale.yaml"), &yaml[..])]).unwrap();
//! let at = datetime!(2026-02-24 12:00 UTC);
//! let decision = AuditEvent {
//!     event_id: AuditId::new("evt-0123456789ab"),
//!     timestamp: at,
//!     event_type: EventType::Decision,
//!     action: "scale".into(),
//!     target: "prod/api".into(),
//!     caller: "deploy-bot".into(),
//!     params: json!({"deployment": "api", "replicas": 10}).as_object().unwrap().clone(),
//!     decision: DecisionResult::Allow,
//!     reason: "ok".into(),
//!     policy_matched: None,
//!     risk_class: RiskClass::Medium,
//!     effective_risk: RiskClass::High,
//!     correlation_id: None,
//!     ticket_id: None,
//!     context: None,
//! };
//! let subject = CaptureSubject {
//!     audit_id: decision.event_id.clone(),
//!     action: "scale".into(),
//!     target: "prod/api".into(),
//!     caller: "deploy-bot".into(),
//! };
//! let before = json!({"replicas": 3}).as_object().unwrap().clone();
//! let after = json!({"replicas": 10}).as_object().unwrap().clone();
//! let capture = StateCapture::new(subject, before, after, at, 0.0, vec![]);
//!
//! let plan = agent_safe_rollback::plan(&registry, &decision, &capture, at).unwrap();
//! assert_eq!(plan.rollback_action, "scale");
//! assert_eq!(plan.rollback_params, *json!({"deployment": "api", "replicas": 3}).as_object().unwrap());
//! assert!(plan.warnings.is_empty());
//! ```

use agent_safe_audit::state::{StateCapture, is_hidden};
use agent_safe_core::timefmt::serde_utc;
use agent_safe_core::{ActionName, AuditEvent, AuditId, Params, StateMap};
use agent_safe_registry::{RegisteredAction, Registry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// A proposed rollback (SPEC §11 fields, in that order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPlan {
    /// The decision being rolled back.
    pub original_audit_id: AuditId,
    /// Its action.
    pub original_action: String,
    /// Its target.
    pub original_target: String,
    /// Its caller.
    pub original_caller: String,
    /// Its params, as recorded (sensitive ones `[redacted]`).
    pub original_params: Params,
    /// The compensating action.
    pub rollback_action: ActionName,
    /// Its params (sources that could not be resolved are left out; see `warnings`).
    pub rollback_params: Params,
    /// The original target.
    pub rollback_target: String,
    /// The original caller.
    pub rollback_caller: String,
    /// The state captured before the original action (sensitive fields digested).
    pub before_state: StateMap,
    /// When the plan was made.
    #[serde(with = "serde_utc")]
    pub generated_at: OffsetDateTime,
    /// What could not be mapped, in the Python version's wording.
    pub warnings: Vec<String>,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// The original action is not in the registry.
    #[error("action `{action}` not found in registry")]
    ActionNotFound {
        /// The action.
        action: String,
    },
    /// The action is declared `reversible: false`.
    #[error("action `{action}` is not reversible")]
    NotReversible {
        /// The action.
        action: String,
    },
    /// The action declares no `rollback_action`.
    #[error("action `{action}` has no rollback_action defined")]
    NoRollbackAction {
        /// The action.
        action: String,
    },
    /// The declared `rollback_action` is not in the registry.
    #[error("rollback action `{rollback_action}` of `{action}` not found in registry")]
    RollbackActionNotFound {
        /// The original action.
        action: String,
        /// Its declared rollback action.
        rollback_action: String,
    },
}

/// Plans the rollback of `decision` (its decision event) from `capture` (a state capture of
/// it): SPEC §11's algorithm.
///
/// 1. The action must be registered, `reversible: true`, and have a registered
///    `rollback_action` (errors, checked in that order).
/// 2. With declared `rollback_params`, each `name: {source: ns.field}` takes `params.field`
///    from the decision's params or `before_state.field` from the capture's before-state (a
///    present key counts, even with a null, 0 or "" value). A source without a dot, a
///    missing field or another namespace is a warning and the param is left out.
/// 3. Without, the convention: a self-reversible action (rollback action = action) gets
///    every original param, overwritten by the before-state's value for every key present in
///    both; a paired action gets the original params it declares.
///
/// Additions: a value recorded only as a digest or a redaction (a sensitive param or state
/// field) is never used as a rollback value; it is a warning and the param is left out.
pub fn plan(
    registry: &Registry,
    decision: &AuditEvent,
    capture: &StateCapture,
    now: OffsetDateTime,
) -> Result<RollbackPlan, RollbackError> {
    let action_name = decision.action.as_str();
    let action = registry
        .get(action_name)
        .ok_or_else(|| RollbackError::ActionNotFound { action: action_name.to_owned() })?;
    let def = action.definition();
    if !def.reversible {
        return Err(RollbackError::NotReversible { action: action_name.to_owned() });
    }
    let rollback_name = def
        .rollback_action
        .as_ref()
        .ok_or_else(|| RollbackError::NoRollbackAction { action: action_name.to_owned() })?;
    let rollback = registry.get(rollback_name.as_str()).ok_or_else(|| {
        RollbackError::RollbackActionNotFound {
            action: action_name.to_owned(),
            rollback_action: rollback_name.to_string(),
        }
    })?;
    let before = &capture.before_state;
    let mut warnings = Vec::new();
    let mut params = Params::new();
    if def.rollback_params.is_empty() {
        warnings
            .push("Using convention-based parameter mapping (no rollback_params declared)".into());
        convention(action, rollback, decision, before, &mut params, &mut warnings);
    } else {
        for (name, spec) in &def.rollback_params {
            if let Some(value) = resolve(&spec.source, action, decision, before, &mut warnings) {
                params.insert(name.clone(), value);
            }
        }
    }
    Ok(RollbackPlan {
        original_audit_id: decision.event_id.clone(),
        original_action: decision.action.clone(),
        original_target: decision.target.clone(),
        original_caller: decision.caller.clone(),
        original_params: decision.params.clone(),
        rollback_action: rollback_name.clone(),
        rollback_params: params,
        rollback_target: decision.target.clone(),
        rollback_caller: decision.caller.clone(),
        before_state: before.clone(),
        generated_at: now,
        warnings,
    })
}

/// The value of one declared source, or a warning.
fn resolve(
    source: &str,
    action: &RegisteredAction,
    decision: &AuditEvent,
    before: &StateMap,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let Some((namespace, field)) = source.split_once('.') else {
        warnings.push(format!("Invalid source path: '{source}' (expected 'namespace.field')"));
        return None;
    };
    match namespace {
        "params" => match decision.params.get(field) {
            None => {
                warnings.push(format!("Source '{source}' not found in original params"));
                None
            }
            Some(v) if is_sensitive_param(action, field) && is_hidden(v) => {
                warnings.push(hidden_param(source));
                None
            }
            Some(v) => Some(v.clone()),
        },
        "before_state" => match before.get(field) {
            None => {
                warnings.push(format!("Source '{source}' not found in before_state"));
                None
            }
            Some(v) if is_hidden(v) => {
                warnings.push(hidden_state(source));
                None
            }
            Some(v) => Some(v.clone()),
        },
        other => {
            warnings.push(format!("Unknown source namespace: '{other}'"));
            None
        }
    }
}

/// The convention-based mapping (no `rollback_params`).
fn convention(
    action: &RegisteredAction,
    rollback: &RegisteredAction,
    decision: &AuditEvent,
    before: &StateMap,
    params: &mut Params,
    warnings: &mut Vec<String>,
) {
    let copy = |name: &str, value: &Value, params: &mut Params, warnings: &mut Vec<String>| {
        if is_sensitive_param(action, name) && is_hidden(value) {
            warnings.push(hidden_param(&format!("params.{name}")));
        } else {
            params.insert(name.to_owned(), value.clone());
        }
    };
    if rollback.name() == action.name() {
        for (name, value) in &decision.params {
            copy(name, value, params, warnings);
        }
        for (name, value) in before {
            if decision.params.contains_key(name) {
                if is_hidden(value) {
                    params.remove(name);
                    warnings.push(hidden_state(&format!("before_state.{name}")));
                } else {
                    params.insert(name.clone(), value.clone());
                }
            }
        }
    } else {
        for (name, value) in &decision.params {
            if rollback.parameter(name).is_some() {
                copy(name, value, params, warnings);
            }
        }
    }
}

fn is_sensitive_param(action: &RegisteredAction, name: &str) -> bool {
    action.parameter(name).is_some_and(|p| p.sensitive)
}

fn hidden_param(source: &str) -> String {
    format!("Source '{source}' is a sensitive parameter, not recorded in clear; set it by hand")
}

fn hidden_state(source: &str) -> String {
    format!(
        "Source '{source}' is a sensitive state field, recorded only as a digest; set it by hand"
    )
}

#[cfg(test)]
mod tests;
