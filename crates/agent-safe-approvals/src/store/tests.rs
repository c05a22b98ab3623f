//! Tests of the store: round trips, lazy expiry at the boundary, atomic updates, racing threads,
//! and files truncated or edited by hand (detected, named by line, nothing else lost).

use std::sync::Arc;

use agent_safe_core::ManualClock;
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::backend::ApprovalStore;
use crate::store_contract::new_request;

const START: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: ApprovalStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let store = ApprovalStore::new(dir.path().join("approvals.jsonl"), clock.clone());
    Fixture { _dir: dir, clock, store }
}

fn read(store: &ApprovalStore) -> String {
    std::fs::read_to_string(store.file_path().unwrap()).unwrap()
}

fn write(store: &ApprovalStore, text: &str) {
    std::fs::write(store.file_path().unwrap(), text).unwrap();
}

/// Three requests `a`, `b`, `c` (lines 1–3).
fn three(f: &Fixture) -> [ApprovalRequest; 3] {
    ["a", "b", "c"].map(|d| f.store.create(new_request(d)).unwrap())
}

fn approve(store: &ApprovalStore, id: &str) -> Result<bool, StoreError> {
    store.update(id, |slot| {
        if slot.request.status != ApprovalStatus::Pending {
            return Ok::<_, StoreError>(false);
        }
        slot.request.status = ApprovalStatus::Approved;
        slot.request.resolved_by = Some("alice".into());
        Ok(true)
    })
}

