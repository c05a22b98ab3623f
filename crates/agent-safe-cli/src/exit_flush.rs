//! Before a short-lived command exits, its new audit entries get a bounded time to reach the
//! configured shipping destinations (`audit_shipping:`). What is not delivered in time is not
//! lost: the log is the outbox and the per-destination cursors say what is left, so the next
//! agent-safe process that ships (or `agent-safe audit ship`) sends it; the command says so.

use std::time::Duration;

use agent_safe::shipping::{DEFAULT_EXIT_FLUSH_TIMEOUT, ShippingWorker};
use agent_safe::{AgentSafe, ConfigFile};

/// How long to wait: `--exit-flush-timeout` > `audit_shipping.exit_flush_timeout` > 5 s.
pub(crate) fn timeout(config: Option<&ConfigFile>) -> anyhow::Result<Duration> {
    if let Some(flag) = crate::setup::exit_flush_timeout() {
        return Ok(flag);
    }
    match config.and_then(|c| c.audit_shipping.as_ref()) {
        Some(shipping) => Ok(shipping.exit_flush_timeout()?),
        None => Ok(DEFAULT_EXIT_FLUSH_TIMEOUT),
    }
}

/// Waits (at most `timeout`) until the SDK's shipping worker has everything; says so when not.
pub(crate) fn flush(safe: &AgentSafe, timeout: Duration) {
    if !timeout.is_zero() && !safe.flush_audit_shipping(timeout) {
        not_delivered(timeout);
    }
}

/// Ships what `worker` has not shipped yet (at most `timeout`), then stops it.
pub(crate) fn finish(worker: Option<ShippingWorker>, timeout: Duration) {
    let Some(worker) = worker else { return };
    worker.notify();
    if !timeout.is_zero() && !worker.flush(timeout) {
        not_delivered(timeout);
    }
    worker.shutdown(Duration::ZERO);
}

fn not_delivered(timeout: Duration) {
    crate::output::error(&format!(
        "audit shipping: not every destination has this command's entries after {:.1}s; they \
         stay in the audit log and the next process that ships (or `agent-safe audit ship`) \
         sends them",
        timeout.as_secs_f64()
    ));
}
