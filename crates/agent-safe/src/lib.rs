//! The agent-safe SDK: one [`AgentSafe`] value wires the action registry, the target
//! inventory, the policy decision point, the audit log and execution tickets.
//!
//! ```no_run
//! use agent_safe::{AgentSafe, CheckRequest};
//!
//! # fn main() -> Result<(), agent_safe::Error> {
//! let safe = AgentSafe::builder()
//!     .registry("actions")
//!     .policies("policies")
//!     .inventory("inventory.yaml")
//!     .audit_log("audit.jsonl")
//!     .build()?;
//! let decision = safe.check(
//!     &CheckRequest::new("restart-deployment")
//!         .target("dev/test-app")
//!         .caller("deploy-bot")
//!         .param("namespace", "dev")
//!         .param("deployment", "test-app"),
//! )?;
//! println!("{}: {}", decision.result, decision.reason);
//! # Ok(())
//! # }
//! ```

pub mod approvals;
mod caller;
mod change;
mod config;
pub mod credentials;
pub mod delegation;
mod error;
mod execute;
mod executor;
mod observe;
pub mod report;
pub mod settings;
pub mod shipping;
pub mod state;
mod verified;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::{AgentId, AuditEvent, CallerIdentity};
pub use agent_safe_core::{
    Clock, Decision, DecisionResult, ManualClock, Params, Secret, SystemClock,
};
use agent_safe_pdp::{Caller, Pdp, PdpConfig, Request};
pub use agent_safe_pdp::{CumulativeRiskConfig, RateLimitConfig};
/// The PostgreSQL backend of `state:` (feature `postgres`): the database, its migrations and
/// its stores.
#[cfg(feature = "postgres")]
pub use agent_safe_postgres as postgres;
use agent_safe_registry::{Inventory, Registry};
use agent_safe_tickets::{IdentityManager, SigningKey, TicketIssuer, VerifiedIdentity};
#[cfg(feature = "schema")]
pub use config::config_schema;
pub use config::{
    CONFIG_FILE_NAME, CheckpointsConfig, ConfigError, ConfigFile, CredentialsConfig,
    DurabilityMode, IdentityMode, TicketsConfig, default_nonce_store,
};

// The SDK's public surface is curated: each module below names the items of one internal
// crate that SDK users need (the types in `AgentSafe`'s signatures and what it takes to build
// them). Internal helpers (YAML loading, canonical JSON, hex, Python reprs, test scaffolding)
// stay in their crates and are not semver promises of this one.

/// Model types shared by every crate: decisions, events, identities, executors.
pub mod core {
    pub use agent_safe_core::{
        ActionCall, ActionName, AgentId, AuditEvent, AuditId, BoxFuture, CallerIdentity,
        Credential, CredentialScope, DelegationLink, DelegationScope, Environment, EventType,
        ExecutionOutcome, ExecutionResult, ExecutionStatus, ExecutionTicket, Executor,
        ExecutorError, ParseEnumError, PreCheckResult, PrecheckSpec, RecordedCaller, RiskClass,
        Sensitivity, StateMap, Target, TargetId, effective_risk,
    };
    pub use agent_safe_core::{
        Clock, Decision, DecisionResult, ManualClock, Params, Secret, SystemClock,
    };
}

/// The audit log: appending, reading, verifying, repairing, state captures.
pub mod audit {
    pub use agent_safe_audit::{
        AppendReceipt, AuditError, AuditIndex, AuditLog, AuditOptions, Durability, GENESIS_HASH,
        IssueKind, RepairReport, StoredEvent, VerifyIssue, VerifyReport, find_decision,
        read_events, repair, verify, verify_reader,
    };
    /// State captures and the state-field HMAC.
    pub mod state {
        pub use agent_safe_audit::state::{CaptureSubject, StateCapture, StateKey};
    }
}

