//! Audit shipping in the SDK: the `audit_shippers` builder option and the `audit_shipping:`
//! section of `agent-safe.yaml` start a background [`ShippingWorker`] that copies the audit
//! log to a file, a webhook and/or S3.
//!
//! Unlike the Python version, a decision never waits for a shipper: [`AgentSafe::check`]
//! appends to the log (which is the durable outbox) and only wakes the worker. The worker
//! ships from per-destination cursors (files next to a file log; rows of the database with
//! `state: {backend: postgres}`, where one process of the cluster ships to each destination
//! and the others stand by), retries with capped exponential backoff and resumes after a
//! restart (see `docs/audit-log.md`, "Shipping"). Dropping the last
//! [`AgentSafe`] clone stops the worker at once; call [`AgentSafe::flush_audit_shipping`]
//! first to ship what is pending (what is not shipped then is shipped by the next process).

use std::sync::Arc;
use std::time::Duration;

pub use agent_safe_audit_ship::{
    DEFAULT_EXIT_FLUSH_TIMEOUT, DEFAULT_S3_PREFIX, FileSource, ReplayOptions, ReplayReport,
    RetryPolicy, ShipLogError, ShipSource, Shipper, ShipperConfig, ShipperConfigError,
    ShipperStatus, ShippingOptions, ShippingWorker, Sleeper, StartAt, replay, replay_from,
};
use agent_safe_core::Clock;

use crate::{AgentSafe, Builder};

/// Why audit shipping could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShippingError {
    /// Shippers were configured without an audit log to ship.
    #[error("audit shippers require an audit log")]
    WithoutAuditLog,
    /// A shipper setting is invalid.
    #[error("audit_shipping: {0}")]
    Config(#[from] ShipperConfigError),
    /// The worker could not be started.
    #[error(transparent)]
    Start(#[from] ShipLogError),
}

/// Shipping options collected by the builder.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    config: Option<ShipperConfig>,
    custom: Vec<Arc<dyn Shipper>>,
    sleeper: Option<Arc<dyn Sleeper>>,
}

impl Builder {
    /// Ships the audit log as `config` says (replaces the `audit_shipping:` section of
    /// `agent-safe.yaml`). Requires an audit log.
    pub fn audit_shippers(mut self, config: ShipperConfig) -> Self {
        self.shipping.config = Some(config);
        self
    }

    /// Adds a shipper of your own, next to the configured ones. Requires an audit log.
    pub fn audit_shipper(mut self, shipper: Arc<dyn Shipper>) -> Self {
        self.shipping.custom.push(shipper);
        self
    }

    /// What waits out the retry backoff (default: tokio's timer). Tests inject one that does
    /// not sleep.
    pub fn audit_shipping_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.shipping.sleeper = Some(sleeper);
        self
    }
}

impl Settings {
    /// Starts the worker over `log` (the file log, or the database's), or `None` when no
    /// shipper is configured.
    pub(crate) fn start(
        self,
        file: Option<&ShipperConfig>,
        log: Option<Arc<dyn ShipSource>>,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<ShippingWorker>, ShippingError> {
        let config = self.config.as_ref().or(file);
        let mut shippers = match config {
            Some(c) => c.build_shippers(clock)?,
            None => Vec::new(),
        };
        shippers.extend(self.custom);
        if shippers.is_empty() {
            return Ok(None);
        }
        let log = log.ok_or(ShippingError::WithoutAuditLog)?;
        let mut options = match config {
            Some(c) => c.options(clock.clone())?,
            None => ShippingOptions { clock: clock.clone(), ..ShippingOptions::default() },
        };
        if let Some(sleeper) = self.sleeper {
            options.sleeper = sleeper;
        }
        Ok(Some(ShippingWorker::start_from(log, shippers, options)?))
    }
}

/// Starts a shipping worker for the audit log `log` reads (see
/// [`crate::state::SharedState::ship_source`]) as `config` (the `audit_shipping:` section)
/// says, or `None` when it names no destination: for programs that append to the log without
/// an [`AgentSafe`] (the CLI's `runner execute`).
pub fn start_worker(
    config: Option<&ShipperConfig>,
    log: Arc<dyn ShipSource>,
    clock: &Arc<dyn Clock>,
) -> Result<Option<ShippingWorker>, ShippingError> {
    Settings::default().start(config, Some(log), clock)
}

impl AgentSafe {
    /// The shipping worker, when shippers are configured: its
    /// [`status`](ShippingWorker::status) and [`lag`](ShippingWorker::lag) are the figures
    /// for monitoring.
    pub fn audit_shipping(&self) -> Option<&ShippingWorker> {
        self.inner.shipping.as_ref()
    }

    /// Waits until every shipper has everything the audit log held when this was called,
    /// at most `timeout` (e.g. before a short-lived process exits). Returns whether it got
    /// there; `true` without shippers.
    pub fn flush_audit_shipping(&self, timeout: Duration) -> bool {
        self.inner.shipping.as_ref().is_none_or(|w| w.flush(timeout))
    }

    /// What audit shipping reads for this instance's log (`None` without one): the file, or
    /// with `state: {backend: postgres}` the database's log, shipped once for the cluster. For
    /// programs that run a [`ShippingWorker`] of their own (`agent-safe serve`).
    pub fn audit_ship_source(
        &self,
    ) -> Result<Option<Arc<dyn ShipSource>>, crate::state::StateError> {
        match &self.inner.audit {
            Some(log) => self.inner.state.ship_source(log.file_path()),
            None => Ok(None),
        }
    }

    /// Wakes the shipping worker after an append (never blocks).
    pub(crate) fn notify_shippers(&self) {
        if let Some(worker) = &self.inner.shipping {
            worker.notify();
        }
    }
}

#[cfg(test)]
mod tests;
