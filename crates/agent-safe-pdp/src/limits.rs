//! Per-caller rate limiting and circuit breaker (SPEC §8.1), evaluated before policy rules.
//!
//! State is in memory, per process, keyed by caller id (or in a shared [`WindowStore`]: see
//! [`crate::windows`]); time comes from the evaluation's server time. Callers whose windows are
//! empty are forgotten, so spraying caller ids cannot grow memory without bound for longer than
//! one window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::windows::{WindowStore, WindowStoreError, from_micros, to_micros};

/// `rate_limit:` settings. Field names and defaults are the Python version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per caller per window (≥ 1). Default 100.
    #[serde(default = "default_max_requests")]
    pub max_requests: u64,
    /// Window length in seconds (> 0). Default 60.
    #[serde(default = "sixty")]
    pub window_seconds: f64,
    /// Denies within the breaker window that open the circuit; 0 disables the breaker.
    #[serde(default)]
    pub circuit_breaker_threshold: u64,
    /// Breaker window in seconds (> 0). Default 60.
    #[serde(default = "sixty")]
    pub circuit_breaker_window_seconds: f64,
    /// How long an open circuit stays open, in seconds (> 0). Default 300.
    #[serde(default = "three_hundred")]
    pub circuit_breaker_cooldown_seconds: f64,
}

fn default_max_requests() -> u64 {
    100
}
fn sixty() -> f64 {
    60.0
}
fn three_hundred() -> f64 {
    300.0
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            max_requests: default_max_requests(),
            window_seconds: sixty(),
            circuit_breaker_threshold: 0,
            circuit_breaker_window_seconds: sixty(),
            circuit_breaker_cooldown_seconds: three_hundred(),
        }
    }
}

impl RateLimitConfig {
    /// Checks the bounds; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_requests < 1 {
            return Err("`rate_limit.max_requests` must be at least 1".to_owned());
        }
        for (name, v) in [
            ("window_seconds", self.window_seconds),
            ("circuit_breaker_window_seconds", self.circuit_breaker_window_seconds),
            ("circuit_breaker_cooldown_seconds", self.circuit_breaker_cooldown_seconds),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "`rate_limit.{name}` must be a positive number of seconds, got {v}"
                ));
            }
        }
        Ok(())
    }
}

fn secs(s: f64) -> Duration {
    Duration::seconds_f64(s)
}

#[derive(Debug, Default)]
struct CallerState {
    requests: VecDeque<OffsetDateTime>,
    denies: VecDeque<OffsetDateTime>,
    open_since: Option<OffsetDateTime>,
}

/// [`CallerState`] as a [`WindowStore`] keeps it (times in microseconds).
#[derive(Serialize, Deserialize, Default)]
struct StoredCallerState {
    requests: Vec<i64>,
    denies: Vec<i64>,
    open_since: Option<i64>,
}