/// Signing keys, identity tokens, execution tickets and nonce stores.
pub mod tickets {
    pub use agent_safe_tickets::{
        Audience, CompactionStats, DEFAULT_IDENTITY_TTL, DEFAULT_ISSUER, DEFAULT_TICKET_AUDIENCE,
        DEFAULT_TICKET_TTL, Expected, FileNonceStore, IdentityClaims, IdentityManager,
        KeyAlgorithm, KeyError, KeyFiles, KeySet, MemoryNonceStore, NonceStore, NonceStoreError,
        SigningKey, TicketError, TicketIssuer, TicketValidation, TicketValidator, TokenError,
        ValidatedTicket, VerifiedIdentity, VerifyingKey, load_key_file, load_verifying_key_file,
        params_digest, write_key_files,
    };
}

/// The action registry and the target inventory.
pub mod registry {
    pub use agent_safe_registry::{
        ActionDefinition, Constraints, CredentialSpec, Inventory, InventoryError, LoadError,
        ParamType, Parameter, Precheck, RegisteredAction, Registry, RollbackParamSource,
        StateFieldSpec,
    };
}

/// The policy decision point.
pub mod pdp {
    pub use agent_safe_pdp::{
        Caller, CumulativeRiskConfig, Evaluation, Pdp, PdpConfig, PolicyLoadError, RateLimitConfig,
        Request, Rule, SourcedRule, Warning,
    };
}

/// The governed runner and the dry-run executor.
pub mod runner {
    pub use agent_safe_runner::{
        AuditSink, CredentialSource, DryRunExecutor, MemoryAuditSink, RunOutcome, Runner,
        RunnerConfig, RunnerError,
    };
}

/// The AWS executor (feature `aws`).
#[cfg(feature = "aws")]
pub mod aws {
    pub use agent_safe_executor_aws::{
        ActionInfo, AwsConfigError, AwsExecutor, AwsExecutorConfig, INVOKE_PAYLOAD_CAP, ParamInfo,
        ParamKind,
    };
}

/// The Kubernetes API executor (feature `k8s`).
#[cfg(feature = "k8s")]
pub mod k8s {
    pub use agent_safe_executor_k8s::{ClientError, K8sExecutor, K8sSettings, supported_actions};
}

/// The kubectl executor (always built: no kube, no AWS SDK).
pub mod kubectl {
    pub use agent_safe_executor_kubectl::{KubectlConfig, SubprocessExecutor, kubectl_argv};
}
pub use caller::{RequestCaller, looks_like_token};
pub use change::{ChangeError, RollbackCheck, RollbackError, RollbackPlan, StateCapture};
pub use error::{BuildError, CheckError, Error};
pub use execute::{ExecuteError, ExecuteOptions};
pub use executor::{ExecutorChoice, ExecutorError};
pub use observe::{AppendObserver, NonceUse};
pub use settings::{Defaults, Overrides, Resolved, TicketAudience};

/// One request to check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckRequest {
    /// Action name.
    pub action: String,
    /// Target id.
    pub target: Option<String>,
    /// The caller: a plain agent id, an identity token (verified with the signing key), or an
    /// identity already verified; `None` for an anonymous request.
    pub caller: Option<RequestCaller>,
    /// Parameters.
    pub params: Params,
    /// External change-ticket id (JIRA, ServiceNow…).
    pub ticket_id: Option<String>,
    /// Links the decision's audit event to another event (e.g. a rollback to the decision
    /// it rolls back).
    pub correlation_id: Option<String>,
}

impl CheckRequest {
    /// A request for `action` with no target, caller or params.
    pub fn new(action: impl Into<String>) -> Self {
        Self { action: action.into(), ..Self::default() }
    }

    /// Sets the target id.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the caller to a plain agent id (no roles or groups; an id shaped like a token is
    /// checked as a token, never used as a name). An empty id is an anonymous request.
    pub fn caller(mut self, agent_id: impl Into<String>) -> Self {
        let id: String = agent_id.into();
        self.caller = (!id.is_empty()).then(|| RequestCaller::Agent(AgentId::new(id)));
        self
    }

    /// Sets the caller to an identity token, verified with the facade's signing key when the
    /// request is checked (one that does not verify is a DENY with the reason).
    pub fn caller_token(mut self, token: impl Into<String>) -> Self {
        self.caller = Some(RequestCaller::Token(token.into()));
        self
    }

