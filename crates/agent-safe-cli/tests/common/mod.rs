//! Helpers every CLI integration test shares: the bundled catalog and the binary with a
//! clean environment.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::io::{BufRead as _, BufReader};
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

/// Spawns `cmd` (an `agent-safe serve` command) with its output piped and reads the first line
/// it prints: the process, its stdout after that line, the address the line announces, and
/// the line.
pub fn spawn_server(cmd: &mut Command) -> (Child, BufReader<ChildStdout>, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first.split("http://").nth(1).and_then(|rest| rest.split_whitespace().next());
    assert!(addr.is_some(), "no address in {first:?}");
    let addr = addr.unwrap().to_owned();
    (child, stdout, addr, first)
}
