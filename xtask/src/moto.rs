//! moto for the test step of `cargo xtask ci`: a Python virtual environment under
//! `target/moto-venv` with a pinned `moto[server]` from PyPI (created once), a `moto_server`
//! on a free 127.0.0.1 port whose endpoint the tests get as `AGENT_SAFE_MOTO_ENDPOINT`, and
//! the server stopped afterwards, also when the tests fail. Its log is `target/moto.log`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{run_cmd, target_dir};

/// The moto release the AWS executor's tests are written against.
const MOTO_VERSION: &str = "5.2.5";
/// Where the AWS executor's tests look for the server.
pub(crate) const ENDPOINT_VAR: &str = "AGENT_SAFE_MOTO_ENDPOINT";

/// Runs `f` with a moto server's endpoint; the server is stopped when `f` returns.
pub(crate) fn with_moto<T>(
    root: &Path,
    f: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_moto_logging_to(root, "moto.log", f)
}

/// [`with_moto`] with the server's log in `target/<log>`.
fn with_moto_logging_to<T>(
    root: &Path,
    log: &str,
    f: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let server = Server::start(root, log)?;
    let result = f(&server.endpoint);
    drop(server);
    result
}

/// `target/moto-venv/bin/moto_server`, creating the venv when it is missing or holds
/// another moto version.
fn ensure_venv(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = python_venv(root, "moto-venv", &[&format!("moto[server]=={MOTO_VERSION}")])?;
    Ok(venv.join("bin/moto_server"))
}

/// `target/<name>`, a Python virtual environment with exactly `requirements` (pinned versions
/// from PyPI), created when it is missing or was made for other requirements.
pub(crate) fn python_venv(
    root: &Path,
    name: &str,
    requirements: &[&str],
) -> anyhow::Result<PathBuf> {
    let venv = target_dir(root).join(name);
    let marker = venv.join(".agent-safe-requirements");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|had| had == wanted) {
        return Ok(venv);
    }
    let started = Instant::now();
    eprintln!("{name}: creating {} with {}", venv.display(), requirements.join(" "));
    run_cmd(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))
        .with_context(|| format!("cannot create {name} (needs python3 with the venv module)"))?;
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(requirements),
    )
    .with_context(|| format!("cannot install {} from PyPI", requirements.join(" ")))?;
    std::fs::write(&marker, wanted)?;
    eprintln!("{name}: ready in {:.0?}", started.elapsed());
    Ok(venv)
}

/// A running `moto_server`, killed on drop.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    fn start(root: &Path, log: &str) -> anyhow::Result<Server> {
        let bin = ensure_venv(root)?;
        let log_path = target_dir(root).join(log);
        let mut last_error = None;
        // A free port can be taken between our probe and moto's bind: try a few.
        for _ in 0..3 {
            match Self::try_start(&bin, &log_path) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    fn try_start(bin: &Path, log_path: &Path) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", bin.display()))?;
        let stderr = child.stderr.take().context("moto_server has no stderr")?;
        let mut log = std::fs::File::create(log_path)
            .with_context(|| format!("cannot create `{}`", log_path.display()))?;
        let (ready_tx, ready_rx) = mpsc::channel();
        // Copies moto's log to the file (so moto never blocks on a full pipe) and reports
        // Werkzeug's "Running on" line, printed once the socket listens.
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if line.contains("Running on")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = Server { child, endpoint };
        match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(()) => {
                eprintln!("moto: {ENDPOINT_VAR}={} (log: {})", server.endpoint, log_path.display());
                Ok(server)
            }
            // Dropping `server` kills the process.
            Err(_) => {
                bail!("moto_server did not start on port {port}; see `{}`", log_path.display())
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("moto: stopped {}", self.endpoint);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    /// The server answers moto's reset API while `f` runs and is gone afterwards. Needs the
    /// venv (`cargo xtask ci` creates it); skipped loudly without it.
    #[test]
    fn serves_while_the_closure_runs_and_stops_after() {
        let root = crate::project_root();
        if !super::target_dir(&root).join("moto-venv/bin/moto_server").is_file() {
            eprintln!("SKIPPED: no target/moto-venv (run `cargo xtask ci` once)");
            return;
        }
        let addr = super::with_moto_logging_to(&root, "moto-xtask-test.log", |endpoint| {
            let addr = endpoint.trim_start_matches("http://").to_owned();
            let mut stream = TcpStream::connect(&addr)?;
            write!(
                stream,
                "POST /moto-api/reset HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            Ok(addr)
        })
        .unwrap();
        assert!(TcpStream::connect(&addr).is_err(), "moto still listens on {addr}");
    }
}
