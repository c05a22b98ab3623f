//! The agent-safe runner: governed execution from an execution ticket to the audit log.
//!
//! [`Runner::run`] takes a ticket token and, in this order (see `docs/runner.md`):
//!
//! 1. validates it with the persistent nonce store (signature, issuer, type, expiry, params
//!    digest; the nonce is consumed, so a ticket executes at most once across processes);
//! 2. looks the action up in the registry;
//! 3. resolves the credential the action declares from the vault; without a vault such an
//!    action is refused unless [`RunnerConfig::ambient_credentials`] is set;
//! 4. runs the declared prechecks; a failed `blocking: true` precheck stops here (`skipped`);
//! 5. reads the before-state, 6. executes under the runner's own timeout, 7. reads the
//!    after-state;
//! 8. revokes the credential (on every path: success, failure, timeout, a panicking executor,
//!    and a cancelled run);
//! 9. appends an `execution` event, and a `state_capture` event linked to the decision, to the
//!    audit log before returning. A rejected ticket, a missing action and a credential failure
//!    are `execution` events too.
//!
//! [`Runner::dry_run`] checks a ticket without consuming it and reports what would happen.
//!
//! Executors: [`DryRunExecutor`] (no side effects). The kubectl, Kubernetes API and AWS
//! executors live in their own crates (`agent-safe-executor-kubectl`,
//! `agent-safe-executor-k8s`, `agent-safe-executor-aws`).
//!
//! ```
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use agent_safe_core::{ExecutionStatus, ManualClock};
//! use agent_safe_registry::Registry;
//! use agent_safe_runner::{DryRunExecutor, MemoryAuditSink, Runner};
//! use agent_safe_tickets::{MemoryNonceStore, SigningKey, TicketIssuer, TicketValidator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = b"name: noop\nversion: 1.0.0\ndescription: Nothing\nrisk_class: low\n\
//!     target_types: [any]\n";
//! let registry = Arc::new(Registry::from_sources([(PathBuf::from("noop.yaml"), &yaml[..])])?);
//! let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-02-24 12:00 UTC)));
//! let key = SigningKey::hs256_from_str("an example key of at least thirty-two bytes")?;
//! let nonces = Arc::new(MemoryNonceStore::new(clock.clone()));
//! let validator = TicketValidator::new(&key, "agent-safe", clock.clone(), nonces);
//! let ticket = TicketIssuer::new(key, "agent-safe", clock.clone())
//!     .issue("noop", "dev/app", "bot", &Default::default(), "evt-0123456789ab")?;
//!
//! let audit = Arc::new(MemoryAuditSink::default());
//! let runner = Runner::new(Arc::new(DryRunExecutor), registry, validator, clock)
//!     .with_audit(audit.clone());
//! let outcome = runner.run(&ticket.token).await?;
//! assert_eq!(outcome.result.status, ExecutionStatus::Skipped);
//! assert_eq!(outcome.result.output, "[dry-run] Would execute noop on dev/app");
//! // The execution and the state capture are in the log, linked to the decision.
//! let events = audit.events();
//! assert_eq!(events.len(), 2);
//! assert!(events.iter().all(|e| e.correlation_id.as_deref() == Some("evt-0123456789ab")));
//! // The ticket was used: a second run is refused (and audited).
//! let replay = runner.run(&ticket.token).await?;
//! assert_eq!(replay.result.status, ExecutionStatus::Error);
//! # Ok(())
//! # }
//! ```

mod audit;
mod catch;
mod claims;
mod dry_run;
mod error;
mod redact;
mod runner;

/// The benchmark figures (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod bench;

pub use audit::{AuditSink, MemoryAuditSink, OUTPUT_AUDIT_LIMIT, REASON_LIMIT};
pub use dry_run::DryRunExecutor;
pub use error::RunnerError;
pub use redact::{REDACTED, STATE_KEY_CONTEXT};
pub use runner::{
    CredentialSource, DEFAULT_STEP_TIMEOUT, DEFAULT_TIMEOUT, RunOutcome, Runner, RunnerConfig,
};
