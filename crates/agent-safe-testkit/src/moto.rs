//! Test support for suites that run against moto's AWS-compatible server (feature `moto`).
//! Shared by the AWS executor's `tests/moto`, the SDK's `tests/aws_runner.rs`, the CLI's
//! `tests/it/aws_runner.rs` and the S3 shipper's `tests/it/ship_s3.rs`.
//!
//! - **One server per test process**: the endpoint in `AGENT_SAFE_MOTO_ENDPOINT` (`cargo xtask
//!   ci` starts one and sets it; a configured endpoint that does not answer is an error, not a
//!   skip), else a `moto_server` started from `target/moto-venv` on a free 127.0.0.1 port and
//!   killed when the test process exits. Without either, [`moto`] prints a loud `SKIPPED`
//!   line and returns `Ok(None)`.
//! - **One test at a time**: [`Moto`] holds a process-wide lock while it lives, and moto is
//!   reset (`POST /moto-api/reset`) before each test, which takes milliseconds where a server
//!   per test would cost 1–3 s of Python start-up. Test processes run one after the other
//!   under `cargo test`; two processes sharing one configured endpoint at the same time would
//!   reset each other's fixtures.
//! - **Deterministic moto**: Lambda runs no code (`use_docker: false`; Invoke echoes the
//!   payload), and ECS tasks stay where they are instead of advancing one lifecycle step per
//!   DescribeTasks.
//! - [`Moto::sdk_config`] gives the SDK configuration to create fixtures with, and
//!   [`Moto::endpoint`] the endpoint an executor or a shipper is configured with;
//!   [`credential_payload`] is the vault payload (static keys, which moto accepts) the AWS
//!   executor reads.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use agent_safe_core::Params;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
/// The environment variable `cargo xtask ci` puts the endpoint of its moto server in.
pub const ENDPOINT_VAR: &str = "AGENT_SAFE_MOTO_ENDPOINT";
/// The access key id of [`credential_payload`] and [`Moto::sdk_config`].
pub const ACCESS_KEY_ID: &str = "AKIDTESTING";
const SECRET_ACCESS_KEY: &str = "testing";

static LOCK: Mutex<()> = Mutex::const_new(());
static SERVER: OnceLock<Result<String, Unavailable>> = OnceLock::new();

/// Why moto could not be used although it should have been.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MotoError {
    /// `AGENT_SAFE_MOTO_ENDPOINT` names a server that does not answer.
    #[error("`{ENDPOINT_VAR}={endpoint}` does not answer: {detail}")]
    Configured {
        /// The configured endpoint.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
    /// A call to moto's own API failed.
    #[error("{0}")]
    Api(String),
}

/// Why there is no server: skip (no venv) or fail (a configured endpoint that does not answer).
#[derive(Debug, Clone)]
enum Unavailable {
    Skip(String),
    Fail(MotoError),
}

/// A test's view of moto: exclusive while it lives, freshly reset.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    _guard: MutexGuard<'static, ()>,
}

/// moto, reset and exclusive, or `Ok(None)` with a loud `SKIPPED` message naming `test` when
/// there is no server and none can be started. A configured endpoint that does not answer, or
/// a reset that fails, is an error (the test must fail, not pass silently).
pub async fn moto(test: &str) -> Result<Option<Moto>, MotoError> {
    let endpoint = match SERVER.get_or_init(find_or_start) {
        Ok(endpoint) => endpoint.clone(),
        Err(Unavailable::Fail(e)) => return Err(e.clone()),
        Err(Unavailable::Skip(why)) => {
            // Straight to the process's stderr: libtest hides `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED {test}: no moto server ({why}). Run `cargo xtask ci`, or create \
                 the venv with `python3 -m venv target/moto-venv && target/moto-venv/bin/pip \
                 install 'moto[server]==5.2.5'`, or set {ENDPOINT_VAR}. ***"
            );
            return Ok(None);
        }
    };
    let guard = LOCK.lock().await;
    post(&endpoint, "/moto-api/reset", "")?;
    // Without Docker moto cannot run Lambda code; it echoes the payload instead.
    post(&endpoint, "/moto-api/config", r#"{"lambda": {"use_docker": false}}"#)?;
    // moto advances an ECS task one lifecycle step per DescribeTasks by default; keep tasks
    // where they are so before- and after-states are deterministic.
    post(
        &endpoint,
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
    )?;
    Ok(Some(Moto { endpoint, _guard: guard }))
}

/// The vault payload the executor reads: static keys (moto accepts any).
pub fn credential_payload() -> Params {
    let mut payload = Params::new();
    payload.insert("access_key_id".into(), Value::String(ACCESS_KEY_ID.into()));
    payload.insert("secret_access_key".into(), Value::String(SECRET_ACCESS_KEY.into()));
    payload
}

