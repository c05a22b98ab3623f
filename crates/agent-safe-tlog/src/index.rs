//! The persisted tree index of a file log, `<log>.tree`: the tree's stored hashes (see
//! [`crate::stored_index`]), 32 bytes each after a 128-byte header, caught up with the log on
//! demand, so a root or a proof of a log of any size reads O(log n) hashes instead of hashing
//! the log again.
//!
//! Header (little-endian): `agent-safe-tree\n`, version (u32), 4 reserved bytes, the number of
//! leaves indexed (u64), the log's byte offset after the last indexed line (u64), where that
//! line starts (u64), and its leaf hash (32 bytes). Catching up reads the log from that offset,
//! hashes every complete non-blank line (its exact bytes, without the line terminator: the
//! lines `agent-safe audit verify` counts), appends the new stored hashes, syncs them, then
//! rewrites the header. The index is a cache: when it is not an index, is shorter than its
//! header says, or the log no longer has the indexed last line where the header says (the log
//! was truncated, rewritten or replaced), it is rebuilt from the log and the reason is kept
//! ([`TreeIndex::rebuilt`]). Writers hold an exclusive lock on the file while they catch up;
//! readers a shared one while they read.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use agent_safe_audit::scan::Lines;

use crate::hash::{Hash, leaf_hash};
use crate::leaves::{Step, scan_leaves};
use crate::stored::{HashReader, TreeBuilder, stored_count, tree_hash};
use crate::{TreeError, consistency_proof, inclusion_proof};

const MAGIC: &[u8; 16] = b"agent-safe-tree\n";
const VERSION: u32 = 1;
/// Bytes before the first stored hash.
const HEADER: u64 = 128;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Reading or writing the log or the index failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The audit log does not exist.
    #[error("{}: no such audit log", path.display())]
    NoLog {
        /// The log.
        path: PathBuf,
    },
    /// A tree operation failed (an impossible request, or the index is short).
    #[error(transparent)]
    Tree(#[from] TreeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Header {
    leaves: u64,
    log_offset: u64,
    last_start: u64,
    last_leaf: Hash,
}

impl Header {
    fn encode(&self) -> [u8; HEADER as usize] {
        let mut out = [0u8; HEADER as usize];
        out[..16].copy_from_slice(MAGIC);
        out[16..20].copy_from_slice(&VERSION.to_le_bytes());
        out[24..32].copy_from_slice(&self.leaves.to_le_bytes());
        out[32..40].copy_from_slice(&self.log_offset.to_le_bytes());
        out[40..48].copy_from_slice(&self.last_start.to_le_bytes());
        out[48..80].copy_from_slice(&self.last_leaf.0);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Header, String> {
        let field = |at: usize| -> u64 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if bytes.len() < HEADER as usize || &bytes[..16] != MAGIC {
            return Err("not a tree index".to_owned());
        }
        let mut version = [0u8; 4];
        version.copy_from_slice(&bytes[16..20]);
        let version = u32::from_le_bytes(version);
        if version != VERSION {
            return Err(format!("index version {version}, this agent-safe writes {VERSION}"));
        }
        let mut last_leaf = [0u8; 32];
        last_leaf.copy_from_slice(&bytes[48..80]);
        Ok(Header {
            leaves: field(24),
            log_offset: field(32),
            last_start: field(40),
            last_leaf: Hash(last_leaf),
        })
    }
}

/// The tree index of one file log (see the module documentation).
#[derive(Debug)]
pub struct TreeIndex {
    log: PathBuf,
    path: PathBuf,
    file: File,
    header: Header,
    builder: TreeBuilder,
    rebuilt: Option<String>,
}

/// Releases a file lock on drop.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl TreeIndex {
    /// Where the index of the log at `log` is: `<log>.tree`.
    pub fn path_for(log: &Path) -> PathBuf {
        let mut name = log.as_os_str().to_owned();
        name.push(".tree");
        PathBuf::from(name)
    }

