//! The log's signer: signs checkpoints of a log's tree with the checkpoint key and keeps them
//! in its [`CheckpointStore`] (`agent-safe audit checkpoint`, `serve`'s `audit_checkpoints`).
//!
//! It never signs a tree that is not an extension of the newest checkpoint it finds there
//! (signed by the same key): a log cut short or rewritten under a checkpoint is refused with
//! [`SignError::Diverged`], so the signer cannot be made to sign a fork of its own history.

use std::path::Path;

use crate::check::{Compared, compare_checkpoints};
use crate::files::CheckpointRecord;
use crate::index::{IndexError, TreeIndex};
use crate::note::{Checkpoint, NoteError, SignerKey};
use crate::store::{CheckpointStore, FileStore, StoreError, TreeSource};

/// Why a checkpoint could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The tree index or the log could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The checkpoint store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A checkpoint in the store is signed by this key but does not open.
    #[error("{store}: the newest checkpoint of this key does not verify: {source}")]
    BadCheckpoint {
        /// The checkpoint store.
        store: String,
        /// Why.
        source: NoteError,
    },
    /// The log is not an extension of the newest signed checkpoint.
    #[error(
        "{store}: the log no longer holds the tree of the newest checkpoint (size {size}; \
         {detail}): it was cut short or rewritten, and no checkpoint is signed over it; run \
         `agent-safe audit verify --checkpoint`"
    )]
    Diverged {
        /// The checkpoint store.
        store: String,
        /// The newest checkpoint's size.
        size: u64,
        /// What differs.
        detail: String,
    },
    /// The log has no entries.
    #[error("{store}: the log has no entries: there is no tree to sign")]
    Empty {
        /// The checkpoint store.
        store: String,
    },
}

/// Signs checkpoints of one log.
pub struct LogSigner {
    key: SignerKey,
    tree: Box<dyn TreeSource>,
    store: Box<dyn CheckpointStore>,
    /// The newest checkpoint of this key, and its signed note.
    latest: Option<(Checkpoint, String)>,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("key", &self.key)
            .field("store", &self.store.location())
            .field("size", &self.tree.size())
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    /// The signer of the file log at `log`: its tree index `<log>.tree` (caught up) and its
    /// checkpoints `<log>.checkpoints`.
    pub fn open(log: &Path, key: SignerKey) -> Result<LogSigner, SignError> {
        let index = TreeIndex::open(log)?;
        LogSigner::with(Box::new(index), Box::new(FileStore::new(log)), key)
    }

    /// A signer over `tree` and `store`, resuming from the newest checkpoint `key` signed in
    /// the store (others' are skipped).
    pub fn with(
        tree: Box<dyn TreeSource>,
        store: Box<dyn CheckpointStore>,
        key: SignerKey,
    ) -> Result<LogSigner, SignError> {
        let mut latest = None;
        for note in store.notes()?.into_iter().rev() {
            match Checkpoint::open(&note, key.verifier()) {
                Ok(checkpoint) => {
                    latest = Some((checkpoint, note));
                    break;
                }
                // Another key's checkpoint (a rotated key, another origin): not ours.
                Err(NoteError::NotSigned { .. }) => {}
                Err(source) => {
                    return Err(SignError::BadCheckpoint { store: store.location(), source });
                }
            }
        }
        Ok(LogSigner { key, tree, store, latest })
    }

    /// The newest checkpoint this key signed, and its note.
    pub fn latest(&self) -> Option<&(Checkpoint, String)> {
        self.latest.as_ref()
    }

    /// The tree (caught up by [`LogSigner::catch_up`]).
    pub fn tree(&self) -> &dyn TreeSource {
        self.tree.as_ref()
    }

    /// Why the tree was rebuilt when it was opened or last caught up, if it was.
    pub fn rebuilt(&self) -> Option<&str> {
        self.tree.rebuilt()
    }

    /// The first entry whose `event_id` is `event_id`: its leaf index and line as stored.
    pub fn entry(&self, event_id: &str) -> Result<Option<(u64, Vec<u8>)>, SignError> {
        Ok(self.store.entry(event_id)?)
    }

    /// Catches the index up with the log; the number of entries not yet covered by the newest
    /// checkpoint.
    pub fn catch_up(&mut self) -> Result<u64, SignError> {
        self.tree.catch_up()?;
        let signed = self.latest.as_ref().map_or(0, |(c, _)| c.size);
        Ok(self.tree.size().saturating_sub(signed))
    }

    /// Signs the log's current tree head (after catching up) and appends it to the store
    /// (stamped `now`), unless the newest checkpoint already covers every
    /// entry (then that one is returned). Refuses a log that is not an extension of the newest
    /// checkpoint.
    pub fn sign(&mut self, now: time::OffsetDateTime) -> Result<(Checkpoint, String), SignError> {
        self.catch_up()?;
        let size = self.tree.size();
        if size == 0 {
            return Err(SignError::Empty { store: self.store.location() });
        }
        let checkpoint = Checkpoint {
            origin: self.key.verifier().name().to_owned(),
            size,
            root: self.tree.root(),
            extensions: Vec::new(),
        };
        if let Some((previous, note)) = &self.latest {
            let diverged = |detail: String| SignError::Diverged {
                store: self.store.location(),
                size: previous.size,
                detail,
            };
            match compare_checkpoints(self.tree.as_ref(), previous, &checkpoint) {
                Ok(Compared::Consistent { .. }) if previous.size == size => {
                    return Ok((previous.clone(), note.clone()));
                }
                Ok(Compared::Consistent { .. }) => {}
                Ok(Compared::Forked { reason }) => return Err(diverged(reason.to_string())),
                Ok(Compared::NewNotInLog { .. }) => {
                    return Err(diverged("the index does not hold the tree".to_owned()));
                }
                Err(IndexError::Tree(crate::TreeError::Proof(e))) => {
                    return Err(diverged(format!("the log has {size} entries: {e}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let note = checkpoint.sign(&self.key)?;
        self.store.append(&CheckpointRecord::new(&checkpoint, &note, now))?;
        self.latest = Some((checkpoint.clone(), note.clone()));
        Ok((checkpoint, note))
    }

    /// Keeps `note`, the newest checkpoint with witnesses' cosignatures added (its own
    /// signature must still verify and it must sign the same tree), as a new record of
    /// the store: the newest note from now on.
    pub fn cosigned(&mut self, note: &str, now: time::OffsetDateTime) -> Result<(), SignError> {
        let store = self.store.location();
        let checkpoint = Checkpoint::open(note, self.key.verifier())
            .map_err(|source| SignError::BadCheckpoint { store: store.clone(), source })?;
        if self.latest.as_ref().map(|(c, _)| c) != Some(&checkpoint) {
            return Err(SignError::BadCheckpoint {
                store,
                source: NoteError::BadCheckpoint(
                    "the cosigned checkpoint is not the newest one".to_owned(),
                ),
            });
        }
        self.store.append(&CheckpointRecord::new(&checkpoint, note, now))?;
        self.latest = Some((checkpoint, note.to_owned()));
        Ok(())
    }
}
