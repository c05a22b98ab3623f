//! The file backend of the approval store: `approvals.jsonl`, one request per line, safe under
//! concurrent processes.
//!
//! Every operation holds an OS lock on `<store>.lock` (shared for reads, exclusive for writes),
//! so processes and threads see one order of changes. Creating a request appends one line
//! (fsync'd). Changing a request rewrites the file atomically: the new contents go to a temporary
//! file in the same directory, which is fsync'd and renamed over the store, so a crash leaves
//! either the old or the new file, never a mix. Lines that cannot be read are reported with
//! their line number and kept byte for byte when the file is rewritten.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use agent_safe_core::fsutil::{open_private, sync_dir};

use crate::backend::{ApprovalBackend, UpdateFn};
use crate::model::{ApprovalRequest, ApprovalStatus, REQUEST_ID_PREFIX};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An operating-system error on the store or its lock file.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`open`, `lock`, `read`, `write`, `rename`, …).
        action: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A line of the store that is not a valid request (truncated, edited by hand, …).
    #[error("{}:{line}: {detail}", path.display())]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// No request has this id.
    #[error("Request not found: {0}")]
    NotFound(String),
    /// A stored request of a database that is not a valid request (edited by hand, written by
    /// something else).
    #[error("{store}: approval request row {seq}: {detail}")]
    CorruptRow {
        /// The store (the database, without password).
        store: String,
        /// The row's sequence number (its order of creation).
        seq: usize,
        /// What is wrong.
        detail: String,
    },
    /// An update tried to change the id of the request it was changing.
    #[error("an update may not change the request id (`{from}` to `{to}`)")]
    IdChanged {
        /// The stored id.
        from: String,
        /// The id the update left.
        to: String,
    },
    /// A new request has the id of a stored one.
    #[error("request `{0}` already exists")]
    Duplicate(String),
    /// The store cannot be reached now (a database that is down or slow); retrying later may
    /// succeed. The message names the database without password.
    #[error("{0}")]
    Unavailable(String),
    /// The store refused an operation (a database error other than unavailability).
    #[error("{0}")]
    Backend(String),
    /// A request could not be serialised.
    #[error("cannot serialise request `{id}`: {source}")]
    Serialize {
        /// The request id.
        id: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// An entry of the store that could not be read as a request: a line of the file, or a row of
/// the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptLine {
    /// 1-based line number of the file, or the row's sequence number in a database.
    pub line: usize,
    /// The request id, when it can still be made out.
    pub request_id: Option<String>,
    /// What is wrong.
    pub detail: String,
}

impl CorruptLine {
    /// The error naming this line of `path`.
    pub fn to_error(&self, path: &Path) -> StoreError {
        StoreError::Corrupt { path: path.to_owned(), line: self.line, detail: self.detail.clone() }
    }
}

/// The readable requests of the store and the entries that are not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// Requests in the order they were made (from [`crate::ApprovalStore`], with lazy expiry
    /// applied to what is returned, not written).
    pub requests: Vec<ApprovalRequest>,
    /// Entries that could not be read.
    pub corrupt: Vec<CorruptLine>,
}

/// The file store, `approvals.jsonl`.
#[derive(Debug, Clone)]
pub struct FileApprovalStore {
    path: PathBuf,
    lock_path: PathBuf,
}

#[derive(Debug)]
struct Entry {
    /// The line without its newline.
    raw: Vec<u8>,
    parsed: Result<ApprovalRequest, CorruptLine>,
}

