//! Performance figures for `cargo xtask bench` (release build). Prints one JSON object.
//! No assertions: figures are reported, goals are named in the issues and docs/performance.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agent_safe::{Clock, SystemClock};
use agent_safe_core::{CallerIdentity, Params};
use agent_safe_pdp::{Caller, Pdp, PdpConfig, Request, policy};
use agent_safe_registry::{Inventory, Registry};
use serde_json::json;

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

/// Latency percentiles (ns) of `f` over `n` calls after a warm-up.
fn percentiles(n: usize, mut f: impl FnMut()) -> (u64, u64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    (samples[n / 2], samples[n * 99 / 100])
}

fn check_figures(
    pdp: &Pdp,
    caller: &CallerIdentity,
    action: &str,
    target: &str,
    params: &Params,
) -> (u64, u64) {
    let now = SystemClock.now();
    let request = Request {
        action,
        target: Some(target),
        caller: Caller::Verified(caller),
        params,
        ticket_id: None,
    };
    percentiles(200_000, || {
        std::hint::black_box(pdp.evaluate(std::hint::black_box(&request), now));
    })
}

fn generated_rules(registry: &Registry, count: usize) -> String {
    let actions: Vec<&str> = registry.names().collect();
    let envs = ["dev", "staging", "prod"];
    let mut out = String::from("rules:\n");
    for i in 0..count {
        let action = actions[i % actions.len()];
        let env = envs[i % envs.len()];
        let callers = if i % 10 == 0 {
            format!("{{roles: [role-{i}]}}")
        } else {
            format!("{{agent_ids: [agent-{i}]}}")
        };
        let decision = ["allow", "deny", "require_approval"][i % 3];
        out.push_str(&format!(
            "  - {{name: gen-{i}, priority: {}, match: {{actions: [{action}], targets: {{environments: [{env}]}}, callers: {callers}}}, decision: {decision}, reason: generated}}\n",
            i % 997
        ));
    }
    out
}

/// Full SDK checks per second on one thread: PDP, an HS256 execution ticket for every ALLOW,
/// and a buffered (not fsync'd) audit append.
fn sdk_checks_per_s(dir: &Path) -> f64 {
    let key = or_exit(
        agent_safe_tickets::SigningKey::hs256_from_str(
            "bench-key-0123456789abcdef0123456789abcdef",
        ),
        "key",
    );
    let safe = or_exit(
        agent_safe::AgentSafe::builder()
            .registry(catalog().join("actions"))
            .policies(catalog().join("policies"))
            .inventory(catalog().join("inventory.yaml"))
            .audit_log(dir.join("sdk-bench.jsonl"))
            .durability(agent_safe::DurabilityMode::Buffered)
            .signing_key(key)
            .build(),
        "sdk",
    );
    let request = agent_safe::CheckRequest::new("restart-deployment")
        .target("dev/test-app")
        .caller("bench")
        .param("namespace", "dev")
        .param("deployment", "test-app");
    let n = 50_000;
    let start = Instant::now();
    for _ in 0..n {
        let d = or_exit(safe.check(&request), "check");
        std::hint::black_box(d.ticket.as_ref().map(|t| t.token.len()));
    }
    (f64::from(n) / start.elapsed().as_secs_f64()).round()
}

/// Unwraps or ends the bench with a message (benches are not tests: no `expect`).
fn or_exit<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench setup failed: {what}: {e}");
            std::process::exit(2)
        }
    }
}

