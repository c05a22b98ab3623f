//! `agent-safe runner execute|dry-run TOKEN`: governed execution of an execution ticket (see
//! docs/runner.md), with the dry-run, kubectl, Kubernetes API and AWS executors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_safe::DurabilityMode;
use agent_safe::credentials::CredentialVault;
use agent_safe::report::RunReport;
use agent_safe_audit::Durability;
use agent_safe_core::{Clock, ExecutionStatus, Executor, Secret, SystemClock};
use agent_safe_registry::Registry;
use agent_safe_runner::{DryRunExecutor, RunOutcome, Runner, RunnerConfig, STATE_KEY_CONTEXT};
use agent_safe_tickets::{SigningKey, TicketValidator};
use anyhow::Context as _;

use crate::executor_args::ExecutorArgs;
use crate::keys::KeyArgs;
use crate::output::{bold, green, line, red, yellow};
use crate::{Cli, exit};

const EXIT_CODES: &str = "\
Exit codes (the same with --json-output):
  0  success, or skipped (dry run, dry-run executor, a blocking precheck failed)
  1  failure, error or timeout, including an invalid, expired or already used ticket
  2  usage or configuration error (bad flags, no signing key, unreadable registry, audit
     log or nonce store), or the outcome could not be written to the audit log";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Execute the action an execution ticket permits, once: validate and consume the ticket,
    /// resolve the declared credential, run the prechecks, capture the state before and after,
    /// execute under a timeout, revoke the credential, and record the execution and the state
    /// capture in the audit log.
    #[command(after_help = EXIT_CODES)]
    Execute(ExecuteArgs),
    /// Show what `execute` would do, without consuming the ticket, issuing a credential,
    /// executing or auditing anything.
    #[command(after_help = EXIT_CODES)]
    DryRun(CommonArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CommonArgs {
    /// The execution ticket (a JWT from `agent-safe check`).
    token: String,
    #[command(flatten)]
    key: KeyArgs,
    /// Actions directory [default: from agent-safe.yaml, else ./actions]
    #[arg(long, value_name = "DIR")]
    registry: Option<PathBuf>,
    /// Audit log: every execution, also a refused one, is recorded [default: from
    /// agent-safe.yaml, else ./audit.jsonl]
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Persistent single-use nonce store [default: from agent-safe.yaml, else <audit log>.nonces]
    #[arg(long, value_name = "FILE")]
    nonce_store: Option<PathBuf>,
    #[command(flatten)]
    vault: crate::vault_args::VaultArgs,
    /// Let actions that declare credentials run with the executor's own credentials when no
    /// vault option is given (recorded in the audit event). Without it they are refused.
    #[arg(long)]
    ambient_credentials: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json_output: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExecuteArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Seconds the executor may take; the runner cancels the call after that (status timeout).
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    timeout: f64,
    #[command(flatten)]
    executor: ExecutorArgs,
}

pub(crate) fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Execute(args) => execute(cli, args),
        Command::DryRun(args) => dry_run(cli, args),
    }
}

/// Everything both commands build from the common options.
struct Setup {
    registry: Arc<Registry>,
    validator: TicketValidator,
    clock: Arc<dyn Clock>,
    vault: Option<Arc<dyn CredentialVault>>,
    /// The private key, when given (not a public key file).
    signing_key: Option<SigningKey>,
    state_key: Option<Secret<[u8; 32]>>,
    audit_path: PathBuf,
    durability: Durability,
    /// The state backend (`state:`): where the nonces and the audit log are.
    state: agent_safe::state::SharedState,
    /// `audit_shipping:` of agent-safe.yaml, and how long to wait for it before exiting.
    shipping: Option<agent_safe::shipping::ShipperConfig>,
    flush: std::time::Duration,
    /// `credentials.require_scoped` of agent-safe.yaml.
    require_scoped: bool,
}

