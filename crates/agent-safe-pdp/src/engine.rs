//! The policy decision point: evaluation pipeline and rule index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use agent_safe_core::glob;
use agent_safe_core::{
    ActionName, AgentId, AuditId, CallerIdentity, Decision, DecisionResult, DelegationScope,
    Environment, Params, RiskClass, Sensitivity, TargetId, effective_risk,
};
use agent_safe_registry::{Inventory, Registry, check_bound_params};
use globset::{GlobMatcher, GlobSetBuilder};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::compiled::{CompiledRule, Facts, action_glob, utc_hour_day};
use crate::cumulative::{CumulativeRisk, CumulativeRiskConfig};
use crate::limits::{RateLimitConfig, RateLimiter};
use crate::policy::{ApprovalSettings, PolicyLoadError, SourcedRule};
use crate::windows::{WindowStore, WindowStoreError};

/// Who is asking, as far as the PDP is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// No caller given.
    Anonymous,
    /// A caller known by a self-asserted id (no token): never counts as verified.
    Unverified(&'a CallerIdentity),
    /// A caller whose identity token verified. The PDP takes the request as given: the SDK
    /// builds this variant only from an `agent_safe_tickets::VerifiedIdentity`.
    Verified(&'a CallerIdentity),
    /// A caller credential was presented but rejected (bad signature, expired, …); the
    /// request is denied with this reason. Never treated as a caller named by the token.
    Rejected(&'a str),
}

impl<'a> Caller<'a> {
    /// The caller's identity, verified or not; `None` when anonymous or rejected.
    pub fn identity(&self) -> Option<&'a CallerIdentity> {
        match *self {
            Caller::Unverified(c) | Caller::Verified(c) => Some(c),
            Caller::Anonymous | Caller::Rejected(_) => None,
        }
    }
}

/// One request to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Action name.
    pub action: &'a str,
    /// Requested target id, if any.
    pub target: Option<&'a str>,
    /// The caller.
    pub caller: Caller<'a>,
    /// Request params (validated even when empty).
    pub params: &'a Params,
    /// External change-ticket id.
    pub ticket_id: Option<&'a str>,
}

/// Evaluation settings.
#[derive(Debug, Clone, Default)]
pub struct PdpConfig {
    /// Deny callers that are not verified identities (`identity: required`).
    pub identity_required: bool,
    /// Per-caller rate limit and circuit breaker, checked before anything else.
    pub rate_limit: Option<RateLimitConfig>,
    /// Cumulative risk, applied to non-DENY policy outcomes.
    pub cumulative_risk: Option<CumulativeRiskConfig>,
}

/// The outcome of one evaluation: the decision and what the audit event needs besides it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The decision (no ticket yet; the SDK attaches one).
    pub decision: Decision,
    /// Audit context other than cumulative risk (delegation), or `None`. The audit event's
    /// context is [`Evaluation::audit_context`], which adds [`Evaluation::cumulative`].
    pub context: Option<Value>,
    /// Cumulative-risk figures, when cumulative risk applied (kept as numbers so a decision that
    /// is never audited does not pay for building JSON).
    pub cumulative: Option<CumulativeContext>,
    /// For a REQUIRE_APPROVAL decided by a rule with an `approvals:` block: how many approvers,
    /// with which roles. `None` otherwise (one approver, any role).
    pub approval_requirement: Option<ApprovalSettings>,
    /// The shared window store (see [`crate::windows`]) could not be used, so no decision
    /// could be made: the decision here is a DENY saying so, and must not be returned as one
    /// (the SDK refuses the request as unavailable, without recording it).
    pub unavailable: Option<WindowStoreError>,
}

impl Evaluation {
    /// No decision: the shared window store failed with `error`.
    fn unavailable(
        mut decision: Decision,
        context: Option<Value>,
        error: WindowStoreError,
    ) -> Self {
        decision.result = DecisionResult::Deny;
        decision.reason = format!("No decision: the shared limit state is unavailable: {error}");
        Evaluation {
            decision,
            context,
            cumulative: None,
            approval_requirement: None,
            unavailable: Some(error),
        }
    }
}