impl Moto {
    /// The server's endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for creating fixtures: [`REGION`], the endpoint, static test keys,
    /// nothing read from the environment or the shared config files.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .empty_test_environment()
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "agent-safe-tests",
            )))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            )
            .load()
            .await
    }

    /// `POST path` with a JSON `body` to moto's own API (`/moto-api/...`); the HTTP status.
    pub fn post(&self, path: &str, body: &str) -> Result<u16, MotoError> {
        post(&self.endpoint, path, body)
    }

    /// `GET path` from moto (e.g. `/moto-api/data.json`); the response body.
    pub fn get(&self, path: &str) -> Result<String, MotoError> {
        request(&self.endpoint, "GET", path, "").map(|(_, body)| body)
    }

    /// A running t3.micro instance, started through EC2's Query API (so a suite that only
    /// needs an instance does not build the EC2 SDK); its id.
    pub fn run_instance(&self) -> Result<String, MotoError> {
        let body = self.ec2(
            "Action=RunInstances&ImageId=ami-12c6146b&InstanceType=t3.micro&MinCount=1&MaxCount=1",
        )?;
        xml_text(&body, "instanceId")
            .ok_or_else(|| MotoError::Api(format!("RunInstances: no instanceId in `{body:.300}`")))
    }

    /// The state name of instance `id` (`running`, `stopped`, …).
    pub fn instance_state(&self, id: &str) -> Result<String, MotoError> {
        let body = self.ec2(&format!("Action=DescribeInstances&InstanceId.1={id}"))?;
        let state = body.split("<instanceState>").nth(1).unwrap_or_default();
        xml_text(state, "name").ok_or_else(|| {
            MotoError::Api(format!("DescribeInstances: no instance state in `{body:.300}`"))
        })
    }

    /// One EC2 Query API call (moto routes by the credential scope and checks no signature).
    fn ec2(&self, query: &str) -> Result<String, MotoError> {
        let auth = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/ec2/\
             aws4_request, SignedHeaders=host, Signature=0\r\n"
        );
        let body = format!("{query}&Version=2016-11-15");
        exchange(&self.endpoint, "POST", "/", "application/x-www-form-urlencoded", &auth, &body)
            .map(|(_, body)| body)
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_owned())
}

fn post(endpoint: &str, path: &str, body: &str) -> Result<u16, MotoError> {
    request(endpoint, "POST", path, body).map(|(status, _)| status)
}

/// One HTTP/1.1 JSON request to moto; the status and the body of a 2xx answer.
fn request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), MotoError> {
    exchange(endpoint, method, path, "application/json", "", body)
}

/// One HTTP/1.1 request (`headers`: extra lines, each ending in CRLF); the status and the body
/// of a 2xx answer.
fn exchange(
    endpoint: &str,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &str,
    body: &str,
) -> Result<(u16, String), MotoError> {
    let api = |detail: String| MotoError::Api(format!("{method} {endpoint}{path}: {detail}"));
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| api("the moto endpoint must be `http://`".to_owned()))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).map_err(|e| api(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| api(e.to_string()))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         {headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| api(e.to_string()))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| api(e.to_string()))?;
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| api(format!("no HTTP status in `{response:.200}`")))?;
    if !(200..300).contains(&status) {
        return Err(api(format!("HTTP {status}: `{response:.300}`")));
    }
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

/// The endpoint from the environment (then it must answer), else a server started here.
fn find_or_start() -> Result<String, Unavailable> {
    if let Ok(endpoint) = std::env::var(ENDPOINT_VAR) {
        return match post(&endpoint, "/moto-api/reset", "") {
            Ok(_) => Ok(endpoint),
            Err(e) => {
                Err(Unavailable::Fail(MotoError::Configured { endpoint, detail: e.to_string() }))
            }
        };
    }
    let bin = target_dir().join("moto-venv/bin/moto_server");
    if !bin.is_file() {
        return Err(Unavailable::Skip(format!(
            "{ENDPOINT_VAR} is not set and `{}` does not exist",
            bin.display()
        )));
    }
    let mut last = String::new();
    // A free port can be taken between our probe and moto's bind: try a few.
    for _ in 0..3 {
        match start(&bin) {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => last = e,
        }
    }
    // The venv exists, so a server that does not start is a failure, not a skip.
    Err(Unavailable::Fail(MotoError::Api(last)))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from)
}

/// Starts `moto_server` on a free port under a shell that kills it when this process exits
/// (its stdin, our pipe, closes). Waits for moto's "Running on" line.
fn start(bin: &Path) -> Result<String, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut child: Child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" 2>&1 & pid=$!; cat >/dev/null; kill -9 "$pid""#)
        .arg(bin)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("moto_server has no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        // Keep draining moto's log so it never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("Running on")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_ok() {
        // The child (and its stdin) must live as long as this process.
        std::mem::forget(child);
        let _ = writeln!(std::io::stderr(), "moto server started on 127.0.0.1:{port}");
        Ok(format!("http://127.0.0.1:{port}"))
    } else {
        // Closing the shell's stdin makes it kill moto.
        drop(child.stdin.take());
        let _ = child.wait();
        Err(format!("moto_server did not start on port {port}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(endpoint: &str, expected: &str) {
        let err = request(endpoint, "POST", "/moto-api/reset", "").unwrap_err();
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn requests_need_a_plain_http_endpoint() {
        check(
            "https://127.0.0.1:1",
            "POST https://127.0.0.1:1/moto-api/reset: the moto endpoint must be `http://`",
        );
    }
}
