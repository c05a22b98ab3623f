//! Tests of the writer: resuming, chaining onto other writers, torn tails, repair.

use std::fs;

use super::*;
use crate::bench::sample_event;
use crate::{IssueKind, read_events, repair, verify};

const FIXTURE: &str = include_str!("../../../../tests/data/audit/python-fixture.jsonl");
const FIXTURE_HEAD: &str = "5e1887dc8b1b6e0b869fd98984bd470546237a7a99c56caaedb3c594900f4d27";

fn buffered() -> AuditOptions {
    AuditOptions { durability: Durability::Buffered }
}

fn open(path: &Path) -> AuditLog {
    AuditLog::open(path, buffered()).unwrap()
}

#[track_caller]
fn assert_valid(path: &Path, entries: usize) {
    let report = verify(path).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    assert_eq!(report.entries, entries);
}

fn seqs(path: &Path) -> Vec<Option<u64>> {
    read_events(path).unwrap().into_iter().map(|e| e.seq).collect()
}

#[test]
fn appends_chain_from_genesis_and_resume_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let r1 = log.append(&sample_event(1)).unwrap();
    let r2 = log.append(&sample_event(2)).unwrap();
    assert_eq!((r1.seq, r2.seq), (1, 2));
    drop(log);
    let log = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let r3 = log.append(&sample_event(3)).unwrap();
    assert_eq!(r3.seq, 3);
    assert_valid(&path, 3);
    let events = read_events(&path).unwrap();
    assert_eq!(events[0].prev_hash, crate::GENESIS_HASH);
    assert_eq!(events[1].prev_hash, r1.entry_hash);
    assert_eq!(events[2].prev_hash, r2.entry_hash);
    assert_eq!(events[2].entry_hash, r3.entry_hash);
    assert_eq!(events[2].event, sample_event(3));
    assert_eq!(events[2].line, 3);
}

#[test]
fn continues_a_python_written_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, FIXTURE).unwrap();
    let log = open(&path);
    let r = log.append(&sample_event(1)).unwrap();
    assert_eq!(r.seq, 7);
    let events = read_events(&path).unwrap();
    assert_eq!(events[6].prev_hash, FIXTURE_HEAD);
    assert_eq!(seqs(&path), [None, None, None, None, None, None, Some(7)]);
    assert_valid(&path, 7);
    // The Python lines are untouched.
    assert!(fs::read_to_string(&path).unwrap().starts_with(FIXTURE));
}

#[test]
fn handles_on_the_same_file_chain_onto_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let a = open(&path);
    let b = open(&path);
    for i in 0..10 {
        let (first, second) = if i % 3 == 0 { (&a, &b) } else { (&b, &a) };
        first.append(&sample_event(i)).unwrap();
        second.append(&sample_event(i)).unwrap();
        second.append(&sample_event(i)).unwrap();
    }
    assert_valid(&path, 30);
    assert_eq!(seqs(&path), (1..=30).map(Some).collect::<Vec<_>>());
}

#[test]
fn a_python_writer_appending_in_between_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    log.append(&sample_event(1)).unwrap();
    // Another writer (as the Python version would) adds a line without seq.
    let head = read_events(&path).unwrap()[0].entry_hash.clone();
    let mut line = Vec::new();
    crate::line::PreparedLine::new(&sample_event(2)).finish(&head, None, &mut line);
    fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&line).unwrap();
    let r = log.append(&sample_event(3)).unwrap();
    assert_eq!(r.seq, 3);
    assert_eq!(seqs(&path), [Some(1), None, Some(3)]);
    assert_valid(&path, 3);
}

#[test]
fn a_complete_last_line_without_newline_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, FIXTURE.trim_end()).unwrap();
    let log = open(&path);
    assert_eq!(log.append(&sample_event(1)).unwrap().seq, 7);
    assert_valid(&path, 7);
}

