//! The state every request reads: the current [`Loaded`] configuration behind a lock, swapped
//! whole on reload, and what the last reload did.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use agent_safe::shipping::ShippingWorker;
use agent_safe::{Clock, IdentityMode};
use agent_safe_core::Executor;
use serde::Serialize;

use crate::limit::CallerLimiter;
use crate::metrics::{AppendTimer, Metrics};
use crate::source::{Loaded, Source};
use crate::{CallerAuth, ServerConfig, ServerError};

/// What the server reports to the [`EventSink`](crate::EventSink).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A configuration was loaded and swapped in.
    Reloaded {
        /// Its policy revision.
        revision: String,
    },
    /// A new configuration was refused; the previous one keeps serving.
    ReloadFailed {
        /// Why.
        error: String,
    },
    /// Shutdown began: no new connections; in-flight requests are finishing.
    ShuttingDown,
    /// Shutdown finished; `detail` names anything that could not be flushed.
    Stopped {
        /// Problems while flushing (empty when everything was flushed).
        detail: Vec<String>,
    },
    /// A checkpoint of the audit log could not be signed, or a witness did not cosign it
    /// (`audit_checkpoints:`); the next round tries again.
    CheckpointFailed {
        /// Why.
        error: String,
    },
}

/// The outcome of the last reload, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    /// Whether it succeeded.
    pub ok: bool,
    /// When it was tried (server clock, RFC 3339).
    pub at: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The revision it would have loaded or loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Shared by every request and the reload paths.
