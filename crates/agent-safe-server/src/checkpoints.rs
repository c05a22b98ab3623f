//! `audit_checkpoints:`: the server signs checkpoints of the audit log's Merkle tree (C2SP
//! `tlog-checkpoint`s, `agent-safe-tlog`) on a thread of its own, after `every_entries` new
//! entries and at least every `every_seconds` while entries arrive, and once more when it
//! stops; `GET /v1/audit/checkpoint` serves the newest and `GET /v1/audit/proof/{event_id}`
//! proves an entry against it (signing a newer one first when the entry is not covered yet).
//! Requests never wait for a signature except a proof of an entry no checkpoint covers.
//!
//! The same thread asks the configured witnesses (C2SP `tlog-witness`) to cosign each new
//! checkpoint and keeps the cosigned note as the newest; with `audit_shipping:` the checkpoint
//! log goes to the same destinations as the audit log (a worker of its own over
//! `<log>.checkpoints`), since an off-host copy of each checkpoint is what makes a later
//! truncation of the log detectable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use agent_safe::shipping::ShippingWorker;
use agent_safe::{CheckpointsConfig, Clock};
use agent_safe_tlog::{Checkpoint, InclusionBundle, LogSigner, SignError, read_signer_key};

use crate::ServerError;
use crate::metrics::Metrics;
use crate::witness_client::WitnessTarget;

/// The signer and what requests read of it.
pub(crate) struct Checkpoints {
    log: PathBuf,
    signer: Mutex<LogSigner>,
    /// The newest signed note (what `GET /v1/audit/checkpoint` answers).
    latest: RwLock<Option<Arc<str>>>,
    every_entries: u64,
    every: Duration,
    /// Entries this process appended since the last signature.
    appended: AtomicU64,
    /// Set to stop the thread; the condition variable wakes it.
    stop: AtomicBool,
    wake: (Mutex<bool>, Condvar),
    metrics: Arc<Metrics>,
    events: Option<crate::EventSink>,
    clock: Arc<dyn Clock>,
    witnesses: Mutex<Vec<WitnessTarget>>,
    /// Ships `<log>.checkpoints` (with `audit_shipping:`).
    shipping: Option<ShippingWorker>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints").field("log", &self.log).finish_non_exhaustive()
    }
}

/// Why a proof could not be served.
#[derive(Debug)]
pub(crate) enum ProveError {
    /// No entry has that event id.
    NotFound(String),
    /// Reading the log, its indexes or signing failed.
    Failed(String),
}

impl Checkpoints {
    /// Reads the key and opens the signer of the file log at `log`; `shipping` is the
    /// audit log's `audit_shipping:`, whose destinations get the checkpoint log too.
    pub(crate) fn open(
        config: &CheckpointsConfig,
        log: &Path,
        metrics: Arc<Metrics>,
        events: Option<crate::EventSink>,
        clock: Arc<dyn Clock>,
        shipping: Option<&agent_safe::shipping::ShipperConfig>,
    ) -> Result<Arc<Checkpoints>, ServerError> {
        let err = |detail: String| ServerError::Checkpoints(detail);
        let key = read_signer_key(&config.key_file).map_err(|e| err(e.to_string()))?;
        if let Some(origin) = &config.origin
            && origin != key.verifier().name()
        {
            return Err(err(format!(
                "origin `{origin}` is not the name of the key in `{}` (`{}`)",
                config.key_file.display(),
                key.verifier().name()
            )));
        }
        if !log.exists() {
            // The log is created by the first append; an empty one has an empty tree.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| err(format!("{}: {e}", log.display())))?;
        }
        let witnesses = config
            .witnesses
            .iter()
            .map(|w| WitnessTarget::new(&w.url, &w.public_key))
            .collect::<Result<Vec<_>, String>>()
            .map_err(err)?;
        let signer = LogSigner::open(log, key).map_err(|e| err(e.to_string()))?;
        let shipping = match shipping {
            Some(config) => start_shipping(&config.for_checkpoints(), log, &clock).map_err(err)?,
            None => None,
        };
        let latest = signer.latest().map(|(_, note)| Arc::from(note.as_str()));
        if let Some((c, _)) = signer.latest() {
            metrics.checkpoint_size.store(c.size, Ordering::Relaxed);
        }
        Ok(Arc::new(Checkpoints {
            log: log.to_owned(),
            signer: Mutex::new(signer),
            latest: RwLock::new(latest),
            every_entries: config.every_entries.get(),
            every: Duration::from_secs(config.every_seconds.get()),
            appended: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
            metrics,
            events,
            clock,
            witnesses: Mutex::new(witnesses),
            shipping,
        }))
    }

