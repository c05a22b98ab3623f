//! The real clients step of `cargo xtask ci`: schemathesis (PyPI) checks the running
//! `agent-safe serve` against its own `/v1/openapi.json`, and the official MCP Python SDK
//! (PyPI `mcp`) drives `agent-safe mcp`, both on a fresh `agent-safe init` project, as a user
//! would. Both run from `target/api-venv` (pinned versions, created once).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use crate::{output, run_cmd, target_dir};

/// The pinned clients.
const REQUIREMENTS: &[&str] = &["schemathesis==4.32.5", "mcp==1.23.0"];
/// Fixed seed and bounded examples: the same requests on every run, in about ten seconds.
const SEED: &str = "1";
const MAX_EXAMPLES: &str = "50";

pub(crate) fn api_clients(root: &Path) -> anyhow::Result<()> {
    let venv = crate::moto::python_venv(root, "api-venv", REQUIREMENTS)?;
    let bin = target_dir(root).join("debug/agent-safe");
    if !bin.is_file() {
        bail!("`{}` is missing: the tests step builds it", bin.display());
    }
    let work = target_dir(root).join("api-clients");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    run_cmd(Command::new(&bin).current_dir(&work).args(["init", "project"]))?;
    let project = work.join("project");
    let token = |roles: &[&str]| -> anyhow::Result<String> {
        let mut cmd = Command::new(&bin);
        cmd.current_dir(&project).args(["identity", "issue", "deploy-bot"]);
        for role in roles {
            cmd.args(["--role", role]);
        }
        Ok(output(&mut cmd)?.trim().to_owned())
    };

    // schemathesis against `serve` (every role the API knows, so no operation is only 401/403).
    let serve = Serve::start(&bin, &project)?;
    let admin = token(&["deployer", "sre", "agent-safe-admin"])?;
    // The token reaches schemathesis through the environment, never a command line or a log.
    let config = work.join("schemathesis.toml");
    std::fs::write(&config, "[headers]\nAuthorization = \"Bearer ${AGENT_SAFE_API_TOKEN}\"\n")?;
    let checked = run_cmd(
        Command::new(venv.join("bin/schemathesis"))
            // Its cache (`.schemathesis/`) goes to the work directory, not the repository.
            .current_dir(&work)
            .env("AGENT_SAFE_API_TOKEN", &admin)
            .arg("--config-file")
            .arg(&config)
            .args(["run", &format!("http://{}/v1/openapi.json", serve.addr)])
            .args([
                "--checks",
                "all",
                "--seed",
                SEED,
                "--max-examples",
                MAX_EXAMPLES,
                "--no-color",
            ]),
    );
    serve.stop()?;
    checked.context("schemathesis found the API and docs/openapi.json disagreeing")?;

    // The MCP Python SDK against `mcp`, then the audit log verifies.
    let agent = token(&["deployer"])?;
    run_cmd(
        Command::new(venv.join("bin/python"))
            .env("AGENT_SAFE_IDENTITY_TOKEN", &agent)
            .arg(root.join("xtask/py/mcp_client.py"))
            .arg(&bin)
            .arg(&project),
    )
    .context("the MCP Python SDK client failed")?;
    run_cmd(Command::new(&bin).current_dir(&project).args(["audit", "verify"]))
}

/// `agent-safe serve` on 127.0.0.1, a free port.
struct Serve {
    child: Child,
    addr: String,
}

impl Serve {
    fn start(bin: &PathBuf, project: &Path) -> anyhow::Result<Serve> {
        let mut child = Command::new(bin)
            .current_dir(project)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start agent-safe serve")?;
        let mut first = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        BufReader::new(stdout).read_line(&mut first)?;
        let Some(addr) = first.split("http://").nth(1).and_then(|r| r.split_whitespace().next())
        else {
            let _ = child.kill();
            bail!("agent-safe serve did not say where it listens: {first:?}");
        };
        Ok(Serve { addr: addr.to_owned(), child })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        run_cmd(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("agent-safe serve exited with {status}");
        }
        Ok(())
    }
}
