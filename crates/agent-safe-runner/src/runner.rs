//! The runner lifecycle (SPEC §12.2, corrected; see `docs/runner.md`): ticket → action →
//! credential → prechecks → before-state → execute → after-state → revoke → audit.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use agent_safe_core::{
    ActionCall, AuditId, Clock, Credential, ExecutionOutcome, ExecutionResult, ExecutionStatus,
    Executor, PreCheckResult, PrecheckSpec, Secret, StateMap,
};
use agent_safe_credentials::{CredentialResolver, CredentialVault};
use agent_safe_registry::{RegisteredAction, Registry};
use agent_safe_tickets::{Expected, TicketError, TicketValidator, ValidatedTicket, params_digest};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::time::{Instant, timeout};

use crate::audit::{self, AuditSink, OUTPUT_AUDIT_LIMIT, Subject};
use crate::catch::{CatchUnwind, RevokeOnDrop};
use crate::redact::Redactor;
use crate::{DryRunExecutor, RunnerError, claims};

/// Default limit for the executor's `execute` call: 300 s (as the Python runner).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Default limit for every other step that waits on something outside the process
/// (credential resolution and revocation, the prechecks, each state read): 30 s.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a [`Runner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Limit for the executor's `execute` call, enforced by the runner for every executor:
    /// when it passes the call is cancelled and the status is `timeout`.
    pub timeout: Duration,
    /// Limit for each other step (credential resolution, prechecks, each state read,
    /// revocation).
    pub step_timeout: Duration,
    /// When an action declares credentials and no vault is configured, run it with the
    /// executor's own (ambient) credentials instead of refusing. Recorded in the audit event
    /// as `credential_source: ambient`.
    pub ambient_credentials: bool,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            step_timeout: DEFAULT_STEP_TIMEOUT,
            ambient_credentials: false,
        }
    }
}

/// Where the credential an execution used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// Issued by the vault for this execution (and revoked afterwards).
    Vault,
    /// The action declares credentials, but the runner was configured to let the executor
    /// use its own (ambient) credentials.
    Ambient,
    /// The action declares no credentials: the executor uses its own configuration.
    NotDeclared,
    /// The executor touches nothing (dry-run): no credential was resolved.
    NotNeeded,
}

impl CredentialSource {
    /// The name in JSON and the audit log.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialSource::Vault => "vault",
            CredentialSource::Ambient => "ambient",
            CredentialSource::NotDeclared => "not_declared",
            CredentialSource::NotNeeded => "not_needed",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The execution record (SPEC §12.1); sensitive state fields are digested or redacted as
    /// in the audit log. `execution_audit_id` is the `execution` event's id when audited.
    pub result: ExecutionResult,
    /// The `state_capture` event written for this run, if any.
    pub state_capture_id: Option<AuditId>,
    /// Where the credential came from; `None` when the run stopped before that step.
    pub credential_source: Option<CredentialSource>,
    /// The id of the credential issued for the run (never the payload).
    pub credential_id: Option<String>,
    /// Why the credential could not be revoked (it still expires on its own).
    pub revoke_warning: Option<String>,
    /// A dry run (nothing executed, the ticket not consumed, nothing audited).
    pub dry_run: bool,
}

/// Runs actions for execution tickets. See the crate documentation for the lifecycle.
///
/// `R` is how the registry is held: `Arc<Registry>` (the default), or any handle that
/// dereferences to one.
pub struct Runner<R = Arc<Registry>> {
    executor: Arc<dyn Executor>,
    registry: R,
    validator: TicketValidator,
    vault: Option<Arc<dyn CredentialVault>>,
    audit: Option<Arc<dyn AuditSink>>,
    clock: Arc<dyn Clock>,
    redactor: Redactor,
    config: RunnerConfig,
}

impl<R> std::fmt::Debug for Runner<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("executor", &self.executor.kind())
            .field("vault", &self.vault.as_ref().map(|v| v.kind()))
            .field("audit", &self.audit)
            .field("redactor", &self.redactor)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Everything the run learned, turned into the result and the audit events at the end.
#[derive(Debug)]
struct Record {
    subject: Subject,
    status: ExecutionStatus,
    output: String,
    error: Option<String>,
    ticket_nonce: String,
    params_digest: Option<String>,
    prechecks: Vec<PreCheckResult>,
    before: StateMap,
    after: StateMap,
    state_errors: Map<String, Value>,
    state_fields_declared: Vec<String>,
    capture_ms: Option<f64>,
    executed: bool,
    executor_type: String,
    credential_source: Option<CredentialSource>,
    credential: Option<(String, String)>,
    revoke_warning: Option<String>,
    extra: Map<String, Value>,
}