    /// Starts the signing thread; it stops (after a last signature) when the guard is dropped.
    pub(crate) fn start(self: &Arc<Self>) -> Result<CheckpointThread, ServerError> {
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name("agent-safe-checkpoints".to_owned())
            .spawn(move || me.run())
            .map_err(|e| ServerError::Checkpoints(format!("cannot start its thread: {e}")))?;
        Ok(CheckpointThread { checkpoints: self.clone(), handle: Some(handle) })
    }

    /// Counts `n` appended entries; wakes the thread once `every_entries` are waiting.
    pub(crate) fn appended(&self, n: u64) {
        let before = self.appended.fetch_add(n, Ordering::Relaxed);
        if before < self.every_entries && before + n >= self.every_entries {
            self.wake();
        }
    }

    fn wake(&self) {
        let (flag, condvar) = &self.wake;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        condvar.notify_one();
    }

    fn run(&self) {
        // The witnesses are asked from this thread (never from a request's), on a runtime of
        // its own; without one the checkpoints are still signed, and the failure reported.
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                let client = agent_safe_http::builder()
                    .map_err(|e| e.to_string())?
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok((rt, client))
            });
        loop {
            let (flag, condvar) = &self.wake;
            let woken = flag.lock().unwrap_or_else(PoisonError::into_inner);
            let (mut woken, _) = condvar
                .wait_timeout_while(woken, self.every, |w| {
                    !*w && !self.stop.load(Ordering::Relaxed)
                })
                .unwrap_or_else(PoisonError::into_inner);
            *woken = false;
            drop(woken);
            // A failure is reported and counted; the next round tries again.
            let _ = self.sign_pending();
            match &client {
                Ok((rt, client)) => self.witness(rt, client),
                Err(e) => self.report(format!("cannot ask the witnesses: {e}")),
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }

    /// Signs when entries arrived since the newest checkpoint.
    pub(crate) fn sign_pending(&self) -> Result<(), SignError> {
        let mut signer = self.signer.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = signer.catch_up().inspect_err(|e| self.report(e.to_string()))?;
        if pending > 0 {
            self.sign(&mut signer)?;
        }
        Ok(())
    }

    fn sign(&self, signer: &mut LogSigner) -> Result<(Checkpoint, String), SignError> {
        self.appended.store(0, Ordering::Relaxed);
        let before = signer.latest().map(|(c, _)| c.size);
        let (checkpoint, note) =
            signer.sign(self.clock.now()).inspect_err(|e| self.report(e.to_string()))?;
        if before != Some(checkpoint.size) {
            self.published(&checkpoint, &note);
            self.metrics.checkpoints_signed.fetch_add(1, Ordering::Relaxed);
        }
        Ok((checkpoint, note))
    }

    /// `note` is the newest checkpoint from now on: served, counted, shipped.
    fn published(&self, checkpoint: &Checkpoint, note: &str) {
        *self.latest.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(note));
        self.metrics.checkpoint_size.store(checkpoint.size, Ordering::Relaxed);
        if let Some(worker) = &self.shipping {
            worker.notify();
        }
    }

    /// Asks every witness that has not cosigned the newest checkpoint yet; keeps the
    /// cosignatures it gets as a new record of the checkpoint log (the newest note).
    fn witness(&self, rt: &tokio::runtime::Runtime, client: &reqwest::Client) {
        let mut witnesses = self.witnesses.lock().unwrap_or_else(PoisonError::into_inner);
        let latest = self.signer.lock().unwrap_or_else(PoisonError::into_inner).latest().cloned();
        let Some((checkpoint, note)) = latest else { return };
        let mut cosigned = note.clone();
        for target in witnesses.iter_mut().filter(|w| w.known != Some(checkpoint.size)) {
            let proof_from = |old: u64| {
                let signer = self.signer.lock().unwrap_or_else(PoisonError::into_inner);
                signer.tree().consistency_proof(old, checkpoint.size).map_err(|e| e.to_string())
            };
            match rt.block_on(target.cosign(client, &checkpoint, &note, proof_from)) {
                // The witness's lines, after the ones the note had.
                Ok(with) => cosigned.push_str(with.get(note.len()..).unwrap_or_default()),
                Err(e) => {
                    self.metrics.witness_failures.fetch_add(1, Ordering::Relaxed);
                    self.report(e);
                }
            }
        }
        if cosigned == note {
            return;
        }
        let mut signer = self.signer.lock().unwrap_or_else(PoisonError::into_inner);
        // A newer checkpoint was signed meanwhile: the next round has it cosigned.
        if signer.latest().map(|(c, _)| c) != Some(&checkpoint) {
            return;
        }
        match signer.cosigned(&cosigned, self.clock.now()) {
            Ok(()) => self.published(&checkpoint, &cosigned),
            Err(e) => self.report(e.to_string()),
        }
    }

    fn report(&self, error: String) {
        self.metrics.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(sink) = &self.events {
            (sink.0)(&crate::ServerEvent::CheckpointFailed { error });
        }
    }

    /// Waits until the checkpoint log is shipped, at most `timeout`; whether it got there.
    pub(crate) fn flush_shipping(&self, timeout: Duration) -> bool {
        self.shipping.as_ref().is_none_or(|w| w.flush(timeout))
    }

    /// The newest signed checkpoint's note.
    pub(crate) fn latest(&self) -> Option<Arc<str>> {
        self.latest.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The inclusion proof of the entry `event_id` against the newest checkpoint, signing a
    /// newer one first when it does not cover the entry. Blocking.
    pub(crate) fn prove(&self, event_id: &str) -> Result<InclusionBundle, ProveError> {
        let failed = |e: &dyn std::fmt::Display| ProveError::Failed(e.to_string());
        let mut signer = self.signer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((leaf, line)) = signer.entry(event_id).map_err(|e| failed(&e))? else {
            return Err(ProveError::NotFound(format!("no entry with event id `{event_id}`")));
        };
        let entry = String::from_utf8(line).map_err(|_| failed(&"the entry is not UTF-8"))?;
        let covered = signer.latest().filter(|(c, _)| leaf < c.size).cloned();
        let (checkpoint, note) = match covered {
            Some(latest) => latest,
            None => self.sign(&mut signer).map_err(|e| failed(&e))?,
        };
        if leaf >= checkpoint.size {
            return Err(failed(&format!(
                "entry `{event_id}` is entry {} of the log; the tree index holds {}",
                leaf + 1,
                checkpoint.size
            )));
        }
        let proof = signer.tree().inclusion_proof(leaf, checkpoint.size).map_err(|e| failed(&e))?;
        // The leaf comes from the log, the proof from the index: a log rewritten under the
        // checkpoint gives a proof that does not verify, and none is served.
        let leaf_hash = agent_safe_tlog::leaf_hash(entry.as_bytes());
        if let Err(e) = agent_safe_tlog::verify_inclusion(
            &leaf_hash,
            leaf,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        ) {
            return Err(failed(&format!(
                "entry {} of the log (`{event_id}`) is not the one the checkpoint of size {} \
                 signs ({e}): the log was rewritten or cut short under it; run `agent-safe \
                 audit verify --checkpoint`",
                leaf + 1,
                checkpoint.size
            )));
        }
        Ok(InclusionBundle::new(event_id, &entry, leaf, &checkpoint, &note, &proof))
    }
}

/// Stops the signing thread when dropped (it signs once more first).
#[derive(Debug)]
pub(crate) struct CheckpointThread {
    checkpoints: Arc<Checkpoints>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for CheckpointThread {
    fn drop(&mut self) {
        self.checkpoints.stop.store(true, Ordering::Relaxed);
        self.checkpoints.wake();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// A shipping worker over the checkpoint log of `log` to the destinations of `config`.
fn start_shipping(
    config: &agent_safe::shipping::ShipperConfig,
    log: &Path,
    clock: &Arc<dyn Clock>,
) -> Result<Option<ShippingWorker>, String> {
    let shippers = config.build_shippers(clock).map_err(|e| format!("audit_shipping: {e}"))?;
    if shippers.is_empty() {
        return Ok(None);
    }
    let path = agent_safe_tlog::checkpoints_path(log);
    if !path.exists() {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let options = config.options(clock.clone()).map_err(|e| format!("audit_shipping: {e}"))?;
    let source = agent_safe::shipping::FileSource::shared(&path);
    ShippingWorker::start_from(source, shippers, options)
        .map(Some)
        .map_err(|e| format!("shipping {}: {e}", path.display()))
}