#[derive(Debug)]
pub(crate) struct Shared {
    current: RwLock<Arc<Loaded>>,
    last_reload: Mutex<Option<ReloadStatus>>,
    /// Serialises reloads (a reload is slow; requests never wait for it).
    reloading: Mutex<()>,
    pub(crate) source: Source,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limiter: Option<CallerLimiter>,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) shipping: Option<ShippingWorker>,
    /// The checkpoint signer (`audit_checkpoints:`).
    pub(crate) checkpoints: Option<Arc<crate::checkpoints::Checkpoints>>,
    /// What every configuration's append observer counts appends for (set once the signer
    /// is open).
    signer_hook: crate::metrics::SignerHook,
    /// Stops the signer's thread when the server goes (declared after `checkpoints`).
    _checkpoint_thread: Option<crate::checkpoints::CheckpointThread>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The TLS settings when the server speaks HTTPS (built once, at start-up).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    pub(crate) fn new(
        source: Source,
        config: ServerConfig,
        executor: Arc<dyn Executor>,
    ) -> Result<Self, ServerError> {
        let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
        let metrics = Arc::new(Metrics::default());
        let signer_hook = Arc::new(std::sync::OnceLock::new());
        let observer = AppendTimer { metrics: metrics.clone(), signer: signer_hook.clone() };
        let loaded = source.load(identity_mode(config.auth), Arc::new(observer), None)?;
        if config.auth == CallerAuth::Required && loaded.safe.delegations().is_err() {
            return Err(ServerError::NoSigningKey);
        }
        let clock = source.clock_or_system();
        let limiter = config.rate_limit.map(|l| CallerLimiter::new(l, clock.clone()));
        let shipping = start_shipping(&source, &loaded.safe, &clock)?;
        let checkpoints = open_checkpoints(&source, &loaded.safe, &metrics, &config)?;
        let checkpoint_thread = checkpoints.as_ref().map(|c| c.start()).transpose()?;
        if let Some(c) = &checkpoints {
            let _ = signer_hook.set(c.clone());
        }
        Ok(Self {
            current: RwLock::new(Arc::new(loaded)),
            last_reload: Mutex::new(None),
            reloading: Mutex::new(()),
            source,
            config,
            metrics,
            limiter,
            executor,
            shipping,
            checkpoints,
            signer_hook,
            _checkpoint_thread: checkpoint_thread,
            clock,
            tls,
        })
    }

    /// The configuration a request is decided by (taken once, at its start).
    pub(crate) fn current(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn last_reload(&self) -> Option<ReloadStatus> {
        self.last_reload.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Loads the configuration again; swaps it in only when it loaded completely.
    pub(crate) fn reload(&self) -> Result<String, ServerError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(PoisonError::into_inner);
        let observer = self.observer();
        let previous = self.current();
        let result =
            self.source.load(identity_mode(self.config.auth), observer, Some(&previous.safe));
        let result = result.and_then(|l| {
            if self.config.auth == CallerAuth::Required && l.safe.delegations().is_err() {
                Err(ServerError::NoSigningKey)
            } else {
                Ok(l)
            }
        });
        let at = agent_safe_core::timefmt::format_utc(self.clock.now());
        match result {
            Ok(loaded) => {
                let revision = loaded.revision.clone();
                let old = std::mem::replace(
                    &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
                    Arc::new(loaded),
                );
                self.metrics.reloads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *self.last_reload.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(ReloadStatus {
                        ok: true,
                        at,
                        error: None,
                        revision: Some(revision.clone()),
                    });
                self.event(&ServerEvent::Reloaded { revision: revision.clone() });
                // Requests still holding the old configuration finish with it; its queued
                // approval notifications get a bounded time to go out.
                old.safe.flush_notifications(std::time::Duration::from_secs(5));
                self.metrics.notifications_dropped_before.fetch_add(
                    old.safe.notifications_dropped(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                Ok(revision)
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *self.last_reload.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(ReloadStatus {
                        ok: false,
                        at,
                        error: Some(e.to_string()),
                        revision: None,
                    });
                self.event(&ServerEvent::ReloadFailed { error: e.to_string() });
                Err(e)
            }
        }
    }

    /// Wakes the shipping worker after appends (never blocks).
    pub(crate) fn notify_shipping(&self) {
        if let Some(worker) = &self.shipping {
            worker.notify();
        }
    }

    /// The append observer of a loaded configuration: times appends, counts them for the
    /// checkpoint signer.
    fn observer(&self) -> Arc<AppendTimer> {
        Arc::new(AppendTimer { metrics: self.metrics.clone(), signer: self.signer_hook.clone() })
    }

    pub(crate) fn event(&self, event: &ServerEvent) {
        if let Some(sink) = &self.config.events {
            (sink.0)(event);
        }
    }
}

/// `identity: required` when tokens are required; else what agent-safe.yaml says.
fn identity_mode(auth: CallerAuth) -> Option<IdentityMode> {
    match auth {
        CallerAuth::Required => Some(IdentityMode::Required),
        CallerAuth::AllowAnonymous => None,
    }
}

/// The process's one shipping worker, from the start-up configuration's `audit_shipping:`,
/// over the log `safe` writes (the file, or the database's: shipped once for the cluster).
fn start_shipping(
    source: &Source,
    safe: &agent_safe::AgentSafe,
    clock: &Arc<dyn Clock>,
) -> Result<Option<ShippingWorker>, ServerError> {
    let Some(config) = source.shipping()? else { return Ok(None) };
    let shipping = |e| ServerError::Load(agent_safe::BuildError::Shipping(e));
    let shippers = config.build_shippers(clock).map_err(|e| shipping(e.into()))?;
    if shippers.is_empty() {
        return Ok(None);
    }
    let log = safe.audit_ship_source().map_err(|e| ServerError::Load(e.into()))?;
    let Some(log) = log else {
        return Err(shipping(agent_safe::shipping::ShippingError::WithoutAuditLog));
    };
    let options = config.options(clock.clone()).map_err(|e| shipping(e.into()))?;
    Ok(Some(ShippingWorker::start_from(log, shippers, options).map_err(|e| shipping(e.into()))?))
}

/// The checkpoint signer of `audit_checkpoints:` (start-up configuration), over the file log.
fn open_checkpoints(
    source: &Source,
    safe: &agent_safe::AgentSafe,
    metrics: &Arc<Metrics>,
    config: &ServerConfig,
) -> Result<Option<Arc<crate::checkpoints::Checkpoints>>, ServerError> {
    let Some(settings) = source.checkpoints()? else { return Ok(None) };
    if safe.state_backend() == agent_safe::state::StateBackend::Postgres {
        return Err(ServerError::Checkpoints(
            "not yet available with `state: {backend: postgres}` (the database's log); sign \
             checkpoints of an exported copy with `agent-safe audit checkpoint`"
                .to_owned(),
        ));
    }
    let Some(log) = safe.audit_log().and_then(|a| a.file_path()).map(std::path::Path::to_owned)
    else {
        return Err(ServerError::Checkpoints("no audit log is configured".to_owned()));
    };
    let shipping = source.shipping()?;
    crate::checkpoints::Checkpoints::open(
        &settings,
        &log,
        metrics.clone(),
        config.events.clone(),
        source.clock_or_system(),
        shipping.as_ref(),
    )
    .map(Some)
}