impl Record {
    fn new(subject: Subject, executor_type: &str) -> Self {
        Self {
            subject,
            status: ExecutionStatus::Error,
            output: String::new(),
            error: None,
            ticket_nonce: String::new(),
            params_digest: None,
            prechecks: Vec::new(),
            before: StateMap::new(),
            after: StateMap::new(),
            state_errors: Map::new(),
            state_fields_declared: Vec::new(),
            capture_ms: None,
            executed: false,
            executor_type: executor_type.to_owned(),
            credential_source: None,
            credential: None,
            revoke_warning: None,
            extra: Map::new(),
        }
    }

    fn fail(&mut self, error: String) {
        self.status = ExecutionStatus::Error;
        self.error = Some(error);
    }
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl<R: Deref<Target = Registry> + Send + Sync> Runner<R> {
    /// A runner executing through `executor`, looking actions up in `registry`, validating
    /// tickets with `validator` (give it the persistent `FileNonceStore` so a ticket runs once
    /// across processes), with no vault, no audit log and the default [`RunnerConfig`].
    pub fn new(
        executor: Arc<dyn Executor>,
        registry: R,
        validator: TicketValidator,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            executor,
            registry,
            validator,
            vault: None,
            audit: None,
            clock,
            redactor: Redactor::default(),
            config: RunnerConfig::default(),
        }
    }

    /// Resolves declared credentials from `vault` (and revokes them after each run).
    pub fn with_vault(self, vault: Arc<dyn CredentialVault>) -> Self {
        Self { vault: Some(vault), ..self }
    }

    /// Records every run in `sink` (an `AuditLog`).
    pub fn with_audit(self, sink: Arc<dyn AuditSink>) -> Self {
        Self { audit: Some(sink), ..self }
    }

    /// Replaces the settings.
    pub fn with_config(self, config: RunnerConfig) -> Self {
        Self { config, ..self }
    }

    /// Keys the digests that replace sensitive state values (see `SigningKey::derive_secret`
    /// with [`STATE_KEY_CONTEXT`](crate::STATE_KEY_CONTEXT)); without a key they are
    /// `[redacted]`.
    pub fn with_state_key(self, key: &Secret<[u8; 32]>) -> Self {
        Self { redactor: Redactor::with_key(key), ..self }
    }

    /// The settings.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Runs the action `token` permits, exactly once (see the crate documentation). Every
    /// outcome, including a rejected ticket, is appended to the audit log before this
    /// returns; the only error is a failure to do so.
    pub async fn run(&self, token: &str) -> Result<RunOutcome, RunnerError> {
        let started = Instant::now();
        let executed_at = self.clock.now();
        let executor_type = self.executor.kind();
        let ticket = match self.validator.verify(token, &Expected::default()) {
            Ok(ticket) => ticket,
            Err(e) => {
                let rec = rejected(token, &e, executor_type);
                return self.finish(rec, started, executed_at, false);
            }
        };
        let t = ticket.ticket();
        let action = self.registry.get(t.action.as_str());
        let mut rec = Record::new(subject(&ticket, action), executor_type);
        rec.ticket_nonce = t.nonce.clone();
        // Exactly the params the ticket was issued for go to the executor: their digest is
        // checked against the ticket's `params_digest` claim right here, where they are used.
        let params = t.params.clone();
        let digest = params_digest(&params);
        rec.params_digest = Some(digest.clone());
        if let Some(claimed) = ticket.params_digest()
            && claimed != digest
        {
            rec.fail(format!(
                "Ticket validation failed: params digest `{claimed}` does not match the params to execute (`{digest}`)"
            ));
            return self.finish(rec, started, executed_at, false);
        }
        let Some(action) = action else {
            rec.fail(format!("Action not found in registry: {}", t.action));
            return self.finish(rec, started, executed_at, false);
        };
        rec.state_fields_declared =
            action.definition().state_fields.iter().map(|f| f.name.clone()).collect();

        let credential = match self.credential(&ticket, action, &mut rec).await {
            Ok(c) => c,
            Err(()) => return self.finish(rec, started, executed_at, false),
        };
        let mut guard = match (&credential, &self.vault) {
            (Some(c), Some(vault)) => {
                Some(RevokeOnDrop::new(vault.clone(), c.credential_id.clone()))
            }
            _ => None,
        };
        let state_fields = rec.state_fields_declared.clone();
        let call = ActionCall {
            action: t.action.as_str(),
            target: t.target.as_str(),
            params: &params,
            credential: credential.as_ref(),
            state_fields: &state_fields,
        };
        self.act(call, action, &mut rec).await;
        if let (Some(c), Some(vault)) = (&credential, &self.vault) {
            rec.revoke_warning = self.revoke(vault, c).await;
            if let Some(g) = guard.as_mut() {
                g.disarm();
            }
        }
        self.finish(rec, started, executed_at, false)
    }

