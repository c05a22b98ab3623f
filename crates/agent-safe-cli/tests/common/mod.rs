//! Helpers every CLI integration test shares: the bundled catalog and the binary with a
//! clean environment.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::path::{Path, PathBuf};
use std::process::Command;

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