#[expect(clippy::print_stdout, reason = "the bench prints its figures")]
fn main() {
    // `AGENT_SAFE_BENCH_ONLY=pg cargo xtask bench --json`: the PostgreSQL figures alone.
    // `AGENT_SAFE_BENCH_ONLY=tlog`: the transparency layer's figures alone.
    match std::env::var("AGENT_SAFE_BENCH_ONLY").as_deref() {
        Ok("pg") => {
            println!("{}", serde_json::Value::Object(pg_figures()));
            return;
        }
        Ok("tlog") => {
            println!("{}", serde_json::Value::Object(tlog_figures()));
            return;
        }
        _ => {}
    }
    let registry =
        Arc::new(or_exit(Registry::load_dir(&catalog().join("actions")), "catalog actions"));
    let inventory =
        Arc::new(or_exit(Inventory::load(&catalog().join("inventory.yaml")), "catalog inventory"));
    let rules = or_exit(policy::load_dir(&catalog().join("policies")), "catalog policies");
    let pdp = or_exit(
        Pdp::new(registry.clone(), inventory.clone(), rules.clone(), PdpConfig::default()),
        "pdp",
    );

    let caller = CallerIdentity {
        roles: vec!["deployer".into()],
        ..CallerIdentity::unverified("deploy-bot")
    };
    let mut params = Params::new();
    params.insert("namespace".into(), json!("staging"));
    params.insert("deployment".into(), json!("api-server"));
    params.insert("replicas".into(), json!(3));
    let (p50, p99) =
        check_figures(&pdp, &caller, "scale-deployment", "staging/api-server", &params);

    let cumulative = or_exit(
        Pdp::new(
            registry.clone(),
            inventory.clone(),
            rules.clone(),
            PdpConfig {
                cumulative_risk: Some(agent_safe_pdp::CumulativeRiskConfig::default()),
                ..PdpConfig::default()
            },
        ),
        "pdp with cumulative risk",
    );
    // Every call comes from one caller and the default one-hour window keeps every entry, so the
    // window grows for the whole measurement (the cost of a check must not grow with it).
    let (p50_cumulative, _) =
        check_figures(&cumulative, &caller, "scale-deployment", "staging/api-server", &params);

    let generated = generated_rules(&registry, 10_000);
    let mut many = rules;
    many.extend(or_exit(
        policy::load_sources([(PathBuf::from("generated.yaml"), generated.as_str())]),
        "generated rules",
    ));
    let big = or_exit(Pdp::new(registry, inventory, many, PdpConfig::default()), "pdp 10k");
    let agent = CallerIdentity::unverified("agent-5001");
    let (_, p99_10k) =
        check_figures(&big, &agent, "scale-deployment", "staging/api-server", &params);

    let mut figures = serde_json::Map::new();
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(or_exit(
            Registry::load_dir(&catalog().join("actions")),
            "catalog actions",
        ));
    }
    figures.insert(
        "catalog_load_ms".into(),
        json!((t.elapsed().as_secs_f64() * 1000.0 / 20.0 * 100.0).round() / 100.0),
    );
    let dir = or_exit(tempfile::tempdir(), "temporary directory");
    figures.insert("check_with_ticket_and_audit_per_s".into(), json!(sdk_checks_per_s(dir.path())));
    let audit = or_exit(
        agent_safe_audit::bench::bench_figures(
            dir.path(),
            agent_safe_audit::bench::BenchSizes::default(),
        ),
        "audit figures",
    );
    if let serde_json::Value::Object(map) = audit {
        figures.extend(map);
    }
    let tickets: serde_json::Value = or_exit(
        serde_json::from_str(&agent_safe_tickets::bench::ticket_figures(20_000)),
        "ticket figures",
    );
    if let serde_json::Value::Object(map) = tickets {
        figures.extend(map.into_iter().filter(|(k, _)| k != "iterations"));
    }
    let runner_dir = or_exit(tempfile::tempdir(), "temporary directory");
    let runner = or_exit(
        agent_safe_runner::bench::runner_figures(runner_dir.path(), 5_000),
        "runner figures",
    );
    if let serde_json::Value::Object(map) = runner {
        figures.extend(map.into_iter().filter(|(k, _)| k != "iterations"));
    }
    // The sidecar: 16 keep-alive connections on loopback from a client thread of its own.
    let serve_dir = or_exit(tempfile::tempdir(), "temporary directory");
    let serve = or_exit(
        agent_safe_server::bench::serve_figures(
            &catalog(),
            serve_dir.path(),
            16,
            100_000,
            agent_safe::DurabilityMode::Buffered,
        ),
        "serve figures",
    );
    if let serde_json::Value::Object(map) = serve {
        figures.extend(map);
    }
    figures.extend(pg_figures());
    figures.extend(tlog_figures());
    figures.insert("pdp_check_p50_ns".into(), json!(p50));
    figures.insert("pdp_check_p99_ns".into(), json!(p99));
    figures.insert("pdp_check_cumulative_risk_p50_ns".into(), json!(p50_cumulative));
    figures.insert("pdp_check_10k_rules_p99_ns".into(), json!(p99_10k));
    figures.insert("pdp_10k_rule_count".into(), json!(big.rule_count()));
    println!("{}", serde_json::Value::Object(figures));
}