/// The cumulative-risk part of a decision's audit context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CumulativeContext {
    /// Cumulative score, including this request.
    pub score: u64,
    /// Its class.
    pub class: RiskClass,
    /// Entries in the window that decided.
    pub entries: usize,
    /// The window length.
    pub window_seconds: f64,
    /// The result before escalation, when it changed.
    pub escalated_from: Option<DecisionResult>,
}

impl Evaluation {
    /// The audit event's context: the delegation context merged with the cumulative-risk keys
    /// (`cumulative_risk_score`, `cumulative_risk_class`, `cumulative_entry_count`,
    /// `cumulative_window_seconds`, and `escalated_from` when escalated).
    pub fn audit_context(&self) -> Option<Value> {
        let Some(c) = &self.cumulative else { return self.context.clone() };
        let mut map = match &self.context {
            Some(Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        map.insert("cumulative_risk_score".into(), json!(c.score));
        map.insert("cumulative_risk_class".into(), json!(c.class));
        map.insert("cumulative_entry_count".into(), json!(c.entries));
        map.insert("cumulative_window_seconds".into(), json!(c.window_seconds));
        if let Some(from) = c.escalated_from {
            map.insert("escalated_from".into(), json!(from));
        }
        Some(Value::Object(map))
    }
}

/// Reason given when no rule matches.
pub const DEFAULT_DENY_REASON: &str = "No matching policy (default deny)";

/// Rule index for one action: candidate rules per target environment bucket, in
/// evaluation order, split into rules that name specific agents and rules that do not.
#[derive(Debug, Default, Clone)]
struct Bucket {
    generic: Vec<u32>,
    by_agent: HashMap<String, Vec<u32>>,
}

/// Buckets: 0 = no resolved target, 1 + `Environment as usize` otherwise.
type ActionIndex = [Bucket; 4];

fn bucket_of(env: Option<Environment>) -> usize {
    env.map_or(0, |e| 1 + e as usize)
}

/// The policy decision point. Immutable after construction and `Sync`: share it via `Arc`.
#[derive(Debug)]
pub struct Pdp {
    registry: Arc<Registry>,
    inventory: Arc<Inventory>,
    rules: Vec<CompiledRule>,
    index: HashMap<String, ActionIndex>,
    config: PdpConfig,
    limiter: Option<RateLimiter>,
    cumulative: Option<CumulativeRisk>,
    scope_globs: ScopeGlobs,
}

impl Pdp {
    /// Compiles `rules` (in load order; sorted here by priority, stable) against the registry
    /// and inventory.
    pub fn new(
        registry: Arc<Registry>,
        inventory: Arc<Inventory>,
        rules: Vec<SourcedRule>,
        config: PdpConfig,
    ) -> Result<Self, PolicyLoadError> {
        let mut compiled =
            rules.iter().map(CompiledRule::compile).collect::<Result<Vec<_>, _>>()?;
        // Stable: equal priorities keep file order, then in-file order.
        compiled.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let index = build_index(&registry, &compiled)?;
        let limiter = config
            .rate_limit
            .clone()
            .map(RateLimiter::new)
            .transpose()
            .map_err(PolicyLoadError::Settings)?;
        let cumulative = config
            .cumulative_risk
            .clone()
            .map(CumulativeRisk::new)
            .transpose()
            .map_err(PolicyLoadError::Settings)?;
        Ok(Self {
            registry,
            inventory,
            rules: compiled,
            index,
            config,
            limiter,
            cumulative,
            scope_globs: ScopeGlobs::default(),
        })
    }

    /// Keeps the per-caller windows of the rate limiter, the circuit breaker and cumulative
    /// risk in `store`, shared by every process using it (see [`crate::windows`]), instead of
    /// this process's memory.
    pub fn set_window_store(&mut self, store: Arc<dyn WindowStore>) {
        if let Some(limiter) = &mut self.limiter {
            limiter.set_store(store.clone());
        }
        if let Some(cumulative) = &mut self.cumulative {
            cumulative.set_store(store);
        }
    }

    /// Continues the per-caller state of `previous` (a PDP this one replaces, e.g. on a
    /// configuration reload): the rate-limit windows and open circuit breakers, and the
    /// cumulative-risk windows, when both PDPs have them. The state is shared, so requests
    /// still being decided by `previous` count too; this PDP's settings (limits, windows,
    /// thresholds) apply to it from now on. Without this, a reload would close every breaker
    /// and forget every caller's recent risk.
    pub fn continue_windows_from(&mut self, previous: &Pdp) {
        if let (Some(limiter), Some(old)) = (&mut self.limiter, &previous.limiter) {
            limiter.continue_from(old);
        }
        if let (Some(cumulative), Some(old)) = (&mut self.cumulative, &previous.cumulative) {
            cumulative.continue_from(old);
        }
    }

    /// The registry decisions are made against.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The inventory decisions are made against.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Evaluates one request at server time `now`.
    pub fn evaluate(&self, req: &Request<'_>, now: OffsetDateTime) -> Evaluation {
        let action = self.registry.get(req.action);
        let risk_class = action.map_or(RiskClass::Critical, |a| a.risk_class());
        let target = req.target.and_then(|id| self.inventory.get(id));
        let sensitivity = target.map_or(Sensitivity::Critical, |t| t.sensitivity);
        let effective = effective_risk(risk_class, sensitivity);
        let identity = req.caller.identity();
        let caller_id = identity.map_or("anonymous", |c| c.agent_id.as_str());
        let context = identity.and_then(delegation_context);
        let mut cumulative = None;
        let mut decision = Decision {
            result: DecisionResult::Deny,
            reason: String::new(),
            action: ActionName::new(req.action),
            target: TargetId::new(req.target.unwrap_or("unknown")),
            caller: AgentId::new(caller_id),
            risk_class,
            effective_risk: effective,
            policy_matched: None,
            audit_id: AuditId::generate(),
            ticket: None,
            request_id: None,
            ticket_id: req.ticket_id.map(str::to_owned),
            cumulative_risk_score: None,
            cumulative_risk_class: None,
            escalated_from: None,
        };

        let limited = self.limiter.as_ref().map(|l| l.check(caller_id, now)).transpose();
        match limited {
            Ok(Some(Some(reason))) => {
                decision.reason = reason;
                return Evaluation {
                    decision,
                    context,
                    cumulative,
                    approval_requirement: None,
                    unavailable: None,
                };
            }
            Ok(_) => {}
            Err(e) => return Evaluation::unavailable(decision, context, e),
        }

        let (result, reason, policy) = self.decide(req, identity, action, target, effective, now);
        decision.result = result;
        decision.reason = reason;
        decision.policy_matched = policy.map(|rule| rule.name.clone());

        if let (Some(tracker), true) = (&self.cumulative, result != DecisionResult::Deny) {
            let origin =
                identity.and_then(|c| c.delegation_chain.first()).map(|l| l.agent_id.as_str());
            let both = [caller_id, origin.unwrap_or(caller_id)];
            let keys = if origin.is_some() { &both[..] } else { &both[..1] };
            let outcome = match tracker.apply(keys, effective, result, &decision.reason, now) {
                Ok(outcome) => outcome,
                Err(e) => return Evaluation::unavailable(decision, context, e),
            };
            cumulative = Some(CumulativeContext {
                score: outcome.score,
                class: outcome.class,
                entries: outcome.entries,
                window_seconds: tracker.config().window_seconds,
                escalated_from: outcome.escalated_from,
            });
            decision.result = outcome.result;
            decision.reason = outcome.reason;
            decision.cumulative_risk_score = Some(outcome.score);
            decision.cumulative_risk_class = Some(outcome.class);
            decision.escalated_from = outcome.escalated_from;
        }

        if decision.result == DecisionResult::Deny
            && let Some(limiter) = &self.limiter
            && let Err(e) = limiter.record_deny(caller_id, now)
        {
            return Evaluation::unavailable(decision, context, e);
        }
        let approval_requirement = policy
            .filter(|_| decision.result == DecisionResult::RequireApproval)
            .and_then(|rule| rule.approvals.clone());
        Evaluation { decision, context, cumulative, approval_requirement, unavailable: None }
    }

    /// Evaluates `req` against the policy alone — system checks and rules — without the rate
    /// limiter, the circuit breaker or cumulative risk, and without changing any state. Used to
    /// re-check a stored request when it is approved (it was counted when it was made).
    pub fn evaluate_rules_only(&self, req: &Request<'_>, now: OffsetDateTime) -> Evaluation {
        let action = self.registry.get(req.action);
        let risk_class = action.map_or(RiskClass::Critical, |a| a.risk_class());
        let target = req.target.and_then(|id| self.inventory.get(id));
        let sensitivity = target.map_or(Sensitivity::Critical, |t| t.sensitivity);
        let effective = effective_risk(risk_class, sensitivity);
        let identity = req.caller.identity();
        let (result, reason, rule) = self.decide(req, identity, action, target, effective, now);
        let decision = Decision {
            result,
            reason,
            action: ActionName::new(req.action),
            target: TargetId::new(req.target.unwrap_or("unknown")),
            caller: AgentId::new(identity.map_or("anonymous", |c| c.agent_id.as_str())),
            risk_class,
            effective_risk: effective,
            policy_matched: rule.map(|r| r.name.clone()),
            audit_id: AuditId::generate(),
            ticket: None,
            request_id: None,
            ticket_id: req.ticket_id.map(str::to_owned),
            cumulative_risk_score: None,
            cumulative_risk_class: None,
            escalated_from: None,
        };
        let approval_requirement = rule
            .filter(|_| result == DecisionResult::RequireApproval)
            .and_then(|r| r.approvals.clone());
        let context = identity.and_then(delegation_context);
        Evaluation { decision, context, cumulative: None, approval_requirement, unavailable: None }
    }

    /// The policy outcome before rate limits and cumulative risk: system denies, then rules.
    fn decide<'s>(
        &'s self,
        req: &Request<'_>,
        identity: Option<&CallerIdentity>,
        action: Option<&agent_safe_registry::RegisteredAction>,
        target: Option<&agent_safe_core::Target>,
        effective: RiskClass,
        now: OffsetDateTime,
    ) -> (DecisionResult, String, Option<&'s CompiledRule>) {
        let deny = |reason: String| (DecisionResult::Deny, reason, None);
        if let Caller::Rejected(reason) = req.caller {
            return deny(format!("Invalid caller identity: {reason}"));
        }
        if self.config.identity_required && !matches!(req.caller, Caller::Verified(_)) {
            return deny(
                "Caller identity required: present a signed identity token (identity: required)"
                    .to_owned(),
            );
        }
        if let Some(reason) = identity
            .and_then(|c| c.delegation_scope.as_ref())
            .and_then(|scope| scope_denial(scope, req, target, &self.scope_globs))
        {
            return deny(reason);
        }
        let Some(action) = action else {
            return deny(format!("Unknown action: {}", req.action));
        };
        let errors = action.validate_params(req.params);
        if !errors.is_empty() {
            return deny(format!("Invalid parameters: {}", errors.join("; ")));
        }
        if let Some(reason) = target.and_then(|t| check_bound_params(t, req.params)) {
            return deny(format!("Invalid parameters: {reason}"));
        }
        if let Some(t) = target.filter(|t| !action.accepts_target_type(&t.kind)) {
            return deny(format!(
                "Target type mismatch: action `{}` applies to {}, target `{}` is a `{}`",
                req.action,
                action.definition().target_types.join(", "),
                t.id,
                t.kind
            ));
        }
        let facts = Facts {
            target,
            caller: identity,
            effective_risk: effective,
            ticket_id: req.ticket_id,
            now,
            utc_hour_day: utc_hour_day(now),
        };
        match self.first_match(req.action, &facts) {
            Some(rule) => (rule.decision, rule.reason.clone(), Some(rule)),
            None => deny(DEFAULT_DENY_REASON.to_owned()),
        }
    }

    fn first_match(&self, action: &str, facts: &Facts<'_>) -> Option<&CompiledRule> {
        let buckets = self.index.get(action)?;
        let bucket = &buckets[bucket_of(facts.target.map(|t| t.environment))];
        let specific: &[u32] = facts
            .caller
            .and_then(|c| bucket.by_agent.get(c.agent_id.as_str()))
            .map_or(&[], Vec::as_slice);
        // Merge the two ascending lists lazily; the first rule that matches wins.
        let (mut g, mut s) = (bucket.generic.iter().peekable(), specific.iter().peekable());
        loop {
            let next = match (g.peek(), s.peek()) {
                (Some(&&a), Some(&&b)) if a < b => g.next(),
                (Some(_), Some(_)) => s.next(),
                (Some(_), None) => g.next(),
                (None, Some(_)) => s.next(),
                (None, None) => return None,
            };
            let rule = next.and_then(|&i| self.rules.get(i as usize))?;
            if rule.matches(facts) {
                return Some(rule);
            }
        }
    }

    /// The compiled rules in evaluation order, for analysis.
    pub(crate) fn compiled_rules(&self) -> &[CompiledRule] {
        &self.rules
    }
}

/// Why a request is outside the caller's delegation scope, if it is. Checked before any rule;
/// action patterns have the semantics of policy `actions` patterns. A scope limited to
/// environments admits only requests whose target is in the inventory.
fn scope_denial(
    scope: &DelegationScope,
    req: &Request<'_>,
    target: Option<&agent_safe_core::Target>,
    globs: &ScopeGlobs,
) -> Option<String> {
    if let Some(patterns) = &scope.actions
        && !patterns.iter().any(|p| globs.is_match(p, req.action))
    {
        return Some(format!("Delegation scope does not allow action `{}`", req.action));
    }
    let allowed = scope.environments.as_ref()?;
    match (target, req.target) {
        (Some(t), _) if allowed.contains(&t.environment) => None,
        (Some(t), _) => {
            Some(format!("Delegation scope does not allow environment `{}`", t.environment))
        }
        (None, Some(id)) => Some(format!(
            "Delegation scope does not allow target `{id}`: it is not in the inventory, so its \
             environment is unknown"
        )),
        (None, None) => {
            Some("Delegation scope does not allow a request without a target".to_owned())
        }
    }
}

/// Matchers for the action patterns of delegation scopes, compiled once: tokens repeat their
/// scope on every request, and compiling a glob costs far more than an evaluation.
#[derive(Debug, Default)]
struct ScopeGlobs(Mutex<HashMap<String, Option<GlobMatcher>>>);

/// The cache is emptied when it reaches this many patterns.
const MAX_SCOPE_GLOBS: usize = 4096;

impl ScopeGlobs {
    /// Whether `pattern` matches `action`; a pattern that does not compile matches nothing.
    /// Plain names and `prefix*` need no matcher.
    fn is_match(&self, pattern: &str, action: &str) -> bool {
        if glob::is_literal(pattern) {
            return pattern == action;
        }
        if let Some(prefix) = glob::literal_prefix(pattern) {
            return action.starts_with(prefix);
        }
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(matcher) = cache.get(pattern) {
            return matcher.as_ref().is_some_and(|m| m.is_match(action));
        }
        let matcher = action_glob(pattern).ok().map(|g| g.compile_matcher());
        let hit = matcher.as_ref().is_some_and(|m| m.is_match(action));
        if cache.len() >= MAX_SCOPE_GLOBS {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), matcher);
        hit
    }
}