impl FileApprovalStore {
    /// A store at `path` (created at the first request; its directory must exist). The lock file
    /// is `<path>.lock`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self { path, lock_path: PathBuf::from(lock_path) }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    fn request_at(&self, entries: &[Entry], index: usize) -> Result<ApprovalRequest, StoreError> {
        match entries.get(index).map(|e| &e.parsed) {
            Some(Ok(request)) => Ok(request.clone()),
            Some(Err(corrupt)) => Err(corrupt.to_error(&self.path)),
            None => Err(StoreError::NotFound(String::new())),
        }
    }

    /// Index of the entry for `id`: a readable request, or a corrupt line naming `id`.
    fn find(&self, entries: &[Entry], id: &str) -> Result<usize, StoreError> {
        let mut unidentified = None;
        for (i, entry) in entries.iter().enumerate() {
            match &entry.parsed {
                Ok(request) if request.request_id == id => return Ok(i),
                Err(corrupt) if corrupt.request_id.as_deref() == Some(id) => {
                    return Err(corrupt.to_error(&self.path));
                }
                Err(corrupt) if corrupt.request_id.is_none() && unidentified.is_none() => {
                    unidentified = Some(corrupt);
                }
                _ => {}
            }
        }
        match unidentified {
            Some(corrupt) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                line: corrupt.line,
                detail: format!(
                    "request `{id}` not found, and this line, which may be it, cannot be read: {}",
                    corrupt.detail
                ),
            }),
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    fn read_shared(&self) -> Result<Vec<Entry>, StoreError> {
        if !self.path.exists() {
            return Ok(Vec::new());
        }
        let _lock = self.lock(false)?;
        self.read_entries()
    }

    /// Reads and checks every line; the caller holds the lock.
    fn read_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut bytes = Vec::new();
        match File::open(&self.path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).map_err(self.io("read"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("open")(e)),
        }
        let mut entries: Vec<Entry> = Vec::new();
        // Request id → line number of its first readable occurrence.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let ends_with_newline = bytes.last().is_none_or(|&b| b == b'\n');
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let count = lines.len();
        for (i, raw) in lines.into_iter().enumerate() {
            let number = i + 1;
            // The piece after the final newline is empty; a last piece without one is torn.
            let is_last = i + 1 == count;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let torn = is_last && !ends_with_newline;
            let mut parsed = parse_line(raw, number, torn);
            if let Ok(request) = &parsed {
                if let Some(first) = seen.get(&request.request_id) {
                    parsed = Err(CorruptLine {
                        line: number,
                        request_id: Some(request.request_id.clone()),
                        detail: format!(
                            "duplicate request id `{}` (first on line {first})",
                            request.request_id
                        ),
                    });
                } else {
                    seen.insert(request.request_id.clone(), number);
                }
            }
            entries.push(Entry { raw: raw.to_vec(), parsed });
        }
        Ok(entries)
    }

    /// Writes every entry back (the one at `index` replaced by `line`) to a temporary file and
    /// renames it over the store.
    fn rewrite(&self, entries: &[Entry], index: usize, line: &[u8]) -> Result<(), StoreError> {
        let mut contents = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            contents.extend_from_slice(if i == index { line } else { &entry.raw });
            contents.push(b'\n');
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .path
            .file_name()
            .map_or_else(|| "approvals".to_owned(), |n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            agent_safe_core::random::hex(4)
        ));
        let written = (|| {
            let mut file = open_private(&tmp, OpenOptions::new().write(true).create_new(true))?;
            file.write_all(&contents)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::Io { path: tmp, action: "write", source: e });
        }
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.io("replace")(e));
        }
        sync_dir(&dir).map_err(|source| StoreError::Io { path: dir, action: "sync", source })
    }

    fn lock(&self, exclusive: bool) -> Result<File, StoreError> {
        let io = |action| {
            let path = self.lock_path.clone();
            move |source| StoreError::Io { path, action, source }
        };
        let file =
            open_private(&self.lock_path, OpenOptions::new().read(true).write(true).create(true))
                .map_err(io("open"))?;
        if exclusive { file.lock() } else { file.lock_shared() }.map_err(io("lock"))?;
        // Closing the file releases the lock.
        Ok(file)
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io { path: self.path.clone(), action, source }
    }
}

impl ApprovalBackend for FileApprovalStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn file_path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Appends a new request (one fsync'd line). A torn final line left by someone else stays
    /// on its own line.
    fn insert(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let mut line = request
            .to_line()
            .map_err(|source| StoreError::Serialize { id: request.request_id.clone(), source })?;
        line.push('\n');
        let _lock = self.lock(true)?;
        let mut file =
            open_private(&self.path, OpenOptions::new().read(true).append(true).create(true))
                .map_err(self.io("open"))?;
        let len = file.metadata().map_err(self.io("read"))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(self.io("read"))?;
            if last[0] != b'\n' {
                line.insert(0, '\n');
            }
        }
        file.write_all(line.as_bytes()).map_err(self.io("write"))?;
        file.sync_data().map_err(self.io("sync"))?;
        Ok(())
    }

    /// A line that names `id` but cannot be read is an error naming the line; so is any
    /// unreadable line whose id cannot be made out when `id` is not found elsewhere (it may be
    /// the request).
    fn get(&self, id: &str) -> Result<ApprovalRequest, StoreError> {
        let entries = self.read_shared()?;
        let index = self.find(&entries, id)?;
        self.request_at(&entries, index)
    }

    fn list(&self, pending_only: bool) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for entry in self.read_shared()? {
            match entry.parsed {
                Ok(request) if pending_only && request.status != ApprovalStatus::Pending => {}
                Ok(request) => listing.requests.push(request),
                Err(corrupt) => listing.corrupt.push(corrupt),
            }
        }
        Ok(listing)
    }

    /// Under the exclusive lock; a changed request rewrites the file atomically.
    fn update(&self, id: &str, f: &mut UpdateFn<'_>) -> Result<(), StoreError> {
        let _lock = self.lock(true)?;
        let entries = self.read_entries()?;
        let index = self.find(&entries, id)?;
        let stored = self.request_at(&entries, index)?;
        if let Some(changed) = f(&stored) {
            let line = changed.to_line().map_err(|source| StoreError::Serialize {
                id: changed.request_id.clone(),
                source,
            })?;
            self.rewrite(&entries, index, line.as_bytes())?;
        }
        Ok(())
    }

    fn corrupt_error(&self, corrupt: &CorruptLine) -> StoreError {
        corrupt.to_error(&self.path)
    }
}

