//! The server's metrics, kept in atomics and written by hand in the Prometheus text format
//! (version 0.0.4): decisions by result, check and audit-append latency histograms, HTTP
//! responses by class, reloads, and the audit shipping backlog.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_safe::{AppendObserver, DecisionResult};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// `counts[i]`: observations in bucket `i` only (not cumulative); the last is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Every figure the server exports.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    decisions: [AtomicU64; 3],
    pub(crate) check_latency: Histogram,
    pub(crate) append_latency: Histogram,
    /// Responses by status class 1xx..5xx (index 0..4).
    responses: [AtomicU64; 5],
    pub(crate) reloads: AtomicU64,
    /// Checkpoints signed (`audit_checkpoints:`), signing failures, the newest one's size.
    pub(crate) checkpoints_signed: AtomicU64,
    pub(crate) checkpoint_failures: AtomicU64,
    pub(crate) checkpoint_size: AtomicU64,
    /// Witness requests that did not bring a cosignature.
    pub(crate) witness_failures: AtomicU64,
    pub(crate) reload_failures: AtomicU64,
    /// Approval notifications dropped by configurations already replaced by a reload (the
    /// current one's count is added when rendering).
    pub(crate) notifications_dropped_before: AtomicU64,
    /// Requests whose headers were read and whose response is not ready yet.
    in_flight: AtomicU64,
}

