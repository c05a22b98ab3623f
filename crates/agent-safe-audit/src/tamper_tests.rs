//! Property tests: what tampering verification detects, and that the fast and slow paths agree.
//!
//! Detected (an error): any change to the content of an entry, any inserted, deleted,
//! duplicated or reordered entry except at the very end. Reported as a warning only: a change
//! to how a line is spelled that leaves its parsed content as it was (whitespace between
//! tokens or around the line, `\u00E9` for `é`, `1E-5` for `1e-05`, key order, CRLF) — Python
//! accepts these too, because the hash covers the parsed content. Not seen at all: blank lines
//! added or removed, and whole entries cut off the end (truncation needs an external anchor).

use agent_safe_core::{AuditEvent, AuditId, DecisionResult, EventType, Params, RiskClass, hex};
use proptest::prelude::*;
use serde_json::{Number, Value};
use time::OffsetDateTime;

use crate::entry::{Analysis, analyze, slow};
use crate::line::PreparedLine;
use crate::lines::{Term, non_blank};
use crate::pyjson;
use crate::verify::verify_read;

fn text() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        8 => proptest::char::range('a', 'z'),
        2 => Just(' '),
        1 => prop::sample::select(vec!['"', '\\', '/', '\n', '\t', '\r', '\u{0}', '\u{1f}', '\u{7f}', '\u{8}', '\u{c}']),
        1 => prop::sample::select(vec!['é', 'ü', 'Ω', '中', '\u{2028}', '\u{feff}', '\u{ffff}', '😀', '\u{10ffff}']),
        1 => any::<char>(),
    ];
    prop::collection::vec(chars, 0..12).prop_map(|v| v.into_iter().collect())
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            1.5,
            1e-5,
            1e16,
            0.1,
            -0.0,
            0.0,
            1e15,
            123456789.125,
            5e-324,
            1.7976931348623157e308,
            -2.5e-300
        ]),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<u64>().prop_map(|u| Value::Number(u.into())),
        float().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Params> {
    prop::collection::vec((text(), json_value()), 0..4).prop_map(|kv| kv.into_iter().collect())
}

fn event() -> impl Strategy<Value = AuditEvent> {
    (
        text(),
        text(),
        params(),
        prop::option::of(json_value()),
        prop::option::of(text()),
        0i64..2_000_000_000,
        0u32..1_000_000,
    )
        .prop_map(|(action, reason, params, context, ticket, secs, micros)| AuditEvent {
            event_id: AuditId::new(format!("evt-{secs:012x}")),
            timestamp: OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .replace_microsecond(micros)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            event_type: EventType::Decision,
            action,
            target: "prod/api".into(),
            caller: "bot".into(),
            params,
            decision: DecisionResult::Deny,
            reason,
            policy_matched: None,
            risk_class: RiskClass::High,
            effective_risk: RiskClass::Critical,
            correlation_id: None,
            ticket_id: ticket,
            context,
        })
}

/// A log as our writer writes it: canonical lines with seq 1..=n.
fn log() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(event(), 1..6).prop_map(|events| {
        let mut out = Vec::new();
        let mut prev = crate::GENESIS_HASH.to_owned();
        for (i, e) in events.iter().enumerate() {
            prev = hex::encode(&PreparedLine::new(e).finish(&prev, Some(i as u64 + 1), &mut out));
        }
        out
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    DeleteLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index, prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    InsertForeignLine(prop::sample::Index, Vec<u8>),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), prop::sample::select(b" \t\r\n\"\\01eE+-.,:{}[]afu".to_vec()),]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    prop_oneof![
        4 => (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        2 => (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::DuplicateLine(i, j)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Mutation::SwapLines(i, j)),
        1 => (any::<Index>(), log()).prop_map(|(i, other)| Mutation::InsertForeignLine(i, other)),
    ]
}

fn split(log: &[u8]) -> Vec<Vec<u8>> {
    log.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn apply(log: &[u8], m: &Mutation) -> Vec<u8> {
    let mut bytes = log.to_vec();
    let mut lines = split(log);
    match m {
        Mutation::Replace(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
            bytes
        }
        Mutation::Delete(i) => {
            bytes.remove(i.index(bytes.len()));
            bytes
        }
        Mutation::Insert(i, b) => {
            bytes.insert(i.index(bytes.len() + 1), *b);
            bytes
        }
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(lines.len()));
            lines.concat()
        }
        Mutation::DuplicateLine(i, j) => {
            let line = lines[j.index(lines.len())].clone();
            lines.insert(i.index(lines.len() + 1), line);
            lines.concat()
        }
        Mutation::SwapLines(i, j) => {
            let (i, j) = (i.index(lines.len()), j.index(lines.len()));
            lines.swap(i, j);
            lines.concat()
        }
        Mutation::InsertForeignLine(i, other) => {
            let foreign = split(other);
            let line = foreign[i.index(foreign.len())].clone();
            lines.insert(i.index(lines.len() + 1), line);
            lines.concat()
        }
    }
}