/// Reads one stored request (a line of the file, a row of a database) and checks it: JSON,
/// the request model, id shape, params digest, requirement, ticket. `line` numbers the entry in
/// the error.
pub fn read_request(raw: &[u8], line: usize) -> Result<ApprovalRequest, CorruptLine> {
    parse_line(raw, line, false)
}

/// Parses and checks one line.
fn parse_line(raw: &[u8], number: usize, torn: bool) -> Result<ApprovalRequest, CorruptLine> {
    // The common case, a valid line, parses straight into the model; the detour through a
    // `Value` is taken only to explain a failure.
    match serde_json::from_slice::<ApprovalRequest>(raw) {
        Ok(request) => check_request(request, number),
        Err(_) => Err(explain(raw, number, torn)),
    }
}

/// Why a line does not parse as a request.
fn explain(raw: &[u8], number: usize, torn: bool) -> CorruptLine {
    let corrupt = |request_id: Option<String>, detail: String| CorruptLine {
        line: number,
        request_id,
        detail,
    };
    let value: serde_json::Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            let what = if torn {
                "the line is truncated (the file ends without a newline)"
            } else {
                "the line is not valid JSON (truncated or edited by hand)"
            };
            return corrupt(
                sniff_id(raw),
                format!("{what}: {} at column {}", json_error_text(&e), e.column()),
            );
        }
    };
    let id = value.get("request_id").and_then(|v| v.as_str()).map(str::to_owned);
    let detail = match serde_json::from_value::<ApprovalRequest>(value) {
        Err(e) => json_error_text(&e),
        // The bytes did not parse as a request, so the value cannot either.
        Ok(_) => "unexpected content".to_owned(),
    };
    corrupt(id, format!("not an approval request: {detail}"))
}

/// Checks a parsed request: id shape, params digest, requirement, ticket.
fn check_request(request: ApprovalRequest, number: usize) -> Result<ApprovalRequest, CorruptLine> {
    let corrupt = |request_id: Option<String>, detail: String| CorruptLine {
        line: number,
        request_id,
        detail,
    };
    let id = Some(request.request_id.clone());
    let hex_part = request.request_id.strip_prefix(REQUEST_ID_PREFIX);
    if !hex_part.is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Err(corrupt(
            id,
            format!(
                "request id `{}` is not `{REQUEST_ID_PREFIX}` followed by letters and digits",
                request.request_id
            ),
        ));
    }
    if let Some(claimed) = &request.params_digest {
        let actual = agent_safe_tickets::params_digest(&request.params);
        if *claimed != actual {
            return Err(corrupt(
                id,
                format!(
                    "request `{}`: its params do not match its `params_digest` (the params were \
                     edited after the request was made)",
                    request.request_id
                ),
            ));
        }
    }
    if request.required_approvals == 0 {
        return Err(corrupt(
            id,
            format!("request `{}`: `required_approvals` must be at least 1", request.request_id),
        ));
    }
    if let Some(ticket) = &request.ticket {
        let same = ticket.action == request.action
            && ticket.target == request.target
            && agent_safe_tickets::params_digest(&ticket.params)
                == agent_safe_tickets::params_digest(&request.params);
        if !same {
            return Err(corrupt(
                id,
                format!(
                    "request `{}`: its ticket is for another action, target or params",
                    request.request_id
                ),
            ));
        }
    }
    Ok(request)
}

/// The `request_id` of an unparsable line, when its text still shows one.
fn sniff_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let key = "\"request_id\":";
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let id = &rest[..end];
    id.starts_with(REQUEST_ID_PREFIX).then(|| id.to_owned())
}

/// serde_json's message without its ` at line L column C` suffix (our line numbers are the
/// file's, not the parser's).
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests;