#[test]
fn torn_tail_blocks_open_until_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    for i in 0..3 {
        log.append(&sample_event(i)).unwrap();
    }
    drop(log);
    let intact = fs::read(&path).unwrap();
    // A crash half-way through the fourth line.
    let mut torn = intact.clone();
    torn.extend_from_slice(&intact[..200]);
    fs::write(&path, &torn).unwrap();

    let err = AuditLog::open(&path, buffered()).unwrap_err();
    assert!(matches!(&err, AuditError::TornTail { line: 4, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:4: the log ends with a torn line (an interrupted write); run `agent-safe audit repair` to move it aside",
            path.display()
        )
    );
    // Opening changed nothing.
    assert_eq!(fs::read(&path).unwrap(), torn);
    assert_eq!(verify(&path).unwrap().torn_tail(), Some(4));
    assert!(matches!(read_events(&path), Err(AuditError::TornTail { line: 4, .. })));

    let report = repair(&path).unwrap();
    assert_eq!(report.kept_entries, 3);
    assert_eq!(report.removed_bytes, 200);
    let backup = report.backup.unwrap();
    assert_eq!(backup.file_name().unwrap(), "audit.jsonl.torn-1");
    assert_eq!(fs::read(&backup).unwrap(), &intact[..200]);
    assert_eq!(fs::read(&path).unwrap(), intact);
    assert_valid(&path, 3);

    // Nothing left to repair: untouched, no backup.
    let again = repair(&path).unwrap();
    assert_eq!(again, crate::RepairReport { kept_entries: 3, removed_bytes: 0, backup: None });
    assert_eq!(fs::read(&path).unwrap(), intact);

    // A second torn write gets the next backup name, and appends work again after repair.
    let mut torn = intact.clone();
    torn.extend_from_slice(b"{\"action\": \"x");
    fs::write(&path, &torn).unwrap();
    assert_eq!(repair(&path).unwrap().backup.unwrap().file_name().unwrap(), "audit.jsonl.torn-2");
    assert_eq!(open(&path).append(&sample_event(9)).unwrap().seq, 4);
    assert_valid(&path, 4);
}

#[test]
fn repair_never_drops_a_complete_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Complete final entry without newline, and a corrupt line in the middle: both stay.
    let mut lines: Vec<&str> = FIXTURE.lines().collect();
    lines[2] = "{corrupt";
    let text = lines.join("\n");
    fs::write(&path, &text).unwrap();
    let report = repair(&path).unwrap();
    assert_eq!((report.kept_entries, report.removed_bytes, report.backup), (6, 0, None));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert!(matches!(repair(&dir.path().join("missing")), Err(AuditError::NotFound { .. })));
}

#[test]
fn a_writer_that_sees_a_torn_tail_refuses_to_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    log.append(&sample_event(1)).unwrap();
    // Another process crashed mid-write.
    fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"action\": ").unwrap();
    assert!(matches!(log.append(&sample_event(2)), Err(AuditError::TornTail { line: 2, .. })));
    repair(&path).unwrap();
    // The repair shrank the file back to what this handle knew; it continues.
    assert_eq!(log.append(&sample_event(2)).unwrap().seq, 2);
    assert_valid(&path, 2);
}

#[test]
fn a_corrupt_last_line_is_an_error_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, format!("{FIXTURE}{{\"truncated\n")).unwrap();
    let err = AuditLog::open(&path, buffered()).unwrap_err();
    let AuditError::Corrupt { line, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*line, 7);
    assert!(
        message.starts_with("the last entry is not valid JSON: Unterminated string"),
        "{message}"
    );

    fs::write(&path, "{\"no_hash\": 1}\n").unwrap();
    let err = AuditLog::open(&path, buffered()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:1: the last entry has no string `entry_hash`", path.display())
    );
}

#[test]
fn a_log_cut_back_behind_the_writer_is_reread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    for i in 0..3 {
        log.append(&sample_event(i)).unwrap();
    }
    let text = fs::read_to_string(&path).unwrap();
    let first_line_len = text.find('\n').unwrap() + 1;
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(first_line_len as u64).unwrap();
    assert_eq!(log.append(&sample_event(4)).unwrap().seq, 2);
    assert_valid(&path, 2);
}

#[test]
fn open_needs_the_directory_and_reports_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("audit.jsonl");
    let err = AuditLog::open(&path, buffered()).unwrap_err();
    assert!(matches!(&err, AuditError::Io { path: p, .. } if p == &path), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()));
}

#[test]
fn blank_and_whitespace_lines_are_skipped_when_resuming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, format!("\n{FIXTURE}\n  \n\u{a0}\n")).unwrap();
    let log = open(&path);
    assert_eq!(log.append(&sample_event(1)).unwrap().seq, 7);
    let report = verify(&path).unwrap();
    assert!(report.is_valid(), "{:#?}", report.errors);
    assert_eq!(report.entries, 7);
    assert!(!report.errors.iter().any(|e| e.kind == IssueKind::TornTail));
}

#[test]
fn group_commit_shares_fsyncs_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = std::sync::Arc::new(AuditLog::open(&path, AuditOptions::default()).unwrap());
    std::thread::scope(|s| {
        for t in 0..4 {
            let log = &log;
            s.spawn(move || {
                for i in 0..50 {
                    log.append(&sample_event(t * 100 + i)).unwrap();
                }
            });
        }
    });
    let state = lock(&log.sync);
    assert_eq!(log.written.load(Ordering::SeqCst), 200);
    assert_eq!(state.durable, 200);
    assert!(state.failed.is_none());
    drop(state);
    let fsyncs = log.fsyncs.load(Ordering::Relaxed);
    assert!((1..=200).contains(&fsyncs), "{fsyncs}");
    assert_valid(&path, 200);
    log.sync().unwrap();
}
