//! agent-safe-postgres against a real PostgreSQL server (the one `cargo xtask ci` starts, or one
//! started from the machine's binaries; see agent_safe_testkit::postgres).

use std::sync::Arc;

use agent_safe_approvals::{ApprovalStatus, ApprovalStore, StoreError, store_contract};
use agent_safe_audit::{AuditError, AuditLog, AuditOptions, AuditStore as _, StoredEvent};
use agent_safe_core::{ManualClock, SystemClock};
use agent_safe_postgres::{
    Database, DbError, LATEST_VERSION, PgApprovalStore, PgAuditLog, PgNonceStore, PgSettings,
};
use agent_safe_testkit::postgres;
use agent_safe_tickets::{NonceStore, nonce_contract};
use time::OffsetDateTime;

/// A fresh database for `test` and its URL, or `None` (skipped loudly) without a server.
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn database(test: &str) -> Option<(Database, String)> {
    let url = postgres::database(test).unwrap()?;
    let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
    Some((db, url))
}

fn now() -> OffsetDateTime {
    agent_safe_core::Clock::now(&SystemClock)
}

fn later() -> OffsetDateTime {
    now() + time::Duration::hours(1)
}

#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some((db, url)) = database("migrations") else { return };
    let before = db.status().unwrap();
    assert_eq!((before.current, before.latest), (0, LATEST_VERSION));
    assert_eq!(before.pending.len(), LATEST_VERSION as usize);
    let err = db.check_schema().unwrap_err();
    assert!(matches!(err, DbError::SchemaTooOld { found: 0, .. }), "{err}");
    assert!(err.to_string().contains("run `agent-safe db migrate`"), "{err}");

    let applied = db.migrate().unwrap();
    assert_eq!(applied, (1..=LATEST_VERSION).collect::<Vec<_>>());
    assert_eq!(db.migrate().unwrap(), Vec::<u32>::new(), "migrating again changes nothing");
    db.check_schema().unwrap();
    let after = db.status().unwrap();
    assert_eq!(after.current, LATEST_VERSION);
    assert!(after.pending.is_empty());
    assert_eq!(after.applied.len(), LATEST_VERSION as usize);

    // A later release migrated this database: this build refuses it and leaves it alone.
    let bindir = postgres::server_bindir().unwrap();
    postgres::psql(
        &bindir,
        &url,
        "INSERT INTO agent_safe_schema (version, name) VALUES (999, 'future')",
    )
    .unwrap();
    let err = db.check_schema().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "database {} has schema version 999, newer than this agent-safe knows (version \
             {LATEST_VERSION}): upgrade agent-safe to a release that knows version 999",
            db.url()
        )
    );
    assert_eq!(db.migrate().unwrap_err(), err);
    assert_eq!(db.status().unwrap().current, 999);
}

#[test]
fn concurrent_migrators_apply_each_migration_once() {
    let Some((db, url)) = database("concurrent_migrate") else { return };
    let applied: Vec<Vec<u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
                    db.migrate().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = applied.iter().map(Vec::len).sum();
    assert_eq!(total, LATEST_VERSION as usize, "{applied:?}");
    db.check_schema().unwrap();
}

#[test]
fn nonces_keep_the_store_contract() {
    let Some((db, url)) = database("nonce_contract") else { return };
    db.migrate().unwrap();
    let clock = Arc::new(SystemClock);
    let store = PgNonceStore::new(db.clone(), clock.clone());
    nonce_contract::single_use(&store, later());
    // Two replicas: two pools on one database.
    let other = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
    let replica = PgNonceStore::new(other, clock.clone());
    nonce_contract::shared(&store, &replica, later());
    let stores: Vec<Arc<dyn NonceStore>> = vec![Arc::new(store), Arc::new(replica)];
    nonce_contract::racing(&stores, 20, later());
}

#[test]
fn expired_nonces_are_purged_after_the_grace_period() {
    let Some((db, _)) = database("nonce_purge") else { return };
    db.migrate().unwrap();
    let store = PgNonceStore::new(db, Arc::new(SystemClock));
    let now = now();
    assert!(store.check_and_set("old", now - time::Duration::hours(2)).unwrap());
    assert!(store.check_and_set("recent", now - time::Duration::minutes(1)).unwrap());
    assert!(store.check_and_set("live", now + time::Duration::hours(1)).unwrap());
    assert_eq!(store.purge_expired(now).unwrap(), 1);
    assert!(!store.contains("old").unwrap());
    assert!(store.contains("recent").unwrap(), "kept for the grace period");
    assert!(store.contains("live").unwrap());
}

