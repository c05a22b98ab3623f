//! Helpers every CLI integration test shares: the bundled catalog, the binary with a clean
//! environment, `agent-safe serve` as a process, and the one snapshot macro with its filters.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The workspace's `catalog/` (canonical, so snapshot filters can name it).
pub fn catalog() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
    path.canonicalize().unwrap_or(path)
}

/// The binary with no colour and none of the caller's `AGENT_SAFE_*` variables (keys, tokens,
/// vault credentials), so a developer's environment cannot change an outcome.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-safe"));
    cmd.env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGENT_SAFE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// [`command`] in `dir`.
pub fn bin(dir: &Path) -> Command {
    let mut cmd = command();
    cmd.current_dir(dir);
    cmd
}

/// [`bin`] against the catalog's `agent-safe.yaml`.
pub fn cli(dir: &Path) -> Command {
    let mut cmd = bin(dir);
    cmd.arg("--config").arg(catalog().join("agent-safe.yaml"));
    cmd
}

/// A running `agent-safe serve`: the process, its stdout after the first line, and the address
/// that line gave.
pub struct Served {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Served {
    /// Starts `cmd` (an `agent-safe serve` command line) and reads the address from the first
    /// line it prints, which names the policy revision too.
    pub fn spawn(cmd: &mut Command) -> Served {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first.split("http://").nth(1).and_then(|rest| rest.split_whitespace().next());
        assert!(addr.is_some(), "no address in {first:?}");
        let addr = addr.unwrap().to_owned();
        assert!(first.contains("policy revision sha256:"), "{first}");
        Served { child, stdout, addr }
    }

    /// `POST path` with a JSON `body` and `authorization: Bearer <bearer>`: the status line and
    /// the JSON answer.
    pub fn post(
        &self,
        path: &str,
        bearer: &str,
        body: &serde_json::Value,
    ) -> (String, serde_json::Value) {
        use std::io::Write as _;
        let body = body.to_string();
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {bearer}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n\
             {body}",
            self.addr,
            body.len()
        )
        .unwrap();
        answer(stream)
    }

    /// Stops the server with SIGTERM (it exits 0 and says so); returns what it printed after
    /// its first line.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(0), "{rest}");
        assert!(rest.contains("agent-safe serve: stopped"), "{rest}");
        rest
    }
}

/// What the PostgreSQL suites (`state`, `replicas`) need besides.
#[cfg(feature = "postgres")]
impl Served {
    /// `GET path` without credentials: the status line and the JSON answer.
    pub fn get(&self, path: &str) -> (String, serde_json::Value) {
        self.get_as(path, None)
    }

    /// `GET path` with `authorization: Bearer <bearer>`: the status line and the JSON answer.
    pub fn get_with(&self, path: &str, bearer: &str) -> (String, serde_json::Value) {
        self.get_as(path, Some(bearer))
    }

    fn get_as(&self, path: &str, bearer: Option<&str>) -> (String, serde_json::Value) {
        use std::io::Write as _;
        let auth = bearer.map(|b| format!("authorization: Bearer {b}\r\n")).unwrap_or_default();
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: {}\r\n{auth}connection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        answer(stream)
    }

