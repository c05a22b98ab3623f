//! Test support: one moto server per test binary (from `AGENT_SAFE_MOTO_ENDPOINT`, set by
//! `cargo xtask ci`, or started here from `target/moto-venv`), tests serialised by a lock
//! and moto reset before each; a runner-like `run` (validate params against the catalog,
//! prechecks, before-state, execute, after-state) and rollback params computed from the
//! catalog's `rollback_params`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, OnceLock, mpsc};
use std::time::Duration;

use agent_safe_core::{
    ActionCall, Credential, CredentialScope, ExecutionOutcome, ExecutionStatus, Executor, Params,
    PreCheckResult, PrecheckSpec, Secret, StateMap,
};
use agent_safe_executor_aws::{AwsExecutor, AwsExecutorConfig};
use agent_safe_registry::Registry;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::{Credentials, SharedCredentialsProvider};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

const ENV_ENDPOINT: &str = "AGENT_SAFE_MOTO_ENDPOINT";

static LOCK: Mutex<()> = Mutex::const_new(());
static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
static CATALOG: LazyLock<Registry> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog/actions");
    Registry::load_dir(&dir).unwrap()
});

/// A test's view of moto: exclusive while it lives, freshly reset.
pub struct Moto {
    pub executor: AwsExecutor,
    pub sdk: SdkConfig,
    credential: Credential,
    _guard: MutexGuard<'static, ()>,
}

/// What the runner would record for one execution.
#[derive(Debug)]
pub struct Run {
    pub prechecks: Vec<PreCheckResult>,
    pub before: StateMap,
    pub outcome: ExecutionOutcome,
    pub after: StateMap,
}

/// moto, reset and exclusive, or `None` (with a loud message) when there is none.
pub async fn moto(test: &str) -> Option<Moto> {
    let endpoint = match SERVER.get_or_init(find_or_start) {
        Ok(endpoint) => endpoint.clone(),
        Err(why) => {
            // Straight to the process's stderr: libtest hides `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED {test}: no moto server ({why}). Run `cargo xtask ci`, or create \
                 the venv with `python3 -m venv target/moto-venv && target/moto-venv/bin/pip \
                 install 'moto[server]==5.2.5'`, or set {ENV_ENDPOINT}. ***"
            );
            return None;
        }
    };
    let guard = LOCK.lock().await;
    post(&endpoint, "/moto-api/reset", "").unwrap();
    // Without Docker moto cannot run Lambda code; it echoes the payload instead.
    post(&endpoint, "/moto-api/config", r#"{"lambda": {"use_docker": false}}"#).unwrap();
    // moto advances an ECS task one lifecycle step per DescribeTasks by default; keep tasks
    // where they are so before- and after-states are deterministic.
    post(
        &endpoint,
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
    )
    .unwrap();
    let executor = AwsExecutor::new(AwsExecutorConfig {
        region: Some(REGION.into()),
        endpoint_url: Some(endpoint.clone()),
        ..AwsExecutorConfig::default()
    })
    .unwrap();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new(REGION))
        .endpoint_url(&endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTESTING",
            "testing",
            None,
            None,
            "tests",
        )))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await;
    Some(Moto { executor, sdk, credential: credential(), _guard: guard })
}

