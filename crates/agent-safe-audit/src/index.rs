//! A sidecar index (`<log>.idx`) for finding entries by audit id without reading the whole log.
//!
//! The index maps two kinds of keys to the byte offset, length and line number of the entries
//! they name:
//!
//! - an entry's `event_id` (a decision's audit id), and
//! - the audit id an entry is **linked** to: its `correlation_id` and its
//!   `context.original_audit_id` (state captures, executions, approval resolutions,
//!   rollback decisions).
//!
//! # File format
//!
//! A 120-byte header, then fixed-size 32-byte records sorted by key (all integers
//! little-endian):
//!
//! | bytes | header field |
//! |---|---|
//! | 0–7 | magic `ASIDX\0\0\x01` |
//! | 8–15 | `covered`: bytes of the log indexed (always just after a `\n`) |
//! | 16–23 | non-blank lines in those bytes |
//! | 24–31 | number of records |
//! | 32–47 | the log file's device and inode (0 where the platform has none) |
//! | 48–55 | `last_start`: where the last indexed physical line starts |
//! | 56–87 | SHA-256 of the log bytes `last_start..covered` |
//! | 88–103 | reserved (zero) |
//! | 104–119 | first 16 bytes of the SHA-256 of bytes 0–103 |
//!
//! A record is `key` (FNV-1a 64 of a kind byte and the id), `offset`, `len` (of the line
//! without its terminator), `line` (non-blank line number, from 1) and a check word mixing
//! the other four.
//!
//! # Trust
//!
//! The index is a cache, never an authority. Before it is used, the header must check out
//! (magic, digest, size, same log file, the last indexed line still byte-identical);
//! otherwise the index is rebuilt from the log. Every record read is checked; every entry it
//! points to is read back from the log and must carry the id that was looked up. Any
//! mismatch rebuilds the index once and repeats the lookup. Entries appended after the
//! indexed part (the *gap*) are scanned from the log and kept in memory; when the gap
//! exceeds [`GAP_LIMIT`] bytes, a new index file is written (to a temporary file, then
//! renamed over the old one, so readers never see a half-written index and concurrent
//! writers cannot corrupt it). When the index file cannot be written, the index lives in
//! memory only.
//!
//! An entry becomes visible to lookups once its line is complete (ends with a newline);
//! a torn final line is never indexed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use agent_safe_core::{AuditEvent, EventType};
use serde::Deserialize;
use serde_json::Value;

use crate::AuditError;
use crate::lines::{Lines, for_each_block, strip_py};
use crate::read::StoredEvent;

/// Log bytes after the indexed part that lookups scan in memory; beyond this a new index
/// file is written.
pub const GAP_LIMIT: u64 = 1 << 20;

/// The largest last-line region whose digest is checked (longer lines make the header
/// invalid, so the index is rebuilt).
const LAST_LINE_LIMIT: u64 = 16 << 20;

const MAGIC: &[u8; 8] = b"ASIDX\0\0\x01";
const HEADER_LEN: usize = 120;
const RECORD_LEN: usize = 32;

const KIND_EVENT: u8 = b'e';
const KIND_LINK: u8 = b'l';

/// The index file of a log: `<log>.idx`.
pub fn index_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".idx");
    PathBuf::from(name)
}

/// What an index has done so far (for tests and figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Times the index was rebuilt from the whole log (missing, stale or corrupt index).
    pub rebuilds: u64,
    /// Times a new index file was written.
    pub writes: u64,
    /// Times an index file was loaded and its header accepted.
    pub loads: u64,
    /// Whether the index in use is backed by a file (false: memory only).
    pub persisted: bool,
    /// Bytes of the log covered by the index file.
    pub covered: u64,
    /// Bytes of the log scanned so far beyond the index file (the gap).
    pub gap: u64,
}

/// Lookups by audit id on one log, through its sidecar index. See the module documentation.
///
/// Not `Sync`; share it behind a mutex. Any number of `AuditIndex`es (in any number of
/// processes) may use the same log and index file.
#[derive(Debug)]
pub struct AuditIndex {
    log: PathBuf,
    idx: PathBuf,
    state: Option<State>,
    stats: IndexStats,
    /// Writing the index file failed once: stay in memory.
    memory_only: bool,
}

