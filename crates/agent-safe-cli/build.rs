//! Embeds the bundled example configuration (`catalog/`) into the binary for `agent-safe demo`
//! and `agent-safe init`, and names the compiled-in backends for `agent-safe --version`.
//!
//! The catalog is read through `crates/agent-safe-cli/catalog`, a symlink to the workspace's
//! `catalog/`: `cargo package` follows it, so the crate published for `cargo install
//! agent-safe-cli` carries the catalog too.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    backends();
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let catalog = manifest.join("catalog");
    println!("cargo::rerun-if-changed={}", catalog.display());
    let mut files = Vec::new();
    collect(&catalog, &catalog, &mut files);
    files.sort();
    if !files.iter().any(|f| f == "agent-safe.yaml") {
        println!(
            "cargo::error=no bundled catalog at {} (expected a symlink to the workspace's \
             catalog/ with agent-safe.yaml; on Windows, clone with `git config core.symlinks true`)",
            catalog.display()
        );
    }
    let mut out = String::from(
        "/// Files of the bundled catalog: (path relative to `catalog/`, contents).\n",
    );
    out.push_str("pub(crate) static CATALOG: &[(&str, &str)] = &[\n");
    for rel in &files {
        let abs = catalog.join(rel);
        println!("cargo::rerun-if-changed={}", abs.display());
        let _ = writeln!(out, "    ({rel:?}, include_str!({:?})),", abs.display().to_string());
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("catalog.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        println!("cargo::error=cannot write {}: {e}", dest.display());
    }
}

/// `AGENT_SAFE_BACKENDS`: what this build of the binary has, for `agent-safe --version`.
fn backends() {
    let k8s = std::env::var_os("CARGO_FEATURE_K8S").is_some();
    let aws = std::env::var_os("CARGO_FEATURE_AWS").is_some();
    let postgres = std::env::var_os("CARGO_FEATURE_POSTGRES").is_some();
    let pick = |base: &[&str], extra: &[(bool, &str)]| {
        let mut all: Vec<&str> = base.to_vec();
        all.extend(extra.iter().filter(|(on, _)| *on).map(|(_, name)| *name));
        all.join(", ")
    };
    let text = format!(
        "executors: {}; vaults: {}; audit shipping: {}; state: {}",
        pick(&["dry-run", "kubectl"], &[(k8s, "k8s"), (aws, "aws")]),
        pick(&["env", "file"], &[(k8s, "kubernetes"), (aws, "sts")]),
        pick(&["file", "webhook"], &[(aws, "s3")]),
        pick(&["file"], &[(postgres, "postgres")]),
    );
    println!("cargo::rustc-env=AGENT_SAFE_BACKENDS={text}");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo::rerun-if-changed={}", path.display());
            collect(root, &path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}
