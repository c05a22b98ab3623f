//! Cumulative risk (SPEC §8.2): a per-caller sliding window of effective-risk scores that can
//! escalate an ALLOW to REQUIRE_APPROVAL, or anything to DENY, once a session has done enough.
//!
//! Scores are recorded for the caller and, for a delegated caller, also for the origin of its
//! delegation chain; the decision uses the larger of the two sums. An orchestrator therefore
//! cannot spread risk across workers it delegated to.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use agent_safe_core::{DecisionResult, RiskClass};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::windows::{WindowStore, WindowStoreError, from_micros, to_micros};

/// The kind of cumulative-risk windows in a [`WindowStore`].
const KIND: &str = "cumulative_risk";

/// `cumulative_risk:` settings. Field names and defaults are the Python version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CumulativeRiskConfig {
    /// Window length in seconds (> 0). Default 3600.
    #[serde(default = "default_window")]
    pub window_seconds: f64,
    /// Score per effective risk class; a missing class scores 0.
    #[serde(default = "default_scores")]
    pub risk_scores: BTreeMap<RiskClass, u64>,
    /// Score at which an ALLOW becomes REQUIRE_APPROVAL (≥ 1). Default 30.
    #[serde(default = "default_escalation")]
    pub escalation_threshold: u64,
    /// Score at which any decision becomes DENY (≥ escalation). Default 75.
    #[serde(default = "default_deny")]
    pub deny_threshold: u64,
}

fn default_window() -> f64 {
    3600.0
}
fn default_scores() -> BTreeMap<RiskClass, u64> {
    BTreeMap::from([
        (RiskClass::Low, 1),
        (RiskClass::Medium, 5),
        (RiskClass::High, 15),
        (RiskClass::Critical, 50),
    ])
}
fn default_escalation() -> u64 {
    30
}
fn default_deny() -> u64 {
    75
}

impl Default for CumulativeRiskConfig {
    fn default() -> Self {
        Self {
            window_seconds: default_window(),
            risk_scores: default_scores(),
            escalation_threshold: default_escalation(),
            deny_threshold: default_deny(),
        }
    }
}

impl CumulativeRiskConfig {
    /// Checks the bounds, including deny ≥ escalation (the Python version did not).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.window_seconds.is_finite() && self.window_seconds > 0.0) {
            return Err(format!(
                "`cumulative_risk.window_seconds` must be a positive number of seconds, got {}",
                self.window_seconds
            ));
        }
        if self.escalation_threshold < 1 || self.deny_threshold < 1 {
            return Err("`cumulative_risk` thresholds must be at least 1".to_owned());
        }
        if self.deny_threshold < self.escalation_threshold {
            return Err(format!(
                "`cumulative_risk.deny_threshold` ({}) must not be below `escalation_threshold` ({})",
                self.deny_threshold, self.escalation_threshold
            ));
        }
        Ok(())
    }

    /// Score → class: ≥ deny critical, ≥ escalation high, ≥ escalation / 2 medium, else low.
    pub fn class_of(&self, score: u64) -> RiskClass {
        if score >= self.deny_threshold {
            RiskClass::Critical
        } else if score >= self.escalation_threshold {
            RiskClass::High
        } else if score >= self.escalation_threshold / 2 {
            RiskClass::Medium
        } else {
            RiskClass::Low
        }
    }
}

/// What cumulative risk did to one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Final result.
    pub result: DecisionResult,
    /// Final reason.
    pub reason: String,
    /// Cumulative score, including this request.
    pub score: u64,
    /// Its class.
    pub class: RiskClass,
    /// The result before escalation, when it changed.
    pub escalated_from: Option<DecisionResult>,
    /// Entries in the window that decided.
    pub entries: usize,
}

/// The tracker. Thread-safe.
#[derive(Debug)]
pub struct CumulativeRisk {
    config: CumulativeRiskConfig,
    window: Duration,
    /// Shared with the tracker of a reloaded PDP ([`CumulativeRisk::continue_from`]).
    state: Arc<Mutex<HashMap<String, Window>>>,
    /// Where the windows are instead, when several processes share them.
    shared: Option<Arc<dyn WindowStore>>,
}

/// One caller's window: entries in time order and their running sum (so a check costs the
/// entries it prunes, not the whole window).
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(OffsetDateTime, u64)>,
    sum: u64,
}

