//! State capture (SPEC §11): the [`StateCapture`] model, its `state_capture` audit events
//! (SPEC §6.3), keyed digests of sensitive state fields, and finding the captures of a
//! decision in a log.
//!
//! Sensitive state fields (declared `sensitive: true` in an action's `state_fields`) never
//! reach the log in clear: [`redact_state`] replaces each value by `hmac-sha256:<hex>`, an
//! HMAC-SHA256 of the value's canonical JSON under a [`StateKey`] (derived from the signing
//! key with [`STATE_KEY_CONTEXT`], the same derivation the runner uses), or by `[redacted]`
//! when there is no key. Equal values give equal digests, so the diff still shows whether a
//! secret changed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;

use agent_safe_core::timefmt::serde_utc;
use agent_safe_core::{
    AuditEvent, AuditId, DecisionResult, EventType, Params, RiskClass, Secret, StateMap,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::AuditError;
use crate::index::{AuditIndex, original_audit_id};
use crate::lines::{for_each_block, non_blank};
use crate::read::StoredEvent;

/// The context string with which the state key is derived from the signing key
/// (`SigningKey::derive_secret`). The one definition: the runner re-exports it and digests
/// through [`redact_state`], so its digests and the SDK's compare equal.
pub const STATE_KEY_CONTEXT: &str = "agent-safe runner state digest v1";

/// The prefix of a digested sensitive value.
pub use agent_safe_core::DIGEST_PREFIX;

/// What a sensitive value becomes when there is no state key.
pub use agent_safe_core::REDACTED;

/// The key of sensitive-state digests. `Debug` does not print it.
#[derive(Clone)]
pub struct StateKey(ring::hmac::Key);

impl StateKey {
    /// A key from 32 secret bytes (e.g. `SigningKey::derive_secret(STATE_KEY_CONTEXT)`).
    pub fn new(secret: &Secret<[u8; 32]>) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.expose()))
    }

    /// `hmac-sha256:<hex>` of the canonical JSON of `value`.
    pub fn digest(&self, value: &Value) -> String {
        let text = crate::canonical::to_string(value);
        let tag = ring::hmac::sign(&self.0, text.as_bytes());
        format!("{DIGEST_PREFIX}{}", agent_safe_core::hex::encode(tag.as_ref()))
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateKey({REDACTED})")
    }
}

/// `state` with the value of every key in `sensitive` digested (with a key) or replaced by
/// `[redacted]` (without). Other keys are kept as they are, in order.
pub fn redact_state(state: &StateMap, sensitive: &[&str], key: Option<&StateKey>) -> StateMap {
    state
        .iter()
        .map(|(k, v)| {
            let v = if sensitive.contains(&k.as_str()) {
                Value::String(match key {
                    Some(key) => key.digest(v),
                    None => REDACTED.to_owned(),
                })
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Whether a recorded state value is a digest or a redaction rather than the value.
pub fn is_hidden(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s == REDACTED || s.starts_with(DIGEST_PREFIX))
}

/// Which kind of event a capture was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureSource {
    /// A `state_capture` event (written by the SDK or the runner).
    StateCapture,
    /// An `execution` event without a separate capture (written by the Python runner),
    /// whose context holds the before- and after-state.
    Execution,
}

/// What a capture is about: the decision and its action, target and caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSubject {
    /// The decision's audit id.
    pub audit_id: AuditId,
    /// Action name.
    pub action: String,
    /// Target id.
    pub target: String,
    /// Caller id.
    pub caller: String,
}

/// The before- and after-state of an action (SPEC §11), with the addition of the event it
/// was read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCapture {
    /// The decision's audit id.
    pub audit_id: AuditId,
    /// Action name.
    pub action: String,
    /// Target id.
    pub target: String,
    /// Caller id.
    pub caller: String,
    /// State before the action (sensitive fields digested).
    pub before_state: StateMap,
    /// State after the action (sensitive fields digested).
    pub after_state: StateMap,
    /// The shallow diff ([`crate::diff::compute`]).
    pub diff: Value,
    /// When the capture was recorded.
    #[serde(with = "serde_utc")]
    pub captured_at: OffsetDateTime,
    /// Time between the before- and the after-state, in milliseconds.
    pub capture_duration_ms: f64,
    /// The state fields the action declares.
    pub state_fields_declared: Vec<String>,
    /// Keys present before or after, sorted.
    pub state_fields_captured: Vec<String>,
    /// The event the capture is recorded in (an addition).
    pub event_id: AuditId,
    /// The kind of that event (an addition).
    pub source: CaptureSource,
    /// The executor that ran the action, when the runner recorded the capture (an addition).
    pub executor_type: Option<String>,
}