fn setup(cli: &Cli, args: &CommonArgs) -> anyhow::Result<Setup> {
    let config = crate::setup::config_file(cli)?;
    let config = config.as_ref();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = args.key.verifying_keys(config)?;
    // Only a private key can key the digests of sensitive state values; with a public key
    // file they are replaced by `[redacted]`.
    let signing_key = args.key.signing_key(config).ok();
    let state_key = signing_key.as_ref().map(|k| k.derive_secret(STATE_KEY_CONTEXT));
    let mut overrides = agent_safe::Overrides::default();
    overrides.registry.clone_from(&args.registry);
    overrides.audit_log.clone_from(&args.audit_log);
    overrides.nonce_store.clone_from(&args.nonce_store);
    // The working-directory defaults always give a registry, an audit log and a nonce store.
    let resolved = crate::setup::resolve(config, &overrides);
    let issuer = resolved.issuer;
    let audience = resolved.ticket_audience.audience();
    let registry_dir = resolved.registry.unwrap_or_default();
    let registry = Registry::load_dir(&registry_dir).context("cannot load the action registry")?;
    let audit_path = resolved.audit_log.unwrap_or_default();
    let nonce_path = resolved.nonce_store.unwrap_or_default();
    let durability = match config.map(|c| c.audit_durability) {
        Some(DurabilityMode::Buffered) => Durability::Buffered,
        _ => Durability::Fsync,
    };
    // The configured backend's store; a file one is as durable as the audit log.
    let state = agent_safe::state::SharedState::open(config.and_then(|c| c.state.as_ref()))?;
    let nonces =
        state.nonce_store(Some(&nonce_path), durability, &clock)?.context("no nonce store")?;
    let validator =
        TicketValidator::new(keys, issuer, clock.clone(), nonces).with_audience(audience);
    Ok(Setup {
        registry: Arc::new(registry),
        validator,
        vault: args.vault.vault(config, &clock, crate::vault_args::NoVault::Refuse)?,
        clock,
        signing_key,
        state_key,
        audit_path,
        durability,
        state,
        shipping: config.and_then(|c| c.audit_shipping.clone()),
        flush: crate::exit_flush::timeout(config)?,
        require_scoped: config
            .and_then(|c| c.credentials.as_ref())
            .is_some_and(|c| c.require_scoped),
    })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn runner(s: Setup, executor: Arc<dyn Executor>, config: RunnerConfig) -> anyhow::Result<Runner> {
    let log = s
        .state
        .audit_store(Some(&s.audit_path), s.durability)
        .with_context(|| format!("cannot open audit log `{}`", s.audit_path.display()))?
        .context("no audit log")?;
    let mut runner = Runner::new(executor, s.registry, s.validator, s.clock)
        .with_audit(Arc::new(log))
        .with_config(config);
    if let Some(vault) = s.vault {
        runner = runner.with_vault(vault);
    }
    if let Some(key) = &s.state_key {
        runner = runner.with_state_key(key);
    }
    Ok(runner)
}

fn execute(cli: &Cli, args: &ExecuteArgs) -> anyhow::Result<u8> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 86_400.0) {
        anyhow::bail!(
            "`--timeout` must be a number of seconds above 0 and at most 86400, got `{}`",
            args.timeout
        );
    }
    let s = setup(cli, &args.common)?;
    if s.require_scoped && args.common.ambient_credentials {
        anyhow::bail!(
            "credentials.require_scoped is set in agent-safe.yaml: --ambient-credentials (the \
             executor's own credentials) is refused; configure a vault that enforces scope (sts)"
        );
    }
    let executor = args.executor.choice(s.signing_key.as_ref())?.build(s.clock.clone())?;
    let config = RunnerConfig {
        timeout: Duration::from_secs_f64(args.timeout),
        ambient_credentials: args.common.ambient_credentials,
        ..RunnerConfig::default()
    };
    // Started before the run, so the entries are shipped as they are appended.
    let shipping = s.shipping.clone();
    let flush = s.flush;
    let worker = match s.state.ship_source(Some(&s.audit_path))? {
        Some(source) => agent_safe::shipping::start_worker(shipping.as_ref(), source, &s.clock)
            .context("cannot start audit shipping")?,
        None => None,
    };
    let runner = runner(s, executor, config)?;
    let ran = runtime()?.block_on(runner.run(&args.common.token));
    crate::exit_flush::finish(worker, flush);
    let outcome = match ran {
        Ok(outcome) => outcome,
        Err(agent_safe_runner::RunnerError::Audit { outcome, source }) => {
            report(&outcome, args.common.json_output)?;
            return Err(anyhow::Error::new(source).context(
                "the outcome above could not be written to the audit log (the action may have been executed)",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    report(&outcome, args.common.json_output)
}

fn dry_run(cli: &Cli, args: &CommonArgs) -> anyhow::Result<u8> {
    let s = setup(cli, args)?;
    let config =
        RunnerConfig { ambient_credentials: args.ambient_credentials, ..RunnerConfig::default() };
    // Nothing is audited; the runner is built without the log.
    let mut runner =
        Runner::new(Arc::new(DryRunExecutor), s.registry, s.validator, s.clock).with_config(config);
    if let Some(vault) = s.vault {
        runner = runner.with_vault(vault);
    }
    let outcome = runtime()?.block_on(runner.dry_run(&args.token));
    report(&outcome, args.json_output)
}

/// Prints the outcome; returns the exit code.
fn report(outcome: &RunOutcome, json_output: bool) -> anyhow::Result<u8> {
    let r = &outcome.result;
    let code = match r.status {
        ExecutionStatus::Success | ExecutionStatus::Skipped => exit::OK,
        ExecutionStatus::Failure | ExecutionStatus::Timeout | ExecutionStatus::Error => {
            exit::DENY_OR_FAILED
        }
    };
    if json_output {
        crate::output::json(&RunReport::new(outcome))?;
        return Ok(code);
    }
    let status = if outcome.dry_run && r.status == ExecutionStatus::Skipped {
        "DRY-RUN".to_owned()
    } else {
        r.status.as_str().to_uppercase()
    };
    let label = match r.status {
        ExecutionStatus::Success => green(&status),
        ExecutionStatus::Skipped => yellow(&status),
        _ => red(&status),
    };
    line(&format!("{} — {} on {}", bold(&label), r.action, r.target));
    let field = |name: &str, value: &str| line(&format!("  {name:<11} {value}"));
    if !r.output.is_empty() {
        let mut lines = r.output.lines();
        field("output:", lines.next().unwrap_or_default());
        for more in lines {
            line(&format!("  {:<11} {more}", ""));
        }
    }
    if let Some(error) = &r.error {
        field("error:", error);
    }
    field("executor:", &r.executor_type);
    if let Some(ms) = r.duration_ms {
        field("duration:", &format!("{ms:.0} ms"));
    }
    if !r.audit_id.is_empty() {
        field("decision:", &r.audit_id);
    }
    if let Some(id) = &r.execution_audit_id {
        field("recorded:", &format!("{id} (execution event)"));
    }
    if let Some(id) = &outcome.state_capture_id {
        field("state:", &format!("{id} (before/after in the audit log)"));
    }
    if let Some(source) = outcome.credential_source {
        let shown = match &outcome.credential_id {
            Some(id) => format!("{} ({id}, revoked)", source.as_str()),
            None => source.as_str().replace('_', " "),
        };
        field("credential:", &shown);
    }
    if let Some(w) = &outcome.revoke_warning {
        field("warning:", w);
    }
    for p in &r.precheck_results {
        let mark = if p.passed { green("pass") } else { red("FAIL") };
        let kind = if p.advisory { "advisory" } else { "blocking" };
        let message =
            if p.message.is_empty() { String::new() } else { format!(" — {}", p.message) };
        field("precheck:", &format!("{mark} {} ({kind}){message}", p.name));
    }
    Ok(code)
}
