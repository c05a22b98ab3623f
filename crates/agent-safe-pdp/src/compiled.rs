//! Rules compiled for evaluation: globs built, enums as bit sets, time zones resolved.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agent_safe_core::{
    CallerIdentity, DecisionResult, Environment, RiskClass, Sensitivity, Target,
};
use time::OffsetDateTime;

use crate::policy::{
    ApprovalSettings, CallerSelector, PolicyLoadError, SourcedRule, TargetSelector, TimeWindow,
};

/// A rule ready for evaluation.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) name: String,
    pub(crate) decision: DecisionResult,
    pub(crate) reason: String,
    pub(crate) priority: i64,
    pub(crate) source: PathBuf,
    pub(crate) index_in_file: usize,
    pub(crate) actions: Vec<String>,
    pub(crate) targets: Option<CompiledTargets>,
    pub(crate) callers: Option<CallerSelector>,
    pub(crate) risk_classes: Option<u8>,
    pub(crate) time_windows: Option<Vec<CompiledWindow>>,
    pub(crate) require_ticket: Option<bool>,
    /// `ticket_pattern`, anchored for a whole-string match.
    pub(crate) ticket_pattern: Option<regex::Regex>,
    pub(crate) approvals: Option<ApprovalSettings>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledTargets {
    pub(crate) environments: Option<u8>,
    pub(crate) sensitivities: Option<u8>,
    pub(crate) types: Option<Vec<String>>,
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledWindow {
    /// Bit i set = weekday i (0 = Monday) allowed; `None` = every day.
    days: Option<u8>,
    start_hour: u8,
    end_hour: u8,
    /// `None` = UTC.
    zone: Option<jiff::tz::TimeZone>,
}

/// The facts about one request that rules are matched against.
pub(crate) struct Facts<'a> {
    pub(crate) target: Option<&'a Target>,
    pub(crate) caller: Option<&'a CallerIdentity>,
    pub(crate) effective_risk: RiskClass,
    pub(crate) ticket_id: Option<&'a str>,
    pub(crate) now: OffsetDateTime,
    /// (hour, weekday) of `now` in UTC.
    pub(crate) utc_hour_day: (u8, u8),
}

pub(crate) fn bit_env(e: Environment) -> u8 {
    1 << (e as u8)
}
pub(crate) fn bit_sens(s: Sensitivity) -> u8 {
    1 << (s as u8)
}
pub(crate) fn bit_risk(r: RiskClass) -> u8 {
    1 << (r as u8)
}

fn bits<T: Copy>(items: &[T], f: fn(T) -> u8) -> u8 {
    items.iter().fold(0, |acc, &i| acc | f(i))
}

/// The glob of one action pattern: the syntax's one definition is core's.
pub(crate) use agent_safe_core::glob::action_glob;

impl CompiledRule {
    pub(crate) fn compile(sourced: &SourcedRule) -> Result<Self, PolicyLoadError> {
        let rule = &sourced.rule;
        let invalid = |message: String| PolicyLoadError::InvalidRule {
            path: sourced.source.clone(),
            index: sourced.index,
            name: rule.name.clone(),
            message,
        };
        let c = &rule.conditions;
        for pattern in &c.actions {
            action_glob(pattern).map_err(|e| {
                invalid(format!("invalid action pattern `{pattern}`: {}", e.kind()))
            })?;
        }
        if let Some(callers) = &c.callers
            && callers.max_delegation_depth.is_some_and(|d| d < 0)
        {
            return Err(invalid("`callers.max_delegation_depth` must not be negative".to_owned()));
        }
        if let Some(approvals) = &rule.approvals {
            if rule.decision != DecisionResult::RequireApproval {
                return Err(invalid(
                    "`approvals` only applies to rules whose decision is `require_approval`"
                        .to_owned(),
                ));
            }
            if approvals.required == 0 {
                return Err(invalid("`approvals.required` must be at least 1".to_owned()));
            }
        }
        let time_windows = c
            .time_windows
            .as_ref()
            .map(|ws| ws.iter().map(|w| compile_window(w).map_err(&invalid)).collect())
            .transpose()?;
        let ticket_pattern = c
            .ticket_pattern
            .as_deref()
            .map(|p| compile_ticket_pattern(p).map_err(&invalid))
            .transpose()?;
        Ok(Self {
            name: rule.name.clone(),
            decision: rule.decision,
            reason: rule.reason.clone(),
            priority: rule.priority,
            source: sourced.source.clone(),
            index_in_file: sourced.index,
            actions: c.actions.clone(),
            targets: c.targets.as_ref().map(compile_targets),
            callers: c.callers.clone(),
            risk_classes: c.risk_classes.as_deref().map(|r| bits(r, bit_risk)),
            time_windows,
            require_ticket: c.require_ticket,
            ticket_pattern,
            approvals: rule.approvals.clone(),
        })
    }

    /// Whether every condition except the action pattern holds (the index has already
    /// selected rules by action).
    pub(crate) fn matches(&self, facts: &Facts<'_>) -> bool {
        if let Some(targets) = &self.targets {
            match facts.target {
                Some(t) if targets.matches(t) => {}
                _ => return false,
            }
        }
        if let Some(callers) = &self.callers {
            match facts.caller {
                Some(c) if caller_matches(callers, c) => {}
                _ => return false,
            }
        }
        if let Some(risks) = self.risk_classes
            && risks & bit_risk(facts.effective_risk) == 0
        {
            return false;
        }
        if let Some(windows) = &self.time_windows
            && !windows.iter().any(|w| w.matches(facts))
        {
            return false;
        }
        if let Some(required) = self.require_ticket {
            let has_ticket = facts.ticket_id.is_some_and(|t| !t.is_empty());
            if has_ticket != required {
                return false;
            }
        }
        if let Some(pattern) = &self.ticket_pattern
            && !facts.ticket_id.is_some_and(|t| !t.is_empty() && pattern.is_match(t))
        {
            return false;
        }
        true
    }
}

