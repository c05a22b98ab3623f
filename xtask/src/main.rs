//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI runs (fmt, clippy, tests with all features against a moto server and
//!   the real `kubectl`, installed from Debian's `kubernetes-client` when missing, policy tests,
//!   crate boundary checks, cargo-deny).
//! - `test-policies`: validate `catalog/` and every example config, then run every policy
//!   test directory in the repository; a table of expected vs actual; non-zero on mismatch.
//! - `bench`: release-mode figures as JSON.
//! - `docs`: the documented command sessions (README, getting started, examples, approvals,
//!   delegation) run as written and print what the docs show.
//! - `man`: man pages for `agent-safe` and every subcommand into `target/man/` (clap_mangen,
//!   through the binary's hidden `man-pages` command).
//! - `schemas`: check-jsonschema validates the catalog and a fresh `init` project against
//!   `schemas/` (after a build of the CLI).
//! - `release-checks`: actionlint over the workflows, and `cargo package --workspace` (every
//!   published crate builds from its packaged form).
//! - `tidy`: repository hygiene checks (also a `#[test]` of this crate).
//! - `fuzz [SECONDS]`: a short cargo-fuzz run of every target in `fuzz/` (needs a nightly
//!   toolchain; installs cargo-fuzz under `target/tools` when missing).

#![expect(clippy::print_stdout, reason = "xtask reports to the terminal")]

mod api;
mod ci;
mod docs;
mod moto;
mod pg;
mod policies;
mod release;
mod schemas;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci::ci(&root),
        Some("test-policies") => policies::test_policies(&root, policies::Build::Yes),
        Some("bench") => ci::bench(&root, args.get(1).map(String::as_str) == Some("--json")),
        Some("tidy") => ci::tidy(&root),
        Some("api-clients") => api::api_clients(&root),
        Some("docs") => docs::docs(&root),
        Some("man") => man(&root),
        Some("schemas") => schemas::schemas(&root),
        Some("release-checks") => {
            release::workflows(&root)?;
            release::package(&root)
        }
        Some("fuzz") => {
            let secs = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(20u64);
            ci::fuzz(&root, secs)
        }
        Some("help" | "--help" | "-h") | None => {
            println!(
                "usage: cargo xtask <ci | test-policies | bench [--json] | tidy | fuzz [SECONDS] \
                 | api-clients | docs | man | release-checks | schemas>"
            );
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`; try `cargo xtask help`"),
    }
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted.
pub(crate) fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `PATH` with `dir` in front, for a child process.
pub(crate) fn path_with(dir: &Path) -> anyhow::Result<std::ffi::OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::join_paths(
        std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)),
    )?)
}

/// `cargo xtask man`: builds the CLI and has it write its man pages into `target/man/`.
fn man(root: &Path) -> anyhow::Result<()> {
    run_cmd(cargo_cmd().args(["build", "-p", "agent-safe-cli"]))?;
    let out = target_dir(root).join("man");
    run_cmd(Command::new(target_dir(root).join("debug/agent-safe")).arg("man-pages").arg(&out))?;
    println!("man pages: {} (try `man -l {}/agent-safe.1`)", out.display(), out.display());
    Ok(())
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo binary that runs us.
/// Cargo's build directory: `CARGO_TARGET_DIR` (e.g. a cache outside the clone), else
/// `<root>/target`. The moto venv and installed tools live there too, so a cached directory
/// keeps them between CI runs.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Set by `cargo xtask ci`: its cargo commands build without incremental compilation (a
/// one-shot build gains nothing from it, and its caches doubled the target directory, 37 of
/// 74 GB here).
pub(crate) static ONE_SHOT: std::sync::OnceLock<()> = std::sync::OnceLock::new();

/// A `cargo` command (see [`ONE_SHOT`]).
pub(crate) fn cargo_cmd() -> Command {
    let mut cmd = Command::new(cargo());
    if ONE_SHOT.get().is_some() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// Runs a command, echoing it, failing on a non-zero exit.
pub(crate) fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd.status().with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", display(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout, failing on a non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed with {}:\n{}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