    /// Kills the server with SIGKILL (`kill -9`: no shutdown, nothing flushed).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    /// A test that fails before stopping its server does not leave it running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The status line and the JSON body of the HTTP answer read from `stream` (the connection
/// closes after it).
fn answer(mut stream: std::net::TcpStream) -> (String, serde_json::Value) {
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let body = serde_json::from_str(body).map_err(|e| format!("{e}: {response}")).unwrap();
    (status, body)
}

/// An identity token for `agent` with `roles`, signed with the HS256 key `key`, valid for an
/// hour of real time (the binary uses the system clock).
pub fn identity_token(key: &str, agent: &str, roles: &[&str]) -> String {
    use agent_safe_tickets::{IdentityManager, SigningKey};
    let clock: std::sync::Arc<dyn agent_safe_core::Clock> =
        std::sync::Arc::new(agent_safe_core::SystemClock);
    let ids = IdentityManager::new(SigningKey::hs256_from_str(key).unwrap(), "agent-safe", clock);
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    ids.create_token(agent, "", &roles, &[], time::Duration::hours(1)).unwrap()
}

/// The filters of every CLI snapshot, after the test's temporary directory, the catalog path and
/// the module's own `FILTERS` (which therefore win: `runner` calls SHA-256 digests `[SHA256]`).
pub const COMMON_FILTERS: &[(&str, &str)] = &[
    (r"evt-[0-9a-f]{12}", "[AUDIT_ID]"),
    (r"eyJ[A-Za-z0-9_\-\.]+…?", "[TOKEN]"),
    (r"\b[0-9a-f]{64}\b", "[HASH]"),
    (r"\b[0-9a-f]{32}\b", "[NONCE]"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "[TIME]"),
];

/// The snapshot filters for a test in `dir` whose module adds `module` filters.
pub fn snapshot_filters(dir: &Path, module: &[(&str, &str)]) -> Vec<(String, String)> {
    let fixed = [
        (regex_literal(&dir.display().to_string()), "[TMP]".to_owned()),
        (regex_literal(&catalog().display().to_string()), "[CATALOG]".to_owned()),
    ];
    fixed
        .into_iter()
        .chain(module.iter().chain(COMMON_FILTERS).map(|&(re, to)| (re.to_owned(), to.to_owned())))
        .collect()
}

/// `text` as a regex that matches exactly it.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `snap!(name, dir, command)`: runs `command` and snapshots its exit code, stdout and stderr
/// with [`snapshot_filters`] for `dir` and the calling module's `FILTERS` constant.
macro_rules! snap {
    ($name:expr, $dir:expr, $cmd:expr) => {{
        let filters = $crate::common::snapshot_filters($dir, FILTERS);
        let filters: Vec<(&str, &str)> =
            filters.iter().map(|(re, to)| (re.as_str(), to.as_str())).collect();
        insta::with_settings!({filters => filters}, {
            insta_cmd::assert_cmd_snapshot!($name, $cmd);
        });
    }};
}
pub(crate) use snap;

/// One MCP session of `cmd` (an `agent-safe mcp` command line): initialize, then each of
/// `calls` (`{"name": tool, "arguments": …}`) as a `tools/call`; the results in order. Closes
/// stdin and asserts the process exits 0.
pub fn mcp_calls(cmd: &mut Command, calls: &[serde_json::Value]) -> Vec<serde_json::Value> {
    use std::io::Write as _;
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut read = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params":
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    writeln!(stdin, "{init}").unwrap();
    assert_eq!(read()["id"], 0);
    writeln!(stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).unwrap();
    let mut results = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let id = i + 1;
        let message =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": call});
        writeln!(stdin, "{message}").unwrap();
        let answer = read();
        assert_eq!(answer["id"], id, "{answer}");
        results.push(answer["result"].clone());
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    results
}

/// A project in `dir` on the catalog's actions and inventory: dev targets allowed, production
/// needing one `sre` approval, an audit log, the HS256 `key`, an approval store, then `extra`
/// lines of agent-safe.yaml.
pub fn sre_project(dir: &Path, key: &str, extra: &str) {
    let cat = catalog();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/main.yaml"),
        "rules:\n  - name: dev-ok\n    match: {targets: {environments: [dev]}}\n    decision: allow\n    \
         reason: dev is fine\n  - name: prod-needs-an-sre\n    match: {targets: {environments: [prod]}}\n    \
         decision: require_approval\n    reason: prod needs an SRE\n    approvals: {approver_roles: [sre]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("agent-safe.yaml"),
        format!(
            "registry: {}\npolicies: policies\ninventory: {}\naudit_log: audit.jsonl\n\
             signing_key: {key}\napprovals:\n  store: approvals.jsonl\n{extra}",
            cat.join("actions").display(),
            cat.join("inventory.yaml").display(),
        ),
    )
    .unwrap();
}