#[derive(Debug)]
struct State {
    log_file: File,
    identity: (u64, u64),
    /// The on-disk sorted records, if any.
    base: Option<Base>,
    /// Where the base ends in the log (or the memory-only index, when the file cannot be
    /// written).
    covered: u64,
    /// Records of the gap (or of everything, when memory-only), by key.
    pending: HashMap<u64, Vec<Record>>,
    /// Bytes of the log scanned (base + gap), always just after a `\n`.
    scanned_to: u64,
    /// Non-blank lines in `..scanned_to`.
    lines: u64,
    /// Start of the last physical line before `scanned_to`.
    last_start: u64,
    /// SHA-256 of the log bytes `last_start..scanned_to`.
    tail_digest: [u8; 32],
}

#[derive(Debug)]
struct Base {
    file: File,
    count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    key: u64,
    offset: u64,
    len: u32,
    line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    covered: u64,
    lines: u64,
    records: u64,
    identity: (u64, u64),
    last_start: u64,
    last_digest: [u8; 32],
}

/// A lookup found an index record that does not check out: the index must be rebuilt.
#[derive(Debug)]
struct Distrust;

enum Failure {
    Audit(AuditError),
    Distrust,
}

impl From<AuditError> for Failure {
    fn from(e: AuditError) -> Self {
        Failure::Audit(e)
    }
}

impl From<Distrust> for Failure {
    fn from(_: Distrust) -> Self {
        Failure::Distrust
    }
}

impl AuditIndex {
    /// An index for the log at `log` (the index file is `<log>.idx`). Nothing is read until
    /// the first lookup.
    pub fn new(log: &Path) -> AuditIndex {
        AuditIndex {
            log: log.to_owned(),
            idx: index_path(log),
            state: None,
            stats: IndexStats::default(),
            memory_only: false,
        }
    }

    /// The log this index is for.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The index file.
    pub fn index_path(&self) -> &Path {
        &self.idx
    }

    /// What the index has done so far.
    pub fn stats(&self) -> IndexStats {
        let mut stats = self.stats;
        if let Some(s) = &self.state {
            stats.persisted = s.base.is_some();
            stats.covered = s.covered;
            stats.gap = s.scanned_to - s.covered;
        }
        stats
    }

    /// Every entry whose `event_id` is `id`, in file order.
    pub fn events(&mut self, id: &str) -> Result<Vec<StoredEvent>, AuditError> {
        Ok(self.lookup(KIND_EVENT, id)?.into_iter().map(|(e, _)| e).collect())
    }

    /// [`AuditIndex::events`], each with its line exactly as stored (without its terminator):
    /// the bytes the transparency layer's tree hashes.
    pub fn event_lines(&mut self, id: &str) -> Result<Vec<(StoredEvent, Vec<u8>)>, AuditError> {
        self.lookup(KIND_EVENT, id)
    }

    /// The first decision event whose `event_id` is `audit_id` (what
    /// [`crate::find_decision`] finds, without reading the whole log).
    pub fn find_decision(&mut self, audit_id: &str) -> Result<Option<StoredEvent>, AuditError> {
        Ok(self.events(audit_id)?.into_iter().find(|e| e.event.event_type == EventType::Decision))
    }

    /// Every entry linked to `audit_id` (its `correlation_id` or `context.original_audit_id`
    /// is `audit_id`), in file order: state captures, executions, approval resolutions,
    /// rollback decisions.
    pub fn linked(&mut self, audit_id: &str) -> Result<Vec<StoredEvent>, AuditError> {
        Ok(self.lookup(KIND_LINK, audit_id)?.into_iter().map(|(e, _)| e).collect())
    }

