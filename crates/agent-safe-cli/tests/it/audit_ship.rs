//! CLI snapshots for `agent-safe audit ship`: filesystem (resume, nothing twice,
//! `--from-start`, JSON), webhook against a loopback server (headers, a refusing server),
//! usage errors, a missing log, and S3 against moto when `AGENT_SAFE_MOTO_ENDPOINT` is set.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::{Path, PathBuf};

use agent_safe_testkit::{Reply, TestServer};

use crate::common::{cli, snap};

/// Snapshot filters of this module, applied before the common ones (see `common::snap!`).
const FILTERS: &[(&str, &str)] = &[
    (r"ship-(\w+)-[0-9a-f]{12}\.cursor", "ship-$1-[ID].cursor"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    (r"\(os error \d+\)", "(os error [N])"),
];

/// Three decisions in `dir/audit.jsonl`.
fn log_in(dir: &Path) -> PathBuf {
    for target in ["dev/test-app", "prod/api-server", "staging/api-server"] {
        let out = cli(dir)
            .args(["check", "restart-deployment", "-t", target, "-c", "bot"])
            .args(["-p", r#"{"namespace": "dev", "deployment": "test-app"}"#])
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "{out:?}");
    }
    dir.join("audit.jsonl")
}

#[test]
fn filesystem_ships_once_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = log_in(d);
    let ship = |extra: &[&str]| {
        let mut cmd = cli(d);
        cmd.args(["audit", "ship", "--backend", "filesystem", "--path", "copy.jsonl"]).args(extra);
        cmd
    };
    snap!("ship_filesystem", d, ship(&[]));
    assert_eq!(std::fs::read(d.join("copy.jsonl")).unwrap(), std::fs::read(&log).unwrap());
    snap!("ship_filesystem_nothing_new", d, ship(&[]));
    snap!("ship_filesystem_from_start", d, ship(&["--from-start"]));
    log_in(d);
    snap!("ship_filesystem_json", d, ship(&["--json-output"]));
    assert_eq!(std::fs::read(d.join("copy.jsonl")).unwrap(), std::fs::read(&log).unwrap());
}

#[test]
fn webhook_posts_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = log_in(d);
    let server = TestServer::ok().unwrap();
    snap!(
        "ship_webhook",
        d,
        cli(d).args(["audit", "ship", "--backend", "webhook", "--url", &server.url()]).args([
            "--header",
            "Authorization=Bearer cli-token",
            "--timeout",
            "5"
        ])
    );
    let lines: Vec<String> =
        std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for (r, line) in requests.iter().zip(&lines) {
        assert!(r.body.starts_with(&format!("{{\"event\": {line}, \"shipped_at\": \"")), "{r:?}");
        assert_eq!(r.header("authorization"), Some("Bearer cli-token"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[test]
fn webhook_failures_exit_1_and_resume_later() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    log_in(d);
    // The second event is refused once.
    let server =
        TestServer::start(|n, _| if n == 1 { Reply::Status(500) } else { Reply::Status(200) })
            .unwrap();
    let ship = || {
        let mut cmd = cli(d);
        cmd.args(["audit", "ship", "--backend", "webhook", "--url", &server.url()]);
        cmd.args(["--attempts", "1"]);
        cmd
    };
    snap!("ship_webhook_500", d, ship());
    snap!("ship_webhook_resumes", d, ship());
    let ids: Vec<String> = server.requests().iter().map(|r| r.event_id().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[1], ids[2], "the refused event is sent again, the first one is not");
}

#[test]
fn usage_errors_and_a_missing_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    snap!(
        "ship_missing_log",
        d,
        cli(d).args(["audit", "ship", "--backend", "filesystem", "--path", "c"])
    );
    log_in(d);
    let ship = |args: &[&str]| {
        let mut cmd = cli(d);
        cmd.args(["audit", "ship"]).args(args);
        cmd
    };
    snap!("ship_no_backend", d, ship(&[]));
    snap!("ship_no_path", d, ship(&["--backend", "filesystem"]));
    snap!("ship_no_url", d, ship(&["--backend", "webhook"]));
    snap!("ship_no_bucket", d, ship(&["--backend", "s3"]));
    snap!("ship_bad_url", d, ship(&["--backend", "webhook", "--url", "ftp://x/secret"]));
    snap!(
        "ship_bad_header",
        d,
        ship(&["--backend", "webhook", "--url", "http://127.0.0.1:9/", "--header", "NoEquals"])
    );
    snap!(
        "ship_zero_attempts",
        d,
        ship(&["--backend", "filesystem", "--path", "c", "--attempts", "0"])
    );
}

/// `METHOD path` to moto; the response text.
#[cfg(feature = "aws")]
fn moto(endpoint: &str, method: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// S3 shipping is in the `aws` build (the light build's refusal is in `features.rs`).
#[cfg(feature = "aws")]
#[test]
fn s3_against_moto() {
    let Ok(endpoint) = std::env::var("AGENT_SAFE_MOTO_ENDPOINT") else {
        eprintln!(
            "\n*** SKIPPED s3_against_moto: AGENT_SAFE_MOTO_ENDPOINT is not set (run `cargo xtask ci`, \
             which starts moto). ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    log_in(d);
    let bucket = format!("agent-safe-cli-{}", agent_safe_core::random::hex(8));
    assert!(moto(&endpoint, "PUT", &format!("/{bucket}")).starts_with("HTTP/1.1 200"));
    let out = cli(d)
        .args(["audit", "ship", "--backend", "s3", "--bucket", &bucket, "--prefix", "logs/"])
        .args(["--endpoint-url", &endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", "AKIDTESTING")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", d.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", d.join("no-aws-credentials"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "Shipped 3 event(s) via s3.\n");
    let listing = moto(&endpoint, "GET", &format!("/{bucket}?list-type=2&prefix=logs/"));
    assert_eq!(listing.matches("<Key>logs/").count(), 3, "{listing}");
}