    /// Checks `token` WITHOUT consuming it and reports what [`run`](Self::run) would do:
    /// status `skipped` with `[dry-run] Would execute <action> on <target>` (plus
    /// ` (credentials required)` when the action declares credentials) and the declared
    /// prechecks as the dry-run executor answers them; status `error` when the ticket, the
    /// action or the credential scope would be refused. Nothing is executed, no credential is
    /// issued, nothing is audited (it is not an execution).
    pub async fn dry_run(&self, token: &str) -> RunOutcome {
        let started = Instant::now();
        let executed_at = self.clock.now();
        let dry = DryRunExecutor;
        let ticket = match self.validator.verify_without_consuming(token, &Expected::default()) {
            Ok(ticket) => ticket,
            Err(e) => {
                let rec = rejected(token, &e, dry.kind());
                return self.outcome(rec, started, executed_at, true, None, None);
            }
        };
        let t = ticket.ticket();
        let action = self.registry.get(t.action.as_str());
        let mut rec = Record::new(subject(&ticket, action), dry.kind());
        rec.ticket_nonce = t.nonce.clone();
        rec.params_digest = Some(params_digest(&t.params));
        let Some(action) = action else {
            rec.fail(format!("Action not found in registry: {}", t.action));
            return self.outcome(rec, started, executed_at, true, None, None);
        };
        let def = action.definition();
        if let Some(spec) = &def.credentials {
            match &self.vault {
                Some(vault) => {
                    let resolver = CredentialResolver::new(&*self.registry, vault.clone());
                    if let Err(e) = resolver.scope_for(&ticket) {
                        rec.fail(format!("Credential resolution failed: {e}"));
                        return self.outcome(rec, started, executed_at, true, None, None);
                    }
                    rec.credential_source = Some(CredentialSource::Vault);
                }
                None if self.config.ambient_credentials => {
                    rec.credential_source = Some(CredentialSource::Ambient);
                }
                None => {
                    rec.fail(no_vault(t.action.as_str(), &spec.kind));
                    return self.outcome(rec, started, executed_at, true, None, None);
                }
            }
        } else {
            rec.credential_source = Some(CredentialSource::NotDeclared);
        }
        let specs = precheck_specs(action);
        let fields: Vec<String> = def.state_fields.iter().map(|f| f.name.clone()).collect();
        let call = ActionCall {
            action: t.action.as_str(),
            target: t.target.as_str(),
            params: &t.params,
            credential: None,
            state_fields: &fields,
        };
        rec.prechecks = normalize(&specs, dry.run_prechecks(call, &specs).await);
        rec.status = ExecutionStatus::Skipped;
        rec.output = DryRunExecutor::output(call.action, call.target);
        if def.credentials.is_some() {
            rec.output.push_str(" (credentials required)");
        }
        self.outcome(rec, started, executed_at, true, None, None)
    }