#[test]
fn create_get_list_round_trip_as_one_sorted_line_each() {
    let f = fixture();
    assert!(!f.store.exists());
    assert_eq!(f.store.list().unwrap(), Listing::default());
    let [a, b, _] = three(&f);
    assert_eq!(f.store.get(&a.request_id).unwrap(), a);
    assert_eq!(f.store.get(&b.request_id).unwrap(), b);
    let text = read(&f.store);
    assert_eq!(text.lines().count(), 3);
    assert!(text.ends_with('\n'));
    let first = text.lines().next().unwrap();
    assert_eq!(first, a.to_line().unwrap());
    assert!(first.starts_with(r#"{"action": "restart-deployment", "approvals": [], "#));
    let pending = f.store.list_pending().unwrap();
    assert_eq!(pending.requests.len(), 3);
    assert!(pending.corrupt.is_empty());
}

#[cfg(unix)]
#[test]
fn store_and_lock_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = fixture();
    let [a, ..] = three(&f);
    approve(&f.store, &a.request_id).unwrap();
    let file = f.store.file_path().unwrap().to_path_buf();
    for path in [file.clone(), FileApprovalStore::new(file).lock_path] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

#[test]
fn unknown_id_is_not_found_with_the_python_message() {
    let f = fixture();
    three(&f);
    let err = f.store.get("apr-000000000000").unwrap_err();
    assert_eq!(err.to_string(), "Request not found: apr-000000000000");
    let err = approve(&f.store, "apr-000000000000").unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

#[test]
fn expiry_is_lazy_strict_and_only_written_by_an_update() {
    let f = fixture();
    let [a, b, _] = three(&f);
    // Exactly at expires_at: still pending.
    f.clock.set(a.expires_at);
    assert_eq!(f.store.get(&a.request_id).unwrap().status, ApprovalStatus::Pending);
    assert_eq!(f.store.list_pending().unwrap().requests.len(), 3);
    // One microsecond later: expired, in every read.
    f.clock.advance(Duration::microseconds(1));
    let before = read(&f.store);
    assert_eq!(f.store.get(&a.request_id).unwrap().status, ApprovalStatus::Expired);
    assert!(f.store.list_pending().unwrap().requests.is_empty());
    // Reads never write.
    assert_eq!(read(&f.store), before);
    // An update sees the expiry once and writes it.
    let seen = f.store.update(&a.request_id, |slot| Ok::<_, StoreError>(slot.expired_now)).unwrap();
    assert!(seen);
    let seen = f.store.update(&a.request_id, |slot| Ok::<_, StoreError>(slot.expired_now)).unwrap();
    assert!(!seen, "the expiry was already recorded");
    let stored: Vec<ApprovalRequest> =
        read(&f.store).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(stored[0].status, ApprovalStatus::Expired);
    assert_eq!(stored[1], b, "other requests are untouched");
}

#[test]
fn an_update_that_fails_or_changes_nothing_writes_nothing() {
    let f = fixture();
    let [a, ..] = three(&f);
    let before = read(&f.store);
    let err = f
        .store
        .update(&a.request_id, |slot| {
            slot.request.status = ApprovalStatus::Denied;
            Err::<(), _>(StoreError::NotFound("refused".into()))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "Request not found: refused");
    f.store.update(&a.request_id, |_| Ok::<_, StoreError>(())).unwrap();
    assert_eq!(read(&f.store), before);
    assert!(approve(&f.store, &a.request_id).unwrap());
    assert_ne!(read(&f.store), before);
    assert_eq!(f.store.get(&a.request_id).unwrap().status, ApprovalStatus::Approved);
}

#[test]
fn an_update_cannot_change_the_request_id() {
    let f = fixture();
    let [a, ..] = three(&f);
    let err = f
        .store
        .update(&a.request_id, |slot| {
            slot.request.request_id = "apr-ffffffffffff".into();
            Ok::<_, StoreError>(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("may not change the request id"), "{err}");
}

#[test]
fn threads_racing_to_resolve_one_request_exactly_one_wins() {
    let f = fixture();
    for round in 0..10 {
        let r = f.store.create(new_request(&format!("d{round}"))).unwrap();
        let stores: Vec<ApprovalStore> = (0..2).map(|_| f.store.clone()).collect();
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|t| {
                    let store = &stores[t % 2];
                    let id = r.request_id.clone();
                    s.spawn(move || usize::from(approve(store, &id).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
    // Nothing was lost on the way: every request is there, once, approved.
    let listing = f.store.list().unwrap();
    assert_eq!(listing.requests.len(), 10);
    assert!(listing.corrupt.is_empty());
    assert!(listing.requests.iter().all(|r| r.status == ApprovalStatus::Approved));
}

/// A hand edit of the store and what reading it must say.
struct Damage {
    name: &'static str,
    /// Edits the text of the line of the second request (`b`, line 2).
    edit: fn(&str) -> String,
    /// Expected text in the line-2 error.
    detail: &'static str,
    /// Whether the damaged line still names `b`'s id.
    identifiable: bool,
}

const DAMAGES: &[Damage] = &[
    Damage {
        name: "truncated in the middle",
        edit: |l| l[..l.len() / 3].to_owned(),
        detail: "the line is not valid JSON (truncated or edited by hand): EOF while parsing",
        identifiable: false,
    },
    Damage {
        name: "params edited",
        edit: |l| l.replace(r#""deployment": "b""#, r#""deployment": "everything""#),
        detail: "its params do not match its `params_digest` (the params were edited",
        identifiable: true,
    },
    Damage {
        name: "params digest removed and params edited",
        edit: |l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["params"]["namespace"] = json!("kube-system");
            v["params_digest"] = json!("0".repeat(64));
            v.to_string()
        },
        detail: "its params do not match its `params_digest`",
        identifiable: true,
    },
    Damage {
        name: "status misspelt",
        edit: |l| l.replace(r#""status": "pending""#, r#""status": "aproved""#),
        detail: "not an approval request: unknown variant `aproved`",
        identifiable: true,
    },
    Damage {
        name: "field removed",
        edit: |l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("expires_at");
            v.to_string()
        },
        detail: "not an approval request: missing field `expires_at`",
        identifiable: true,
    },
    Damage {
        name: "garbage",
        edit: |_| "}}not json{{".to_owned(),
        detail: "the line is not valid JSON",
        identifiable: false,
    },
    Damage {
        name: "zero approvals required",
        edit: |l| l.replace(r#""required_approvals": 1"#, r#""required_approvals": 0"#),
        detail: "`required_approvals` must be at least 1",
        identifiable: true,
    },
];

#[track_caller]
fn check_damage(d: &Damage) {
    let f = fixture();
    let [a, b, c] = three(&f);
    let text = read(&f.store);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = (d.edit)(&lines[1]);
    let damaged_line = lines[1].clone();
    write(&f.store, &(lines.join("\n") + "\n"));
    let path = f.store.location();

    // The damaged request: a clear error naming the file and line 2.
    let err = f.store.get(&b.request_id).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{path}:2: ")), "{}: {msg}", d.name);
    assert!(msg.contains(d.detail), "{}: {msg}", d.name);
    assert!(matches!(err, StoreError::Corrupt { line: 2, .. }), "{}", d.name);
    let err = approve(&f.store, &b.request_id).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{path}:2: ")), "{}: {err}", d.name);

    // Nothing else is lost: the other requests read and update normally…
    assert_eq!(f.store.get(&a.request_id).unwrap(), a, "{}", d.name);
    let listing = f.store.list().unwrap();
    assert_eq!(listing.requests, vec![a.clone(), c.clone()], "{}", d.name);
    assert_eq!(listing.corrupt.len(), 1, "{}", d.name);
    assert_eq!(listing.corrupt[0].line, 2, "{}", d.name);
    let expected_id = d.identifiable.then(|| b.request_id.clone());
    assert_eq!(listing.corrupt[0].request_id, expected_id, "{}", d.name);
    assert!(approve(&f.store, &c.request_id).unwrap(), "{}", d.name);
    let new = f.store.create(new_request("d")).unwrap();
    assert_eq!(f.store.get(&new.request_id).unwrap(), new, "{}", d.name);
    // …and the damaged line is kept byte for byte through the rewrite and the append.
    let after: Vec<String> = read(&f.store).lines().map(str::to_owned).collect();
    assert_eq!(after.len(), 4, "{}", d.name);
    assert_eq!(after[1], damaged_line, "{}", d.name);
}

#[test]
fn damaged_lines_are_detected_named_and_kept_while_the_rest_works() {
    for d in DAMAGES {
        check_damage(d);
    }
}

#[test]
fn a_torn_final_line_is_reported_and_the_next_request_starts_a_new_line() {
    let f = fixture();
    let [a, b, _] = three(&f);
    let text = read(&f.store);
    // Cut the file in the middle of the third line (an interrupted write elsewhere).
    let cut = text.len() - 40;
    write(&f.store, &text[..cut]);
    let listing = f.store.list().unwrap();
    assert_eq!(listing.requests, vec![a.clone(), b.clone()]);
    assert_eq!(listing.corrupt.len(), 1);
    assert_eq!(listing.corrupt[0].line, 3);
    assert!(
        listing.corrupt[0]
            .detail
            .contains("the line is truncated (the file ends without a newline)"),
        "{:?}",
        listing.corrupt[0]
    );
    let new = f.store.create(new_request("d")).unwrap();
    assert_eq!(f.store.get(&new.request_id).unwrap(), new);
    let after = read(&f.store);
    assert_eq!(after.lines().count(), 4);
    assert_eq!(after.lines().nth(2).unwrap(), &text[..cut][text[..cut].rfind('\n').unwrap() + 1..]);
}

#[test]
fn an_unreadable_line_without_an_id_is_named_when_an_id_is_not_found() {
    let f = fixture();
    let [a, ..] = three(&f);
    let text = read(&f.store);
    write(&f.store, &format!("{text}{{\"action\": \"restart-dep\n"));
    let err = f.store.get("apr-0000000000ff").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(":4: request `apr-0000000000ff` not found, and this line, which may be it, cannot be read"),
        "{msg}"
    );
    // Known ids still work.
    assert_eq!(f.store.get(&a.request_id).unwrap(), a);
}

#[test]
fn a_duplicated_line_is_reported_on_its_second_occurrence() {
    let f = fixture();
    let [a, ..] = three(&f);
    let text = read(&f.store);
    let first = text.lines().next().unwrap();
    write(&f.store, &format!("{text}{first}\n"));
    let listing = f.store.list().unwrap();
    assert_eq!(listing.requests.len(), 3);
    assert_eq!(listing.corrupt.len(), 1);
    assert_eq!(listing.corrupt[0].line, 4);
    assert_eq!(
        listing.corrupt[0].detail,
        format!("duplicate request id `{}` (first on line 1)", a.request_id)
    );
}

#[test]
fn blank_lines_are_skipped_and_line_numbers_are_the_files() {
    let f = fixture();
    let [a, b, _] = three(&f);
    let text = read(&f.store);
    let lines: Vec<&str> = text.lines().collect();
    write(&f.store, &format!("\n{}\n\n{}\nnot json\n", lines[0], lines[1]));
    let listing = f.store.list().unwrap();
    assert_eq!(listing.requests, vec![a, b]);
    assert_eq!(listing.corrupt[0].line, 5);
}

#[test]
fn reads_a_store_written_by_the_python_version() {
    let f = fixture();
    let line = r#"{"action": "restart-deployment", "audit_id": "evt-4df280aea421", "caller": "plain-caller", "created_at": "2026-03-01T09:30:00Z", "effective_risk": "critical", "expires_at": "2026-03-01T10:30:00Z", "params": {"namespace": "prod"}, "policy_matched": "require-approval-critical-risk", "reason": "Critical-risk actions always require human approval", "request_id": "apr-0123456789ab", "resolution_reason": null, "resolved_at": null, "resolved_by": null, "risk_class": "medium", "status": "pending", "target": "prod/api-server"}"#;
    write(&f.store, &format!("{line}\n"));
    let r = f.store.get("apr-0123456789ab").unwrap();
    assert_eq!(r.status, ApprovalStatus::Pending);
    assert_eq!(r.params_digest, None);
    f.clock.advance(Duration::hours(1));
    assert_eq!(f.store.get("apr-0123456789ab").unwrap().status, ApprovalStatus::Expired);
}

/// The backend contract (`store_contract`), on the file store.
mod contract {
    use super::*;
    use crate::store_contract;

    #[test]
    fn round_trip() {
        store_contract::round_trip(&fixture().store);
    }

    #[test]
    fn lazy_expiry() {
        let f = fixture();
        store_contract::lazy_expiry(&f.store, &f.clock);
    }

    #[test]
    fn update_rules() {
        store_contract::update_rules(&fixture().store);
    }

    #[test]
    fn shared_between_processes() {
        let f = fixture();
        let other = ApprovalStore::new(f.store.file_path().unwrap(), f.clock.clone());
        store_contract::shared(&f.store, &other);
    }

    #[test]
    fn racing() {
        let f = fixture();
        let other = ApprovalStore::new(f.store.file_path().unwrap(), f.clock.clone());
        store_contract::racing(&[f.store.clone(), other], 5);
    }
}