/// The non-blank lines with their terminators (what a byte-exact reader sees).
fn exact_lines(log: &[u8]) -> Vec<(Vec<u8>, bool)> {
    non_blank(log).map(|l| (l.raw.to_vec(), l.term == Term::Lf)).collect()
}

/// What Python's verifier hashes: each non-blank line's parsed content, re-serialised.
fn content(log: &[u8]) -> Option<Vec<String>> {
    non_blank(log)
        .map(|l| {
            let text = std::str::from_utf8(l.text).ok()?;
            let v = pyjson::loads(text).ok()?;
            let mut s = String::new();
            pyjson::write(&v, &mut s);
            Some(s)
        })
        .collect()
}

fn is_prefix<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    short.len() <= long.len() && short.iter().zip(long).all(|(a, b)| a == b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn tampering_is_detected(log in log(), m in mutation()) {
        let original = verify_read(&log[..]).unwrap();
        prop_assert!(original.errors.is_empty() && original.warnings.is_empty(), "{:?}", original);
        let mutated = apply(&log, &m);
        let report = verify_read(&mutated[..]).unwrap();
        if report.errors.is_empty() {
            // Accepted: the content must be the original's, or a prefix of it (whole entries
            // cut off the end).
            let before = content(&log).unwrap();
            let after = content(&mutated);
            prop_assert!(after.as_ref().is_some_and(|a| is_prefix(a, &before)),
                "accepted a change of content: {m:?}\n{}", String::from_utf8_lossy(&mutated));
            if report.warnings.is_empty() {
                // No warning either: the non-blank lines are byte-identical (or a prefix).
                prop_assert!(is_prefix(&exact_lines(&mutated), &exact_lines(&log)),
                    "silently accepted a changed line: {m:?}\n{}", String::from_utf8_lossy(&mutated));
            }
        }
    }

    #[test]
    fn fast_and_slow_paths_agree(log in log(), m in mutation()) {
        let mutated = apply(&log, &m);
        for line in non_blank(&mutated) {
            let Ok(text) = std::str::from_utf8(line.text) else { continue };
            let (fast, reference) = (analyze(line.text), slow(text));
            match (fast, reference) {
                (Analysis::Entry(a), Analysis::Entry(b)) => {
                    prop_assert_eq!(a.computed, b.computed);
                    prop_assert_eq!(a.prev, b.prev);
                    prop_assert_eq!(a.stored, b.stored);
                    prop_assert_eq!(a.seq, b.seq);
                    prop_assert_eq!(a.canonical, b.canonical);
                }
                (Analysis::NotJson(a), Analysis::NotJson(b)) => prop_assert_eq!(a, b),
                (Analysis::NotObject(a), Analysis::NotObject(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn canonical_writer_matches_the_reader(v in json_value()) {
        // serde's view written canonically == Python's view of that text, re-serialised.
        let text = crate::canonical::to_string(&v);
        let parsed = pyjson::loads(&text).unwrap();
        let mut again = String::new();
        pyjson::write(&parsed, &mut again);
        prop_assert_eq!(&text, &again);
        prop_assert!(text.is_ascii());
    }
}

/// Every single-byte deletion, and every substitution and insertion of the bytes that matter
/// to JSON, at every position of a small Python-written log.
#[test]
fn every_single_byte_change_to_the_python_fixture_is_seen() {
    let fixture = include_bytes!("../../../tests/data/audit/python-fixture.jsonl");
    let lines = split(fixture);
    let log: Vec<u8> = lines[..2].concat();
    let before = content(&log).unwrap();
    let mut counts = [0usize; 3];
    let bytes: &[u8] = b" \t\r\n\"\\01eE+-.,:{}[]u\x7f\x80\xff";
    let mut check = |mutated: Vec<u8>, what: &str| {
        let report = verify_read(&mutated[..]).unwrap();
        let kind = if !report.errors.is_empty() {
            0
        } else {
            let after = content(&mutated).unwrap();
            assert_eq!(after, before, "{what}: accepted a change of content");
            if report.warnings.is_empty() {
                assert_eq!(exact_lines(&mutated), exact_lines(&log), "{what}: silently accepted");
                2
            } else {
                1
            }
        };
        counts[kind] += 1;
    };
    for i in 0..log.len() {
        let mut m = log.clone();
        m.remove(i);
        check(m, &format!("delete {i}"));
        for &b in bytes {
            if b != log[i] {
                let mut m = log.clone();
                m[i] = b;
                check(m, &format!("replace {i} with {b:#x}"));
            }
            let mut m = log.clone();
            m.insert(i, b);
            check(m, &format!("insert {b:#x} at {i}"));
        }
    }
    // Most changes are errors; some only respell (warnings); the invisible ones insert a
    // blank line. At the time of writing: [67459, 721, 6].
    let [errors, warnings, silent] = counts;
    assert!(errors > 50 * (warnings + silent), "{counts:?}");
    assert!(silent <= 2 * bytes.len(), "{counts:?}");
}