#[test]
fn the_password_never_shows_and_an_unreachable_database_is_a_clear_error() {
    let url: agent_safe_postgres::DatabaseUrl =
        "postgres://svc:hunter2@127.0.0.1:1/agent_safe?sslmode=disable".parse().unwrap();
    assert_eq!(url.to_string(), "postgres://svc@127.0.0.1:1/agent_safe");
    assert!(!format!("{url:?}").contains("hunter2"));
    let mut settings = PgSettings::new(url);
    settings.connect_timeout = std::time::Duration::from_secs(2);
    let db = Database::connect(&settings).unwrap();
    let err = db.status().unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("database postgres://svc@127.0.0.1:1/agent_safe is unavailable: "),
        "{shown}"
    );
    assert!(!shown.contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{shown}");
    // Through the nonce store: a failure, never a "first use" (the validator fails closed).
    let store = PgNonceStore::new(db, Arc::new(SystemClock));
    let err = store.check_and_set("n1", later()).unwrap_err().to_string();
    assert!(err.starts_with("nonce store postgres://svc@127.0.0.1:1/agent_safe: "), "{err}");
    assert!(!err.contains("hunter2"));

    for bad in [
        "postgres://svc:hunter2@",
        "postgres://svc:hunter2@h:notaport/db",
        "nonsense=1 password=hunter2",
    ] {
        let err = bad.parse::<agent_safe_postgres::DatabaseUrl>().unwrap_err();
        assert!(err.starts_with("invalid database URL"), "{bad}: {err}");
        assert!(!err.contains("hunter2"), "{bad}: {err}");
    }
}

#[test]
fn a_stalled_database_times_out_instead_of_hanging() {
    let Some((db, url)) = database("statement_timeout") else { return };
    db.migrate().unwrap();
    let mut settings = PgSettings::new(url.parse().unwrap());
    settings.statement_timeout = std::time::Duration::from_millis(300);
    let store = PgNonceStore::new(Database::connect(&settings).unwrap(), Arc::new(SystemClock));
    assert!(store.check_and_set("before", later()).unwrap());
    // Another session holds the table for 3 s: the insert waits, then is cancelled.
    let bindir = postgres::server_bindir().unwrap();
    let holder = std::thread::spawn(move || {
        postgres::psql(
            &bindir,
            &url,
            "BEGIN; LOCK TABLE ticket_nonces; SELECT pg_sleep(3); COMMIT;",
        )
    });
    let start = std::time::Instant::now();
    let mut outcome = Ok(true);
    while start.elapsed() < std::time::Duration::from_secs(2) {
        outcome = store.check_and_set(&format!("n{}", start.elapsed().as_micros()), later());
        if outcome.is_err() {
            break;
        }
    }
    let err = outcome.unwrap_err().to_string();
    assert!(err.contains("57014"), "{err}");
    holder.join().unwrap().unwrap();
    assert!(store.check_and_set("after", later()).unwrap(), "served again once the lock is gone");
    assert!(!store.check_and_set("before", later()).unwrap());
}

/// The SDK calls the store from synchronous code, from blocking threads, and (the CLI's
/// `runner execute`) from inside async code: none of them may panic or deadlock.
#[test]
fn the_store_works_from_async_code_too() {
    let Some((db, _)) = database("async_callers") else { return };
    db.migrate().unwrap();
    let store = Arc::new(PgNonceStore::new(db, Arc::new(SystemClock)));
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let s = store.clone();
    assert!(
        current.block_on(async move { s.check_and_set("in-current-thread", later()) }).unwrap()
    );
    let multi =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let s = store.clone();
    assert!(multi.block_on(async move { s.check_and_set("in-multi-thread", later()) }).unwrap());
    let s = store.clone();
    let blocking = multi.block_on(async move {
        tokio::task::spawn_blocking(move || s.check_and_set("in-spawn-blocking", later())).await
    });
    assert!(blocking.unwrap().unwrap());
    assert!(!store.check_and_set("in-current-thread", later()).unwrap());
}

/// An approval store on `db` with a manual clock (the contract moves time).
fn approval_store(db: &Database) -> (ApprovalStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now()));
    let backend = Arc::new(PgApprovalStore::new(db.clone()));
    (ApprovalStore::with_backend(backend, clock.clone()), clock)
}

#[test]
fn approvals_keep_the_store_contract() {
    let Some((db, _)) = database("approval_contract") else { return };
    db.migrate().unwrap();
    let (store, _) = approval_store(&db);
    store_contract::round_trip(&store);
    let (store, clock) = approval_store(&db);
    store_contract::lazy_expiry(&store, &clock);
    let (store, _) = approval_store(&db);
    store_contract::update_rules(&store);
}

#[test]
fn approvals_are_shared_and_exactly_one_resolution_wins_across_replicas() {
    let Some((db, url)) = database("approval_replicas") else { return };
    db.migrate().unwrap();
    // Four replicas: four pools on one database.
    let stores: Vec<ApprovalStore> = (0..4)
        .map(|_| {
            let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
            approval_store(&db).0
        })
        .collect();
    store_contract::shared(&stores[0], &stores[1]);
    store_contract::racing(&stores[1..], 10);
    assert_eq!(stores[0].list().unwrap().requests.len(), 11);
}