impl StateCapture {
    /// A new capture (with a fresh event id): computes the diff and the captured fields.
    /// `before` and `after` must already be redacted ([`redact_state`]).
    pub fn new(
        subject: CaptureSubject,
        before: StateMap,
        after: StateMap,
        captured_at: OffsetDateTime,
        capture_duration_ms: f64,
        state_fields_declared: Vec<String>,
    ) -> Self {
        let diff = crate::diff::compute(&before, &after);
        let state_fields_captured = captured_keys(&before, &after);
        Self {
            audit_id: subject.audit_id,
            action: subject.action,
            target: subject.target,
            caller: subject.caller,
            before_state: before,
            after_state: after,
            diff,
            captured_at,
            capture_duration_ms,
            state_fields_declared,
            state_fields_captured,
            event_id: AuditId::generate(),
            source: CaptureSource::StateCapture,
            executor_type: None,
        }
    }

    /// Whether it records a dry run (nothing was changed).
    pub fn is_dry_run(&self) -> bool {
        self.executor_type.as_deref() == Some("dry-run")
    }

    /// The `state_capture` event recording it (SPEC §6.3): decision allow, risk low/low,
    /// `correlation_id` the decision's audit id, reason `State capture for <audit_id>`.
    pub fn to_event(&self) -> AuditEvent {
        let mut context = Map::new();
        context.insert("type".into(), json!("state_capture"));
        context.insert("original_audit_id".into(), json!(self.audit_id));
        context.insert("before_state".into(), Value::Object(self.before_state.clone()));
        context.insert("after_state".into(), Value::Object(self.after_state.clone()));
        context.insert("diff".into(), self.diff.clone());
        context.insert("capture_duration_ms".into(), json!(self.capture_duration_ms));
        context.insert("state_fields_declared".into(), json!(self.state_fields_declared));
        context.insert("state_fields_captured".into(), json!(self.state_fields_captured));
        if let Some(executor) = &self.executor_type {
            context.insert("executor_type".into(), json!(executor));
        }
        AuditEvent {
            event_id: self.event_id.clone(),
            timestamp: self.captured_at,
            event_type: EventType::StateCapture,
            action: self.action.clone(),
            target: self.target.clone(),
            caller: self.caller.clone(),
            params: Params::new(),
            decision: DecisionResult::Allow,
            reason: format!("State capture for {}", self.audit_id),
            policy_matched: None,
            risk_class: RiskClass::Low,
            effective_risk: RiskClass::Low,
            correlation_id: Some(self.audit_id.to_string()),
            ticket_id: None,
            context: Some(Value::Object(context)),
        }
    }

