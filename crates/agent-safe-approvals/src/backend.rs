//! Where approval requests are kept: the [`ApprovalBackend`] trait, implemented by the file
//! store ([`FileApprovalStore`], `approvals.jsonl`) and by PostgreSQL (`agent-safe-postgres`),
//! and [`ApprovalStore`], the handle the SDK and the CLI use, which owns what every backend must
//! do the same way: creation times, lazy expiry and the one write path, [`ApprovalStore::update`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_safe_core::Clock;
use time::OffsetDateTime;

use crate::model::{ApprovalRequest, ApprovalStatus, NewRequest};
use crate::store::{CorruptLine, FileApprovalStore, Listing, StoreError};

/// What an [`ApprovalBackend::update`] is handed: the stored request; it returns the request to
/// store in its place, or `None` to store nothing.
pub type UpdateFn<'a> = dyn FnMut(&ApprovalRequest) -> Option<ApprovalRequest> + 'a;

/// A place that keeps approval requests, shared by every process that uses it.
///
/// Backends store and return requests as they are; expiry, clocks and the rules of a change are
/// the [`ApprovalStore`]'s. Every backend keeps the contract of
/// `agent_safe_approvals::store_contract` (feature `test-util`).
pub trait ApprovalBackend: fmt::Debug + Send + Sync {
    /// Where the requests are, as messages name it: the file, or the database (never with a
    /// password).
    fn location(&self) -> String;

    /// The file, for a backend that is one.
    fn file_path(&self) -> Option<&Path> {
        None
    }

    /// Whether the store exists yet (a file store is created by its first request).
    fn exists(&self) -> bool;

    /// Stores a new request. A backend that can tell refuses an id it already holds
    /// ([`StoreError::Duplicate`]).
    fn insert(&self, request: &ApprovalRequest) -> Result<(), StoreError>;

    /// The request `id` as stored ([`StoreError::NotFound`] when there is none).
    fn get(&self, id: &str) -> Result<ApprovalRequest, StoreError>;

    /// The requests as stored, in the order they were made (only those stored as pending when
    /// `pending_only`), and the entries that cannot be read.
    fn list(&self, pending_only: bool) -> Result<Listing, StoreError>;

    /// Reads request `id` holding it exclusively (against every other process and replica),
    /// hands it to `f` once, and stores what `f` returns in its place before letting go; when `f`
    /// returns `None`, nothing is written. Of concurrent updates of one request, each sees the
    /// request as the previous one left it.
    fn update(&self, id: &str, f: &mut UpdateFn<'_>) -> Result<(), StoreError>;

    /// The error naming an unreadable entry that [`ApprovalBackend::list`] reported.
    fn corrupt_error(&self, corrupt: &CorruptLine) -> StoreError;
}

/// A request being changed inside [`ApprovalStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The request; lazy expiry already applied. Whatever the closure leaves here is written
    /// back if it differs from the stored request.
    pub request: ApprovalRequest,
    /// Whether the request expired at this read (it was stored as pending).
    pub expired_now: bool,
    /// The time of the operation (from the store's clock, read while the request is held;
    /// microseconds, the precision of the stored request).
    pub now: OffsetDateTime,
}

/// The approval store of a process: a backend and the clock that dates requests and decides
/// their expiry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApprovalStore {
    backend: Arc<dyn ApprovalBackend>,
    clock: Arc<dyn Clock>,
}

impl ApprovalStore {
    /// The file store at `path` (`approvals.jsonl`; created at the first request, its
    /// directory must exist; the lock file is `<path>.lock`).
    pub fn new(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self::with_backend(Arc::new(FileApprovalStore::new(path)), clock)
    }

    /// The store kept by `backend`.
    pub fn with_backend(backend: Arc<dyn ApprovalBackend>, clock: Arc<dyn Clock>) -> Self {
        Self { backend, clock }
    }

    /// The time by the store's clock, at the precision requests are stored with
    /// (microseconds), so a request made or changed now reads back equal.
    fn now(&self) -> OffsetDateTime {
        agent_safe_core::timefmt::stored_precision(self.clock.now())
    }

    /// Where the requests are (the file, or the database without password).
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// The store file, for the file backend.
    pub fn file_path(&self) -> Option<&Path> {
        self.backend.file_path()
    }

    /// The clock deciding creation and expiry times.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether the store exists yet (a file store is created by its first request).
    pub fn exists(&self) -> bool {
        self.backend.exists()
    }

    /// Creates and stores a new pending request, created now (by the store's clock).
    pub fn create(&self, new: NewRequest) -> Result<ApprovalRequest, StoreError> {
        let request = ApprovalRequest::new(new, self.now());
        self.backend.insert(&request)?;
        Ok(request)
    }

    /// Stores `request` as it is.
    pub fn insert(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        self.backend.insert(request)
    }

    /// The request `id`, with lazy expiry applied to the returned value (nothing is written).
    pub fn get(&self, id: &str) -> Result<ApprovalRequest, StoreError> {
        let mut request = self.backend.get(id)?;
        request.expire_if_due(self.clock.now());
        Ok(request)
    }

    /// Every readable request (lazy expiry applied to the returned values) and every
    /// unreadable entry.
    pub fn list(&self) -> Result<Listing, StoreError> {
        let mut listing = self.backend.list(false)?;
        let now = self.clock.now();
        for request in &mut listing.requests {
            request.expire_if_due(now);
        }
        Ok(listing)
    }

    /// The pending requests (after lazy expiry) and every unreadable entry.
    pub fn list_pending(&self) -> Result<Listing, StoreError> {
        let mut listing = self.backend.list(true)?;
        let now = self.clock.now();
        listing.requests.retain_mut(|r| {
            r.expire_if_due(now);
            r.status == ApprovalStatus::Pending
        });
        Ok(listing)
    }

    /// The error naming an unreadable entry of a [`Listing`].
    pub fn corrupt_error(&self, corrupt: &CorruptLine) -> StoreError {
        self.backend.corrupt_error(corrupt)
    }

    /// Changes request `id`, holding it exclusively: `f` gets the request (lazy expiry applied)
    /// and may change it; when `f` returns `Ok` and the request differs from the stored one, it
    /// is written back before anyone else may read it for an update. When `f` returns `Err`,
    /// nothing is written. An update may not change the request id.
    ///
    /// Exactly one of several concurrent updates of a request (threads, processes, replicas)
    /// sees it in any given state.
    pub fn update<T, E: From<StoreError>>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Slot) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut out: Option<Result<T, E>> = None;
        let stored = self.backend.update(id, &mut |stored| {
            let f = f.take()?;
            let now = self.now();
            let mut request = stored.clone();
            let expired_now = request.expire_if_due(now);
            let mut slot = Slot { request, expired_now, now };
            let result = f(&mut slot);
            let changed = result.is_ok() && slot.request != *stored;
            if changed && slot.request.request_id != stored.request_id {
                out = Some(Err(StoreError::IdChanged {
                    from: stored.request_id.clone(),
                    to: slot.request.request_id.clone(),
                }
                .into()));
                return None;
            }
            out = Some(result);
            changed.then_some(slot.request)
        });
        match (out, stored) {
            // The closure's refusal wins: nothing was written.
            (Some(Err(e)), _) => Err(e),
            (_, Err(e)) => Err(e.into()),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(StoreError::Backend(format!(
                "{}: the store did not hand request `{id}` to the update",
                self.location()
            ))
            .into()),
        }
    }
}