    /// Step 3: the credential, or a refusal recorded in `rec`.
    async fn credential(
        &self,
        ticket: &ValidatedTicket,
        action: &RegisteredAction,
        rec: &mut Record,
    ) -> Result<Option<Credential>, ()> {
        let Some(spec) = &action.definition().credentials else {
            rec.credential_source = Some(CredentialSource::NotDeclared);
            return Ok(None);
        };
        if !self.executor.uses_credentials() {
            rec.credential_source = Some(CredentialSource::NotNeeded);
            return Ok(None);
        }
        let Some(vault) = &self.vault else {
            if self.config.ambient_credentials {
                rec.credential_source = Some(CredentialSource::Ambient);
                return Ok(None);
            }
            rec.fail(no_vault(action.name().as_str(), &spec.kind));
            return Err(());
        };
        let resolver = CredentialResolver::new(&*self.registry, vault.clone());
        let step =
            timeout(self.config.step_timeout, CatchUnwind::new(Box::pin(resolver.resolve(ticket))));
        let error = match step.await {
            Ok(Ok(Ok(credential))) => {
                rec.credential_source = Some(CredentialSource::Vault);
                rec.credential = Some((credential.credential_id.clone(), credential.kind.clone()));
                return Ok(Some(credential));
            }
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(panic)) => format!("the vault panicked: {panic}"),
            Err(_) => format!("the vault did not answer within {}", secs(self.config.step_timeout)),
        };
        rec.fail(format!("Credential resolution failed: {error}"));
        Err(())
    }

    /// Steps 4–7: prechecks, before-state, execute, after-state. Never fails: every problem
    /// is recorded in `rec`.
    async fn act(&self, call: ActionCall<'_>, action: &RegisteredAction, rec: &mut Record) {
        let specs = precheck_specs(action);
        if !specs.is_empty() {
            let step = timeout(
                self.config.step_timeout,
                CatchUnwind::new(self.executor.run_prechecks(call, &specs)),
            );
            let reported = match step.await {
                Ok(Ok(results)) => results,
                Ok(Err(panic)) => failed_all(&specs, &format!("the executor panicked: {panic}")),
                Err(_) => failed_all(
                    &specs,
                    &format!("prechecks did not finish within {}", secs(self.config.step_timeout)),
                ),
            };
            rec.prechecks = normalize(&specs, reported);
            let blocking: Vec<String> = rec
                .prechecks
                .iter()
                .filter(|r| !r.passed && !r.advisory)
                .map(|r| {
                    if r.message.is_empty() {
                        format!("`{}`", r.name)
                    } else {
                        format!("`{}` ({})", r.name, r.message)
                    }
                })
                .collect();
            if !blocking.is_empty() {
                rec.status = ExecutionStatus::Skipped;
                rec.output =
                    format!("not executed: blocking precheck failed: {}", blocking.join(", "));
                return;
            }
        }

        let capture_started = Instant::now();
        rec.before = self.state(call, action, "before", rec).await;
        rec.executed = true;
        let step = timeout(self.config.timeout, CatchUnwind::new(self.executor.execute(call)));
        let outcome = match step.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => {
                ExecutionOutcome::error(format!("Executor error: the executor panicked: {panic}"))
            }
            Err(_) => ExecutionOutcome {
                status: ExecutionStatus::Timeout,
                output: String::new(),
                error: Some(format!(
                    "execution timed out after {} (enforced by the runner; the executor call was cancelled)",
                    secs(self.config.timeout)
                )),
            },
        };
        rec.status = outcome.status;
        rec.output = outcome.output;
        rec.error = outcome.error;
        // Also after a failure or a timeout: the target may have changed part-way.
        rec.after = self.state(call, action, "after", rec).await;
        rec.capture_ms = Some(millis(capture_started));
    }

    /// One state read, redacted; an error or timeout gives `{}` and is noted in `rec`.
    async fn state(
        &self,
        call: ActionCall<'_>,
        action: &RegisteredAction,
        which: &str,
        rec: &mut Record,
    ) -> StateMap {
        let step =
            timeout(self.config.step_timeout, CatchUnwind::new(self.executor.get_state(call)));
        let error = match step.await {
            Ok(Ok(Ok(state))) => return self.redactor.state(action, state),
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(panic)) => format!("the executor panicked: {panic}"),
            Err(_) => format!("no answer within {}", secs(self.config.step_timeout)),
        };
        rec.state_errors.insert(which.to_owned(), Value::String(error));
        StateMap::new()
    }

    /// Step 8: best-effort revocation, bounded by the step timeout.
    async fn revoke(
        &self,
        vault: &Arc<dyn CredentialVault>,
        credential: &Credential,
    ) -> Option<String> {
        let step = timeout(
            self.config.step_timeout,
            CatchUnwind::new(Box::pin(agent_safe_credentials::revoke(vault.as_ref(), credential))),
        );
        match step.await {
            Ok(Ok(warning)) => warning.map(|w| w.to_string()),
            Ok(Err(panic)) => Some(format!(
                "could not revoke credential `{}`: the vault panicked: {panic}",
                credential.credential_id
            )),
            Err(_) => Some(format!(
                "could not revoke credential `{}`: the vault did not answer within {}",
                credential.credential_id,
                secs(self.config.step_timeout)
            )),
        }
    }

    /// Step 9: the outcome, recorded in the audit log (when configured) before it is returned.
    fn finish(
        &self,
        rec: Record,
        started: Instant,
        executed_at: OffsetDateTime,
        dry_run: bool,
    ) -> Result<RunOutcome, RunnerError> {
        let Some(sink) = &self.audit else {
            return Ok(self.outcome(rec, started, executed_at, dry_run, None, None));
        };
        let execution_id = AuditId::generate();
        let capture = rec
            .subject
            .original_audit_id
            .clone()
            .filter(|_| rec.executed)
            .map(|original| (AuditId::generate(), original));
        let events = self.events(&rec, &execution_id, capture.as_ref(), started);
        let outcome = self.outcome(
            rec,
            started,
            executed_at,
            dry_run,
            Some(execution_id),
            capture.map(|(id, _)| id),
        );
        for event in &events {
            if let Err(source) = sink.append(event) {
                return Err(RunnerError::Audit { outcome: Box::new(outcome), source });
            }
        }
        Ok(outcome)
    }

    fn events(
        &self,
        rec: &Record,
        execution_id: &AuditId,
        capture: Option<&(AuditId, String)>,
        started: Instant,
    ) -> Vec<agent_safe_core::AuditEvent> {
        let now = self.clock.now();
        let (output, truncated) = audit::cut_bytes(&rec.output, OUTPUT_AUDIT_LIMIT);
        let mut cx = Map::new();
        cx.insert("type".into(), json!("execution"));
        cx.insert("original_audit_id".into(), json!(rec.subject.original_audit_id));
        cx.insert("status".into(), json!(rec.status.as_str()));
        cx.insert("output".into(), json!(output));
        cx.insert("error".into(), json!(rec.error));
        cx.insert("duration_ms".into(), json!(millis(started)));
        cx.insert("executor_type".into(), json!(rec.executor_type));
        cx.insert("ticket_nonce".into(), json!(rec.ticket_nonce));
        cx.insert("before_state".into(), Value::Object(rec.before.clone()));
        cx.insert("after_state".into(), Value::Object(rec.after.clone()));
        cx.insert("precheck_results".into(), json!(rec.prechecks));
        // Additions to the Python shape.
        if truncated {
            cx.insert("output_truncated".into(), json!(true));
        }
        cx.insert("credential_source".into(), json!(rec.credential_source));
        if let Some((id, kind)) = &rec.credential {
            cx.insert("credential_id".into(), json!(id));
            cx.insert("credential_type".into(), json!(kind));
            cx.insert("credential_revoked".into(), json!(rec.revoke_warning.is_none()));
        }
        if let Some(w) = &rec.revoke_warning {
            cx.insert("revoke_warning".into(), json!(w));
        }
        if let Some(d) = &rec.params_digest {
            cx.insert("params_digest".into(), json!(d));
        }
        cx.insert("timeout_seconds".into(), json!(self.config.timeout.as_secs_f64()));
        if !rec.state_errors.is_empty() {
            cx.insert("state_errors".into(), Value::Object(rec.state_errors.clone()));
        }
        if let Some((id, _)) = capture {
            cx.insert("state_capture_event_id".into(), json!(id));
        }
        cx.extend(rec.extra.clone());
        let summary = if !rec.output.is_empty() {
            rec.output.as_str()
        } else {
            rec.error.as_deref().unwrap_or("")
        };
        let mut events = vec![audit::execution_event(
            execution_id.clone(),
            now,
            &rec.subject,
            rec.status,
            summary,
            cx,
        )];
        if let Some((id, original)) = capture {
            let mut captured: Vec<&String> = rec.before.keys().chain(rec.after.keys()).collect();
            captured.sort();
            captured.dedup();
            let mut cx = Map::new();
            cx.insert("type".into(), json!("state_capture"));
            cx.insert("original_audit_id".into(), json!(original));
            cx.insert("before_state".into(), Value::Object(rec.before.clone()));
            cx.insert("after_state".into(), Value::Object(rec.after.clone()));
            cx.insert("diff".into(), agent_safe_audit::diff::compute(&rec.before, &rec.after));
            cx.insert("capture_duration_ms".into(), json!(rec.capture_ms.unwrap_or(0.0)));
            cx.insert("state_fields_declared".into(), json!(rec.state_fields_declared));
            cx.insert("state_fields_captured".into(), json!(captured));
            cx.insert("execution_event_id".into(), json!(execution_id));
            cx.insert("executor_type".into(), json!(rec.executor_type));
            events.push(audit::state_capture_event(id.clone(), now, &rec.subject, original, cx));
        }
        events
    }

    fn outcome(
        &self,
        rec: Record,
        started: Instant,
        executed_at: OffsetDateTime,
        dry_run: bool,
        execution_audit_id: Option<AuditId>,
        state_capture_id: Option<AuditId>,
    ) -> RunOutcome {
        let result = ExecutionResult {
            status: rec.status,
            action: rec.subject.action,
            target: rec.subject.target,
            caller: rec.subject.caller,
            audit_id: rec.subject.original_audit_id.unwrap_or_default(),
            ticket_nonce: rec.ticket_nonce,
            output: rec.output,
            error: rec.error,
            duration_ms: Some(millis(started)),
            precheck_results: rec.prechecks,
            before_state: rec.before,
            after_state: rec.after,
            executed_at: Some(executed_at),
            executor_type: rec.executor_type,
            execution_audit_id,
        };
        RunOutcome {
            result,
            state_capture_id,
            credential_source: rec.credential_source,
            credential_id: rec.credential.map(|(id, _)| id),
            revoke_warning: rec.revoke_warning,
            dry_run,
        }
    }
}