/// Counts one request in flight until dropped (also when the request is cancelled).
pub(crate) struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub(crate) fn decision(&self, result: DecisionResult) {
        let i = match result {
            DecisionResult::Allow => 0,
            DecisionResult::Deny => 1,
            DecisionResult::RequireApproval => 2,
        };
        if let Some(c) = self.decisions.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request started; in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub(crate) fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(c) = self.responses.get(class) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition; `backlog` is the shipping backlog when shipping is configured,
    /// `dropped` the approval notifications the current configuration dropped.
    pub(crate) fn render(&self, backlog: Option<Option<u64>>, dropped: u64) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP agent_safe_decisions_total Decisions returned, by result.\n");
        out.push_str("# TYPE agent_safe_decisions_total counter\n");
        for (label, c) in ["allow", "deny", "require_approval"].iter().zip(&self.decisions) {
            let _ = writeln!(
                out,
                "agent_safe_decisions_total{{result=\"{label}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        self.check_latency.write(
            &mut out,
            "agent_safe_check_duration_seconds",
            "Time to answer POST /v1/check (evaluation, audit append, ticket).",
        );
        self.append_latency.write(
            &mut out,
            "agent_safe_audit_append_duration_seconds",
            "Time to append a decision to the audit log.",
        );
        out.push_str("# HELP agent_safe_http_responses_total HTTP responses, by status class.\n");
        out.push_str("# TYPE agent_safe_http_responses_total counter\n");
        for (label, c) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().zip(&self.responses) {
            let _ = writeln!(
                out,
                "agent_safe_http_responses_total{{status=\"{label}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agent_safe_http_requests_in_flight Requests being answered (this one \
             included).\n# TYPE agent_safe_http_requests_in_flight gauge\n\
             agent_safe_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        for (name, help, c) in [
            ("agent_safe_reloads_total", "Configurations loaded and swapped in.", &self.reloads),
            (
                "agent_safe_reload_failures_total",
                "Reloads refused because the new configuration is invalid.",
                &self.reload_failures,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        let name = "agent_safe_approval_notifications_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Approval notifications dropped because the notification queue was \
             full (the oldest waiting one is dropped).\n# TYPE {name} counter\n{name} {}",
            self.notifications_dropped_before.load(Ordering::Relaxed).saturating_add(dropped)
        );
        for (name, kind, help, c) in [
            (
                "agent_safe_audit_checkpoints_total",
                "counter",
                "Checkpoints of the audit log signed (`audit_checkpoints:`).",
                &self.checkpoints_signed,
            ),
            (
                "agent_safe_audit_checkpoint_failures_total",
                "counter",
                "Checkpoints that could not be signed (see the server's output).",
                &self.checkpoint_failures,
            ),
            (
                "agent_safe_audit_witness_failures_total",
                "counter",
                "Witness requests that brought no cosignature (refused, unreachable, invalid).",
                &self.witness_failures,
            ),
            (
                "agent_safe_audit_checkpoint_size",
                "gauge",
                "Entries covered by the newest signed checkpoint.",
                &self.checkpoint_size,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        if let Some(backlog) = backlog {
            out.push_str(
                "# HELP agent_safe_audit_shipping_backlog Audit entries the slowest shipper is \
                 behind (-1: unknown).\n# TYPE agent_safe_audit_shipping_backlog gauge\n",
            );
            let value = backlog.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
            let _ = writeln!(out, "agent_safe_audit_shipping_backlog {value}");
        }
        out
    }
}

/// The checkpoint signer appends are counted for, once it is open.
pub(crate) type SignerHook =
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::checkpoints::Checkpoints>>>;

/// The audit-append observer handed to every loaded `AgentSafe`: the append latency, and
/// the count that wakes the checkpoint signer.
#[derive(Debug)]
pub(crate) struct AppendTimer {
    pub(crate) metrics: std::sync::Arc<Metrics>,
    pub(crate) signer: SignerHook,
}

impl AppendObserver for AppendTimer {
    fn appended(&self, elapsed: Duration) {
        self.metrics.append_latency.observe(elapsed);
        if let Some(signer) = self.signer.get() {
            signer.appended(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(observations_us: &[u64], expected_lines: &[&str]) {
        let m = Metrics::default();
        for us in observations_us {
            m.check_latency.observe(Duration::from_micros(*us));
        }
        m.decision(DecisionResult::Allow);
        m.decision(DecisionResult::Deny);
        m.decision(DecisionResult::Deny);
        let text = m.render(None, 0);
        for line in expected_lines {
            assert!(text.lines().any(|l| l == *line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains("shipping_backlog"));
    }

    #[test]
    fn histograms_are_cumulative_and_decisions_counted() {
        check(
            &[50, 200, 200, 3000, 9_000_000],
            &[
                "agent_safe_check_duration_seconds_bucket{le=\"0.0001\"} 1",
                "agent_safe_check_duration_seconds_bucket{le=\"0.00025\"} 3",
                "agent_safe_check_duration_seconds_bucket{le=\"0.005\"} 4",
                "agent_safe_check_duration_seconds_bucket{le=\"2.5\"} 4",
                "agent_safe_check_duration_seconds_bucket{le=\"+Inf\"} 5",
                "agent_safe_check_duration_seconds_count 5",
                "agent_safe_decisions_total{result=\"allow\"} 1",
                "agent_safe_decisions_total{result=\"deny\"} 2",
                "agent_safe_decisions_total{result=\"require_approval\"} 0",
            ],
        );
    }

    #[test]
    fn backlog_is_exported_when_shipping() {
        let m = Metrics::default();
        assert!(m.render(Some(Some(7)), 0).contains("\nagent_safe_audit_shipping_backlog 7\n"));
        assert!(m.render(Some(None), 0).contains("\nagent_safe_audit_shipping_backlog -1\n"));
    }

    #[test]
    fn dropped_notifications_add_up_across_reloads() {
        let m = Metrics::default();
        let line = |text: String| {
            text.lines()
                .find(|l| l.starts_with("agent_safe_approval_notifications_dropped_total "))
                .map(str::to_owned)
        };
        assert_eq!(
            line(m.render(None, 0)).as_deref(),
            Some("agent_safe_approval_notifications_dropped_total 0")
        );
        m.notifications_dropped_before.fetch_add(5, Ordering::Relaxed);
        assert_eq!(
            line(m.render(None, 3)).as_deref(),
            Some("agent_safe_approval_notifications_dropped_total 8")
        );
        assert!(
            m.render(None, 3)
                .contains("# TYPE agent_safe_approval_notifications_dropped_total counter\n")
        );
    }
}