/// Compiles a rule's `ticket_pattern` for a whole-string match. The pattern is compiled on
/// its own first, so unbalanced groups cannot escape the `\A(?:…)\z` wrapper.
fn compile_ticket_pattern(pattern: &str) -> Result<regex::Regex, String> {
    let build = |text: &str| {
        regex::RegexBuilder::new(text).size_limit(1 << 20).build().map_err(|e| {
            let detail = match &e {
                regex::Error::Syntax(text) => text
                    .lines()
                    .find_map(|line| line.strip_prefix("error: "))
                    .unwrap_or("invalid syntax")
                    .to_owned(),
                other => other.to_string(),
            };
            format!("invalid `ticket_pattern` `{pattern}`: {detail}")
        })
    };
    build(pattern)?;
    build(&format!(r"\A(?:{pattern})\z"))
}

fn compile_targets(t: &TargetSelector) -> CompiledTargets {
    CompiledTargets {
        environments: t.environments.as_deref().map(|e| bits(e, bit_env)),
        sensitivities: t.sensitivities.as_deref().map(|s| bits(s, bit_sens)),
        types: t.types.clone(),
        labels: t.labels.clone(),
    }
}

impl CompiledTargets {
    pub(crate) fn matches(&self, t: &Target) -> bool {
        self.environments.is_none_or(|m| m & bit_env(t.environment) != 0)
            && self.sensitivities.is_none_or(|m| m & bit_sens(t.sensitivity) != 0)
            && self.types.as_ref().is_none_or(|types| types.contains(&t.kind))
            && self.labels.iter().all(|(k, v)| t.labels.get(k) == Some(v))
    }
}

fn overlaps(wanted: &[String], held: &[String]) -> bool {
    wanted.iter().any(|w| held.contains(w))
}

fn caller_matches(sel: &CallerSelector, c: &CallerIdentity) -> bool {
    if let Some(ids) = &sel.agent_ids
        && !ids.iter().any(|id| id == c.agent_id.as_str())
    {
        return false;
    }
    if sel.roles.as_ref().is_some_and(|r| !overlaps(r, &c.roles)) {
        return false;
    }
    if sel.groups.as_ref().is_some_and(|g| !overlaps(g, &c.groups)) {
        return false;
    }
    if let Some(from) = &sel.delegated_from
        && !c.delegation_chain.iter().any(|link| from.iter().any(|f| f == link.agent_id.as_str()))
    {
        return false;
    }
    if let Some(max) = sel.max_delegation_depth
        && i64::from(c.delegation_depth) > max
    {
        return false;
    }
    if let Some(required) = sel.require_delegation
        && (c.delegation_depth > 0) != required
    {
        return false;
    }
    true
}

fn compile_window(w: &TimeWindow) -> Result<CompiledWindow, String> {
    let hour = |name: &str, h: i64| -> Result<u8, String> {
        u8::try_from(h)
            .ok()
            .filter(|h| *h <= 23)
            .ok_or_else(|| format!("`time_windows.{name}` must be between 0 and 23, got {h}"))
    };
    let days = match &w.days {
        None => None,
        Some(days) => {
            let mut mask = 0u8;
            for &d in days {
                let d = u8::try_from(d).ok().filter(|d| *d <= 6).ok_or_else(|| {
                    format!(
                        "`time_windows.days` values are weekdays 0 (Monday) to 6 (Sunday), got {d}"
                    )
                })?;
                mask |= 1 << d;
            }
            Some(mask)
        }
    };
    let zone = match w.timezone.as_deref() {
        None | Some("UTC") => None,
        Some(name) => Some(
            jiff::tz::TimeZone::get(name)
                .map_err(|_| format!("unknown time zone `{name}` in `time_windows.timezone`"))?,
        ),
    };
    Ok(CompiledWindow {
        days,
        start_hour: hour("start_hour", w.start_hour)?,
        end_hour: hour("end_hour", w.end_hour)?,
        zone,
    })
}

/// (hour, weekday with 0 = Monday) of `t` in UTC.
pub(crate) fn utc_hour_day(t: OffsetDateTime) -> (u8, u8) {
    let t = t.to_offset(time::UtcOffset::UTC);
    (t.hour(), t.weekday().number_days_from_monday())
}

impl CompiledWindow {
    fn matches(&self, facts: &Facts<'_>) -> bool {
        let (hour, day) = match &self.zone {
            None => facts.utc_hour_day,
            Some(zone) => {
                let Ok(ts) = jiff::Timestamp::from_second(facts.now.unix_timestamp()) else {
                    return false;
                };
                let local = ts.to_zoned_datetime(zone.clone());
                let day = local.weekday().to_monday_zero_offset();
                (
                    u8::try_from(local.hour()).unwrap_or(u8::MAX),
                    u8::try_from(day).unwrap_or(u8::MAX),
                )
            }
        };
        if let Some(days) = self.days
            && (day > 6 || days & (1 << day) == 0)
        {
            return false;
        }
        if self.start_hour <= self.end_hour {
            (self.start_hour..=self.end_hour).contains(&hour)
        } else {
            hour >= self.start_hour || hour <= self.end_hour
        }
    }
}