/// The refusal for an action that declares credentials when no vault is configured.
fn no_vault(action: &str, kind: &str) -> String {
    format!(
        "Credential resolution failed: action `{action}` declares a `{kind}` credential but no \
         credential vault is configured; configure one, or allow the executor's own credentials \
         explicitly (`ambient_credentials`, CLI `--ambient-credentials`)"
    )
}

/// The record of a rejected ticket. The claims are read without verification, except after a
/// replay or a nonce-store failure, which are reported only once the signature checked out.
fn rejected(token: &str, error: &TicketError, executor_type: &str) -> Record {
    let claims = claims::unverified(token);
    let verified = matches!(error, TicketError::Replayed | TicketError::NonceStore(_));
    let mut subject = Subject::unknown();
    let claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    if verified {
        subject.action = claim("action").unwrap_or(subject.action);
        subject.target = claim("target").unwrap_or(subject.target);
        subject.caller = claim("caller").unwrap_or(subject.caller);
        subject.original_audit_id = claim("audit_id");
    }
    let mut rec = Record::new(subject, executor_type);
    if verified {
        rec.ticket_nonce = claim("nonce").unwrap_or_default();
    }
    rec.fail(format!("Ticket validation failed: {error}"));
    rec.extra.insert("ticket_error".into(), json!(error.to_string()));
    rec.extra.insert("ticket_claims".into(), Value::Object(claims));
    rec.extra.insert("ticket_claims_verified".into(), json!(verified));
    rec.extra.insert("ticket_sha256".into(), json!(claims::token_digest(token)));
    rec
}