    /// The capture an event records, if it records one: a `state_capture` event, or an
    /// `execution` event (status `success` or `skipped`) that has no separate capture event
    /// (the Python runner's; the Rust runner links its capture with
    /// `context.state_capture_event_id`).
    pub fn from_event(event: &AuditEvent) -> Option<StateCapture> {
        let context = event.context.as_ref()?.as_object()?;
        let audit_id = original_audit_id(event.context.as_ref())
            .or(event.correlation_id.as_deref())?
            .to_owned();
        let object = |key: &str| context.get(key).and_then(Value::as_object).cloned();
        let strings = |key: &str| -> Vec<String> {
            context
                .get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let executor_type = context.get("executor_type").and_then(Value::as_str).map(str::to_owned);
        let (before, after) = (object("before_state")?, object("after_state")?);
        let (source, declared, duration) = match event.event_type {
            EventType::StateCapture => (
                CaptureSource::StateCapture,
                strings("state_fields_declared"),
                context.get("capture_duration_ms").and_then(Value::as_f64).unwrap_or(0.0),
            ),
            EventType::Execution => {
                let status = context.get("status").and_then(Value::as_str);
                if !matches!(status, Some("success" | "skipped"))
                    || context.contains_key("state_capture_event_id")
                {
                    return None;
                }
                (CaptureSource::Execution, Vec::new(), 0.0)
            }
            EventType::Decision => return None,
        };
        let diff = match context.get("diff") {
            Some(d @ Value::Object(_)) if source == CaptureSource::StateCapture => d.clone(),
            _ => crate::diff::compute(&before, &after),
        };
        let captured = match source {
            CaptureSource::StateCapture if context.contains_key("state_fields_captured") => {
                strings("state_fields_captured")
            }
            _ => captured_keys(&before, &after),
        };
        Some(StateCapture {
            audit_id: AuditId::new(audit_id),
            action: event.action.clone(),
            target: event.target.clone(),
            caller: event.caller.clone(),
            before_state: before,
            after_state: after,
            diff,
            captured_at: event.timestamp,
            capture_duration_ms: duration,
            state_fields_declared: declared,
            state_fields_captured: captured,
            event_id: event.event_id.clone(),
            source,
            executor_type,
        })
    }
}

fn captured_keys(before: &StateMap, after: &StateMap) -> Vec<String> {
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The captures of `audit_id` among `linked` events (e.g. [`AuditIndex::linked`]), in file
/// order.
pub fn captures_of(linked: &[StoredEvent], audit_id: &str) -> Vec<StateCapture> {
    linked
        .iter()
        .filter_map(|e| StateCapture::from_event(&e.event))
        .filter(|c| c.audit_id.as_str() == audit_id)
        .collect()
}

/// The latest capture of `audit_id` (Python's `get_state_capture`), through the index.
pub fn latest_capture(
    index: &mut AuditIndex,
    audit_id: &str,
) -> Result<Option<StateCapture>, AuditError> {
    Ok(captures_of(&index.linked(audit_id)?, audit_id).pop())
}

/// How many decisions have a state capture (`agent-safe audit state-coverage`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateCoverage {
    /// Policy decision events (approval resolutions are not counted; see `docs/`).
    pub total_decisions: u64,
    /// Of those, how many have a capture.
    pub with_state_capture: u64,
    /// Of those, how many have none.
    pub without_state_capture: u64,
    /// `with / total × 100`, rounded to one decimal (0 without decisions).
    pub coverage_percent: f64,
    /// Decisions that allowed the action (directly, or approved later): an addition.
    pub allowed_decisions: u64,
    /// Of those, how many have a capture: an addition.
    pub allowed_with_state_capture: u64,
}

#[derive(Deserialize)]
struct Light<'a> {
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(default)]
    event_type: Option<EventType>,
    #[serde(default)]
    decision: Option<DecisionResult>,
    #[serde(borrow, default)]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(default)]
    context: Option<Value>,
}