/// The credential the runner would resolve: static keys (moto accepts any).
pub fn credential() -> Credential {
    Credential {
        credential_id: "cred-0123456789ab".into(),
        kind: "aws".into(),
        payload: Secret::new(
            json!({"access_key_id": "AKIDTESTING", "secret_access_key": "testing"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        expires_at: time::macros::datetime!(2099-01-01 00:00 UTC),
        scope: CredentialScope { kind: "aws".into(), fields: Default::default(), ttl: 300 },
        ticket_nonce: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn params(value: Value) -> Params {
    match value {
        Value::Object(map) => map,
        other => panic!("params must be an object: {other}"),
    }
}

fn declared_state_fields(action: &str) -> Vec<String> {
    let def = CATALOG.get(action).unwrap().definition();
    def.state_fields.iter().map(|f| f.name.clone()).collect()
}

impl Moto {
    fn call<'a>(
        &'a self,
        action: &'a str,
        params: &'a Params,
        fields: &'a [String],
    ) -> ActionCall<'a> {
        ActionCall {
            action,
            target: "test/target",
            params,
            credential: Some(&self.credential),
            state_fields: fields,
        }
    }

    /// `execute` alone.
    pub async fn execute(&self, action: &str, p: Value) -> ExecutionOutcome {
        let p = params(p);
        self.executor.execute(self.call(action, &p, &[])).await
    }

    /// `get_state` with the action's declared state fields.
    pub async fn state(&self, action: &str, p: Value) -> Result<StateMap, String> {
        let p = params(p);
        let fields = declared_state_fields(action);
        self.executor.get_state(self.call(action, &p, &fields)).await.map_err(|e| e.message)
    }

    /// The action's declared prechecks (all blocking, as `agent-safe-runner` treats them).
    pub async fn prechecks(&self, action: &str, p: Value) -> Vec<PreCheckResult> {
        let p = params(p);
        let def = CATALOG.get(action).unwrap().definition();
        let specs: Vec<PrecheckSpec> = def
            .prechecks
            .iter()
            .map(|p| PrecheckSpec {
                name: p.name.clone(),
                description: p.description.clone(),
                blocking: true,
            })
            .collect();
        self.executor.run_prechecks(self.call(action, &p, &[]), &specs).await
    }

    /// What the runner does with a ticket: the params must pass the catalog's validation;
    /// prechecks; before-state; execute; after-state (only after success, `{}` on error).
    pub async fn run(&self, action: &str, p: Value) -> Run {
        let errors = CATALOG.get(action).unwrap().validate_params(&params(p.clone()));
        assert!(errors.is_empty(), "the catalog refuses {action} {p}: {errors:?}");
        let prechecks = self.prechecks(action, p.clone()).await;
        let before = self.state(action, p.clone()).await.unwrap_or_default();
        let outcome = self.execute(action, p.clone()).await;
        let after = if outcome.status == ExecutionStatus::Success {
            self.state(action, p).await.unwrap_or_default()
        } else {
            StateMap::new()
        };
        Run { prechecks, before, outcome, after }
    }

    /// The rollback of `run`: the declared rollback action with params from the catalog's
    /// `rollback_params` (`params.x` from the original params, `before_state.x` from the
    /// before-state), run like any other action.
    pub async fn rollback(&self, action: &str, original: Value, run: &Run) -> (String, Value, Run) {
        let def = CATALOG.get(action).unwrap().definition();
        let rollback_action = def.rollback_action.as_ref().unwrap().to_string();
        let mut out = serde_json::Map::new();
        for (name, source) in &def.rollback_params {
            let value = match source.source.split_once('.') {
                Some(("params", field)) => original.get(field).cloned(),
                Some(("before_state", field)) => run.before.get(field).cloned(),
                _ => panic!("bad source {}", source.source),
            };
            if let Some(value) = value {
                out.insert(name.clone(), value);
            }
        }
        let rollback_params = Value::Object(out);
        let rollback_run = self.run(&rollback_action, rollback_params.clone()).await;
        (rollback_action, rollback_params, rollback_run)
    }
}

/// Asserts a successful run whose prechecks all passed.
#[track_caller]
pub fn assert_success(run: &Run) {
    assert_eq!(run.outcome.status, ExecutionStatus::Success, "{run:#?}");
    assert!(run.prechecks.iter().all(|p| p.passed), "{run:#?}");
}

/// Asserts a FAILURE whose error contains `code`.
#[track_caller]
pub fn assert_failure(outcome: &ExecutionOutcome, code: &str) {
    assert_eq!(outcome.status, ExecutionStatus::Failure, "{outcome:#?}");
    let error = outcome.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("AWS API error: ") && error.contains(code), "{outcome:#?}");
}

/// The output JSON of a successful outcome.
#[track_caller]
pub fn output(outcome: &ExecutionOutcome) -> Value {
    serde_json::from_str(&outcome.output).unwrap_or_else(|e| panic!("{e}: {}", outcome.output))
}

/// One precheck's result by name.
#[track_caller]
pub fn precheck<'a>(results: &'a [PreCheckResult], name: &str) -> &'a PreCheckResult {
    results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no {name} in {results:?}"))
}

/// `POST path` to moto; the HTTP status.
fn post(endpoint: &str, path: &str, body: &str) -> Result<u16, String> {
    let addr = endpoint.strip_prefix("http://").ok_or("moto endpoint must be http://")?;
    let addr = addr.trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{endpoint}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status from {endpoint}{path}: {response:.200}"))?;
    if status >= 300 {
        return Err(format!("{endpoint}{path}: HTTP {status}: {response:.300}"));
    }
    Ok(status)
}

/// The endpoint from the environment (then it must answer), else a server started here.
fn find_or_start() -> Result<String, String> {
    if let Ok(endpoint) = std::env::var(ENV_ENDPOINT) {
        // Set by `cargo xtask ci`: a server that does not answer is a failure, not a skip.
        post(&endpoint, "/moto-api/reset", "")
            .unwrap_or_else(|e| panic!("{ENV_ENDPOINT}={endpoint} does not answer: {e}"));
        return Ok(endpoint);
    }
    let bin = target_dir().join("moto-venv/bin/moto_server");
    if !bin.is_file() {
        return Err(format!("{ENV_ENDPOINT} is not set and `{}` does not exist", bin.display()));
    }
    let mut last = String::new();
    for _ in 0..3 {
        match start(&bin) {
            Ok(endpoint) => return Ok(endpoint),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from)
}

/// Starts `moto_server` on a free port under a shell that kills it when this process
/// exits (its stdin, our pipe, closes). Waits for moto's "Running on" line.
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
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
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
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => {
            // The child (and its stdin) must live as long as this process.
            std::mem::forget(child);
            eprintln!("moto server started on 127.0.0.1:{port}");
            Ok(format!("http://127.0.0.1:{port}"))
        }
        Err(_) => {
            // Closing the shell's stdin makes it kill moto.
            drop(child.stdin.take());
            let _ = child.wait();
            Err(format!("moto_server did not start on port {port}"))
        }
    }
}