    /// Brings the index up to date with the log (scans what was appended; rebuilds a stale
    /// or corrupt index). Lookups do this themselves.
    pub fn refresh(&mut self) -> Result<(), AuditError> {
        let meta = match fs::metadata(&self.log) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(AuditError::NotFound { path: self.log.clone() });
            }
            Err(source) => return Err(self.io(source)),
        };
        let identity = identity(&meta);
        let len = meta.len();
        let current = match self.state.take() {
            Some(s) if s.identity == identity && len >= s.scanned_to && s.tail_intact() => s,
            _ => self.load_or_rebuild()?,
        };
        let mut state = current;
        state.scan_gap(&self.log, len)?;
        if state.scanned_to - state.covered > GAP_LIMIT {
            // Another process may have written a newer index meanwhile.
            if let Ok(Some(newer)) = self.try_load()
                && newer.covered > state.covered
            {
                state = newer;
                state.scan_gap(&self.log, len)?;
            }
            if state.scanned_to - state.covered > GAP_LIMIT {
                self.write(&mut state)?;
            }
        }
        self.state = Some(state);
        Ok(())
    }

    fn io(&self, source: io::Error) -> AuditError {
        AuditError::Io { path: self.log.clone(), source }
    }

    fn lookup(&mut self, kind: u8, id: &str) -> Result<Vec<(StoredEvent, Vec<u8>)>, AuditError> {
        self.refresh()?;
        match self.lookup_once(kind, id, true) {
            Ok(found) => Ok(found),
            Err(Failure::Audit(e)) => Err(e),
            Err(Failure::Distrust) => {
                self.state = Some(self.rebuild()?);
                match self.lookup_once(kind, id, false) {
                    Ok(found) => Ok(found),
                    Err(Failure::Audit(e)) => Err(e),
                    Err(Failure::Distrust) => Ok(Vec::new()),
                }
            }
        }
    }

    /// One lookup. With `strict`, anything that does not check out is [`Failure::Distrust`];
    /// without (right after a rebuild), such candidates are skipped (a key collision).
    fn lookup_once(
        &mut self,
        kind: u8,
        id: &str,
        strict: bool,
    ) -> Result<Vec<(StoredEvent, Vec<u8>)>, Failure> {
        let Some(state) = &mut self.state else { return Ok(Vec::new()) };
        let key = key(kind, id);
        let mut candidates = match &mut state.base {
            Some(base) => base.find(key)?,
            None => Vec::new(),
        };
        if let Some(more) = state.pending.get(&key) {
            candidates.extend(more.iter().copied());
        }
        candidates.sort_by_key(|r| r.offset);
        candidates.dedup_by_key(|r| r.offset);
        let mut found = Vec::with_capacity(candidates.len());
        for record in candidates {
            let stored = read_entry(&state.log_file, &self.log, &record)?;
            match stored {
                Some(stored) if names(&stored.0.event, kind, id) => found.push(stored),
                _ if strict => return Err(Failure::Distrust),
                _ => {}
            }
        }
        Ok(found)
    }

    /// The index file's state, if it exists and checks out against the log.
    fn try_load(&mut self) -> Result<Option<State>, AuditError> {
        let log_file = open_log(&self.log)?;
        let meta = log_file.metadata().map_err(|e| self.io(e))?;
        let Ok(mut file) = File::open(&self.idx) else { return Ok(None) };
        let Ok(header) = read_header(&mut file) else { return Ok(None) };
        let valid = file
            .metadata()
            .is_ok_and(|m| m.len() == HEADER_LEN as u64 + header.records * RECORD_LEN as u64)
            && header.identity == identity(&meta)
            && header.covered <= meta.len()
            && header.last_start <= header.covered
            && header.covered - header.last_start <= LAST_LINE_LIMIT
            && (header.covered == 0 || ends_with_lf(&log_file, header.covered))
            && digest_range(&log_file, header.last_start, header.covered).ok()
                == Some(header.last_digest);
        if !valid {
            return Ok(None);
        }
        self.stats.loads += 1;
        Ok(Some(State {
            log_file,
            identity: header.identity,
            base: Some(Base { file, count: header.records }),
            covered: header.covered,
            pending: HashMap::new(),
            scanned_to: header.covered,
            lines: header.lines,
            last_start: header.last_start,
            tail_digest: header.last_digest,
        }))
    }

    fn load_or_rebuild(&mut self) -> Result<State, AuditError> {
        match self.try_load()? {
            Some(state) => Ok(state),
            None => self.rebuild(),
        }
    }

    /// Indexes the whole log and writes the index file (memory-only if it cannot be written).
    fn rebuild(&mut self) -> Result<State, AuditError> {
        let mut state = self.scan_all()?;
        self.write(&mut state)?;
        Ok(state)
    }

    /// The whole log scanned into memory.
    fn scan_all(&mut self) -> Result<State, AuditError> {
        self.stats.rebuilds += 1;
        let log_file = open_log(&self.log)?;
        let meta = log_file.metadata().map_err(|e| self.io(e))?;
        let mut state = State {
            log_file,
            identity: identity(&meta),
            base: None,
            covered: 0,
            pending: HashMap::new(),
            scanned_to: 0,
            lines: 0,
            last_start: 0,
            tail_digest: crate::entry::sha256(&[]),
        };
        state.scan_gap(&self.log, meta.len())?;
        Ok(state)
    }

    /// Writes base + gap as a new index file and switches `state` to it. A failure to write
    /// makes the index memory-only (not an error).
    fn write(&mut self, state: &mut State) -> Result<(), AuditError> {
        if self.memory_only {
            state.covered = state.scanned_to;
            return Ok(());
        }
        let mut records: Vec<Record> = match &mut state.base {
            Some(base) => match base.all() {
                Ok(records) => records,
                Err(Distrust) => {
                    // The old file is damaged: start over from the log.
                    *state = self.scan_all()?;
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        records.extend(state.pending.values().flatten().copied());
        records.sort_unstable();
        let header = Header {
            covered: state.scanned_to,
            lines: state.lines,
            records: records.len() as u64,
            identity: state.identity,
            last_start: state.last_start,
            last_digest: state.tail_digest,
        };
        match write_index_file(&self.idx, &header, &records) {
            Ok(file) => {
                self.stats.writes += 1;
                state.base = Some(Base { file, count: header.records });
                state.pending.clear();
            }
            Err(_) => {
                // Memory only: every record pending.
                self.memory_only = true;
                state.base = None;
                state.pending.clear();
                for r in records {
                    state.pending.entry(r.key).or_default().push(r);
                }
            }
        }
        state.covered = state.scanned_to;
        Ok(())
    }
}

impl State {
    /// Whether the last scanned line is still where it was, byte for byte.
    fn tail_intact(&self) -> bool {
        self.scanned_to == 0
            || (ends_with_lf(&self.log_file, self.scanned_to)
                && digest_range(&self.log_file, self.last_start, self.scanned_to).ok()
                    == Some(self.tail_digest))
    }

    /// Scans the complete lines in `scanned_to..len` into `pending`.
    fn scan_gap(&mut self, path: &Path, len: u64) -> Result<(), AuditError> {
        if len <= self.scanned_to {
            return Ok(());
        }
        let io_err = |source: io::Error| AuditError::Io { path: path.to_owned(), source };
        let mut f = &self.log_file;
        f.seek(SeekFrom::Start(self.scanned_to)).map_err(io_err)?;
        let mut pos = self.scanned_to;
        let mut lines = self.lines;
        let mut last_start = self.last_start;
        let pending = &mut self.pending;
        for_each_block(f.take(len - self.scanned_to), 1 << 20, |block, _| {
            // Only complete lines: up to the last `\n` of the block.
            let Some(end) = block.iter().rposition(|&b| b == b'\n').map(|p| p + 1) else {
                return false;
            };
            for line in Lines::new(&block[..end]) {
                last_start = pos + line.start as u64;
                if line.text.is_empty() {
                    continue;
                }
                lines += 1;
                let record = |key| Record {
                    key,
                    offset: pos + line.start as u64,
                    len: u32::try_from(line.raw.len()).unwrap_or(u32::MAX),
                    line: u32::try_from(lines).unwrap_or(u32::MAX),
                };
                for_each_key(line.text, |k| pending.entry(k).or_default().push(record(k)));
            }
            pos += end as u64;
            // A block that does not end at a newline is the last one.
            end == block.len()
        })
        .map_err(io_err)?;
        if pos != self.scanned_to {
            self.tail_digest = digest_range(&self.log_file, last_start, pos).map_err(io_err)?;
        }
        self.scanned_to = pos;
        self.lines = lines;
        self.last_start = last_start;
        Ok(())
    }
}

impl Base {
    fn read_record(&mut self, i: u64) -> Result<Record, Distrust> {
        let mut buf = [0u8; RECORD_LEN];
        let at = HEADER_LEN as u64 + i * RECORD_LEN as u64;
        read_exact_at(&self.file, at, &mut buf).map_err(|_| Distrust)?;
        decode(&buf).ok_or(Distrust)
    }

    /// The records with `key`, by binary search.
    fn find(&mut self, key: u64) -> Result<Vec<Record>, Distrust> {
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.read_record(mid)?.key < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut i = lo;
        while i < self.count {
            let r = self.read_record(i)?;
            if r.key != key {
                break;
            }
            out.push(r);
            i += 1;
        }
        // The neighbours must be in order too: a damaged record next to the insertion point
        // could be the one looked for.
        if lo > 0 && self.read_record(lo - 1)?.key >= key {
            return Err(Distrust);
        }
        Ok(out)
    }

    /// Every record, checked.
    fn all(&mut self) -> Result<Vec<Record>, Distrust> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(HEADER_LEN as u64)).map_err(|_| Distrust)?;
        (&self.file).read_to_end(&mut bytes).map_err(|_| Distrust)?;
        if bytes.len() as u64 != self.count * RECORD_LEN as u64 {
            return Err(Distrust);
        }
        let mut out = Vec::with_capacity(bytes.len() / RECORD_LEN);
        for chunk in bytes.chunks_exact(RECORD_LEN) {
            let mut buf = [0u8; RECORD_LEN];
            buf.copy_from_slice(chunk);
            out.push(decode(&buf).ok_or(Distrust)?);
        }
        if out.windows(2).any(|w| w[0] > w[1]) {
            return Err(Distrust);
        }
        Ok(out)
    }
}

