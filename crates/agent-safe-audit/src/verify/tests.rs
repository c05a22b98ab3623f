//! Tests of verification: Python's messages on the Python fixture, and our additions.

use super::*;
use crate::bench::sample_event;
use crate::line::PreparedLine;

const FIXTURE: &str = include_str!("../../../../tests/data/audit/python-fixture.jsonl");

fn run(text: &str) -> VerifyReport {
    verify_read(text.as_bytes()).unwrap()
}

#[track_caller]
fn check(text: &str, expected_errors: &[&str]) {
    let report = run(text);
    let got: Vec<&str> = report.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(got, expected_errors);
    for e in &report.errors {
        assert!(e.message.starts_with(&format!("Line {}: ", e.line)), "{e:?}");
    }
}

#[track_caller]
fn check_kinds(text: &str, expected: &[(usize, IssueKind)], warnings: &[(usize, IssueKind)]) {
    let report = run(text);
    let got: Vec<(usize, IssueKind)> = report.errors.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(got, expected, "errors: {:#?}", report.errors);
    let got: Vec<(usize, IssueKind)> = report.warnings.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(got, warnings, "warnings: {:#?}", report.warnings);
}

fn fixture_lines() -> Vec<&'static str> {
    FIXTURE.lines().collect()
}

fn join(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A log written by our writer: `n` entries with seq 1..=n.
fn our_log(n: usize) -> Vec<String> {
    let mut prev = crate::GENESIS_HASH.to_owned();
    (1..=n)
        .map(|i| {
            let mut out = Vec::new();
            let hash = PreparedLine::new(&sample_event(i)).finish(&prev, Some(i as u64), &mut out);
            prev = hex::encode(&hash);
            String::from_utf8(out).unwrap().trim_end().to_owned()
        })
        .collect()
}

// Expected messages: Python's `verify_log` (agent-safe 0.14) on the same bytes.
#[test]
fn python_fixture_and_tampered_copies_give_pythons_messages() {
    let lines = fixture_lines();
    let report = run(FIXTURE);
    assert_eq!(report, VerifyReport { entries: 6, errors: vec![], warnings: vec![] });

    check(
        &FIXTURE.replacen("\"replicas\": 3}", "\"replicas\": 4}", 1),
        &["Line 2: hash mismatch — stored 0e3b3071b044792b..., computed e87976bb78a19bb5..."],
    );
    let mut deleted = lines.clone();
    deleted.remove(2);
    check(
        &join(&deleted),
        &["Line 3: chain broken — expected prev_hash 0e3b3071b044792b..., got d26d90e050c9e220..."],
    );
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    check(
        &join(&swapped),
        &[
            "Line 4: chain broken — expected prev_hash d26d90e050c9e220..., got beae2a1bcb7cdb43...",
            "Line 5: chain broken — expected prev_hash e848f9d02a9005d4..., got d26d90e050c9e220...",
            "Line 6: chain broken — expected prev_hash beae2a1bcb7cdb43..., got e848f9d02a9005d4...",
        ],
    );
    let mut bad = lines.clone();
    bad[0] = &lines[0][..100];
    check(
        &join(&bad),
        &[
            "Line 1: invalid JSON: Unterminated string starting at: line 1 column 99 (char 98)",
            "Line 2: chain broken — expected prev_hash 0000000000000000..., got 6231ffd2f6c41b1d...",
        ],
    );
    let no_prev = lines[1].replace(
        "\"prev_hash\": \"6231ffd2f6c41b1d8e4ddb8e701de59cb91901369b5328977f8a0955b6d48b00\", ",
        "",
    );
    let mut np = lines.clone();
    np[1] = &no_prev;
    check(
        &join(&np),
        &[
            "Line 2: chain broken — expected prev_hash 6231ffd2f6c41b1d..., got ...",
            "Line 2: hash mismatch — stored 0e3b3071b044792b..., computed 01018a80f19ac674...",
        ],
    );
}

#[test]
fn whitespace_and_reencoding_are_accepted_with_warnings() {
    let lines = fixture_lines();
    // Python: valid. Blank lines are not counted, so the CRLF line is line 1.
    let text = format!("\n\n{}  \r\n\t{}\r{}", lines[0], lines[1], join(&lines[2..]));
    check_kinds(&text, &[], &[(1, IssueKind::NonCanonical), (2, IssueKind::NonCanonical)]);
    // Python: valid (the hashes cover the parsed content, not the bytes).
    let text = FIXTURE
        .replace("\"app-\\u00fc\"", "\"app-\u{fc}\"")
        .replace("1e-05", "1E-5")
        .replace("\"z\": {\"a\": true, \"b\": null}", "\"z\":{\"b\":null,\"a\":true}");
    check_kinds(&text, &[], &[(1, IssueKind::NonCanonical), (4, IssueKind::NonCanonical)]);
    // A complete final entry without its newline.
    check_kinds(FIXTURE.trim_end(), &[], &[(6, IssueKind::NoFinalNewline)]);
}

#[test]
fn torn_final_line_is_reported_as_such() {
    let lines = fixture_lines();
    // Python says `Line 7: invalid JSON: Unterminated string starting at: line 1 column 44 (char 43)`.
    let report = run(&format!("{FIXTURE}{}", &lines[0][..50]));
    assert_eq!(report.torn_tail(), Some(7));
    assert_eq!(
        report.errors[0].message,
        "Line 7: torn final line (no trailing newline; an interrupted write): invalid JSON: \
         Unterminated string starting at: line 1 column 44 (char 43); \
         `agent-safe audit repair` moves it aside"
    );
    // With its newline, a partial line is ordinary corruption, not a torn tail.
    check_kinds(&format!("{FIXTURE}{}\n", &lines[0][..50]), &[(7, IssueKind::InvalidJson)], &[]);
    // Torn lines followed by whitespace only are still the final line.
    check_kinds(&format!("{FIXTURE}{{\"a\"  "), &[(7, IssueKind::TornTail)], &[]);
}

#[test]
fn seq_must_count_up() {
    let log = our_log(5);
    let refs: Vec<&str> = log.iter().map(String::as_str).collect();
    check_kinds(&join(&refs), &[], &[]);

    // Deleting an entry breaks the chain and the sequence once, not for every later line.
    let mut deleted = refs.clone();
    deleted.remove(1);
    check_kinds(&join(&deleted), &[(2, IssueKind::ChainBroken), (2, IssueKind::SeqBroken)], &[]);
    assert_eq!(
        run(&join(&deleted)).errors[1].message,
        "Line 2: sequence broken — expected seq 2, got 3"
    );

    // A Python-written prefix (no seq): our entries carry their line numbers.
    let mut prev = "5e1887dc8b1b6e0b869fd98984bd470546237a7a99c56caaedb3c594900f4d27".to_owned();
    let mut text = FIXTURE.to_owned();
    for seq in [7, 8] {
        let mut out = Vec::new();
        prev = hex::encode(&PreparedLine::new(&sample_event(seq)).finish(
            &prev,
            Some(seq as u64),
            &mut out,
        ));
        text.push_str(std::str::from_utf8(&out).unwrap());
    }
    check_kinds(&text, &[], &[]);
    // ... and an entry whose seq does not match its position is flagged.
    let mut out = Vec::new();
    PreparedLine::new(&sample_event(1)).finish(&prev, Some(3), &mut out);
    text.push_str(std::str::from_utf8(&out).unwrap());
    check_kinds(&text, &[(9, IssueKind::SeqBroken)], &[]);

    // After an unparsable line the count goes on (the line still has a number).
    let mut garbled = refs.clone();
    garbled[2] = "{not json";
    check_kinds(&join(&garbled), &[(3, IssueKind::InvalidJson), (4, IssueKind::ChainBroken)], &[]);
}

#[test]
fn odd_values_are_errors_not_crashes() {
    // Python's verifier crashes on these; we report them.
    check_kinds("[1, 2]\n", &[(1, IssueKind::NotAnObject)], &[]);
    check_kinds(
        "\"x\"\n{}\n",
        &[(1, IssueKind::NotAnObject), (2, IssueKind::ChainBroken), (2, IssueKind::HashMismatch)],
        &[],
    );
    let report = verify_read(&b"{\"a\": \"\xff\"}\n"[..]).unwrap();
    assert_eq!(report.errors[0].kind, IssueKind::InvalidUtf8);
    assert_eq!(report.errors[0].message, "Line 1: invalid UTF-8 at byte 8");
    check_kinds(
        r#"{"entry_hash": 5, "prev_hash": "0000000000000000000000000000000000000000000000000000000000000000", "seq": -1}"#,
        &[(1, IssueKind::HashMismatch), (1, IssueKind::InvalidSeq)],
        &[(1, IssueKind::NoFinalNewline)],
    );
    let deep = format!("{{\"a\": {}{}}}\n", "[".repeat(10_000), "]".repeat(10_000));
    check_kinds(&deep, &[(1, IssueKind::InvalidJson)], &[]);
}

#[test]
fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(verify(&dir.path().join("nope.jsonl")), Err(AuditError::NotFound { .. })));
}

#[test]
fn large_logs_verify_in_parallel_blocks() {
    // Enough lines for several parallel chunks and more than one read block.
    let log = our_log(12_000);
    let text: String = log.iter().map(|l| format!("{l}\n")).collect();
    assert!(text.len() > BLOCK);
    let report = verify_reader(std::io::BufReader::new(text.as_bytes())).unwrap();
    assert_eq!((report.entries, report.errors.len(), report.warnings.len()), (12_000, 0, 0));
    // A single flipped byte deep inside is found at the right line.
    let at = text.len() * 3 / 4;
    let line = text[..at].matches('\n').count() + 1;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    let report = verify_read(&bytes[..]).unwrap();
    assert!(!report.is_valid());
    assert!(
        report.errors.iter().all(|e| e.line == line || e.line == line + 1),
        "{:?}",
        report.errors
    );
}
