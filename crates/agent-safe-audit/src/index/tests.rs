//! Tests of the sidecar index: every lookup must agree with a full read of the log, after
//! appends, a torn tail and its repair, and with a stale, corrupt or unwritable index file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use agent_safe_core::{AuditEvent, AuditId, EventType};
use serde_json::json;

use super::*;
use crate::{AuditLog, AuditOptions, Durability, read_events};

fn open(path: &Path) -> AuditLog {
    AuditLog::open(path, AuditOptions { durability: Durability::Buffered }).unwrap()
}

/// Event `i`: a decision `evt-<i>`; every third one is a state capture of decision `i - 1`,
/// every fifth an approval resolution linked only through `context.original_audit_id` (as
/// the Python version writes them).
fn event(i: usize) -> AuditEvent {
    let mut e = crate::bench::sample_event(i);
    e.event_id = AuditId::new(format!("evt-{i:012x}"));
    if i % 3 == 2 {
        e.event_type = EventType::StateCapture;
        e.correlation_id = Some(format!("evt-{:012x}", i - 1));
        e.context = Some(
            json!({"type": "state_capture", "original_audit_id": format!("evt-{:012x}", i - 1),
            "before_state": {"replicas": i}, "after_state": {"replicas": i + 1}}),
        );
    } else if i % 5 == 4 {
        e.context = Some(
            json!({"type": "approval_resolution", "original_audit_id": format!("evt-{:012x}", i - 4)}),
        );
    }
    e
}

fn append(log: &AuditLog, range: std::ops::Range<usize>) {
    for i in range {
        log.append(&event(i)).unwrap();
    }
}

#[track_caller]
fn check(index: &mut AuditIndex, path: &Path, ids: impl IntoIterator<Item = usize>) {
    let all = read_events(path).unwrap();
    for i in ids {
        let id = format!("evt-{i:012x}");
        let by_id: Vec<usize> =
            all.iter().filter(|e| e.event.event_id.as_str() == id).map(|e| e.line).collect();
        let linked: Vec<usize> = all
            .iter()
            .filter(|e| {
                e.event.correlation_id.as_deref() == Some(id.as_str())
                    || original_audit_id(e.event.context.as_ref()) == Some(id.as_str())
            })
            .map(|e| e.line)
            .collect();
        let found = index.events(&id).unwrap();
        assert_eq!(found.iter().map(|e| e.line).collect::<Vec<_>>(), by_id, "events {id}");
        // The entries come back whole, with their chain fields.
        for stored in &found {
            assert_eq!(stored, &all[stored.line - 1]);
        }
        let got: Vec<usize> = index.linked(&id).unwrap().iter().map(|e| e.line).collect();
        assert_eq!(got, linked, "linked {id}");
        let decision = index.find_decision(&id).unwrap().map(|e| e.line);
        let reference = all
            .iter()
            .find(|e| e.event.event_id.as_str() == id && e.event.event_type == EventType::Decision)
            .map(|e| e.line);
        assert_eq!(decision, reference, "decision {id}");
    }
}

#[test]
fn lookups_agree_with_a_full_read_across_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    let mut index = AuditIndex::new(&path);
    // An empty log.
    assert_eq!(index.events("evt-000000000001").unwrap(), vec![]);
    append(&log, 0..50);
    check(&mut index, &path, 0..52);
    assert_eq!(index.stats().rebuilds, 1);
    // Small appends are scanned from the log (the gap), not written to the index file.
    append(&log, 50..60);
    check(&mut index, &path, 45..61);
    let stats = index.stats();
    assert_eq!((stats.rebuilds, stats.writes), (1, 1), "{stats:?}");
    assert!(stats.gap > 0 && stats.gap < GAP_LIMIT, "{stats:?}");
    // More than GAP_LIMIT bytes: a new index file covering everything.
    append(&log, 60..2_500);
    check(&mut index, &path, [0, 1, 59, 60, 61, 1234, 2_498, 2_499, 2_500]);
    let stats = index.stats();
    assert_eq!((stats.rebuilds, stats.writes, stats.gap), (1, 2, 0), "{stats:?}");
    assert!(stats.persisted);
    // A second index (another process) loads the file instead of rebuilding.
    append(&log, 2_500..2_510);
    let mut other = AuditIndex::new(&path);
    check(&mut other, &path, [3, 2_505, 2_509]);
    let stats = other.stats();
    assert_eq!((stats.rebuilds, stats.loads), (0, 1), "{stats:?}");
}