/// Whether `event` carries `id` in the role `kind` indexes.
fn names(event: &AuditEvent, kind: u8, id: &str) -> bool {
    if kind == KIND_EVENT {
        return event.event_id.as_str() == id;
    }
    event.correlation_id.as_deref() == Some(id)
        || original_audit_id(event.context.as_ref()) == Some(id)
}

/// `context.original_audit_id`, when it is a string.
pub(crate) fn original_audit_id(context: Option<&Value>) -> Option<&str> {
    context?.get("original_audit_id")?.as_str()
}

/// Reads and parses the entry a record points to; `None` when it is not there.
/// The entry a record points to, and its line as stored.
fn read_entry(
    file: &File,
    path: &Path,
    r: &Record,
) -> Result<Option<(StoredEvent, Vec<u8>)>, AuditError> {
    let mut raw = vec![0u8; r.len as usize];
    if let Err(e) = read_exact_at(file, r.offset, &mut raw) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(None),
            _ => Err(AuditError::Io { path: path.to_owned(), source: e }),
        };
    }
    Ok(parse_entry(strip_py(&raw), r.line as usize).map(|e| (e, raw)))
}

#[derive(Deserialize)]
struct Wire {
    #[serde(flatten)]
    event: AuditEvent,
    prev_hash: String,
    #[serde(default)]
    entry_hash: String,
    #[serde(default)]
    seq: Option<u64>,
}

