//! The server's own settings: listen address, who may call, limits, timeouts and the executor
//! `POST /v1/execute` runs tickets with. Fixed for the life of the process (a reload changes
//! only what comes from the [`Source`](crate::Source)).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use agent_safe::ExecuteOptions;

use crate::ServerEvent;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8411);

/// Who may call the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerAuth {
    /// Every request (but health, readiness, metrics and the OpenAPI document) presents an
    /// identity token as `Authorization: Bearer`; the SDK is built with `identity: required`.
    #[default]
    Required,
    /// Requests without a token are accepted and the body's `caller` is used as in the CLI
    /// (local development only). A token, when presented, is still verified.
    AllowAnonymous,
}

/// A per-caller token bucket: `per_second` requests on average, bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallerRateLimit {
    /// Sustained requests per second per caller.
    pub per_second: f64,
    /// Requests a caller may make at once after being idle.
    pub burst: u32,
}

/// The executor `POST /v1/execute` runs tickets with: the SDK's one executor factory.
pub use agent_safe::ExecutorChoice;

/// Receives what the server has to report (listening, reloads, shutdown): the CLI prints it.
#[derive(Clone)]
pub struct EventSink(pub Arc<dyn Fn(&ServerEvent) + Send + Sync>);

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}

/// The server's settings. `ServerConfig::default()` is the safe default: loopback, tokens
/// required, 64 KiB bodies, 10 s per request, 5 s to send the headers, no per-caller rate limit,
/// the dry-run executor.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where [`serve`](crate::Server::serve) is meant to listen (the CLI binds it).
    pub listen: SocketAddr,
    /// Who may call.
    pub auth: CallerAuth,
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
    /// Longest a request may take, reading its body included (408 after), except
    /// `POST /v1/execute`, which is bounded by the execution timeouts.
    pub request_timeout: Duration,
    /// Longest a client may take to send the request headers (the connection is closed after).
    pub header_timeout: Duration,
    /// Per-caller rate limit (429 above).
    pub rate_limit: Option<CallerRateLimit>,
    /// The executor for `POST /v1/execute`.
    pub executor: ExecutorChoice,
    /// Timeouts and credential policy of executions.
    pub execute: ExecuteOptions,
    /// Most steps `POST /v1/check-plan` accepts.
    pub max_plan_steps: usize,
    /// Where events are reported (none by default).
    pub events: Option<EventSink>,
    /// Serve HTTPS with this certificate and key (plain HTTP when `None`, the default).
    pub tls: Option<crate::TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            auth: CallerAuth::Required,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(5),
            rate_limit: None,
            executor: ExecutorChoice::DryRun,
            execute: ExecuteOptions::default(),
            max_plan_steps: 100,
            events: None,
            tls: None,
        }
    }
}

impl ServerConfig {
    /// The longest `POST /v1/execute` may take: the executor timeout plus every other step.
    pub(crate) fn execute_limit(&self) -> Duration {
        let timeout = self.execute.timeout.unwrap_or(Duration::from_secs(300));
        let step = self.execute.step_timeout.unwrap_or(Duration::from_secs(30));
        timeout.saturating_add(step.saturating_mul(8)).max(self.request_timeout)
    }
}