    /// Opens the index of the log at `log` (creating or rebuilding it as needed) and catches
    /// it up with the log.
    pub fn open(log: &Path) -> Result<TreeIndex, IndexError> {
        if !log.exists() {
            return Err(IndexError::NoLog { path: log.to_owned() });
        }
        let path = Self::path_for(log);
        let io = |source| IndexError::Io { path: path.clone(), source };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut index = TreeIndex {
            log: log.to_owned(),
            path: path.clone(),
            file,
            header: Header::default(),
            builder: TreeBuilder::new(),
            rebuilt: None,
        };
        index.catch_up()?;
        Ok(index)
    }

    fn io(&self, source: io::Error) -> IndexError {
        IndexError::Io { path: self.path.clone(), source }
    }

    fn log_io(&self, source: io::Error) -> IndexError {
        log_error(&self.log, source)
    }

    /// Leaves indexed (the log's complete non-blank lines, as of the last catch-up).
    pub fn size(&self) -> u64 {
        self.header.leaves
    }

    /// The root of the tree of every indexed leaf.
    pub fn root(&self) -> Hash {
        self.builder.root()
    }

    /// Why the index was rebuilt from the log by the last [`TreeIndex::catch_up`] (it did not
    /// match the log, or was not an index), if it was.
    pub fn rebuilt(&self) -> Option<&str> {
        self.rebuilt.as_deref()
    }

    /// Reads the header and checks it against the file and the log; the reason to rebuild
    /// when they do not match.
    fn check(&self, log: &File) -> Result<Result<Header, String>, IndexError> {
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        if len == 0 {
            return Ok(Ok(Header::default()));
        }
        let mut bytes = vec![0u8; HEADER as usize];
        if len < HEADER {
            return Ok(Err("not a tree index".to_owned()));
        }
        self.file.read_exact_at(&mut bytes, 0).map_err(|e| self.io(e))?;
        let header = match Header::decode(&bytes) {
            Ok(h) => h,
            Err(reason) => return Ok(Err(reason)),
        };
        let needed = hash_offset(stored_count(header.leaves));
        if len < needed {
            return Ok(Err(format!(
                "the index holds {} bytes; its {} leaves need {needed}",
                len, header.leaves
            )));
        }
        let log_len = log.metadata().map_err(|e| self.log_io(e))?.len();
        if log_len < header.log_offset {
            return Ok(Err(format!(
                "the log has {log_len} bytes, fewer than the {} indexed (truncated or replaced)",
                header.log_offset
            )));
        }
        if header.leaves > 0 {
            let at = header.last_start;
            let mut line = vec![0u8; usize::try_from(header.log_offset - at).unwrap_or(0)];
            log.read_exact_at(&mut line, at).map_err(|e| self.log_io(e))?;
            let raw = Lines::new(&line).next().map_or(&line[..0], |l| l.raw);
            if leaf_hash(raw) != header.last_leaf {
                return Ok(Err(format!(
                    "the log's entry {} (at byte {at}) is not the one indexed (rewritten or \
                     replaced)",
                    header.leaves
                )));
            }
        }
        Ok(Ok(header))
    }

    /// Brings the index up to the log's last complete line (rebuilding it first when it does
    /// not match the log); returns the number of leaves added.
    pub fn catch_up(&mut self) -> Result<u64, IndexError> {
        let _lock = {
            self.file.lock().map_err(|e| self.io(e))?;
            Locked(&self.file)
        };
        let log = File::open(&self.log).map_err(|e| self.log_io(e))?;
        let header = match self.check(&log)? {
            Ok(header) => header,
            Err(reason) => {
                self.file.set_len(0).map_err(|e| self.io(e))?;
                self.rebuilt = Some(reason);
                Header::default()
            }
        };
        // Hashes past the header's count were written by a catch-up that did not finish.
        let end = hash_offset(stored_count(header.leaves));
        self.file.set_len(end.max(HEADER)).map_err(|e| self.io(e))?;
        let builder = TreeBuilder::resume(header.leaves, &self.reader(header.leaves))?;
        let (header, builder, added) = self.extend(&log, header, builder)?;
        self.file.write_all_at(&header.encode(), 0).map_err(|e| self.io(e))?;
        self.header = header;
        self.builder = builder;
        Ok(added)
    }