#[test]
fn a_torn_tail_is_never_indexed_and_repair_keeps_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    append(&log, 0..20);
    drop(log);
    let mut index = AuditIndex::new(&path);
    check(&mut index, &path, [3, 19]);
    // A crash in the middle of a write: a final line without a newline.
    let torn = serde_json::to_string(&event(20)).unwrap();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
    drop(f);
    assert_eq!(index.events("evt-000000000014").unwrap(), vec![]);
    let found = index.events("evt-000000000013").unwrap();
    assert_eq!(found.iter().map(|e| e.line).collect::<Vec<_>>(), [20]);
    let report = crate::repair(&path).unwrap();
    assert!(report.removed_bytes > 0);
    let log = open(&path);
    append(&log, 20..25);
    check(&mut index, &path, 17..26);
    // The index was neither rebuilt nor distrusted: the indexed part never changed.
    assert_eq!(index.stats().rebuilds, 1, "{:?}", index.stats());
}

#[test]
fn a_stale_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    append(&open(&path), 0..30);
    let mut index = AuditIndex::new(&path);
    check(&mut index, &path, [0, 29]);
    let saved_index = fs::read(index_path(&path)).unwrap();

    // The log replaced by another one (a different file at the same path).
    let other = dir.path().join("other.jsonl");
    append(&open(&other), 100..140);
    fs::rename(&other, &path).unwrap();
    check(&mut index, &path, [0, 29, 100, 139]);
    assert_eq!(index.stats().rebuilds, 2);

    // The log cut short behind the index's back, then grown again: same file, but the
    // indexed tail is gone.
    let text = fs::read_to_string(&path).unwrap();
    let keep: String = text.lines().take(10).map(|l| format!("{l}\n")).collect();
    fs::write(&path, keep).unwrap();
    append(&open(&path), 200..260);
    check(&mut index, &path, [100, 109, 110, 139, 200, 259]);
    assert_eq!(index.stats().rebuilds, 3);

    // An old index file put back next to a log it does not describe.
    fs::write(index_path(&path), &saved_index).unwrap();
    let mut fresh = AuditIndex::new(&path);
    check(&mut fresh, &path, [0, 29, 100, 200, 259]);
    assert_eq!((fresh.stats().loads, fresh.stats().rebuilds), (0, 1));

    // A line in the middle edited in place (same length): the index still loads, and
    // lookups return what the log says now (entries are always read back from the log).
    let text = fs::read_to_string(&path).unwrap();
    let edited = text.replacen("deploy-bot", "deploy-bog", 3);
    assert_eq!(edited.len(), text.len());
    fs::write(&path, &edited).unwrap();
    let mut reloaded = AuditIndex::new(&path);
    check(&mut reloaded, &path, [100, 101, 102, 259]);
    assert_eq!(reloaded.events("evt-000000000065").unwrap()[0].event.caller, "deploy-bog");
    assert_eq!((reloaded.stats().loads, reloaded.stats().rebuilds), (1, 0));

    // The last indexed line rewritten in place (same length): the index is stale.
    let last = edited.lines().last().unwrap();
    let swapped = last.replace("deploy-bot", "deploy-bug");
    let edited = format!("{}{swapped}\n", &edited[..edited.len() - last.len() - 1]);
    assert_eq!(edited.len(), text.len());
    fs::write(&path, edited).unwrap();
    let mut reloaded = AuditIndex::new(&path);
    check(&mut reloaded, &path, [100, 259]);
    assert_eq!(reloaded.events("evt-000000000103").unwrap()[0].event.caller, "deploy-bug");
    assert_eq!((reloaded.stats().loads, reloaded.stats().rebuilds), (0, 1));
}

/// Applies `damage` to the index file, then checks that lookups are still right.
#[track_caller]
fn check_damage(name: &str, damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    append(&open(&path), 0..300);
    let mut index = AuditIndex::new(&path);
    check(&mut index, &path, [7]);
    let idx = index_path(&path);
    let mut bytes = fs::read(&idx).unwrap();
    damage(&mut bytes);
    fs::write(&idx, &bytes).unwrap();
    let mut fresh = AuditIndex::new(&path);
    check(&mut fresh, &path, 0..301);
    assert_eq!(fresh.stats().rebuilds, 1, "{name}: {:?}", fresh.stats());
    // The damaged file was replaced by a good one.
    let mut again = AuditIndex::new(&path);
    check(&mut again, &path, [1, 150]);
    assert_eq!((again.stats().loads, again.stats().rebuilds), (1, 0), "{name}");
}