fn delegation_context(c: &CallerIdentity) -> Option<Value> {
    if c.delegation_depth == 0 {
        return None;
    }
    let chain: Vec<Value> = c
        .delegation_chain
        .iter()
        .map(|l| json!({"agent_id": l.agent_id, "agent_name": l.agent_name}))
        .collect();
    let original = c.delegation_chain.first().map(|l| l.agent_id.as_str());
    let mut context = json!({
        "delegation_depth": c.delegation_depth,
        "delegation_chain": chain,
        "delegated_roles": c.delegated_roles,
        "original_caller": original,
    });
    if let (Some(scope), Value::Object(map)) = (&c.delegation_scope, &mut context) {
        map.insert("delegation_scope".into(), json!(scope));
    }
    Some(context)
}

/// Builds, for every registered action, the rules whose patterns match it, per target bucket.
fn build_index(
    registry: &Registry,
    rules: &[CompiledRule],
) -> Result<HashMap<String, ActionIndex>, PolicyLoadError> {
    let mut builder = GlobSetBuilder::new();
    let mut owner = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        for pattern in &rule.actions {
            // Patterns were validated when the rule was compiled.
            if let Ok(glob) = action_glob(pattern) {
                builder.add(glob);
                owner.push(i);
            }
        }
    }
    let set = builder.build().map_err(|e| PolicyLoadError::InvalidRule {
        path: Default::default(),
        index: 0,
        name: String::new(),
        message: format!("cannot build action matcher: {e}"),
    })?;
    let mut index = HashMap::new();
    let mut hits = Vec::new();
    for name in registry.names() {
        set.matches_into(name, &mut hits);
        let mut rule_ids: Vec<usize> = hits.iter().filter_map(|&p| owner.get(p).copied()).collect();
        rule_ids.sort_unstable();
        rule_ids.dedup();
        let mut buckets: ActionIndex = Default::default();
        for id in rule_ids {
            let Some(rule) = rules.get(id) else { continue };
            let Ok(id) = u32::try_from(id) else { continue };
            for (b, bucket) in buckets.iter_mut().enumerate() {
                let env = match b {
                    0 => None,
                    1 => Some(Environment::Dev),
                    2 => Some(Environment::Staging),
                    _ => Some(Environment::Prod),
                };
                let possible = match (&rule.targets, env) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(t), Some(e)) => {
                        t.environments.is_none_or(|m| m & crate::compiled::bit_env(e) != 0)
                    }
                };
                if !possible {
                    continue;
                }
                match rule.callers.as_ref().and_then(|c| c.agent_ids.as_ref()) {
                    Some(ids) => {
                        for agent in ids {
                            let list = bucket.by_agent.entry(agent.clone()).or_default();
                            if list.last() != Some(&id) {
                                list.push(id);
                            }
                        }
                    }
                    None => bucket.generic.push(id),
                }
            }
        }
        index.insert(name.to_owned(), buckets);
    }
    Ok(index)
}

#[cfg(test)]
mod scope_glob_tests {
    use super::*;

    /// The PDP's delegation-scope matcher (cache and fast paths) gives the shared matcher's
    /// answer, as delegation's coverage test does (`agent_safe_delegation::scope` tests).
    #[test]
    fn scope_globs_agree_with_the_shared_action_glob() {
        use agent_safe_core::glob::agreement::{NAMES, PATTERNS};
        let globs = ScopeGlobs::default();
        for pattern in PATTERNS {
            for name in NAMES {
                let expected = glob::matches(pattern, name);
                assert_eq!(globs.is_match(pattern, name), expected, "`{pattern}` vs `{name}`");
                // Again, from the cache.
                assert_eq!(globs.is_match(pattern, name), expected, "cached `{pattern}`");
            }
        }
    }
}
