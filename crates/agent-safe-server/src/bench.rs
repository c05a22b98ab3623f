//! A small load generator for the figures and the soak test: `connections` keep-alive HTTP/1.1
//! connections on loopback, each sending the same request back to back, with the latency of
//! every answer. Written on tokio's TCP stream (no client library) so that it costs little next
//! to the server it measures.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What to send and for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Concurrent connections (clients).
    pub connections: usize,
    /// Stop after this many requests in total.
    pub total: u64,
    /// Or stop when this much time has passed (whichever comes first).
    pub duration: Option<Duration>,
    /// The path, e.g. `/v1/check`.
    pub path: String,
    /// The JSON body.
    pub body: String,
    /// The bearer token, if any.
    pub token: Option<String>,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Answers received.
    pub answered: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections that failed (I/O error or a response that could not be read).
    pub failed_connections: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl LoadReport {
    /// Answers per second.
    pub fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds a run made at the same time: answers, statuses and failures add up, the wall time
    /// is the longer one, and the percentiles are the worse of the two (an upper bound).
    pub fn merge(&mut self, other: LoadReport) {
        self.answered += other.answered;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.failed_connections += other.failed_connections;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.p50 = self.p50.max(other.p50);
        self.p99 = self.p99.max(other.p99);
    }
}

/// Runs `plan` against `addr`.
pub async fn run(addr: SocketAddr, plan: &LoadPlan) -> LoadReport {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        plan.path,
        plan.body.len()
    );
    if let Some(token) = &plan.token {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&plan.body);
    let request = Arc::new(request.into_bytes());
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = plan.duration.map(|d| Instant::now() + d);
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.connections)
        .map(|_| {
            let request = request.clone();
            let issued = issued.clone();
            let total = plan.total;
            tokio::spawn(async move { connection(addr, &request, &issued, total, deadline).await })
        })
        .collect();
    let mut report = LoadReport::default();
    let mut latencies = Vec::new();
    for task in tasks {
        let (answers, failed) = task.await.unwrap_or_default();
        report.failed_connections += u64::from(failed);
        for (status, latency) in answers {
            *report.statuses.entry(status).or_default() += 1;
            latencies.push(latency);
        }
    }
    report.elapsed = started.elapsed();
    report.answered = latencies.len() as u64;
    latencies.sort_unstable();
    let at = |q: usize| {
        latencies.get((latencies.len() * q / 100).min(latencies.len().saturating_sub(1)))
    };
    report.p50 = at(50).copied().unwrap_or_default();
    report.p99 = at(99).copied().unwrap_or_default();
    report
}

/// One client: requests until the plan's total or deadline is reached. Returns the answers and
/// whether the connection failed.
async fn connection(
    addr: SocketAddr,
    request: &[u8],
    issued: &AtomicU64,
    total: u64,
    deadline: Option<Instant>,
) -> (Vec<(u16, Duration)>, bool) {
    let mut answers = Vec::new();
    let Ok(stream) = TcpStream::connect(addr).await else { return (answers, true) };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut body = Vec::new();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if issued.fetch_add(1, Ordering::Relaxed) >= total {
            break;
        }
        let started = Instant::now();
        if write.write_all(request).await.is_err() {
            return (answers, true);
        }
        match read_response(&mut read, &mut body).await {
            Ok(status) => answers.push((status, started.elapsed())),
            Err(_) => return (answers, true),
        }
    }
    (answers, false)
}

/// Reads one response (status line, headers, a `content-length` body) into `body`; returns the
/// status.
pub async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
    body: &mut Vec<u8>,
) -> io::Result<u16> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| bad("bad content-length"))?;
        }
    }
    body.resize(length, 0);
    read.read_exact(body.as_mut_slice()).await?;
    Ok(status)
}

/// Figures for `cargo xtask bench`: a server on loopback over the catalog in `catalog` with an
/// audit log of the given durability in `dir`, on a 2-worker runtime, and the load generator on a thread of its
/// own with `connections` keep-alive connections sending `total` checks of an ALLOW (each with an
/// execution ticket and an audit append). Returns `serve_checks_per_s`, `serve_check_p50_ms`,
/// `serve_check_p99_ms` and the parameters.
pub fn serve_figures(
    catalog: &std::path::Path,
    dir: &std::path::Path,
    connections: usize,
    total: u64,
    durability: agent_safe::DurabilityMode,
) -> Result<serde_json::Value, String> {
    let report = load(&catalog.join("agent-safe.yaml"), dir, 1, connections, total, durability)?;
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    Ok(serde_json::json!({
        "serve_checks_per_s": report.per_second().round(),
        "serve_check_p50_ms": ms(report.p50),
        "serve_check_p99_ms": ms(report.p99),
        "serve_connections": connections,
        "serve_requests": report.answered,
    }))
}