#[test]
fn a_corrupt_index_is_rebuilt_never_trusted() {
    let record = |i: usize| HEADER_LEN + i * RECORD_LEN;
    check_damage("empty file", |b| b.clear());
    check_damage("truncated header", |b| b.truncate(50));
    check_damage("truncated records", |b| b.truncate(b.len() - 7));
    check_damage("header bit flip", |b| b[9] ^= 1);
    check_damage("wrong magic", |b| b[0] = b'X');
    check_damage("extra bytes", |b| b.extend_from_slice(&[0; RECORD_LEN]));
    check_damage("zeroed records", |b| {
        let n = b.len();
        b[HEADER_LEN..n].fill(0);
    });
    // Single flipped bits anywhere in the records: a lookup of the damaged record's key
    // reads it (or its neighbour) and distrusts the file. `check` looks every id up.
    for (i, byte) in [(0, 0), (1, 3), (5, 9), (77, 17), (150, 20), (299, 31)] {
        check_damage("record bit flip", move |b| {
            let at = record(i) + byte;
            if at < b.len() {
                b[at] ^= 0x10;
            }
        });
    }
    // A forged record whose check word is right but which points at another entry: the
    // entry read back does not carry the id, so the index is distrusted.
    check_damage("forged offset", |b| {
        let mut rec = [0u8; RECORD_LEN];
        rec.copy_from_slice(&b[record(10)..record(11)]);
        let mut r = decode(&rec).unwrap();
        let mut other = [0u8; RECORD_LEN];
        other.copy_from_slice(&b[record(20)..record(21)]);
        let o = decode(&other).unwrap();
        r.offset = o.offset;
        r.len = o.len;
        r.line = o.line;
        let mut out = Vec::new();
        encode(&r, &mut out);
        b[record(10)..record(11)].copy_from_slice(&out);
    });
}

#[test]
fn an_unwritable_index_stays_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = open(&path);
    append(&log, 0..40);
    // A directory where the index file should be: it cannot be written.
    fs::create_dir(index_path(&path)).unwrap();
    let mut index = AuditIndex::new(&path);
    check(&mut index, &path, 0..41);
    append(&log, 40..2_200);
    check(&mut index, &path, [0, 39, 40, 2_199]);
    let stats = index.stats();
    assert!(!stats.persisted, "{stats:?}");
    assert_eq!((stats.rebuilds, stats.writes), (1, 0), "{stats:?}");
}

#[test]
fn unusual_lines_are_indexed_like_the_reader_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    append(&open(&path), 0..3);
    let mut lines = fs::read_to_string(&path).unwrap();
    let base = serde_json::to_value(event(3)).unwrap();
    let mut with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        v["prev_hash"] = json!("0".repeat(64));
        f(&mut v);
        lines.push_str(&serde_json::to_string(&v).unwrap());
        lines.push('\n');
    };
    // A context that is not an object, a non-string original id, an escaped id, blank
    // lines and CRLF endings.
    with(&|v| {
        v["event_id"] = json!("evt-00000000000a");
        v["context"] = json!("free text");
    });
    with(&|v| {
        v["event_id"] = json!("evt-00000000000b");
        v["correlation_id"] = json!("evt-000000000001");
        v["context"] = json!({"original_audit_id": 7});
    });
    lines.push_str("\n   \n");
    lines.push_str(r#"{"event_id": "evt-00000000000\u0063", "timestamp": "2026-01-01T00:00:00Z", "action": "a", "target": "t", "caller": "c", "decision": "allow", "reason": "r", "policy_matched": null, "risk_class": "low", "effective_risk": "low", "correlation_id": null, "ticket_id": null, "context": {"original_audit_id": "evt-000000000002"}, "prev_hash": "x"}"#);
    lines.push_str("\r\n");
    // Not an entry at all: skipped by the index (the reader reports it).
    lines.push_str("[1, 2]\n");
    fs::write(&path, &lines).unwrap();

    let mut index = AuditIndex::new(&path);
    let ids = |events: Vec<StoredEvent>| -> Vec<(String, usize)> {
        events.into_iter().map(|e| (e.event.event_id.to_string(), e.line)).collect()
    };
    assert_eq!(ids(index.events("evt-00000000000a").unwrap()), [("evt-00000000000a".into(), 4)]);
    assert_eq!(
        ids(index.linked("evt-000000000001").unwrap()),
        [("evt-000000000002".into(), 3), ("evt-00000000000b".into(), 5)]
    );
    assert_eq!(ids(index.events("evt-00000000000c").unwrap()), [("evt-00000000000c".into(), 6)]);
    assert_eq!(ids(index.linked("evt-000000000002").unwrap()), [("evt-00000000000c".into(), 6)]);
}

#[test]
fn keys_and_records_round_trip() {
    assert_ne!(key(KIND_EVENT, "evt-1"), key(KIND_LINK, "evt-1"));
    assert_ne!(key(KIND_EVENT, "evt-1"), key(KIND_EVENT, "evt-2"));
    let r = Record { key: 0xdead_beef, offset: 1 << 40, len: 612, line: 99 };
    let mut buf = Vec::new();
    encode(&r, &mut buf);
    let mut arr = [0u8; RECORD_LEN];
    arr.copy_from_slice(&buf);
    assert_eq!(decode(&arr), Some(r));
    for bit in 0..RECORD_LEN * 8 {
        let mut flipped = arr;
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(decode(&flipped), None, "bit {bit}");
    }
}
