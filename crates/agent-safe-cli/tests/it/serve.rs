//! `agent-safe serve` as a process: refuses to start without a signing key or with bad flags
//! (exit 2), and serves a check on the address it prints, then stops on SIGTERM (exit 0) with
//! the decision in a valid audit log.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use agent_safe_core::{Clock, SystemClock};
use agent_safe_tickets::{IdentityManager, SigningKey};

use crate::common::{Served, cli};

const SECRET: &str = "serve-cli-test-secret-0123456789abcdef";

fn serve(dir: &Path) -> Command {
    let mut cmd = cli(dir);
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"));
    cmd
}

#[track_caller]
fn check_refused(extra: &[&str], message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = serve(dir.path()).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

#[test]
fn refuses_to_start_without_a_key_or_with_bad_flags() {
    check_refused(&[], "needs a signing key");
    check_refused(
        &["--signing-key", SECRET, "--request-timeout", "0"],
        "`--request-timeout` must be",
    );
    check_refused(&["--signing-key", SECRET, "--rate-limit=-1"], "`--rate-limit` must be");
    check_refused(&["--signing-key", SECRET, "--watch-interval=-1"], "`--watch-interval` must be");
    check_refused(
        &["--signing-key", SECRET, "--tls-cert", "missing.pem", "--tls-key", "missing.key"],
        "cannot read TLS certificate chain `missing.pem`",
    );
    check_refused(&["--signing-key", SECRET, "--tls-cert", "cert.pem"], "--tls-key");
}

/// A server in `dir` with the test key.
fn start(dir: &Path, extra: &[&str]) -> Served {
    Served::spawn(serve(dir).args(["--signing-key", SECRET]).args(extra))
}

#[cfg(unix)]
#[test]
fn serves_a_check_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let served = start(dir.path(), &[]);
    let addr = &served.addr;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let token =
        IdentityManager::new(SigningKey::hs256_from_str(SECRET).unwrap(), "agent-safe", clock)
            .create_token("deploy-bot", "", &[], &[], time::Duration::hours(1))
            .unwrap();
    let body = r#"{"action": "restart-deployment", "target": "dev/test-app", "params": {"namespace": "dev", "deployment": "test-app"}}"#;
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/check HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""result":"allow""#), "{response}");

    served.stop();

    let verify = Command::new(env!("CARGO_BIN_EXE_agent-safe"))
        .args(["audit", "verify"])
        .arg(dir.path().join("audit.jsonl"))
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("1 entries"));
}

/// The standard-library Python client of `examples/server/` against the real server: check →
/// ALLOW with ticket → execute (dry-run) → the replay refused → a prod check → a caller
/// mismatch refused → the audit log verifies.
#[cfg(unix)]
/// The SIGTERM handler is installed before the listening line is printed: a SIGTERM sent as
/// soon as that line is read is a graceful stop (exit 0, "stopped"), never the default action.
#[cfg(unix)]
#[test]
fn sigterm_right_after_the_listening_line_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..25 {
        let rest = start(dir.path(), &[]).stop();
        assert!(rest.contains("agent-safe serve: stopped"), "{rest}");
    }
}

/// Whoever reads `serve`'s stdout may go away (a supervisor restarted, a pipe closed): the
/// server keeps serving and still stops gracefully on SIGTERM (exit 0, shutdown flush done),
/// where printing to the closed pipe used to panic it.
#[cfg(unix)]
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(dir.path())
        .args(["--signing-key", SECRET])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("listening on"), "{first}");
    // The reader is gone (dropped above); now the server prints its shutdown lines.
    let killed =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(killed.unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_python_example_client_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // As in examples/server/README.md: the dry-run executor with ambient credentials.
    let served = start(dir.path(), &["--ambient-credentials"]);
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/server/client.py");
    let out = Command::new("python3")
        .arg(&client)
        .arg("demo")
        .env("AGENT_SAFE_URL", format!("http://{}", served.addr))
        .env("AGENT_SAFE_SIGNING_KEY", SECRET)
        .output()
        .unwrap();
    served.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("check: allow"), "{text}");
    assert!(lines[1].starts_with("execute: skipped (dry-run)"), "{text}");
    assert!(lines[2].starts_with("second execute refused by the runner: error:"), "{text}");
    assert!(lines[2].contains("already"), "{text}");
    assert!(lines[3].starts_with("prod check: require_approval"), "{text}");
    assert!(lines[4].starts_with("caller mismatch refused: 403"), "{text}");
    assert!(lines[5].starts_with("audit log: valid=True"), "{text}");
}
