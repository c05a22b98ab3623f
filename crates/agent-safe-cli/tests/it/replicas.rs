//! Four `agent-safe serve` processes on loopback sharing one PostgreSQL database (issue #17):
//! each ticket executed once however many replicas it is presented to, an approval requested,
//! listed, approved and executed through different replicas, one audit chain holding every
//! decision any client received, and a replica killed with `kill -9` and the database
//! crashed (immediate shutdown) and restarted under load without losing or doubling anything.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Served, bin, catalog};

const KEY: &str = "cli-replicas-key-0123456789abcdef0123456789abcdef";

const POLICY: &str = "\
rules:
  - name: prod-needs-approval
    priority: 10
    match: {targets: {environments: [prod]}}
    decision: require_approval
    reason: production changes need approval
  - name: dev-is-open
    priority: 5
    match: {targets: {environments: [dev]}}
    decision: allow
    reason: dev is open
";

/// `n` replicas' projects under `root` (own directories, one database, `extra` lines of
/// configuration) and their servers.
fn replicas(root: &Path, url: &str, n: usize, extra: &str) -> Vec<Served> {
    let policies = root.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("main.yaml"), POLICY).unwrap();
    let cat = catalog();
    (0..n)
        .map(|i| {
            let dir = root.join(format!("replica-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("agent-safe.yaml"),
                format!(
                    "registry: {}\npolicies: {}\ninventory: {}\nsigning_key: {KEY}\n\
                     state:\n  backend: postgres\n  pool_size: 8\n{extra}",
                    cat.join("actions").display(),
                    policies.display(),
                    cat.join("inventory.yaml").display(),
                ),
            )
            .unwrap();
            if i == 0 {
                let out = cli(&dir, url).args(["db", "migrate"]).output().unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
            }
            Served::spawn(cli(&dir, url).args(["serve", "--listen", "127.0.0.1:0"]))
        })
        .collect()
}

fn cli(dir: &Path, url: &str) -> std::process::Command {
    let mut cmd = bin(dir);
    cmd.env(agent_safe::state::DATABASE_URL_VAR, url);
    cmd
}

/// An identity token for `agent` (an hour of real time).
fn token(agent: &str, roles: &[&str]) -> String {
    crate::common::identity_token(KEY, agent, roles)
}

fn dev_check() -> Value {
    json!({
        "action": "restart-deployment",
        "target": "dev/test-app",
        "params": {"namespace": "dev", "deployment": "test-app"},
    })
}

/// The chain as exported through `dir`'s configuration: every line, parsed.
fn exported(root: &Path, url: &str) -> Vec<Value> {
    let file = root.join("export.jsonl");
    let out = cli(&root.join("replica-0"), url)
        .args(["audit", "export", "--output"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        cli(root, url).args(["audit", "verify", "--json-output"]).arg(&file).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], json!(true), "{report}");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], json!(i + 1), "seq is contiguous");
    }
    lines
}