/// An entry from its line text, as [`crate::read_events`] parses it.
pub(crate) fn parse_entry(text: &[u8], line: usize) -> Option<StoredEvent> {
    let w: Wire = serde_json::from_slice(text).ok()?;
    Some(StoredEvent {
        event: w.event,
        prev_hash: w.prev_hash,
        entry_hash: w.entry_hash,
        seq: w.seq,
        line,
    })
}

#[derive(Deserialize)]
struct Ids<'a> {
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    context: Option<ContextIds<'a>>,
}

#[derive(Deserialize)]
struct ContextIds<'a> {
    #[serde(borrow, default)]
    original_audit_id: Option<Cow<'a, str>>,
}

/// Calls `f` with the index key of each id a line carries (nothing for a line that is not
/// a JSON object).
fn for_each_key(text: &[u8], mut f: impl FnMut(u64)) {
    let (event, link, original) = match serde_json::from_slice::<Ids<'_>>(text) {
        Ok(ids) => {
            (ids.event_id, ids.correlation_id, ids.context.and_then(|c| c.original_audit_id))
        }
        // Unusual shapes (a non-object context, a non-string id, duplicate keys): the
        // general parser, where the last duplicate wins as in Python.
        Err(_) => match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(map)) => {
                let s =
                    |v: Option<&Value>| v.and_then(Value::as_str).map(|s| Cow::Owned(s.to_owned()));
                let context = map.get("context");
                (
                    s(map.get("event_id")),
                    s(map.get("correlation_id")),
                    s(context.and_then(|c| c.get("original_audit_id"))),
                )
            }
            _ => return,
        },
    };
    if let Some(id) = &event {
        f(key(KIND_EVENT, id));
    }
    if let Some(id) = &link {
        f(key(KIND_LINK, id));
    }
    if let Some(id) = &original
        && link.as_deref() != Some(id.as_ref())
    {
        f(key(KIND_LINK, id));
    }
}