impl Window {
    /// The window stored as `json` (empty for `None` or anything unreadable).
    fn load(json: Option<&str>) -> Self {
        let stored: Vec<(i64, u64)> =
            json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        let entries: VecDeque<(OffsetDateTime, u64)> =
            stored.into_iter().map(|(t, score)| (from_micros(t), score)).collect();
        let sum = entries.iter().fold(0u64, |sum, (_, score)| sum.saturating_add(*score));
        Self { entries, sum }
    }

    fn store(&self) -> String {
        let stored: Vec<(i64, u64)> =
            self.entries.iter().map(|(t, score)| (to_micros(*t), *score)).collect();
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Drops what fell out of the window and adds `score` at `now`: the sum and the number of
    /// entries after.
    fn add(&mut self, cutoff: OffsetDateTime, now: OffsetDateTime, score: u64) -> (u64, usize) {
        self.prune(cutoff);
        self.entries.push_back((now, score));
        self.sum = self.sum.saturating_add(score);
        (self.sum, self.entries.len())
    }

    fn prune(&mut self, cutoff: OffsetDateTime) {
        while let Some(&(t, score)) = self.entries.front() {
            if t >= cutoff {
                break;
            }
            self.entries.pop_front();
            self.sum = self.sum.saturating_sub(score);
        }
    }
}

impl CumulativeRisk {
    /// A tracker with validated settings.
    pub fn new(config: CumulativeRiskConfig) -> Result<Self, String> {
        config.validate()?;
        let window = Duration::seconds_f64(config.window_seconds);
        Ok(Self { config, window, state: Arc::new(Mutex::new(HashMap::new())), shared: None })
    }

    /// Keeps recording into `previous`'s per-caller windows (shared, not copied: requests
    /// still being decided by `previous` count too), with this tracker's settings.
    pub fn continue_from(&mut self, previous: &CumulativeRisk) {
        self.state = Arc::clone(&previous.state);
    }

    /// Keeps the windows in `store` (shared by every process using it) instead of this
    /// process's memory.
    pub fn set_store(&mut self, store: Arc<dyn WindowStore>) {
        self.shared = Some(store);
    }

    /// The settings.
    pub fn config(&self) -> &CumulativeRiskConfig {
        &self.config
    }

    /// Records a non-DENY policy outcome for `keys` (the caller, and its delegation origin)
    /// and applies the thresholds. An error means the shared store could not be used (nothing
    /// is decided).
    pub fn apply(
        &self,
        keys: &[&str],
        effective: RiskClass,
        result: DecisionResult,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Outcome, WindowStoreError> {
        let add = self.config.risk_scores.get(&effective).copied().unwrap_or(0);
        let cutoff = now - self.window;
        let (mut score, mut entries) = (0u64, 0usize);
        if let Some(store) = &self.shared {
            // One window at a time, each in its own hold: no two are ever held together, so
            // replicas recording a caller and its origin in opposite orders cannot deadlock.
            for (i, key) in keys.iter().enumerate() {
                if keys[..i].contains(key) {
                    continue;
                }
                let mut added = (0, 0);
                store.update(KIND, key, &mut |json| {
                    let mut window = Window::load(json);
                    added = window.add(cutoff, now, add);
                    window.store()
                })?;
                if added.0 >= score {
                    (score, entries) = added;
                }
            }
        } else {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (i, key) in keys.iter().enumerate() {
                if keys[..i].contains(key) {
                    continue;
                }
                // Look up before inserting so the common case allocates no key.
                if !state.contains_key(*key) {
                    state.insert((*key).to_owned(), Window::default());
                }
                let Some(window) = state.get_mut(*key) else { continue };
                let added = window.add(cutoff, now, add);
                if added.0 >= score {
                    (score, entries) = added;
                }
            }
            if state.len() > 1024 {
                state.retain(|_, window| {
                    window.prune(cutoff);
                    !window.entries.is_empty()
                });
            }
        }
        let class = self.config.class_of(score);
        let (final_result, final_reason, escalated_from) = if score >= self.config.deny_threshold {
            (
                DecisionResult::Deny,
                format!(
                    "Cumulative risk threshold exceeded ({score} >= {}). Original: {reason}",
                    self.config.deny_threshold
                ),
                Some(result),
            )
        } else if score >= self.config.escalation_threshold && result == DecisionResult::Allow {
            (
                DecisionResult::RequireApproval,
                format!(
                    "Escalated by cumulative risk ({score} >= {}). Original: {reason}",
                    self.config.escalation_threshold
                ),
                Some(result),
            )
        } else {
            (result, reason.to_owned(), None)
        };
        Ok(Outcome {
            result: final_result,
            reason: final_reason,
            score,
            class,
            escalated_from,
            entries,
        })
    }
}