/// The figures of PostgreSQL (`state: {backend: postgres}`) against the server `cargo xtask
/// bench` started (its URL in `AGENT_SAFE_TEST_DATABASE_URL`); none without one.
fn pg_figures() -> serde_json::Map<String, serde_json::Value> {
    let mut figures = serde_json::Map::new();
    if std::env::var_os(agent_safe_testkit::postgres::URL_VAR).is_none() {
        return figures;
    }
    let Some(url) = or_exit(agent_safe_testkit::postgres::database("bench"), "bench database")
    else {
        return figures;
    };
    let db = or_exit(
        agent_safe::postgres::Database::connect(&agent_safe::postgres::PgSettings::new(or_exit(
            url.parse(),
            "database URL",
        ))),
        "database",
    );
    or_exit(db.migrate(), "migrations");
    // One ticket consumed: a nonce recorded once across replicas (one INSERT, committed).
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let nonces = agent_safe::postgres::PgNonceStore::new(db, clock.clone());
    let expires = clock.now() + time::Duration::hours(1);
    let mut n = 0u64;
    let (p50, p99) = percentiles(2_000, || {
        n += 1;
        let fresh = or_exit(
            agent_safe_tickets::NonceStore::check_and_set(&nonces, &format!("bench-{n}"), expires),
            "nonce",
        );
        std::hint::black_box(fresh);
    });
    figures.insert("pg_ticket_consume_us".into(), json!((p50 as f64 / 100.0).round() / 10.0));
    figures.insert("pg_ticket_consume_p99_us".into(), json!((p99 as f64 / 100.0).round() / 10.0));
    // The chain alone, without HTTP: 16 threads appending through one process's appender,
    // then through four (four pools, four appenders: four replicas' worth), 40,000 entries each.
    for (key, appenders) in [("pg_chain_appends_per_s", 1), ("pg_chain4_appends_per_s", 4)] {
        figures.insert(key.into(), json!(chain_appends_per_s(&url, appenders, 16, 40_000).round()));
    }
    let dir = or_exit(tempfile::tempdir(), "temporary directory");
    let serve = or_exit(
        agent_safe_server::bench::pg_serve_figures(&catalog(), dir.path(), &url, 50_000),
        "PostgreSQL serve figures",
    );
    if let serde_json::Value::Object(map) = serve {
        figures.extend(map);
    }
    figures
}

/// Entries appended per second to the database's chain by `threads` threads spread over
/// `appenders` processes' worth of appenders (each its own pool and appender task).
fn chain_appends_per_s(url: &str, appenders: usize, threads: usize, total: usize) -> f64 {
    let logs: Vec<agent_safe::postgres::PgAuditLog> = (0..appenders)
        .map(|_| {
            let settings = agent_safe::postgres::PgSettings::new(or_exit(url.parse(), "URL"));
            let db = or_exit(agent_safe::postgres::Database::connect(&settings), "database");
            or_exit(agent_safe::postgres::PgAuditLog::new(db), "audit log")
        })
        .collect();
    let per_thread = total / threads;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let log = &logs[t % appenders];
            s.spawn(move || {
                for i in 0..per_thread {
                    let event = agent_safe_audit::bench::sample_event(t * per_thread + i);
                    or_exit(agent_safe_audit::AuditStore::append(log, &event), "append");
                }
            });
        }
    });
    (per_thread * threads) as f64 / start.elapsed().as_secs_f64()
}