    /// Sets the caller to an identity already verified (see
    /// [`AgentSafe::check_verified`]).
    pub fn caller_verified(mut self, identity: VerifiedIdentity) -> Self {
        self.caller = Some(RequestCaller::Verified(Box::new(identity)));
        self
    }

    /// Sets the caller from one string a user typed (CLI `--caller`, an HTTP body, an MCP
    /// argument): see [`RequestCaller::from_input`].
    pub fn caller_input(mut self, input: &str) -> Self {
        self.caller = RequestCaller::from_input(input);
        self
    }

    /// Adds one parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Replaces all parameters.
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Sets the external change-ticket id.
    pub fn ticket_id(mut self, id: impl Into<String>) -> Self {
        self.ticket_id = Some(id.into());
        self
    }

    /// Sets the correlation id recorded in the decision's audit event.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

/// Builds an [`AgentSafe`]. Explicit settings win over the config file.
#[derive(Debug, Default)]
pub struct Builder {
    overrides: Overrides,
    defaults: Defaults,
    signing_key: Option<SigningKey>,
    identity: Option<IdentityMode>,
    durability: Option<DurabilityMode>,
    clock: Option<Arc<dyn Clock>>,
    rate_limit: Option<RateLimitConfig>,
    cumulative_risk: Option<CumulativeRiskConfig>,
    config: Option<ConfigFile>,
    credential_vault: Option<Arc<dyn credentials::CredentialVault>>,
    nonce_store: Option<Arc<dyn agent_safe_tickets::NonceStore>>,
    approvals: approvals::Settings,
    shipping: shipping::Settings,
    observe: observe::Settings,
    continue_from: Option<AgentSafe>,
}

impl Builder {
    /// Continues the per-caller rate-limit windows, open circuit breakers and cumulative-risk
    /// windows of `previous`, the instance this one replaces (a configuration reload): see
    /// [`Pdp::continue_windows_from`]. The new configuration's limits apply from now on.
    pub fn continue_windows_from(mut self, previous: &AgentSafe) -> Self {
        self.continue_from = Some(previous.clone());
        self
    }

    /// Actions directory.
    pub fn registry(mut self, dir: impl Into<PathBuf>) -> Self {
        self.overrides.registry = Some(dir.into());
        self
    }

    /// Policies directory.
    pub fn policies(mut self, dir: impl Into<PathBuf>) -> Self {
        self.overrides.policies = Some(dir.into());
        self
    }

    /// Inventory file. A configured inventory that does not exist is an error.
    pub fn inventory(mut self, file: impl Into<PathBuf>) -> Self {
        self.overrides.inventory = Some(file.into());
        self
    }

    /// Audit log file; every decision is appended before it is returned.
    pub fn audit_log(mut self, file: impl Into<PathBuf>) -> Self {
        self.overrides.audit_log = Some(file.into());
        self
    }

    /// Signing key: enables identity-token verification and execution tickets.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// Token issuer (default `agent-safe`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.overrides.issuer = Some(issuer.into());
        self
    }

    /// The audience of execution tickets, issued and validated ([`TicketAudience::None`]:
    /// tickets the Python runner accepts).
    pub fn ticket_audience(mut self, audience: TicketAudience) -> Self {
        self.overrides.ticket_audience = Some(audience);
        self
    }

    /// Identity mode.
    pub fn identity(mut self, mode: IdentityMode) -> Self {
        self.identity = Some(mode);
        self
    }

    /// Audit durability.
    pub fn durability(mut self, mode: DurabilityMode) -> Self {
        self.durability = Some(mode);
        self
    }

    /// Per-caller rate limit and circuit breaker (SPEC §8.1).
    pub fn rate_limit(mut self, config: RateLimitConfig) -> Self {
        self.rate_limit = Some(config);
        self
    }

