//! The log's signer: signs checkpoints of a file log's tree with the checkpoint key and keeps
//! them in `<log>.checkpoints` (`agent-safe audit checkpoint`, `serve`'s `audit_checkpoints`).
//!
//! It never signs a tree that is not an extension of the newest checkpoint it finds there
//! (signed by the same key): a log cut short or rewritten under a checkpoint is refused with
//! [`SignError::Diverged`], so the signer cannot be made to sign a fork of its own history.

use std::path::{Path, PathBuf};

use crate::check::{Compared, compare_checkpoints};
use crate::files::{
    CheckpointRecord, FileError, append_checkpoint, checkpoints_path, read_checkpoints,
};
use crate::index::{IndexError, TreeIndex};
use crate::note::{Checkpoint, NoteError, SignerKey};

/// Why a checkpoint could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The tree index or the log could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The checkpoint log could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// Signing failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A checkpoint in the checkpoint log is signed by this key but does not open.
    #[error("{}: the newest checkpoint of this key does not verify: {source}", path.display())]
    BadCheckpoint {
        /// The checkpoint log.
        path: PathBuf,
        /// Why.
        source: NoteError,
    },
    /// The log is not an extension of the newest signed checkpoint.
    #[error(
        "{}: the log no longer holds the tree of the newest checkpoint (size {size}; {detail}): \
         it was cut short or rewritten, and no checkpoint is signed over it; run `agent-safe \
         audit verify --checkpoint`",
        log.display()
    )]
    Diverged {
        /// The log.
        log: PathBuf,
        /// The newest checkpoint's size.
        size: u64,
        /// What differs.
        detail: String,
    },
    /// The log has no entries.
    #[error("{}: the log has no entries: there is no tree to sign", log.display())]
    Empty {
        /// The log.
        log: PathBuf,
    },
}

/// Signs checkpoints of one file log.
#[derive(Debug)]
pub struct LogSigner {
    log: PathBuf,
    key: SignerKey,
    index: TreeIndex,
    /// The newest checkpoint of this key, and its signed note.
    latest: Option<(Checkpoint, String)>,
}

impl LogSigner {
    /// Opens the log's tree index (catching it up) and finds the newest checkpoint `key` signed
    /// in `<log>.checkpoints` (others' are skipped).
    pub fn open(log: &Path, key: SignerKey) -> Result<LogSigner, SignError> {
        let index = TreeIndex::open(log)?;
        let path = checkpoints_path(log);
        let mut latest = None;
        for note in read_checkpoints(&path)?.into_iter().rev() {
            match Checkpoint::open(&note, key.verifier()) {
                Ok(checkpoint) => {
                    latest = Some((checkpoint, note));
                    break;
                }
                // Another key's checkpoint (a rotated key, another origin): not ours.
                Err(NoteError::NotSigned { .. }) => {}
                Err(source) => return Err(SignError::BadCheckpoint { path, source }),
            }
        }
        Ok(LogSigner { log: log.to_owned(), key, index, latest })
    }

    /// The newest checkpoint this key signed, and its note.
    pub fn latest(&self) -> Option<&(Checkpoint, String)> {
        self.latest.as_ref()
    }

    /// The tree index (caught up by [`LogSigner::catch_up`]).
    pub fn index(&self) -> &TreeIndex {
        &self.index
    }

    /// Why the index was rebuilt when it was opened or last caught up, if it was.
    pub fn rebuilt(&self) -> Option<&str> {
        self.index.rebuilt()
    }

    /// Catches the index up with the log; the number of entries not yet covered by the newest
    /// checkpoint.
    pub fn catch_up(&mut self) -> Result<u64, SignError> {
        self.index.catch_up()?;
        let signed = self.latest.as_ref().map_or(0, |(c, _)| c.size);
        Ok(self.index.size().saturating_sub(signed))
    }

    /// Signs the log's current tree head (after catching up) and appends it to
    /// `<log>.checkpoints` (stamped `now`), unless the newest checkpoint already covers every
    /// entry (then that one is returned). Refuses a log that is not an extension of the newest
    /// checkpoint.
    pub fn sign(&mut self, now: time::OffsetDateTime) -> Result<(Checkpoint, String), SignError> {
        self.catch_up()?;
        let size = self.index.size();
        if size == 0 {
            return Err(SignError::Empty { log: self.log.clone() });
        }
        let checkpoint = Checkpoint {
            origin: self.key.verifier().name().to_owned(),
            size,
            root: self.index.root(),
            extensions: Vec::new(),
        };
        if let Some((previous, note)) = &self.latest {
            let diverged = |detail: String| SignError::Diverged {
                log: self.log.clone(),
                size: previous.size,
                detail,
            };
            match compare_checkpoints(&self.index, previous, &checkpoint) {
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
        let record = CheckpointRecord::new(&checkpoint, &note, now);
        append_checkpoint(&checkpoints_path(&self.log), &record)?;
        self.latest = Some((checkpoint.clone(), note.clone()));
        Ok((checkpoint, note))
    }

    /// Keeps `note`, the newest checkpoint with witnesses' cosignatures added (its own
    /// signature must still verify and it must sign the same tree), as a new record of
    /// `<log>.checkpoints`: the newest note from now on.
    pub fn cosigned(&mut self, note: &str, now: time::OffsetDateTime) -> Result<(), SignError> {
        let path = checkpoints_path(&self.log);
        let checkpoint = Checkpoint::open(note, self.key.verifier())
            .map_err(|source| SignError::BadCheckpoint { path: path.clone(), source })?;
        if self.latest.as_ref().map(|(c, _)| c) != Some(&checkpoint) {
            return Err(SignError::BadCheckpoint {
                path,
                source: NoteError::BadCheckpoint(
                    "the cosigned checkpoint is not the newest one".to_owned(),
                ),
            });
        }
        append_checkpoint(&path, &CheckpointRecord::new(&checkpoint, note, now))?;
        self.latest = Some((checkpoint, note.to_owned()));
        Ok(())
    }
}
