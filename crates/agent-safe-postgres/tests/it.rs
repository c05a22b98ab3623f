//! agent-safe-postgres against a real PostgreSQL server (the one `cargo xtask ci` starts, or one
//! started from the machine's binaries; see agent_safe_testkit::postgres).

use std::sync::Arc;

use agent_safe_approvals::{ApprovalStatus, ApprovalStore, StoreError, store_contract};
use agent_safe_core::{ManualClock, SystemClock};
use agent_safe_postgres::{
    Database, DbError, LATEST_VERSION, PgApprovalStore, PgNonceStore, PgSettings,
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
