//! agent-safe as a long-running sidecar: the HTTP/JSON API behind `agent-safe serve`, so agents
//! written in any language are governed without linking Rust. See `docs/server.md`.
//!
//! ```no_run
//! use agent_safe_server::{Server, ServerConfig, Source};
//!
//! # async fn run() -> Result<(), agent_safe_server::ServerError> {
//! let server = Server::new(Source::new(), ServerConfig::default())?;
//! let listener = tokio::net::TcpListener::bind(ServerConfig::default().listen)
//!     .await
//!     .map_err(agent_safe_server::ServerError::Io)?;
//! server.serve(listener, agent_safe_server::shutdown_signal()).await
//! # }
//! ```
//!
//! Every request takes the configuration in force when it starts and is decided by it alone;
//! [`Server::reload`] (SIGHUP, `POST /v1/admin/reload`) swaps in a new one only once it loaded
//! completely.

mod accept;
/// Load generation and the `serve` figures (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod bench;
mod checkpoints;
mod config;
pub mod http;
mod limit;
pub mod mcp;
mod metrics;
mod source;
mod state;
mod tls;
mod watch;
mod witness_client;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_safe::AgentSafe;
use agent_safe_core::Executor;
use tokio::net::TcpListener;

pub use config::{
    CallerAuth, CallerRateLimit, DEFAULT_LISTEN, EventSink, ExecutorChoice, ServerConfig,
};
pub use source::{Customize, Loaded, Source};
pub use state::{ReloadStatus, ServerEvent};
pub use tls::{TlsConfig, TlsError};

use state::Shared;

/// Why the server could not start, load a configuration or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration could not be loaded (registry, policies, inventory, keys, audit log…).
    #[error(transparent)]
    Load(#[from] agent_safe::BuildError),
    /// A configuration file could not be read to compute the policy revision.
    #[error("cannot read `{}` for the policy revision: {source}", path.display())]
    Revision {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The files kept changing while they were loaded.
    #[error("the configuration under `{}` kept changing while it was loaded; try again", .0.display())]
    Unstable(PathBuf),
    /// Tokens are required but no signing key is configured to verify them.
    #[error(
        "`agent-safe serve` verifies identity tokens and needs a signing key: set `signing_key` or \
         `signing_key_file` in agent-safe.yaml, or pass --allow-anonymous for local development"
    )]
    NoSigningKey,
    /// The working directory could not be read (to discover agent-safe.yaml).
    #[error("cannot read the current directory: {0}")]
    CurrentDir(#[source] std::io::Error),
    /// The executor could not be set up.
    #[error("cannot set up the `{name}` executor: {message}")]
    Executor {
        /// Which executor.
        name: &'static str,
        /// Why.
        message: String,
    },
    /// Accepting connections failed.
    #[error("cannot serve: {0}")]
    Io(#[source] std::io::Error),
    /// The TLS certificate, key or client CA could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `audit_checkpoints:` could not be set up (the key, its origin, the log's tree).
    #[error("audit_checkpoints: {0}")]
    Checkpoints(String),
}

/// The server: a loaded configuration, its limits and its metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// Loads the configuration from `source` (failing on any error in it) and sets up the
    /// executor and, when `audit_shipping:` is configured, the process's audit shipper.
    pub fn new(source: Source, config: ServerConfig) -> Result<Self, ServerError> {
        let executor = executor(&config.executor, &source)?;
        Ok(Self { shared: Arc::new(Shared::new(source, config, executor)?) })
    }

    /// The API as an axum router (for tests in-process, or to mount elsewhere).
    pub fn router(&self) -> axum::Router {
        http::router(self.shared.clone())
    }

    /// Loads the configuration again and swaps it in atomically; on any error the old one
    /// keeps serving and the error is reported on `/readyz` and to the event sink. Returns the
    /// new policy revision. Blocking (file I/O): from async code call it on a blocking thread.
    pub fn reload(&self) -> Result<String, ServerError> {
        self.shared.reload()
    }

    /// The configuration serving now.
    pub fn current(&self) -> Arc<Loaded> {
        self.shared.current()
    }

    /// Waits until the audit shipping worker (if any) has every entry, at most `timeout`;
    /// whether it got there. Blocking: from async code call it on a blocking thread.
    pub fn flush_audit_shipping(&self, timeout: Duration) -> bool {
        self.shared.shipping.as_ref().is_none_or(|w| w.flush(timeout))
    }

    /// The SDK serving now.
    pub fn agent_safe(&self) -> AgentSafe {
        self.shared.current().safe.clone()
    }

    /// The outcome of the last reload, if any.
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.shared.last_reload()
    }

    /// Serves HTTP/1.1 (over TLS when [`ServerConfig::tls`] is set) on `listener` until
    /// `shutdown` completes; then stops accepting, lets in-flight requests finish, syncs the
    /// audit log, signs a last checkpoint (`audit_checkpoints:`), flushes approval
    /// notifications and ships pending audit entries (each bounded), and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let connections = accept::Connections {
            router: self.router(),
            tls: self.shared.tls.clone(),
            header_timeout: self.shared.config.header_timeout,
        };
        let graceful = accept::accept_until(listener, connections, shutdown).await;
        self.shared.event(&ServerEvent::ShuttingDown);
        graceful.shutdown().await;
        let shared = self.shared.clone();
        let detail = tokio::task::spawn_blocking(move || flush(&shared))
            .await
            .unwrap_or_else(|e| vec![format!("flushing failed: {e}")]);
        self.shared.event(&ServerEvent::Stopped { detail });
        Ok(())
    }

    /// On unix, reloads on every SIGHUP until the runtime stops (no-op elsewhere).
    pub fn reload_on_sighup(&self) -> Result<(), ServerError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hup = signal(SignalKind::hangup()).map_err(ServerError::Io)?;
            let server = self.clone();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let s = server.clone();
                    // The outcome is reported to the event sink and on /readyz.
                    let _ = tokio::task::spawn_blocking(move || s.reload()).await;
                }
            });
        }
        Ok(())
    }
}