#[test]
fn a_damaged_approval_row_is_named_and_the_others_still_work() {
    let Some((db, url)) = database("approval_damage") else { return };
    db.migrate().unwrap();
    let (store, _) = approval_store(&db);
    let a = store.create(store_contract::new_request("a")).unwrap();
    let b = store.create(store_contract::new_request("b")).unwrap();
    let err = store.insert(&a).unwrap_err();
    assert_eq!(err.to_string(), format!("request `{}` already exists", a.request_id));
    // Someone edits b's params in the database: its params digest no longer matches.
    let bindir = postgres::server_bindir().unwrap();
    postgres::psql(
        &bindir,
        &url,
        &format!(
            "UPDATE approval_requests SET line = replace(line, '\"deployment\": \"b\"', \
             '\"deployment\": \"everything\"') WHERE id = '{}'",
            b.request_id
        ),
    )
    .unwrap();
    let expected = format!(
        "{}: approval request row 2: request `{}`: its params do not match its `params_digest`",
        db.url(),
        b.request_id
    );
    let err = store.get(&b.request_id).unwrap_err();
    assert!(matches!(err, StoreError::CorruptRow { seq: 2, .. }), "{err}");
    assert!(err.to_string().starts_with(&expected), "{err}");
    let err = store.update(&b.request_id, |_| Ok::<_, StoreError>(())).unwrap_err();
    assert!(err.to_string().starts_with(&expected), "{err}");
    let listing = store.list().unwrap();
    assert_eq!(listing.requests, vec![a.clone()]);
    assert_eq!(listing.corrupt.len(), 1);
    assert_eq!(listing.corrupt[0].request_id.as_deref(), Some(b.request_id.as_str()));
    assert!(store.corrupt_error(&listing.corrupt[0]).to_string().starts_with(&expected));
    store
        .update(&a.request_id, |slot| {
            slot.request.status = ApprovalStatus::Denied;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(store.get(&a.request_id).unwrap().status, ApprovalStatus::Denied);
}

#[test]
fn an_unreachable_database_fails_approvals_clearly() {
    let mut settings = PgSettings::new(
        "postgres://svc:hunter2@127.0.0.1:1/agent_safe?sslmode=disable".parse().unwrap(),
    );
    settings.connect_timeout = std::time::Duration::from_secs(2);
    let (store, _) = approval_store(&Database::connect(&settings).unwrap());
    let errors = [
        store.create(store_contract::new_request("a")).unwrap_err(),
        store.get("apr-000000000000").unwrap_err(),
        store.list_pending().unwrap_err(),
        store.update("apr-000000000000", |_| Ok::<_, StoreError>(())).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.starts_with("database postgres://svc@127.0.0.1:1/agent_safe is unavailable: "),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

/// The chain of `log`, exported as the file log's bytes.
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn export(log: &PgAuditLog) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::copy(&mut log.reader(1), &mut out).unwrap();
    out
}

/// `bytes` written to a file and verified by the file log's verifier.
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn verify_bytes(bytes: &[u8]) -> agent_safe_audit::VerifyReport {
    agent_safe_audit::verify_reader(std::io::BufReader::new(bytes)).unwrap()
}

#[test]
fn the_audit_chain_is_byte_identical_to_the_file_log() {
    let Some((db, _)) = database("audit_bytes") else { return };
    db.migrate().unwrap();
    let pg = PgAuditLog::new(db).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let file = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for i in 0..25 {
        let event = agent_safe_audit::bench::sample_event(i);
        let in_file = file.append(&event).unwrap();
        let in_pg = pg.append(&event).unwrap();
        assert_eq!(in_pg, in_file, "entry {i}");
    }
    let exported = export(&pg);
    assert_eq!(String::from_utf8_lossy(&exported), std::fs::read_to_string(&path).unwrap());
    let head = pg.head().unwrap();
    assert_eq!(head.seq, 25);
    assert_eq!(verify_bytes(&exported).entries, 25);
    assert!(verify_bytes(&exported).is_valid());
    // A page boundary does not change the bytes: read from the middle.
    let mut tail = Vec::new();
    std::io::copy(&mut pg.reader(11), &mut tail).unwrap();
    assert!(exported.ends_with(&tail) && tail.len() < exported.len());
}

#[test]
fn entries_chained_on_the_server_are_byte_identical_to_the_file_log() {
    let Some((db, url)) = database("audit_server_chain") else { return };
    db.migrate().unwrap();
    // Two replicas taking turns: each finds the head moved by the other, so every batch is
    // chained by the server's `agent_safe_append`.
    let other = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
    let logs = [PgAuditLog::new(db).unwrap(), PgAuditLog::new(other).unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let file = AuditLog::open(&path, AuditOptions::default()).unwrap();
    for i in 0..30 {
        let mut event = agent_safe_audit::bench::sample_event(i);
        // What the canonical JSON escapes: quotes, backslashes, control and non-ASCII
        // characters, and absent optional fields.
        event.reason = format!("entry {i}: \"quoted\" \\ tab\t é 😀 \u{1}");
        event.params.insert("note".into(), serde_json::json!(["ünïcode", 1.5e-7, null]));
        if i % 3 == 0 {
            event.correlation_id = Some(format!("evt-{:012x}", i + 1000));
            event.ticket_id = None;
            event.policy_matched = None;
            event.context = None;
        }
        let in_file = file.append(&event).unwrap();
        let in_pg = logs[i % 2].append(&event).unwrap();
        assert_eq!(in_pg, in_file, "entry {i}");
    }
    let exported = export(&logs[0]);
    assert_eq!(String::from_utf8_lossy(&exported), std::fs::read_to_string(&path).unwrap());
    assert!(verify_bytes(&exported).is_valid());
    assert_eq!(logs[1].linked("evt-0000000003e8").unwrap().len(), 1);
}

#[test]
fn replicas_append_to_one_chain() {
    let Some((db, url)) = database("audit_replicas") else { return };
    db.migrate().unwrap();
    // Four replicas (four pools, four appender tasks), eight threads each.
    let logs: Vec<PgAuditLog> = (0..4)
        .map(|_| {
            let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
            PgAuditLog::new(db).unwrap()
        })
        .collect();
    let receipts: Vec<(String, u64, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|t| {
                let log = &logs[t % 4];
                s.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let mut event = agent_safe_audit::bench::sample_event(t * 1000 + i);
                            event.reason = format!("thread {t} entry {i}");
                            let r = log.append(&event).unwrap();
                            (event.event_id.as_str().to_owned(), r.seq, r.entry_hash)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let exported = export(&logs[0]);
    let report = verify_bytes(&exported);
    assert!(report.is_valid(), "{:?}", report.errors);
    assert_eq!(report.entries, 800);
    // Every append a client was told about is in the chain, at the seq it was told, once.
    let stored: Vec<StoredEvent> = exported
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| StoredEvent::parse(l, i + 1).unwrap())
        .collect();
    for (n, e) in stored.iter().enumerate() {
        assert_eq!(e.seq, Some(n as u64 + 1), "seq is contiguous");
    }
    for (event_id, seq, hash) in &receipts {
        let e = &stored[usize::try_from(*seq).unwrap() - 1];
        assert_eq!((e.event.event_id.as_str(), &e.entry_hash), (event_id.as_str(), hash));
    }
    assert_eq!(logs[3].head().unwrap().seq, 800);
}

#[test]
fn lookups_by_id_follow_links() {
    let Some((db, _)) = database("audit_lookups") else { return };
    db.migrate().unwrap();
    let log = PgAuditLog::new(db).unwrap();
    let decision = agent_safe_audit::bench::sample_event(1);
    log.append(&decision).unwrap();
    let mut capture = agent_safe_audit::bench::sample_event(2);
    capture.event_type = agent_safe_core::EventType::StateCapture;
    capture.correlation_id = Some(decision.event_id.as_str().to_owned());
    log.append(&capture).unwrap();
    let mut resolution = agent_safe_audit::bench::sample_event(3);
    resolution.context = Some(serde_json::json!({"original_audit_id": decision.event_id.as_str()}));
    log.append(&resolution).unwrap();
    log.append(&agent_safe_audit::bench::sample_event(4)).unwrap();

    let found = log.find_decision(decision.event_id.as_str()).unwrap().unwrap();
    assert_eq!((found.event, found.seq), (decision.clone(), Some(1)));
    assert!(log.find_decision(capture.event_id.as_str()).unwrap().is_none(), "not a decision");
    assert!(log.find_decision("evt-ffffffffffff").unwrap().is_none());
    let linked: Vec<_> =
        log.linked(decision.event_id.as_str()).unwrap().into_iter().map(|e| e.event).collect();
    assert_eq!(linked, vec![capture, resolution]);
}

#[test]
fn import_moves_a_file_log_into_an_empty_database_all_or_nothing() {
    let Some((db, url)) = database("audit_import") else { return };
    db.migrate().unwrap();
    let log = PgAuditLog::new(db).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/audit");
    // A log written by the Python version (no `seq`) and one written by this crate.
    let python = std::fs::read_to_string(root.join("python-fixture.jsonl")).unwrap();
    let lines = |text: &str| text.lines().map(|l| Ok(l.to_owned())).collect::<Vec<_>>();

    // A line out of order is refused and nothing is written.
    let mut shuffled = lines(&std::fs::read_to_string(root.join("rust-written.jsonl")).unwrap());
    shuffled.swap(1, 2);
    let err = log.import(shuffled).unwrap_err().to_string();
    assert_eq!(err, "entry 2: its seq is 3 (entries must be numbered from 1 without gaps)");
    let err = log.import(vec![Ok("{\"not\": \"an entry\"}".to_owned())]).unwrap_err().to_string();
    assert_eq!(err, "entry 1: not an audit entry");
    assert_eq!(log.head().unwrap().seq, 0);

    let head = log.import(lines(&python)).unwrap();
    assert_eq!(String::from_utf8(export(&log)).unwrap(), python, "byte for byte");
    assert_eq!(log.head().unwrap(), head);
    // Appending continues the imported chain, as the file log continues a Python log.
    let receipt = log.append(&agent_safe_audit::bench::sample_event(9)).unwrap();
    assert_eq!(receipt.seq, head.seq + 1);
    let report = verify_bytes(&export(&log));
    assert!(report.is_valid(), "{:?}", report.errors);
    // Into a database that holds a log: refused, nothing changed.
    let before = export(&log);
    let err = log.import(lines(&python)).unwrap_err().to_string();
    assert!(
        err.ends_with(&format!(
            "the audit log is not empty ({} entries): import only into an empty database",
            head.seq + 1
        )),
        "{err}"
    );
    assert!(err.starts_with(&postgres_url_shown(&url)), "{err}");
    assert_eq!(export(&log), before);
}

/// How errors show `url` (without its password).
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn postgres_url_shown(url: &str) -> String {
    url.parse::<agent_safe_postgres::DatabaseUrl>().unwrap().to_string()
}

#[test]
fn an_unreachable_database_records_nothing_and_says_so() {
    let mut settings = PgSettings::new(
        "postgres://svc:hunter2@127.0.0.1:1/agent_safe?sslmode=disable".parse().unwrap(),
    );
    settings.connect_timeout = std::time::Duration::from_secs(2);
    let log = PgAuditLog::new(Database::connect(&settings).unwrap()).unwrap();
    let err = log.append(&agent_safe_audit::bench::sample_event(1)).unwrap_err();
    assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("database postgres://svc@127.0.0.1:1/agent_safe is unavailable: "),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"));
    assert!(matches!(log.head(), Err(AuditError::Unavailable(_))));
}

#[test]
fn a_restarted_database_is_used_again_without_restarting_the_client() {
    let Some(mut server) = postgres::own_server("pg_restart").unwrap() else { return };
    let mut settings = PgSettings::new(server.url("postgres").parse().unwrap());
    settings.connect_timeout = std::time::Duration::from_secs(2);
    let db = Database::connect(&settings).unwrap();
    db.migrate().unwrap();
    let log = PgAuditLog::new(db.clone()).unwrap();
    let nonces = PgNonceStore::new(db.clone(), Arc::new(SystemClock));
    let first = log.append(&agent_safe_audit::bench::sample_event(1)).unwrap();
    assert!(nonces.check_and_set("before", later()).unwrap());

    server.stop();
    // Down: every call fails as unavailable, nothing is recorded, nothing is consumed.
    let err = log.append(&agent_safe_audit::bench::sample_event(2)).unwrap_err();
    assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        nonces.check_and_set("during", later()),
        Err(agent_safe_tickets::NonceStoreError::Unavailable { .. })
    ));
    assert!(db.ping().unwrap_err().is_unavailable());

    server.restart().unwrap();
    // Up again: the same pool and appender serve, without being rebuilt.
    db.ping().unwrap();
    let third = log.append(&agent_safe_audit::bench::sample_event(3)).unwrap();
    assert_eq!(third.seq, first.seq + 1, "the failed append left nothing");
    assert!(nonces.check_and_set("during", later()).unwrap(), "the failed call consumed nothing");
    assert!(!nonces.check_and_set("before", later()).unwrap());
    let report = verify_bytes(&export(&log));
    assert!(report.is_valid() && report.entries == 2, "{:?}", report.errors);
}

#[test]
fn a_rate_limit_holds_across_replicas() {
    let Some((db, url)) = database("windows_replicas") else { return };
    db.migrate().unwrap();
    let config = agent_safe_pdp::RateLimitConfig {
        max_requests: 10,
        window_seconds: 60.0,
        circuit_breaker_threshold: 0,
        circuit_breaker_window_seconds: 60.0,
        circuit_breaker_cooldown_seconds: 60.0,
    };
    // Four replicas (four pools), each with its own limiter on the shared windows.
    let limiters: Vec<agent_safe_pdp::limits::RateLimiter> = (0..4)
        .map(|_| {
            let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
            let mut limiter = agent_safe_pdp::limits::RateLimiter::new(config.clone()).unwrap();
            limiter.set_store(Arc::new(agent_safe_postgres::PgWindowStore::new(db)));
            limiter
        })
        .collect();
    let at = now();
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let limiter = &limiters[t % 4];
                s.spawn(move || {
                    (0..5).filter(|_| limiter.check("bot", at).unwrap().is_none()).count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 10, "10 of 40 across four replicas");
    let refused = limiters[0].check("bot", at).unwrap().unwrap();
    assert_eq!(refused, "Rate limit exceeded for caller 'bot': 10 requests per 60s window.");
    assert!(limiters[1].check("other", at).unwrap().is_none(), "per caller");
    // Past the window, the caller may go again.
    assert!(limiters[2].check("bot", at + time::Duration::seconds(61)).unwrap().is_none());
}

#[test]
fn a_log_larger_than_one_chunk_imports_byte_for_byte() {
    let Some((db, _)) = database("audit_import_large") else { return };
    db.migrate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let file =
        AuditLog::open(&path, AuditOptions { durability: agent_safe_audit::Durability::Buffered })
            .unwrap();
    let entries = agent_safe_postgres::IMPORT_CHUNK * 2 + 7;
    for i in 0..entries {
        file.append(&agent_safe_audit::bench::sample_event(usize::try_from(i).unwrap())).unwrap();
    }
    file.sync().unwrap();
    let log = PgAuditLog::new(db).unwrap();
    let reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let head = log.import(std::io::BufRead::lines(reader)).unwrap();
    assert_eq!(head.seq, entries);
    assert_eq!(export(&log), std::fs::read(&path).unwrap());
}

/// Audit shipping from the database's log to a file, polling often (a test's pace).
mod shipping {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use agent_safe_audit::AuditStore as _;
    use agent_safe_audit_ship::{
        FilesystemShipper, ReplayOptions, ShipLogError, ShippingOptions, ShippingWorker,
        replay_from,
    };
    use agent_safe_postgres::{Database, PgAuditLog, PgSettings, PgShipSource};
    use agent_safe_testkit::postgres;

    use super::{database, export};

    #[expect(clippy::unwrap_used, reason = "a test helper")]
    fn replica(url: &str) -> Arc<PgAuditLog> {
        let db = Database::connect(&PgSettings::new(url.parse().unwrap())).unwrap();
        Arc::new(PgAuditLog::new(db).unwrap())
    }

    /// A migrated database for `test`, its URL, a directory and the destination file in it.
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    fn setup(test: &str) -> Option<(String, tempfile::TempDir, std::path::PathBuf)> {
        let (db, url) = database(test)?;
        db.migrate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy.jsonl");
        Some((url, dir, dest))
    }

    fn worker(log: &Arc<PgAuditLog>, dest: &Path) -> ShippingWorker {
        worker_from(log, dest, agent_safe_audit_ship::StartAt::Beginning)
    }

    #[expect(clippy::unwrap_used, reason = "a test helper")]
    fn worker_from(
        log: &Arc<PgAuditLog>,
        dest: &Path,
        start_at: agent_safe_audit_ship::StartAt,
    ) -> ShippingWorker {
        let options = ShippingOptions {
            poll_interval: Duration::from_millis(50),
            start_at,
            ..ShippingOptions::default()
        };
        ShippingWorker::start_from(
            Arc::new(PgShipSource::new(log.clone())),
            vec![Arc::new(FilesystemShipper::new(dest))],
            options,
        )
        .unwrap()
    }

    /// Waits until `worker` has taken the destination (not standing by) and shipped
    /// everything; whether it got there within 20 s.
    fn leads_and_flushes(worker: &ShippingWorker) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !worker.status()[0].standby && worker.flush(Duration::from_secs(5)) {
                return worker.lag() == Some(0);
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        false
    }

    /// Waits until the first step of `worker` is recorded (it leads or stands by).
    fn settled(worker: &ShippingWorker) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let s = &worker.status()[0];
            if s.standby || s.position.is_some() || worker.flush(Duration::ZERO) {
                return true;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        false
    }

    #[expect(clippy::unwrap_used, reason = "a test helper")]
    fn append(log: &PgAuditLog, from: usize, n: usize) {
        for i in from..from + n {
            log.append(&agent_safe_audit::bench::sample_event(i)).unwrap();
        }
    }

    #[test]
    fn one_replica_ships_and_another_takes_over_when_it_stops() {
        let Some((url, _dir, dest)) = setup("ship_cluster") else { return };
        let (a, b) = (replica(&url), replica(&url));
        append(&a, 0, 5);
        let first = worker(&a, &dest);
        assert!(leads_and_flushes(&first));
        let second = worker(&b, &dest);
        assert!(settled(&second));
        // Both replicas append; one ships everything, the other stands by.
        append(&a, 100, 30);
        append(&b, 200, 30);
        assert!(leads_and_flushes(&first));
        let status = second.status();
        assert!(status[0].standby, "{status:?}");
        assert_eq!(status[0].shipped, 0);
        assert!(second.flush(Duration::ZERO), "a worker standing by has nothing to flush");
        assert!(status[0].cursor.contains("ship cursor `filesystem-"), "{}", status[0].cursor);
        assert_eq!(std::fs::read(&dest).unwrap(), export(&a));
        // The shipping replica stops: the other takes over where the cursor is.
        drop(first);
        append(&b, 300, 20);
        assert!(leads_and_flushes(&second));
        let copy = std::fs::read(&dest).unwrap();
        assert_eq!(copy, export(&b), "every entry once, in order");
        assert_eq!(super::verify_bytes(&copy).entries, 85);
        assert_eq!(second.status()[0].shipped, 20);
    }

    #[test]
    fn a_one_off_replay_stops_while_a_replica_ships_and_resumes_from_the_cursor() {
        let Some((url, _dir, dest)) = setup("ship_replay") else { return };
        let log = replica(&url);
        append(&log, 0, 12);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let source = PgShipSource::new(log.clone());
        let shipper = Arc::new(FilesystemShipper::new(&dest));
        let report =
            runtime.block_on(replay_from(&source, shipper.clone(), &ReplayOptions::default()));
        let report = report.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!((report.shipped, report.position.map(|p| p.offset)), (12, Some(12)));
        // A worker of another replica goes on from the cursor...
        let other = replica(&url);
        append(&other, 100, 3);
        let running = worker(&other, &dest);
        assert!(leads_and_flushes(&running));
        assert_eq!(running.status()[0].shipped, 3);
        // ...and a replay meanwhile says another process ships there, shipping nothing.
        append(&log, 200, 2);
        let report =
            runtime.block_on(replay_from(&source, shipper, &ReplayOptions::default())).unwrap();
        let err = report.error.unwrap();
        assert!(matches!(err, ShipLogError::Standby { .. }), "{err}");
        assert!(err.to_string().contains("another process is shipping this log"), "{err}");
        assert_eq!(report.shipped, 0);
        assert!(leads_and_flushes(&running));
        assert_eq!(std::fs::read(&dest).unwrap(), export(&log));
    }

    #[test]
    fn a_cursor_that_does_not_match_the_log_is_named_and_nothing_is_shipped() {
        let Some((url, dir, dest)) = setup("ship_mismatch") else { return };
        let log = replica(&url);
        append(&log, 0, 4);
        let running = worker(&log, &dest);
        assert!(leads_and_flushes(&running));
        drop(running);
        // Someone edits the cursor row; the destination file is moved away.
        let bindir = postgres::server_bindir().unwrap();
        postgres::psql(&bindir, &url, "UPDATE ship_cursors SET entry_hash = 'forged'").unwrap();
        std::fs::rename(&dest, dir.path().join("moved.jsonl")).unwrap();
        append(&log, 10, 2);
        let source = PgShipSource::new(log.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let report = runtime
            .block_on(replay_from(
                &source,
                Arc::new(FilesystemShipper::new(&dest)),
                &ReplayOptions::default(),
            ))
            .unwrap();
        let err = report.error.unwrap().to_string();
        assert!(
            err.contains("does not match its ship cursor")
                && err.contains("entry 4 has entry_hash")
                && err.contains("the cursor records `forged…`"),
            "{err}"
        );
        assert_eq!(report.shipped, 0);
        assert!(!dest.exists(), "nothing shipped");
        assert_eq!(log.location(), log.database().url());
    }

    #[test]
    fn shipping_survives_a_database_restart_without_shipping_twice() {
        let Some(mut server) = postgres::own_server("ship_restart").unwrap() else { return };
        let url = server.url("postgres");
        let mut settings = PgSettings::new(url.parse().unwrap());
        settings.connect_timeout = Duration::from_secs(2);
        let db = Database::connect(&settings).unwrap();
        db.migrate().unwrap();
        let log = Arc::new(PgAuditLog::new(db).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy.jsonl");
        append(&log, 0, 10);
        let running = worker(&log, &dest);
        assert!(leads_and_flushes(&running));
        server.stop();
        std::thread::park_timeout(Duration::from_millis(300));
        server.restart().unwrap();
        append(&log, 100, 10);
        // The lock's connection broke with the server: the worker reconnects, takes the lock
        // again and goes on from the cursor.
        assert!(leads_and_flushes(&running));
        let copy = std::fs::read(&dest).unwrap();
        assert_eq!(copy, export(&log));
        assert_eq!(super::verify_bytes(&copy).entries, 20);
        assert_eq!(running.status()[0].shipped, 20);
    }

    #[test]
    fn start_at_end_ships_only_what_comes_next() {
        let Some((url, _dir, dest)) = setup("ship_start_at_end") else { return };
        let log = replica(&url);
        append(&log, 0, 3);
        let running = worker_from(&log, &dest, agent_safe_audit_ship::StartAt::End);
        let at = running.status()[0].position.clone().unwrap();
        assert_eq!((at.offset, at.seq), (3, Some(3)));
        append(&log, 10, 2);
        assert!(leads_and_flushes(&running));
        let all = export(&log);
        let last_two: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').skip(3).collect();
        assert_eq!(std::fs::read(&dest).unwrap(), last_two.concat());
    }
}

/// A copy of a checkpoint key (a `SignerKey` is not `Clone`).
#[expect(clippy::unwrap_used, reason = "a test helper")]
fn key_copy(key: &agent_safe_tlog::SignerKey) -> agent_safe_tlog::SignerKey {
    agent_safe_tlog::SignerKey::parse(&key.secret_text()).unwrap()
}

#[test]
fn the_database_logs_tree_is_the_file_logs_and_is_signed_once_consistently() {
    use agent_safe_postgres::{PgCheckpointStore, PgTree};
    use agent_safe_tlog::{LogSigner, SignError, TreeIndex, TreeSource};

    let Some((db, url)) = database("audit_tree") else { return };
    db.migrate().unwrap();
    let pg = PgAuditLog::new(db.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let file = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let append = |range: std::ops::Range<usize>| {
        for i in range {
            let event = agent_safe_audit::bench::sample_event(i);
            file.append(&event).unwrap();
            pg.append(&event).unwrap();
        }
    };
    append(0..30);
    let mut tree = PgTree::open(db.clone()).unwrap();
    let mut index = TreeIndex::open(&path).unwrap();
    assert_eq!((tree.size(), tree.root()), (30, index.root()));
    // The same roots and proofs as the file log's tree, from the database's stored hashes.
    for size in [1u64, 7, 16, 30] {
        assert_eq!(TreeSource::root_at(&tree, size).unwrap(), index.root_at(size).unwrap());
        for i in [0, size / 2, size - 1] {
            assert_eq!(
                TreeSource::inclusion_proof(&tree, i, size).unwrap(),
                index.inclusion_proof(i, size).unwrap()
            );
        }
        for old in 1..=size {
            assert_eq!(
                TreeSource::consistency_proof(&tree, old, size).unwrap(),
                index.consistency_proof(old, size).unwrap()
            );
        }
    }
    assert!(TreeSource::inclusion_proof(&tree, 0, 31).is_err());
    // Another replica catches the tree up; this one resumes where it got to.
    append(30..45);
    let other = PgTree::open(db.clone()).unwrap();
    assert_eq!(other.size(), 45);
    assert_eq!(TreeSource::catch_up(&mut tree).unwrap(), 0);
    index.catch_up().unwrap();
    assert_eq!((tree.size(), tree.root()), (45, index.root()));

    // The signer over the database: checkpoints in `audit_checkpoints`, entries by event id.
    let key = agent_safe_tlog::SignerKey::generate("audit.example.com/pg").unwrap();
    let store = || Box::new(PgCheckpointStore::new(db.clone()));
    let mut signer = LogSigner::with(Box::new(tree), store(), key_copy(&key)).unwrap();
    let (checkpoint, note) = signer.sign(now()).unwrap();
    assert_eq!((checkpoint.size, checkpoint.root), (45, index.root()));
    let again = LogSigner::with(Box::new(other), store(), key_copy(&key)).unwrap();
    assert_eq!(again.latest().map(|(_, n)| n.as_str()), Some(note.as_str()));
    let id = agent_safe_audit::bench::sample_event(3).event_id.as_str().to_owned();
    let (leaf, line) = signer.entry(&id).unwrap().unwrap();
    let fourth = std::fs::read_to_string(&path).unwrap().lines().nth(3).unwrap().to_owned();
    assert_eq!((leaf, line), (3, fourth.into_bytes()));
    assert_eq!(signer.entry("evt-not-in-the-log").unwrap(), None);

    // The last entry rewritten in the database: the tree is rebuilt from the log (saying why)
    // and the signer refuses to sign over the history it signed otherwise.
    let bindir = postgres::server_bindir().unwrap();
    postgres::psql(
        &bindir,
        &url,
        "UPDATE audit_log SET line = replace(line, '\"action\"', '\"actions\"') WHERE seq = 45",
    )
    .unwrap();
    append(45..46);
    let err = signer.sign(now()).unwrap_err();
    assert!(matches!(err, SignError::Diverged { size: 45, .. }), "{err}");
    assert!(signer.rebuilt().unwrap_or_default().contains("entry 45"), "{:?}", signer.rebuilt());
    assert_eq!(
        LogSigner::with(Box::new(PgTree::open(db.clone()).unwrap()), store(), key)
            .unwrap()
            .latest()
            .map(|(c, _)| c.size),
        Some(45)
    );
}