impl CallerState {
    fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.denies.is_empty() && self.open_since.is_none()
    }

    /// The state stored as `json` (empty for `None` or anything unreadable: a damaged window
    /// forgets its caller's recent requests rather than blocking it forever).
    fn load(json: Option<&str>) -> Self {
        let stored: StoredCallerState =
            json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        Self {
            requests: stored.requests.into_iter().map(from_micros).collect(),
            denies: stored.denies.into_iter().map(from_micros).collect(),
            open_since: stored.open_since.map(from_micros),
        }
    }

    fn store(&self) -> String {
        let stored = StoredCallerState {
            requests: self.requests.iter().copied().map(to_micros).collect(),
            denies: self.denies.iter().copied().map(to_micros).collect(),
            open_since: self.open_since.map(to_micros),
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The breaker and the window for one request: `Some(reason)` refuses it (not recorded as
    /// a request, and not counted by the breaker); else it is recorded.
    fn check(
        &mut self,
        config: &RateLimitConfig,
        caller: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        if config.circuit_breaker_threshold > 0
            && let Some(opened) = self.open_since
        {
            let cooldown = secs(config.circuit_breaker_cooldown_seconds);
            let elapsed = now - opened;
            if elapsed < cooldown {
                let remaining = (cooldown - elapsed).as_seconds_f64();
                return Some(format!(
                    "Circuit breaker open for caller '{caller}': too many denied requests. \
                         Auto-resumes in {remaining:.0}s."
                ));
            }
            self.open_since = None;
            self.denies.clear();
        }
        prune(&mut self.requests, now, secs(config.window_seconds));
        if self.requests.len() as u64 >= config.max_requests {
            return Some(format!(
                "Rate limit exceeded for caller '{caller}': {} requests per {:.0}s window.",
                config.max_requests, config.window_seconds
            ));
        }
        self.requests.push_back(now);
        None
    }

    /// Records a final DENY for the breaker.
    fn record_deny(&mut self, config: &RateLimitConfig, now: OffsetDateTime) {
        prune(&mut self.denies, now, secs(config.circuit_breaker_window_seconds));
        self.denies.push_back(now);
        if self.denies.len() as u64 >= config.circuit_breaker_threshold {
            self.open_since = Some(now);
        }
    }
}

/// The kind of the rate limiter's windows in a [`WindowStore`].
const KIND: &str = "rate_limit";

/// The rate limiter and circuit breaker. Thread-safe.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    /// Shared with the limiter of a reloaded PDP ([`RateLimiter::continue_from`]).
    state: Arc<Mutex<HashMap<String, CallerState>>>,
    /// Where the windows are instead, when several processes share them.
    shared: Option<Arc<dyn WindowStore>>,
}

/// Drops entries strictly older than `now - window`.
fn prune(q: &mut VecDeque<OffsetDateTime>, now: OffsetDateTime, window: Duration) {
    let cutoff = now - window;
    while q.front().is_some_and(|t| *t < cutoff) {
        q.pop_front();
    }
}

impl RateLimiter {
    /// A limiter with validated settings.
    pub fn new(config: RateLimitConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(Self { config, state: Arc::new(Mutex::new(HashMap::new())), shared: None })
    }

    /// Keeps recording into `previous`'s per-caller windows and breakers (shared, not copied:
    /// requests still being decided by `previous` count too), with this limiter's settings.
    pub fn continue_from(&mut self, previous: &RateLimiter) {
        self.state = Arc::clone(&previous.state);
    }

    /// Keeps the windows in `store` (shared by every process using it) instead of this
    /// process's memory.
    pub fn set_store(&mut self, store: Arc<dyn WindowStore>) {
        self.shared = Some(store);
    }

    /// The settings.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// Called before every evaluation. `Ok(Some(reason))` denies the request (not recorded as
    /// a request, and not counted by the breaker); an error means the shared store could not
    /// be used (nothing is decided).
    pub fn check(
        &self,
        caller: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, WindowStoreError> {
        if let Some(store) = &self.shared {
            let mut outcome = None;
            store.update(KIND, caller, &mut |json| {
                let mut state = CallerState::load(json);
                outcome = state.check(&self.config, caller, now);
                state.store()
            })?;
            return Ok(outcome);
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = state.entry(caller.to_owned()).or_default();
        let outcome = entry.check(&self.config, caller, now);
        if outcome.is_none() && state.len() > 1024 {
            Self::sweep(&mut state, &self.config, now);
        }
        Ok(outcome)
    }

    /// Records a final DENY (other than a rate-limit or breaker deny) for the breaker.
    pub fn record_deny(&self, caller: &str, now: OffsetDateTime) -> Result<(), WindowStoreError> {
        if self.config.circuit_breaker_threshold == 0 {
            return Ok(());
        }
        if let Some(store) = &self.shared {
            return store.update(KIND, caller, &mut |json| {
                let mut state = CallerState::load(json);
                state.record_deny(&self.config, now);
                state.store()
            });
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry(caller.to_owned()).or_default().record_deny(&self.config, now);
        Ok(())
    }

    /// Forgets callers with nothing left in their windows.
    fn sweep(
        state: &mut HashMap<String, CallerState>,
        config: &RateLimitConfig,
        now: OffsetDateTime,
    ) {
        state.retain(|_, s| {
            prune(&mut s.requests, now, secs(config.window_seconds));
            prune(&mut s.denies, now, secs(config.circuit_breaker_window_seconds));
            if s.open_since
                .is_some_and(|o| now - o >= secs(config.circuit_breaker_cooldown_seconds))
            {
                s.open_since = None;
            }
            !s.is_idle()
        });
    }

    /// Number of callers currently tracked.
    pub fn tracked_callers(&self) -> usize {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}