/// A future that completes on SIGTERM or ctrl-c (SIGINT). The SIGTERM handler is installed
/// when this is called, not when the future is first polled: a SIGTERM that arrives after the
/// server said it is listening but before the accept loop polled this future is a graceful
/// shutdown too, never the default action (an exit without flushing). Call it inside the
/// runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What shutdown makes durable; returns what could not be flushed.
fn flush(shared: &Shared) -> Vec<String> {
    let mut problems = Vec::new();
    let loaded = shared.current();
    if let Some(log) = loaded.safe.audit_log()
        && let Err(e) = log.sync()
    {
        problems.push(format!("audit log: {e}"));
    }
    // The last entries get a checkpoint (before shipping, which may carry it off-host).
    if let Some(checkpoints) = &shared.checkpoints
        && let Err(e) = checkpoints.sign_pending()
    {
        problems.push(format!("audit checkpoint: {e}"));
    }
    if !loaded.safe.flush_notifications(Duration::from_secs(5)) {
        problems.push("approval notifications: some were not delivered within 5 s".to_owned());
    }
    if let Some(worker) = &shared.shipping
        && !worker.flush(Duration::from_secs(5))
    {
        problems.push("audit shipping: not everything was shipped within 5 s".to_owned());
    }
    if let Some(checkpoints) = &shared.checkpoints
        && !checkpoints.flush_shipping(Duration::from_secs(5))
    {
        problems.push("checkpoint shipping: not everything was shipped within 5 s".to_owned());
    }
    problems
}

fn executor(choice: &ExecutorChoice, source: &Source) -> Result<Arc<dyn Executor>, ServerError> {
    choice
        .build(source.clock_or_system())
        .map_err(|e| ServerError::Executor { name: e.name, message: e.message })
}