/// The subject of a validated ticket: its claims, params redacted as the action says.
fn subject(ticket: &ValidatedTicket, action: Option<&RegisteredAction>) -> Subject {
    let t = ticket.ticket();
    Subject {
        action: t.action.to_string(),
        target: t.target.to_string(),
        caller: t.caller.to_string(),
        original_audit_id: Some(t.audit_id.to_string()),
        params: action.map_or_else(|| t.params.clone(), |a| a.redact_params(&t.params)),
    }
}

fn precheck_specs(action: &RegisteredAction) -> Vec<PrecheckSpec> {
    action
        .definition()
        .prechecks
        .iter()
        .map(|p| PrecheckSpec {
            name: p.name.clone(),
            description: p.description.clone(),
            blocking: p.blocking,
        })
        .collect()
}

/// One result per declared precheck, in declared order. Whether a precheck blocks is the
/// action's decision, not the executor's; a precheck the executor did not report failed.
fn normalize(specs: &[PrecheckSpec], reported: Vec<PreCheckResult>) -> Vec<PreCheckResult> {
    specs
        .iter()
        .map(|spec| {
            let (passed, message) = match reported.iter().find(|r| r.name == spec.name) {
                Some(r) => (r.passed, r.message.clone()),
                None => (false, "the executor did not report this precheck".to_owned()),
            };
            PreCheckResult { name: spec.name.clone(), passed, message, advisory: !spec.blocking }
        })
        .collect()
}

fn failed_all(specs: &[PrecheckSpec], message: &str) -> Vec<PreCheckResult> {
    specs
        .iter()
        .map(|s| PreCheckResult {
            name: s.name.clone(),
            passed: false,
            message: message.to_owned(),
            advisory: !s.blocking,
        })
        .collect()
}

/// `300s`, `1.5s`.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests;
