//! `cargo xtask ci`, `bench` and `tidy`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::{cargo_cmd, output, run_cmd};

/// Everything CI runs, in order; stops at the first failure.
pub(crate) fn ci(root: &Path) -> anyhow::Result<()> {
    let _ = crate::ONE_SHOT.set(());
    let started = Instant::now();
    step("format", || run_cmd(cargo_cmd().args(["fmt", "--all", "--check"])))?;
    step("clippy", || {
        run_cmd(cargo_cmd().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("crate boundaries", || boundaries(root))?;
    step("kubectl", ensure_kubectl)?;
    step("tests", || {
        // The AWS executor's tests run against moto's AWS-compatible server, the PostgreSQL
        // backend's against a PostgreSQL server; the kubectl executor's tests must find the
        // real kubectl (installed above) instead of skipping.
        crate::moto::with_moto(root, |endpoint| {
            crate::pg::with_postgres(root, |database| {
                run_cmd(
                    cargo_cmd()
                        .env(crate::moto::ENDPOINT_VAR, endpoint)
                        .env(crate::pg::URL_VAR, database)
                        .env("AGENT_SAFE_REQUIRE_KUBECTL", "1")
                        .args(["test", "--workspace", "--all-features", "--no-fail-fast"]),
                )
            })
        })
    })?;
    step("feature matrix (light build, k8s alone, aws alone)", || {
        // The light default build of the CLI, then each backend alone (all features ran
        // above); the CLI's tests drive the SDK and the server. Same target directory: only what the features change
        // is rebuilt.
        crate::moto::with_moto(root, |endpoint| {
            let test = |args: &[&str]| {
                run_cmd(
                    cargo_cmd()
                        .env(crate::moto::ENDPOINT_VAR, endpoint)
                        .env("AGENT_SAFE_REQUIRE_KUBECTL", "1")
                        .args(["test", "--no-fail-fast"])
                        .args(args),
                )
            };
            test(&["-p", "agent-safe-cli"])?;
            test(&["-p", "agent-safe-cli", "--no-default-features", "--features", "k8s"])?;
            test(&["-p", "agent-safe-cli", "--no-default-features", "--features", "aws"])
        })
    })?;
    step("API and MCP clients (schemathesis, MCP Python SDK)", || crate::api::api_clients(root))?;
    step("policy tests", || {
        crate::policies::test_policies(root, crate::policies::Build::AlreadyBuilt)
    })?;
    step("docs that run (README, getting started, examples, approvals, delegation)", || {
        crate::docs::docs(root)
    })?;
    step("schemas (check-jsonschema on the catalog and an init project)", || {
        crate::schemas::schemas(root)
    })?;
    step("workflows (actionlint)", || crate::release::workflows(root))?;
    step("packaged crates build (cargo package --workspace)", || crate::release::package(root))?;
    step("cargo deny", || deny(root))?;
    eprintln!("\nxtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("\n==> {name}");
    let t = Instant::now();
    f().with_context(|| format!("step `{name}` failed"))?;
    eprintln!("<== {name} ({:.1?})", t.elapsed());
    Ok(())
}

/// ARCHITECTURE.md: core, registry and pdp pull in neither tokio, kube nor aws crates; the
/// audit log, its transparency layer and rollback are synchronous and network-free (no tokio,
/// hyper, reqwest, rustls or aws crates, with every feature on); and the CLI without default
/// features is light.
fn boundaries(_root: &Path) -> anyhow::Result<()> {
    for krate in
        ["agent-safe-core", "agent-safe-registry", "agent-safe-pdp", "agent-safe-k8s-actions"]
    {
        let tree =
            output(cargo_cmd().args([
                "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}",
            ]))?;
        let forbidden: Vec<&str> = tree
            .lines()
            .filter(|l| {
                let name = l.split_whitespace().next().unwrap_or("");
                name == "tokio" || name.starts_with("kube") || name.starts_with("aws-")
            })
            .collect();
        if !forbidden.is_empty() {
            bail!("`{krate}` must not depend on {}", forbidden.join(", "));
        }
        eprintln!("{krate}: no tokio, kube or aws dependencies");
    }
    for krate in ["agent-safe-audit", "agent-safe-tlog", "agent-safe-rollback"] {
        for features in [None, Some("--all-features")] {
            let mut cmd = cargo_cmd();
            cmd.args(["tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"]);
            cmd.args(features);
            let tree = output(&mut cmd)?;
            let forbidden = network_crates(&tree);
            let label = format!("{krate}{}", features.map_or(String::new(), |f| format!(" {f}")));
            if !forbidden.is_empty() {
                bail!("`{label}` must not depend on {}", forbidden.join(", "));
            }
            eprintln!("{label}: no tokio, hyper, reqwest, rustls or aws dependencies");
        }
    }
    // The light binary: without its default features the CLI has no Kubernetes or AWS client.
    let tree = output(cargo_cmd().args([
        "tree",
        "-p",
        "agent-safe-cli",
        "--no-default-features",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    let heavy: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name.starts_with("kube") || name.starts_with("k8s-openapi") || name.starts_with("aws-")
        })
        .collect();
    if !heavy.is_empty() {
        bail!("`agent-safe-cli --no-default-features` must not depend on {}", heavy.join(", "));
    }
    eprintln!("agent-safe-cli --no-default-features: no kube or aws dependencies");
    // Test scaffolding (`bench` modules, test servers, moto support) is never in the binary.
    let tree = output(cargo_cmd().args([
        "tree",
        "-p",
        "agent-safe-cli",
        "--all-features",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p} [{f}]",
    ]))?;
    let scaffolding = test_util_crates(&tree);
    if !scaffolding.is_empty() {
        bail!("the CLI's build enables `test-util` in {}", scaffolding.join(", "));
    }
    eprintln!("agent-safe-cli --all-features: no crate built with `test-util`");
    Ok(())
}

/// The lines of a `cargo tree --format "{p} [{f}]"` output naming one of our crates whose
/// features include `test-util` (third-party crates have features of that name of their own).
fn test_util_crates(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter(|l| l.starts_with("agent-safe"))
        .filter(|l| {
            l.rsplit_once('[')
                .and_then(|(_, f)| f.split_once(']'))
                .is_some_and(|(f, _)| f.split(',').any(|f| f == "test-util"))
        })
        .collect()
}

/// The lines of a `cargo tree --format {p}` output naming an async runtime, HTTP or TLS stack,
/// or AWS crate.
fn network_crates(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name == "tokio"
                || name.starts_with("hyper")
                || name == "reqwest"
                || name.starts_with("rustls")
                || name.starts_with("aws-")
        })
        .collect()
}

/// The kubectl executor's tests run the real `kubectl`. When it is missing, installs Debian's
/// `kubernetes-client` package (with `sudo -n` unless running as root).
fn ensure_kubectl() -> anyhow::Result<()> {
    let works = || {
        Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works() {
        eprintln!("kubectl: found");
        return Ok(());
    }
    let root = output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            cmd.args(["-n", "apt-get"]);
        }
        cmd.args(args);
        cmd
    };
    eprintln!(
        "kubectl: not found; installing Debian's `kubernetes-client`: apt-get update && \
         apt-get install -y kubernetes-client"
    );
    run_cmd(&mut apt(&["update"]))?;
    run_cmd(apt(&["install", "-y", "kubernetes-client"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !works() {
        bail!("`kubectl version --client` still fails after installing kubernetes-client");
    }
    Ok(())
}

/// `cargo deny check bans licenses sources`, installing cargo-deny when missing. The
/// advisory database cannot be fetched in this environment, so advisories are not checked.
fn deny(root: &Path) -> anyhow::Result<()> {
    let path = ensure_tool(root, "deny", "cargo-deny")?;
    run_cmd(cargo_cmd().env("PATH", path).args(["deny", "check", "bans", "licenses", "sources"]))
}

/// Makes `cargo <sub>` available, installing `krate` under `<target dir>/tools` when missing
/// (kept with a cached `CARGO_TARGET_DIR`); returns the PATH to run it with.
fn ensure_tool(root: &Path, sub: &str, krate: &str) -> anyhow::Result<std::ffi::OsString> {
    let tools = crate::target_dir(root).join("tools");
    let path = crate::path_with(&tools.join("bin"))?;
    let have = cargo_cmd()
        .env("PATH", &path)
        .args([sub, "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        run_cmd(cargo_cmd().args(["install", krate, "--locked", "--root"]).arg(&tools))?;
    }
    Ok(path)
}

/// Runs every fuzz target for `secs` seconds each.
pub(crate) fn fuzz(root: &Path, secs: u64) -> anyhow::Result<()> {
    let path = ensure_tool(root, "fuzz", "cargo-fuzz")?;
    let list = output(
        Command::new("cargo")
            .env("PATH", &path)
            .current_dir(root)
            .args(["+nightly", "fuzz", "list"]),
    )?;
    for target in list.lines().map(str::trim).filter(|t| !t.is_empty()) {
        run_cmd(Command::new("cargo").env("PATH", &path).current_dir(root).args([
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={secs}"),
        ]))?;
    }
    Ok(())
}

/// Release-mode figures. Prints JSON with `--json`.
pub(crate) fn bench(root: &Path, json: bool) -> anyhow::Result<()> {
    run_cmd(cargo_cmd().args(["build", "--release", "-p", "agent-safe-cli"]))?;
    // The PostgreSQL figures run against a server of their own, as the tests do.
    let figures = crate::pg::with_postgres(root, |database| {
        output(
            cargo_cmd()
                .args([
                    "bench",
                    "-q",
                    "-p",
                    "agent-safe-tests",
                    "--bench",
                    "figures",
                    "--",
                    "--json",
                ])
                .env(crate::pg::URL_VAR, database),
        )
    })?;
    let mut value: serde_json::Value = serde_json::from_str(figures.trim())
        .with_context(|| format!("bench output is not JSON: {figures}"))?;
    let bin = release_bin(root);
    let cli_ms = cli_check_ms(root, &bin)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("cli_check_ms".to_owned(), serde_json::json!(cli_ms));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let Some(map) = value.as_object() {
        for (k, v) in map {
            println!("{k:<40} {v}");
        }
    }
    Ok(())
}

fn release_bin(root: &Path) -> PathBuf {
    crate::target_dir(root).join("release").join("agent-safe")
}

/// Median wall time of one `agent-safe check` process on the catalog config, in ms.
fn cli_check_ms(root: &Path, bin: &Path) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("agent-safe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("audit.jsonl");
    let mut times = Vec::new();
    for _ in 0..31 {
        let t = Instant::now();
        let out = Command::new(bin)
            .current_dir(root)
            .args(["--config", "catalog/agent-safe.yaml", "check", "restart-deployment"])
            .args(["--target", "dev/test-app", "--caller", "bench"])
            .args(["--params", r#"{"namespace": "dev", "deployment": "test-app"}"#])
            .arg("--audit-log")
            .arg(&log)
            .output()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if out.status.code() != Some(0) {
            bail!("bench check did not ALLOW: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2] * 100.0).round() / 100.0)
}

/// Repository hygiene: file headers, no sleeps, ignore reasons.
pub(crate) fn tidy(root: &Path) -> anyhow::Result<()> {
    let problems = tidy_problems(root)?;
    if problems.is_empty() {
        eprintln!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    bail!("{} tidy problem(s)", problems.len())
}

/// The hygiene findings (also used by the `tidy` test in `tests/`).
pub(crate) fn tidy_problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        collect_rs(&root.join(dir), &mut files)?;
    }
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let rel = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!("{rel}: must start with a `//!` line saying what it is for"));
        }
        // Spelled in two pieces so this file does not match its own check (nor grep-based ones).
        let bare_ignore = concat!("#[ig", "nore]");
        for (i, l) in text.lines().enumerate() {
            if l.trim_start().starts_with(bare_ignore) {
                problems.push(format!(
                    "{}:{}: `{bare_ignore}` needs a reason: `#[ignore = \"…\"]`",
                    rel,
                    i + 1
                ));
            }
        }
    }
    Ok(problems)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rs(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo xtask tidy` as a plain test, so `cargo test` enforces it too.
    #[test]
    fn tidy() {
        let problems = super::tidy_problems(&crate::project_root()).unwrap();
        assert!(problems.is_empty(), "tidy problems:\n{}", problems.join("\n"));
    }

    #[test]
    fn test_util_crates_are_found_by_feature() {
        let tree = "agent-safe-audit v0.1.0 (/w/crates/agent-safe-audit) [test-util]\n\
                    agent-safe-core v0.1.0 (/w/crates/agent-safe-core) []\n\
                    agent-safe-cli v0.1.0 (/w/crates/agent-safe-cli) [aws,default]\n\
                    agent-safe-tickets v0.1.0 (/w/crates/agent-safe-tickets) [s3,test-util] (*)\n\
                    not-test-util v1.0.0 [test-utils]\n\
                    aws-smithy-types v1.4.3 [rt-tokio,test-util]";
        let found = super::test_util_crates(tree);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("agent-safe-audit "));
        assert!(found[1].starts_with("agent-safe-tickets "));
    }
}