/// `replicas` servers in this process, each loading `config` (its own state: with `state:
/// {backend: postgres}` its own pool on the shared database), on one 2-worker runtime, and
/// `connections` keep-alive connections spread over them from a load generator thread per
/// replica, sending `total` checks of an ALLOW in all. The report of all of them together.
pub fn load(
    config: &std::path::Path,
    dir: &std::path::Path,
    replicas: usize,
    connections: usize,
    total: u64,
    durability: agent_safe::DurabilityMode,
) -> Result<LoadReport, String> {
    use agent_safe_tickets::{IdentityManager, SigningKey};

    let replicas = replicas.max(1);
    let key = SigningKey::hs256_from_str("bench-key-0123456789abcdef0123456789abcdef")
        .map_err(|e| e.to_string())?;
    let clock: Arc<dyn agent_safe::Clock> = Arc::new(agent_safe::SystemClock);
    let token = IdentityManager::new(key.clone(), "agent-safe", clock)
        .create_token("bench", "bench", &["deployer".to_owned()], &[], time::Duration::hours(1))
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut servers = Vec::new();
    for i in 0..replicas {
        let source = crate::Source::new()
            .config_file(config)
            .audit_log(dir.join(format!("serve-bench-{i}.jsonl")))
            .durability(durability)
            .signing_key(key.clone());
        let server = crate::Server::new(source, crate::ServerConfig::default())
            .map_err(|e| e.to_string())?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = runtime.spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        servers.push((addr, stop, serving));
    }
    let body = serde_json::json!({
        "action": "restart-deployment",
        "target": "dev/test-app",
        "params": {"namespace": "dev", "deployment": "test-app"},
    })
    .to_string();
    let plan = |total| LoadPlan {
        connections: (connections / replicas).max(1),
        total,
        duration: None,
        path: "/v1/check".to_owned(),
        body: body.clone(),
        token: Some(token.clone()),
    };
    let share = total / replicas as u64;
    let generators: Vec<_> = servers
        .iter()
        .map(|(addr, _, _)| {
            let (addr, warm_up, measured) = (*addr, plan(share / 10), plan(share));
            std::thread::spawn(move || {
                let client = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                client.block_on(run(addr, &warm_up));
                Ok::<_, String>(client.block_on(run(addr, &measured)))
            })
        })
        .collect();
    let mut reports = Vec::new();
    for generator in generators {
        reports.push(generator.join().map_err(|_| "the load generator failed".to_owned())??);
    }
    for (_, stop, serving) in servers {
        let _ = stop.send(());
        runtime.block_on(serving).map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    let mut report = reports.pop().ok_or("no load generator")?;
    for other in reports {
        report.merge(other);
    }
    if report.statuses.keys().any(|s| *s != 200) || report.failed_connections > 0 {
        return Err(format!("the load run had failures: {report:?}"));
    }
    Ok(report)
}

/// The bench's figures of PostgreSQL (`state: {backend: postgres}` at `database_url`): one
/// replica (`pg_serve_checks_per_s`, `pg_serve_check_p50_ms`, `pg_serve_check_p99_ms`) and four
/// (`pg_replicas4_checks_per_s`), 16 keep-alive connections in all, every decision committed to
/// the database before it is answered.
pub fn pg_serve_figures(
    catalog: &std::path::Path,
    dir: &std::path::Path,
    database_url: &str,
    total: u64,
) -> Result<serde_json::Value, String> {
    let config = dir.join("agent-safe-pg.yaml");
    std::fs::write(
        &config,
        format!(
            "registry: {}\npolicies: {}\ninventory: {}\nstate:\n  backend: postgres\n  url: {database_url}\n",
            catalog.join("actions").display(),
            catalog.join("policies").display(),
            catalog.join("inventory.yaml").display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let buffered = agent_safe::DurabilityMode::Buffered;
    let one = load(&config, dir, 1, 16, total, buffered)?;
    let four = load(&config, dir, 4, 16, total, buffered)?;
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    Ok(serde_json::json!({
        "pg_serve_checks_per_s": one.per_second().round(),
        "pg_serve_check_p50_ms": ms(one.p50),
        "pg_serve_check_p99_ms": ms(one.p99),
        "pg_replicas4_checks_per_s": four.per_second().round(),
        "pg_replicas4_check_p99_ms": ms(four.p99),
    }))
}