    /// Cumulative risk scoring (SPEC §8.2).
    pub fn cumulative_risk(mut self, config: CumulativeRiskConfig) -> Self {
        self.cumulative_risk = Some(config);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A builder that uses `config` (already loaded, so it is not read again) where nothing
    /// is given explicitly.
    pub fn from_config(config: Option<ConfigFile>) -> Self {
        Self { config, ..Self::default() }
    }

    /// Uses the settings of this `agent-safe.yaml` where none were given explicitly.
    pub fn config_file(mut self, path: &Path) -> Result<Self, BuildError> {
        self.config = Some(ConfigFile::load(path)?);
        Ok(self)
    }

    /// Looks for `agent-safe.yaml` in `start` and its ancestors; uses it when found.
    pub fn discover(self, start: &Path) -> Result<Self, BuildError> {
        match ConfigFile::discover(start) {
            Some(path) => self.config_file(&path),
            None => Ok(self),
        }
    }

    /// What paths default to when neither an explicit setting nor the config gives them
    /// (default [`Defaults::None`]: the registry and the policies are required).
    pub fn defaults(mut self, defaults: Defaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// Sets every setting `overrides` gives (as the single setters do).
    pub fn overrides(mut self, overrides: &Overrides) -> Self {
        self.overrides = self.overrides.merge(overrides);
        self
    }

    /// The configuration file in use, if any.
    pub fn config(&self) -> Option<&ConfigFile> {
        self.config.as_ref()
    }

    /// The paths and issuer [`Builder::build`] will use, after precedence.
    pub fn resolved(&self) -> Resolved {
        settings::resolve(self.config.as_ref(), &self.overrides, self.defaults)
    }

    /// Loads everything and returns the SDK.
    pub fn build(self) -> Result<AgentSafe, BuildError> {
        let resolved = self.resolved();
        let cfg = self.config.unwrap_or_default();
        let registry_dir = resolved.registry.ok_or(BuildError::MissingPaths)?;
        let policies_dir = resolved.policies.ok_or(BuildError::MissingPaths)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let registry = Arc::new(Registry::load_dir(&registry_dir)?);
        let inventory = match resolved.inventory {
            Some(path) => Inventory::load(&path)?,
            None => Inventory::empty(),
        };
        let identity_mode = self.identity.unwrap_or(cfg.identity);
        let rules = agent_safe_pdp::policy::load_dir(&policies_dir)?;
        let mut pdp = Pdp::new(
            registry,
            Arc::new(inventory),
            rules,
            PdpConfig {
                identity_required: identity_mode == IdentityMode::Required,
                rate_limit: self.rate_limit.or_else(|| cfg.rate_limit.clone()),
                cumulative_risk: self.cumulative_risk.or_else(|| cfg.cumulative_risk.clone()),
            },
        )?;
        if let Some(previous) = &self.continue_from {
            pdp.continue_windows_from(previous.pdp());
        }
        let durability = match self.durability.unwrap_or(cfg.audit_durability) {
            DurabilityMode::Fsync => agent_safe_audit::Durability::Fsync,
            DurabilityMode::Buffered => agent_safe_audit::Durability::Buffered,
        };
        let audit_path = resolved.audit_log;
        let state = match &self.continue_from {
            Some(previous) => {
                crate::state::SharedState::reopen(&previous.inner.state, cfg.state.as_ref())?
            }
            None => crate::state::SharedState::open(cfg.state.as_ref())?,
        };
        let audit = state.audit_store(audit_path.as_deref(), durability)?;
        if let Some(windows) = state.window_store() {
            pdp.set_window_store(windows);
        }
        let signing_key = settings::signing_key(self.signing_key, Some(&cfg))?;
        let issuer = resolved.issuer;
        let identity = signing_key
            .as_ref()
            .map(|k| IdentityManager::new(k.clone(), issuer.clone(), clock.clone()));
        let nonce_store = match &signing_key {
            Some(_) => execute::nonce_store(
                self.nonce_store,
                &state,
                resolved.nonce_store,
                audit_path.as_deref(),
                durability,
                &clock,
            )?,
            None => None,
        };
        let audience = resolved.ticket_audience.audience();
        let ticket_validator = credentials::ticket_validator(
            signing_key.as_ref(),
            &issuer,
            &clock,
            nonce_store,
            audience.clone(),
        );
        let state_key = execute::state_key(signing_key.as_ref());
        let tickets = signing_key
            .map(|k| TicketIssuer::new(k, issuer.clone(), clock.clone()).with_audience(audience));
        let require_scoped = cfg.credentials.as_ref().is_some_and(|c| c.require_scoped);
        let credential_vault =
            CredentialsConfig::vault(cfg.credentials.as_ref(), self.credential_vault, &clock)?;
        let approvals = self.approvals.build(
            state.approval_store(resolved.approval_store, &clock),
            cfg.approvals.as_ref(),
            &clock,
        )?;
        let ship_source = match &audit {
            Some(log) => state.ship_source(log.file_path())?,
            None => None,
        };
        let shipping = self.shipping.start(cfg.audit_shipping.as_ref(), ship_source, &clock)?;
        Ok(AgentSafe {
            inner: Arc::new(Inner {
                pdp,
                audit,
                identity,
                tickets,
                clock,
                credential_vault,
                require_scoped,
                ticket_validator,
                approvals,
                state,
                state_key,
                shipping,
                change: change::ChangeState::default(),
                observe: self.observe,
            }),
        })
    }
}

/// The SDK facade. Cheap to clone, `Send + Sync`: share one between threads.
#[derive(Debug, Clone)]
pub struct AgentSafe {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pdp: Pdp,
    audit: Option<Arc<dyn agent_safe_audit::AuditStore>>,
    identity: Option<IdentityManager>,
    tickets: Option<TicketIssuer>,
    clock: Arc<dyn Clock>,
    credential_vault: Option<Arc<dyn credentials::CredentialVault>>,
    /// `credentials.require_scoped`: ambient credentials are refused too.
    require_scoped: bool,
    ticket_validator: Option<agent_safe_tickets::TicketValidator>,
    approvals: Option<approvals::Approvals>,
    /// The state backend (its database pool, with `state: {backend: postgres}`), kept across
    /// reloads of an unchanged `state:`.
    state: crate::state::SharedState,
    /// Key of the digests of sensitive state values (derived from the signing key).
    state_key: Option<agent_safe_core::Secret<[u8; 32]>>,
    /// Ships the audit log in the background (see [`shipping`]).
    shipping: Option<shipping::ShippingWorker>,
    change: change::ChangeState,
    /// Policy revision and append observer (see [`observe`]).
    observe: observe::Settings,
}

impl AgentSafe {
    /// A builder with nothing set.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The policy decision point.
    pub fn pdp(&self) -> &Pdp {
        &self.inner.pdp
    }

    /// The action registry.
    pub fn registry(&self) -> &Registry {
        self.inner.pdp.registry()
    }

    /// Whether the state backend can serve now (see [`state::SharedState::ready`]): what the
    /// sidecar's `/readyz` reports.
    pub fn state_ready(&self) -> Result<(), state::StateError> {
        self.inner.state.ready()
    }

    /// The state backend (`state:` of agent-safe.yaml).
    pub fn state_backend(&self) -> state::StateBackend {
        self.inner.state.backend()
    }

    /// The audit log, when configured.
    pub fn audit_log(&self) -> Option<&dyn agent_safe_audit::AuditStore> {
        self.inner.audit.as_deref()
    }

    /// The clock decisions use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Checks one request: evaluates it, records it in the audit log (before returning),
    /// and attaches an execution ticket to an ALLOW when a signing key is configured.
    pub fn check(&self, req: &CheckRequest) -> Result<Decision, CheckError> {
        self.check_resolved(req, self.resolve_caller(req.caller.as_ref()))
    }

    /// [`check`](Self::check) with the caller already resolved (see `verified.rs`).
    fn check_resolved(
        &self,
        req: &CheckRequest,
        resolved: ResolvedCaller,
    ) -> Result<Decision, CheckError> {
        let now = self.inner.clock.now();
        let caller = match &resolved {
            ResolvedCaller::Anonymous => Caller::Anonymous,
            ResolvedCaller::Unverified(c) => Caller::Unverified(c),
            ResolvedCaller::Verified(c) => Caller::Verified(c),
            ResolvedCaller::Rejected(reason) => Caller::Rejected(reason),
        };
        let request = Request {
            action: &req.action,
            target: req.target.as_deref(),
            caller,
            params: &req.params,
            ticket_id: req.ticket_id.as_deref(),
        };
        let evaluation = self.inner.pdp.evaluate(&request, now);
        if let Some(e) = evaluation.unavailable {
            // No decision could be made: nothing is recorded or returned as one.
            return Err(CheckError::Limits(e));
        }
        let audit_context = self.inner.audit.as_ref().and_then(|_| evaluation.audit_context());
        let audit_context = self.with_policy_revision(audit_context);
        let mut decision = evaluation.decision;
        // The decision and its ticket are one unit: the ticket is issued first (it needs only
        // the decision and its audit id), then the decision is appended. A ticket that cannot
        // be issued is an error and nothing is recorded; a decision that cannot be recorded is
        // an error and its ticket is dropped, never returned.
        if decision.result == DecisionResult::Allow
            && let Some(issuer) = &self.inner.tickets
        {
            let ticket = issuer
                .issue(
                    decision.action.as_str(),
                    decision.target.as_str(),
                    decision.caller.as_str(),
                    &req.params,
                    decision.audit_id.as_str(),
                )
                .map_err(CheckError::Ticket)?;
            decision.ticket = Some(ticket);
        }
        if let Some(log) = &self.inner.audit {
            let event = AuditEvent {
                correlation_id: req.correlation_id.clone(),
                context: audit_context,
                ..AuditEvent::decision(&decision, now, self.redacted(&req.action, &req.params))
            };
            let started = std::time::Instant::now();
            log.append(&event)?;
            self.observe_append(started);
            self.notify_shippers();
        }
        self.open_approval(req, &resolved, evaluation.approval_requirement, &mut decision)?;
        Ok(decision)
    }

    /// Checks each step in order (rate limits and cumulative risk accumulate across steps).
    pub fn check_plan(&self, steps: &[CheckRequest]) -> Result<Vec<Decision>, CheckError> {
        steps.iter().map(|s| self.check(s)).collect()
    }

    /// Verifies the configured audit log; `None` when no audit log is configured.
    pub fn verify_audit(&self) -> Option<Result<agent_safe_audit::VerifyReport, Error>> {
        self.inner.audit.as_ref().map(|log| log.verify().map_err(Error::from))
    }

    /// Params as they go into the audit log: values of parameters declared
    /// `sensitive: true` are replaced by `[redacted]`.
    fn redacted(&self, action: &str, params: &Params) -> Params {
        self.registry().redact_params(action, params)
    }

    fn resolve_caller(&self, caller: Option<&RequestCaller>) -> ResolvedCaller {
        let token = match caller {
            None => return ResolvedCaller::Anonymous,
            Some(RequestCaller::Verified(identity)) => {
                return ResolvedCaller::Verified(identity.clone());
            }
            Some(RequestCaller::Agent(id)) if id.as_str().is_empty() => {
                return ResolvedCaller::Anonymous;
            }
            Some(RequestCaller::Agent(id)) if !looks_like_token(id.as_str()) => {
                return ResolvedCaller::Unverified(Box::new(CallerIdentity::unverified(
                    id.clone(),
                )));
            }
            Some(RequestCaller::Agent(id)) => id.as_str(),
            Some(RequestCaller::Token(token)) => token.as_str(),
        };
        match &self.inner.identity {
            None => ResolvedCaller::Rejected(
                "an identity token was presented but no signing key is configured to verify it"
                    .to_owned(),
            ),
            Some(manager) => match manager.validate(token) {
                Ok(identity) => ResolvedCaller::Verified(Box::new(identity)),
                Err(e) => ResolvedCaller::Rejected(e.to_string()),
            },
        }
    }
}

/// The caller of one check, as the PDP will see it. `Verified` holds only what the token
/// verifier produced.
enum ResolvedCaller {
    Anonymous,
    Unverified(Box<CallerIdentity>),
    Verified(Box<VerifiedIdentity>),
    Rejected(String),
}

impl ResolvedCaller {
    /// The identity, verified or not; `None` when anonymous or rejected.
    fn identity(&self) -> Option<&CallerIdentity> {
        match self {
            Self::Unverified(c) => Some(c),
            Self::Verified(c) => Some(c.identity()),
            Self::Anonymous | Self::Rejected(_) => None,
        }
    }
}

#[cfg(all(test, feature = "schema"))]
mod schema_tests;
#[cfg(test)]
mod tests;