/// FNV-1a 64 of the kind byte and the id.
fn key(kind: u8, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&kind).chain(id.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn check_word(r: &Record) -> u64 {
    // The constant keeps an all-zero record from checking out.
    let tail = (u64::from(r.len) << 32) | u64::from(r.line);
    mix(r.key ^ mix(r.offset ^ mix(tail ^ 0x9e37_79b9_7f4a_7c15)))
}

fn encode(r: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.key.to_le_bytes());
    out.extend_from_slice(&r.offset.to_le_bytes());
    out.extend_from_slice(&r.len.to_le_bytes());
    out.extend_from_slice(&r.line.to_le_bytes());
    out.extend_from_slice(&check_word(r).to_le_bytes());
}

fn decode(b: &[u8; RECORD_LEN]) -> Option<Record> {
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at = |i: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[i..i + 4]);
        u32::from_le_bytes(a)
    };
    let r = Record { key: u64_at(0), offset: u64_at(8), len: u32_at(16), line: u32_at(20) };
    (check_word(&r) == u64_at(24)).then_some(r)
}

fn encode_header(h: &Header) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[..8].copy_from_slice(MAGIC);
    for (i, v) in [h.covered, h.lines, h.records, h.identity.0, h.identity.1, h.last_start]
        .into_iter()
        .enumerate()
    {
        b[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes());
    }
    b[56..88].copy_from_slice(&h.last_digest);
    let d = crate::entry::sha256(&[&b[..104]]);
    b[104..120].copy_from_slice(&d[..16]);
    b
}

fn read_header(file: &mut File) -> io::Result<Header> {
    let mut b = [0u8; HEADER_LEN];
    file.read_exact(&mut b)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an index header");
    if &b[..8] != MAGIC || crate::entry::sha256(&[&b[..104]])[..16] != b[104..120] {
        return Err(bad());
    }
    let u = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[8 + i * 8..16 + i * 8]);
        u64::from_le_bytes(a)
    };
    let mut last_digest = [0u8; 32];
    last_digest.copy_from_slice(&b[56..88]);
    Ok(Header {
        covered: u(0),
        lines: u(1),
        records: u(2),
        identity: (u(3), u(4)),
        last_start: u(5),
        last_digest,
    })
}

/// Writes a complete index file next to `idx` and renames it into place.
fn write_index_file(idx: &Path, header: &Header, records: &[Record]) -> io::Result<File> {
    let mut name = idx.as_os_str().to_owned();
    name.push(format!(".tmp-{}-{}", std::process::id(), agent_safe_core::random::hex(8)));
    let tmp = PathBuf::from(name);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut buf = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
        buf.extend_from_slice(&encode_header(header));
        for r in records {
            encode(r, &mut buf);
        }
        f.write_all(&buf)?;
        drop(f);
        fs::rename(&tmp, idx)?;
        File::open(idx)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn open_log(path: &Path) -> Result<File, AuditError> {
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => AuditError::NotFound { path: path.to_owned() },
        _ => AuditError::Io { path: path.to_owned(), source: e },
    })
}

/// A positioned read of exactly `buf.len()` bytes (`pread` where available).
fn read_exact_at(file: &File, at: u64, buf: &mut [u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(not(unix))]
    {
        let mut f = file;
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(buf)
    }
}

fn ends_with_lf(file: &File, len: u64) -> bool {
    let mut b = [0u8; 1];
    len > 0 && read_exact_at(file, len - 1, &mut b).is_ok() && b[0] == b'\n'
}

fn digest_range(file: &File, start: u64, end: u64) -> io::Result<[u8; 32]> {
    let mut buf = vec![0u8; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
    read_exact_at(file, start, &mut buf)?;
    Ok(crate::entry::sha256(&[&buf]))
}

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_meta: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(test)]
mod tests;