/// Counts decisions and their captures in one pass over the log (SPEC §14
/// `audit state-coverage`). A line that is not an entry is an error, as in
/// [`crate::read_events`].
pub fn state_coverage(path: &Path) -> Result<StateCoverage, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AuditError::NotFound { path: path.to_owned() });
        }
        Err(source) => return Err(AuditError::Io { path: path.to_owned(), source }),
    };
    // (audit id, allowed) of each policy decision, in order.
    let mut decisions: Vec<(String, bool)> = Vec::new();
    let mut approved: HashSet<String> = HashSet::new();
    let mut captured: HashSet<String> = HashSet::new();
    let mut n = 0usize;
    let mut failure: Option<AuditError> = None;
    for_each_block(file, 1 << 20, |block, last| {
        let lines: Vec<_> = non_blank(block).collect();
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            n += 1;
            let Ok(e) = serde_json::from_slice::<Light<'_>>(line.text) else {
                let torn = last && i + 1 == count && !line.term.is_lf();
                failure = Some(match crate::index::parse_entry(line.text, n) {
                    // Parses as an entry after all (e.g. duplicate keys): count it.
                    Some(stored) => {
                        tally(&stored.event, &mut decisions, &mut approved, &mut captured);
                        continue;
                    }
                    None if torn => AuditError::TornTail { path: path.to_owned(), line: n },
                    None => AuditError::Corrupt {
                        path: path.to_owned(),
                        line: n,
                        message: "not a valid entry".to_owned(),
                    },
                });
                return false;
            };
            let event_type = e.event_type.unwrap_or(EventType::Decision);
            let context = e.context.as_ref();
            let kind = context.and_then(|c| c.get("type")).and_then(Value::as_str);
            let link = original_audit_id(context).or(e.correlation_id.as_deref());
            match event_type {
                EventType::Decision if kind == Some("approval_resolution") => {
                    if e.decision == Some(DecisionResult::Allow)
                        && let Some(id) = link
                    {
                        approved.insert(id.to_owned());
                    }
                }
                EventType::Decision => {
                    if let Some(id) = e.event_id {
                        let allowed = e.decision == Some(DecisionResult::Allow);
                        decisions.push((id.into_owned(), allowed));
                    }
                }
                EventType::StateCapture | EventType::Execution => {
                    let is_capture = event_type == EventType::StateCapture
                        || context.and_then(Value::as_object).is_some_and(|c| {
                            matches!(
                                c.get("status").and_then(Value::as_str),
                                Some("success" | "skipped")
                            ) && !c.contains_key("state_capture_event_id")
                        });
                    if is_capture && let Some(id) = link {
                        captured.insert(id.to_owned());
                    }
                }
            }
        }
        true
    })
    .map_err(|source| AuditError::Io { path: path.to_owned(), source })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(coverage(&decisions, &approved, &captured))
}

fn tally(
    event: &AuditEvent,
    decisions: &mut Vec<(String, bool)>,
    approved: &mut HashSet<String>,
    captured: &mut HashSet<String>,
) {
    let kind = event.context.as_ref().and_then(|c| c.get("type")).and_then(Value::as_str);
    let link = original_audit_id(event.context.as_ref()).or(event.correlation_id.as_deref());
    match event.event_type {
        EventType::Decision if kind == Some("approval_resolution") => {
            if event.decision == DecisionResult::Allow
                && let Some(id) = link
            {
                approved.insert(id.to_owned());
            }
        }
        EventType::Decision => {
            decisions.push((event.event_id.to_string(), event.decision == DecisionResult::Allow))
        }
        EventType::StateCapture | EventType::Execution => {
            if StateCapture::from_event(event).is_some()
                && let Some(id) = link
            {
                captured.insert(id.to_owned());
            }
        }
    }
}

fn coverage(
    decisions: &[(String, bool)],
    approved: &HashSet<String>,
    captured: &HashSet<String>,
) -> StateCoverage {
    let mut out = StateCoverage {
        total_decisions: 0,
        with_state_capture: 0,
        without_state_capture: 0,
        coverage_percent: 0.0,
        allowed_decisions: 0,
        allowed_with_state_capture: 0,
    };
    // A decision id written twice (it should not be) counts once.
    let mut seen: HashSet<&str> = HashSet::new();
    for (id, allowed) in decisions {
        if !seen.insert(id) {
            continue;
        }
        let has = captured.contains(id);
        out.total_decisions += 1;
        out.with_state_capture += u64::from(has);
        if *allowed || approved.contains(id) {
            out.allowed_decisions += 1;
            out.allowed_with_state_capture += u64::from(has);
        }
    }
    out.without_state_capture = out.total_decisions - out.with_state_capture;
    if out.total_decisions > 0 {
        let pct = out.with_state_capture as f64 / out.total_decisions as f64 * 100.0;
        out.coverage_percent = (pct * 10.0).round() / 10.0;
    }
    out
}

#[cfg(test)]
mod tests;