/// The transparency layer's figures: `audit_tree_leaves_per_s`, entries of a log (lines as the
/// log stores them, ~400 bytes) hashed into the Merkle tree and its stored hashes, in memory.
fn tlog_figures() -> serde_json::Map<String, serde_json::Value> {
    let lines: Vec<String> = (0..200_000)
        .map(|i| {
            let entry =
                agent_safe_audit::PreparedEntry::new(&agent_safe_audit::bench::sample_event(i));
            entry.chain(&"0".repeat(64), i as u64 + 1).line
        })
        .collect();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut tree = agent_safe_tlog::TreeBuilder::new();
        let mut stored = Vec::with_capacity(lines.len() * 2);
        for line in &lines {
            tree.push(agent_safe_tlog::leaf_hash(line.as_bytes()), &mut stored);
        }
        std::hint::black_box(tree.root());
        best = best.min(start.elapsed().as_secs_f64());
    }
    let mut figures = serde_json::Map::new();
    figures.insert("audit_tree_leaves_per_s".into(), json!((lines.len() as f64 / best).round()));
    figures.extend(tree_index_figures(10_000_000));
    figures
}

/// The persisted index of a log of `entries` short lines (the tree does not look inside a
/// line): built once (`audit_tree_index_build_s`), then proofs of random leaves read from it,
/// warm (`audit_proof_us`, p50 and p99), and a checkpoint after one more append: catch-up,
/// root, the Ed25519 signature and the synced record in `<log>.checkpoints`
/// (`audit_checkpoint_ms`, median of 21).
fn tree_index_figures(entries: u64) -> serde_json::Map<String, serde_json::Value> {
    use std::io::Write as _;
    let dir = or_exit(tempfile::tempdir(), "temporary directory");
    let log = dir.path().join("audit.jsonl");
    {
        let file = or_exit(std::fs::File::create(&log), "log");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for i in 0..entries {
            or_exit(writeln!(out, "{{\"n\": {i}}}"), "log");
        }
        or_exit(out.flush(), "log");
    }
    let start = Instant::now();
    let index = or_exit(agent_safe_tlog::TreeIndex::open(&log), "tree index");
    let build = start.elapsed().as_secs_f64();
    let size = index.size();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let (p50, p99) = percentiles(2_000, || {
        // xorshift: leaves spread over the whole tree.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let proof = or_exit(index.inclusion_proof(x % size, size), "proof");
        std::hint::black_box(proof);
    });
    drop(index);
    let key = or_exit(agent_safe_tlog::SignerKey::generate("bench.example/log"), "key");
    let mut signer = or_exit(agent_safe_tlog::LogSigner::open(&log, key), "signer");
    let now = agent_safe_core::Clock::now(&agent_safe_core::SystemClock);
    let mut heads = Vec::new();
    for i in 0..21 {
        let mut f = or_exit(std::fs::OpenOptions::new().append(true).open(&log), "log");
        or_exit(writeln!(f, "{{\"more\": {i}}}"), "log");
        let start = Instant::now();
        std::hint::black_box(or_exit(signer.sign(now), "checkpoint"));
        heads.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    heads.sort_by(f64::total_cmp);
    let mut figures = serde_json::Map::new();
    figures.insert("audit_tree_index_entries".into(), json!(size));
    figures.insert("audit_tree_index_build_s".into(), json!((build * 100.0).round() / 100.0));
    figures.insert("audit_proof_us".into(), json!((p50 as f64 / 100.0).round() / 10.0));
    figures.insert("audit_proof_p99_us".into(), json!((p99 as f64 / 100.0).round() / 10.0));
    figures.insert("audit_checkpoint_ms".into(), json!((heads[10] * 1000.0).round() / 1000.0));
    figures
}
