//! Static checks of a policy set against the registry and inventory, for `agent-safe validate`:
//! patterns that match no action, and rules that can never decide anything.

use std::collections::BTreeSet;

use agent_safe_core::{Sensitivity, Target, effective_risk};

use crate::Pdp;
use crate::compiled::{CompiledRule, action_glob, bit_risk};

/// A finding about the policy set. Warnings do not stop loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// `path: rule #i `name``.
    pub location: String,
    /// What was found.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

fn location(rule: &CompiledRule) -> String {
    format!("{}: rule #{} `{}`", rule.source.display(), rule.index_in_file, rule.name)
}

impl Pdp {
    /// Finds action patterns that match no registered action, rules that no registered
    /// action and inventory target can satisfy, and rules shadowed by earlier rules for
    /// every request they could match. Conservative: a rule is only called shadowed when
    /// the earlier rules match every (action, target) pair it could see, with caller, time
    /// and ticket conditions that are absent or identical.
    pub fn analyse(&self) -> Vec<Warning> {
        let rules = self.compiled_rules();
        let mut warnings = Vec::new();
        let actions: Vec<&str> = self.registry().names().collect();
        let targets: Vec<Option<&Target>> =
            std::iter::once(None).chain(self.inventory().iter().map(Some)).collect();

        for (i, rule) in rules.iter().enumerate() {
            let mut matched_actions = Vec::new();
            for pattern in &rule.actions {
                let Ok(glob) = action_glob(pattern) else { continue };
                let m = glob.compile_matcher();
                let hits: Vec<&str> = actions.iter().copied().filter(|a| m.is_match(a)).collect();
                if hits.is_empty() {
                    warnings.push(Warning {
                        location: location(rule),
                        message: format!("action pattern `{pattern}` matches no registered action"),
                    });
                }
                matched_actions.extend(hits);
            }
            matched_actions.sort_unstable();
            matched_actions.dedup();

            let mut feasible = 0usize;
            let mut shadowers = BTreeSet::new();
            let mut all_covered = true;
            for &action in &matched_actions {
                let risk = self.registry().get(action).map(|a| a.risk_class());
                let Some(risk) = risk else { continue };
                for &target in &targets {
                    if !target_ok(rule, target) {
                        continue;
                    }
                    let sensitivity = target.map_or(Sensitivity::Critical, |t| t.sensitivity);
                    let eff = effective_risk(risk, sensitivity);
                    if rule.risk_classes.is_some_and(|m| m & bit_risk(eff) == 0) {
                        continue;
                    }
                    feasible += 1;
                    let cover = rules[..i].iter().find(|e| covers(e, rule, action, target, eff));
                    match cover {
                        Some(e) => {
                            shadowers.insert(e.name.clone());
                        }
                        None => all_covered = false,
                    }
                }
            }
            if feasible == 0 {
                if !matched_actions.is_empty() {
                    warnings.push(Warning {
                        location: location(rule),
                        message: "can never match: no registered action and inventory target \
                                  satisfy its conditions"
                            .to_owned(),
                    });
                }
            } else if all_covered {
                let names: Vec<String> = shadowers.iter().map(|n| format!("`{n}`")).collect();
                warnings.push(Warning {
                    location: location(rule),
                    message: format!(
                        "unreachable: every request it matches is decided first by {}",
                        names.join(", ")
                    ),
                });
            }
        }
        warnings
    }
}

fn target_ok(rule: &CompiledRule, target: Option<&Target>) -> bool {
    match (&rule.targets, target) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(sel), Some(t)) => sel.matches(t),
    }
}

/// Whether `earlier` decides every request `later` could match for this action and target.
fn covers(
    earlier: &CompiledRule,
    later: &CompiledRule,
    action: &str,
    target: Option<&Target>,
    eff: agent_safe_core::RiskClass,
) -> bool {
    let action_ok = earlier
        .actions
        .iter()
        .filter_map(|p| action_glob(p).ok())
        .any(|g| g.compile_matcher().is_match(action));
    action_ok
        && target_ok(earlier, target)
        && earlier.risk_classes.is_none_or(|m| m & bit_risk(eff) != 0)
        && (earlier.callers.is_none() || earlier.callers == later.callers)
        && (earlier.time_windows.is_none() || earlier.time_windows == later.time_windows)
        && (earlier.require_ticket.is_none() || earlier.require_ticket == later.require_ticket)
        && earlier
            .ticket_pattern
            .as_ref()
            .is_none_or(|e| later.ticket_pattern.as_ref().is_some_and(|l| l.as_str() == e.as_str()))
}