    /// Hashes the log's complete lines after `header.log_offset` into `builder`, writing the
    /// stored hashes after the ones `header` counts; the new header (not written yet).
    fn extend(
        &self,
        log: &File,
        mut header: Header,
        mut builder: TreeBuilder,
    ) -> Result<(Header, TreeBuilder, u64), IndexError> {
        let mut added = 0;
        let mut pending: Vec<Hash> = Vec::new();
        let mut write_at = hash_offset(stored_count(header.leaves));
        let from = header.log_offset;
        header.log_offset = scan_leaves(
            log,
            from,
            |e| self.log_io(e),
            |step| {
                match step {
                    Step::Leaf(line, start) => {
                        let leaf = leaf_hash(line);
                        builder.push(leaf, &mut pending);
                        header.leaves += 1;
                        header.last_start = start;
                        header.last_leaf = leaf;
                        added += 1;
                    }
                    Step::Chunk => {
                        let bytes: Vec<u8> = pending.iter().flat_map(|h| h.0).collect();
                        self.file.write_all_at(&bytes, write_at).map_err(|e| self.io(e))?;
                        write_at += bytes.len() as u64;
                        pending.clear();
                    }
                }
                Ok(())
            },
        )?;
        if added > 0 {
            // The hashes are on disk before the header that counts them.
            self.file.sync_data().map_err(|e| self.io(e))?;
        }
        Ok((header, builder, added))
    }

    /// The root of the tree of the first `size` indexed leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, IndexError> {
        let _lock = self.shared()?;
        Ok(tree_hash(size, &self.reader(self.header.leaves))?)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` indexed leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, IndexError> {
        let _lock = self.shared()?;
        Ok(inclusion_proof(index, size, &self.reader(self.header.leaves))?)
    }

    /// The consistency proof from the tree of the first `old` indexed leaves to the first `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, IndexError> {
        let _lock = self.shared()?;
        Ok(consistency_proof(old, new, &self.reader(self.header.leaves))?)
    }

    /// Reads the stored hashes of a tree of `leaves` leaves.
    fn reader(&self, leaves: u64) -> FileHashes<'_> {
        FileHashes { file: &self.file, path: &self.path, stored: stored_count(leaves) }
    }

    fn shared(&self) -> Result<Locked<'_>, IndexError> {
        self.file.lock_shared().map_err(|e| self.io(e))?;
        Ok(Locked(&self.file))
    }
}

/// An error reading the log at `log`: [`IndexError::NoLog`] when it is missing.
pub(crate) fn log_error(log: &Path, source: io::Error) -> IndexError {
    if source.kind() == io::ErrorKind::NotFound {
        return IndexError::NoLog { path: log.to_owned() };
    }
    IndexError::Io { path: log.to_owned(), source }
}

/// Where stored hash `i` is in an index file.
pub(crate) fn hash_offset(i: u64) -> u64 {
    HEADER + 32 * i
}

/// The leaf count an index file's header records, when it has a valid header (read as it is,
/// not checked against the log).
pub(crate) fn stored_leaves(file: &File) -> Option<u64> {
    let mut bytes = vec![0u8; HEADER as usize];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Header::decode(&bytes).ok().map(|h| h.leaves)
}

/// Reads the first `stored` stored hashes of an index file (the caller holds a lock, or reads
/// a snapshot).
pub(crate) struct FileHashes<'a> {
    pub(crate) file: &'a File,
    pub(crate) path: &'a Path,
    pub(crate) stored: u64,
}

impl HashReader for FileHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                if i >= self.stored {
                    return Err(TreeError::MissingHash { index: i });
                }
                let mut hash = [0u8; 32];
                self.file
                    .read_exact_at(&mut hash, hash_offset(i))
                    .map_err(|e| TreeError::Store(format!("{}: {e}", self.path.display())))?;
                Ok(Hash(hash))
            })
            .collect()
    }
}