/// How many times each event id is in `chain`.
fn occurrences(chain: &[Value]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for line in chain {
        *seen.entry(line["event_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    seen
}

#[test]
fn four_replicas_share_tickets_approvals_and_one_chain() {
    let Some(url) = agent_safe_testkit::postgres::database("cli_four_replicas").unwrap() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let servers = replicas(root.path(), &url, 4, "");
    let bot = token("deploy-bot", &[]);

    // 1. 100 tickets, each presented to all four replicas at once: 100 executions.
    let tickets: Vec<String> = (0..100)
        .map(|i| {
            let (status, decision) = servers[i % 4].post("/v1/check", &bot, &dev_check());
            assert!(status.contains("200"), "{status} {decision}");
            decision["ticket"]["token"].as_str().unwrap().to_owned()
        })
        .collect();
    let bot_ref = &bot;
    let servers_ref = &servers;
    let executed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = tickets
            .iter()
            .flat_map(|ticket| {
                servers_ref.iter().map(move |server| {
                    let bot = bot_ref;
                    s.spawn(move || {
                        let (status, outcome) =
                            server.post("/v1/execute", bot, &json!({"ticket": ticket}));
                        assert!(status.contains("200"), "{status} {outcome}");
                        usize::from(ran(&outcome))
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(executed, 100);

    // 2. Requested through replica 1, listed through 2, approved through 3, executed through
    // 4; a second resolution through any replica is 409.
    let (status, decision) = servers[0].post(
        "/v1/check",
        &bot,
        &json!({
            "action": "restart-deployment",
            "target": "prod/api-server",
            "params": {"namespace": "prod", "deployment": "api-server"},
        }),
    );
    assert!(status.contains("200"), "{status} {decision}");
    let id = decision["request_id"].as_str().unwrap().to_owned();
    let alice = token("alice", &["sre"]);
    let (_, listed) = servers[1].get_with("/v1/approvals", &alice);
    let ids: Vec<&Value> =
        listed["requests"].as_array().unwrap().iter().map(|r| &r["request_id"]).collect();
    assert_eq!(ids, [&json!(id)]);
    let (status, approved) =
        servers[2].post(&format!("/v1/approvals/{id}/approve"), &alice, &json!({}));
    assert!(status.contains("200"), "{status} {approved}");
    let ticket = approved["ticket"]["token"].as_str().unwrap();
    let (_, outcome) = servers[3].post("/v1/execute", &bot, &json!({"ticket": ticket}));
    assert!(ran(&outcome), "{outcome}");
    for server in &servers {
        let (status, refused) =
            server.post(&format!("/v1/approvals/{id}/deny"), &token("bob", &[]), &json!({}));
        assert!(status.contains("409"), "{status} {refused}");
        assert_eq!(refused["error"]["code"], json!("not_pending"));
    }

    // 4. Four replicas × eight clients for ten seconds: one chain holding every decision a
    // client received.
    let received: Vec<String> = std::thread::scope(|s| {
        let start = Instant::now();
        let handles: Vec<_> = (0..32)
            .map(|c| {
                let server = &servers[c % 4];
                s.spawn(move || {
                    let me = token(&format!("client-{c}"), &[]);
                    let mut ids = Vec::new();
                    while start.elapsed() < Duration::from_secs(10) {
                        let (status, decision) = server.post("/v1/check", &me, &dev_check());
                        assert!(status.contains("200"), "{status} {decision}");
                        ids.push(decision["audit_id"].as_str().unwrap().to_owned());
                    }
                    ids
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for server in servers {
        server.stop();
    }
    let chain = exported(root.path(), &url);
    let seen = occurrences(&chain);
    assert!(received.len() > 32, "{} decisions", received.len());
    for id in &received {
        assert_eq!(seen.get(id), Some(&1), "{id}");
    }
}

#[test]
fn a_killed_replica_and_a_crashed_database_lose_nothing_a_client_was_told() {
    let Some(mut db) = agent_safe_testkit::postgres::own_server("cli_replicas_kill").unwrap()
    else {
        return;
    };
    let url = db.url("postgres");
    let root = tempfile::tempdir().unwrap();
    let mut servers = replicas(root.path(), &url, 4, "");
    let victim = servers.remove(0);
    let victim_addr = victim.addr.clone();
    let done = AtomicBool::new(false);
    let (received, after_restart) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let addr =
                    if c % 4 == 0 { victim_addr.clone() } else { servers[c % 4 - 1].addr.clone() };
                let done = &done;
                s.spawn(move || {
                    let me = token(&format!("client-{c}"), &[]);
                    let mut ids = Vec::new();
                    while !done.load(Ordering::Relaxed) {
                        // Refused connections (the killed replica) and 503s (the database
                        // down) are expected; a 200 is a decision the client was told.
                        if let Some((status, decision)) = try_post(&addr, &me, &dev_check()) {
                            if status.contains("200") {
                                ids.push((
                                    decision["audit_id"].as_str().unwrap().to_owned(),
                                    Instant::now(),
                                ));
                            } else {
                                assert!(status.contains("503"), "{status} {decision}");
                            }
                        }
                    }
                    ids
                })
            })
            .collect();
        pause(Duration::from_millis(800));
        victim.kill();
        pause(Duration::from_millis(500));
        // A crash: what was not flushed to the WAL is lost, and what a client was told must
        // not be.
        db.crash();
        pause(Duration::from_millis(500));
        db.restart().unwrap();
        let restarted = Instant::now();
        pause(Duration::from_millis(1500));
        done.store(true, Ordering::Relaxed);
        let received: Vec<(String, Instant)> =
            clients.into_iter().flat_map(|h| h.join().unwrap()).collect();
        (received, restarted)
    });
    // Service resumed on every surviving replica after the restart.
    for server in &servers {
        let (status, ready) = server.get("/readyz");
        assert!(status.contains("200"), "{status} {ready}");
    }
    assert!(received.iter().any(|(_, at)| *at > after_restart), "no decision after the restart");
    for server in servers {
        server.stop();
    }
    let chain = exported(root.path(), &url);
    let seen = occurrences(&chain);
    for (id, _) in &received {
        assert_eq!(seen.get(id), Some(&1), "{id}: recorded once");
    }
}

#[test]
fn a_rate_limit_holds_across_replicas() {
    let Some(url) = agent_safe_testkit::postgres::database("cli_replicas_limit").unwrap() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let servers =
        replicas(root.path(), &url, 4, "rate_limit:\n  max_requests: 10\n  window_seconds: 60\n");
    let bot = token("deploy-bot", &[]);
    // 40 requests of one caller, ten through each replica, all at once: 10 allowed.
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let (server, bot) = (&servers[i % 4], &bot);
                s.spawn(move || {
                    let (status, decision) = server.post("/v1/check", bot, &dev_check());
                    assert!(status.contains("200"), "{status} {decision}");
                    decision
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let allowed = results.iter().filter(|d| d["result"] == json!("allow")).count();
    assert_eq!(allowed, 10);
    for refused in results.iter().filter(|d| d["result"] != json!("allow")) {
        assert_eq!(
            refused["reason"],
            json!("Rate limit exceeded for caller 'deploy-bot': 10 requests per 60s window.")
        );
    }
    // Per caller: another caller is not limited by this one.
    let (_, other) = servers[0].post("/v1/check", &token("other-bot", &[]), &dev_check());
    assert_eq!(other["result"], json!("allow"));
    for server in servers {
        server.stop();
    }
}

/// `POST path` on `addr`, or `None` when the connection is refused or cut.
fn try_post(addr: &str, bearer: &str, body: &Value) -> Option<(String, Value)> {
    use std::io::{Read as _, Write as _};
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "POST /v1/check HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {bearer}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), serde_json::from_str(body).ok()?))
}

/// Waits `d` (a test pacing its scenario; nothing to wait on).
fn pause(d: Duration) {
    let until = Instant::now() + d;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::park_timeout(left);
    }
}

/// Whether a `/v1/execute` answer is a run (the dry-run executor's `success`, or `skipped`),
/// not a refusal (`error`: a replayed ticket, …).
fn ran(outcome: &Value) -> bool {
    matches!(outcome["status"].as_str(), Some("success" | "skipped"))
}

/// Waits until `file` holds exactly the chain's bytes (as exported); whether it got there.
fn shipped_all(root: &Path, url: &str, file: &Path) -> bool {
    let export = root.join("export.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let out = cli(&root.join("replica-0"), url)
            .args(["audit", "export", "--output"])
            .arg(&export)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        if std::fs::read(file).ok() == Some(std::fs::read(&export).unwrap()) {
            return true;
        }
        pause(Duration::from_millis(200));
    }
    false
}

#[test]
fn the_cluster_ships_its_audit_log_once_and_another_replica_takes_over() {
    let Some(url) = agent_safe_testkit::postgres::database("cli_replica_shipping").unwrap() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let shipped = root.path().join("shipped.jsonl");
    let extra = format!(
        "audit_shipping:\n  filesystem_path: {}\n  poll_interval: 0.1\n",
        shipped.display()
    );
    let mut servers = replicas(root.path(), &url, 3, &extra);
    let bot = token("deploy-bot", &[]);
    for i in 0..30 {
        let (status, decision) = servers[i % 3].post("/v1/check", &bot, &dev_check());
        assert!(status.contains("200"), "{status} {decision}");
    }
    // Three replicas ship to one file: every entry is there once, in order.
    assert!(shipped_all(root.path(), &url, &shipped));
    // Replica 0 started first and took the destination: killed, one of the others takes over.
    servers.remove(0).kill();
    for i in 0..20 {
        let (status, decision) = servers[i % 2].post("/v1/check", &bot, &dev_check());
        assert!(status.contains("200"), "{status} {decision}");
    }
    assert!(shipped_all(root.path(), &url, &shipped));
    for server in servers {
        server.stop();
    }
    let chain = exported(root.path(), &url);
    assert_eq!(chain.len(), 50);
    // `audit ship` from the database's log, once nothing else ships there.
    let copy = root.path().join("copy.jsonl");
    let out = cli(&root.path().join("replica-1"), &url)
        .args(["audit", "ship", "--backend", "filesystem", "--json-output", "--path"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["shipped"], json!(50), "{report}");
    assert!(report["cursor"].as_str().unwrap().contains("ship cursor `filesystem-"), "{report}");
    assert!(!report["log"].as_str().unwrap().contains("password"), "{report}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(root.path().join("export.jsonl")).unwrap()
    );
}
