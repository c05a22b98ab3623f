//! A throwaway PostgreSQL server started from the machine's server binaries (std only, so
//! `xtask` compiles the same file with `#[path]`): `initdb` into a directory of the caller's,
//! then `postgres` on a free 127.0.0.1 port, TCP only (no Unix socket, whose path length is
//! limited), `trust` authentication for the loopback user `agent_safe`, `fsync` and
//! `synchronous_commit` on (the defaults). `initdb` refuses to run as root, so as root both run
//! as `nobody` (`setpriv`), with the directory handed to that user. The server runs under a
//! shell that stops it when its stdin (our pipe) closes, so it goes away with this process
//! even when a `static` holds it; dropping the server stops it (fast shutdown) and waits.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the directory of `initdb` and `postgres` (else `pg_config
/// --bindir`, else the newest `/usr/lib/postgresql/*/bin`).
pub const BINDIR_VAR: &str = "AGENT_SAFE_PG_BINDIR";

/// The environment variable naming the server `cargo xtask ci` started for the tests (the URL
/// of its `postgres` database).
pub const URL_VAR: &str = "AGENT_SAFE_TEST_DATABASE_URL";

/// The superuser `initdb` creates.
pub const USER: &str = "agent_safe";

/// The uid and gid the server runs as when the caller is root (`nobody`, `nogroup`).
const UNPRIVILEGED: u32 = 65_534;

/// How to get the server binaries, for messages.
pub const INSTALL_HINT: &str = "install Debian's PostgreSQL server (`apt-get install \
                                postgresql`; its binaries stay off PATH under \
                                /usr/lib/postgresql/VERSION/bin) or set AGENT_SAFE_PG_BINDIR";

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct PgServer {
    child: Option<Child>,
    /// Closing it stops the server (see the module docs).
    tie: Option<ChildStdin>,
    port: u16,
    bindir: PathBuf,
    log: PathBuf,
}

impl PgServer {
    /// Creates a cluster in `dir` (which must not exist or be empty) and starts a server on it.
    pub fn start(dir: &Path) -> Result<Self, String> {
        let bindir = bindir()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let root = effective_uid() == Some(0);
        if root {
            std::os::unix::fs::chown(dir, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .map_err(|e| format!("cannot hand {} to nobody: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let out = as_server_user(root, &bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--no-instructions"])
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bindir.join("initdb").display()))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            match Self::launch(&bindir, dir, port) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Stops the server and starts it again on the same data and port (what a database
    /// restart looks like to its clients).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop(); // Nothing happens when it was stopped or crashed already.
        let dir = self.log.parent().map(Path::to_path_buf).unwrap_or_default();
        *self = Self::launch(&self.bindir.clone(), &dir, self.port)?;
        Ok(())
    }

    /// Starts `postgres` on the cluster in `dir` on `port` and waits until it is ready.
    fn launch(bindir: &Path, dir: &Path, port: u16) -> Result<Self, String> {
        let root = effective_uid() == Some(0);
        let data = dir.join("data");
        let log = dir.join("server.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut postgres = as_server_user(root, &bindir.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="])
            .args(["-c", "max_connections=300", "-c", "fsync=on"])
            .args(["-c", "synchronous_commit=on"]);
        let mut child = Command::new("sh")
            .arg("-c")
            // Stdin closed: fast shutdown (SIGINT); a `q` written first: immediate shutdown
            // (SIGQUIT), which is a crash to the data (no checkpoint, recovery at start).
            .arg(
                r#""$0" "$@" & pid=$!; how=$(head -c 1); if [ "$how" = q ]; then kill -QUIT "$pid"; else kill -INT "$pid"; fi; wait "$pid""#,
            )
            .arg(postgres.get_program())
            .args(postgres.get_args())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bindir.join("postgres").display()))?;
        let tie = child.stdin.take();
        let mut server =
            Self { child: Some(child), tie, port, bindir: bindir.to_path_buf(), log: log.clone() };
        match server.wait_ready(Duration::from_secs(30)) {
            Ok(()) => Ok(server),
            Err(e) => {
                server.stop();
                Err(e)
            }
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `database` for the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The directory of the server binaries (and of `psql`).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("postgres exited ({status}): {}", self.log_tail()));
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("ready to accept connections")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > within {
                return Err(format!("postgres not ready after {within:?}: {}", self.log_tail()));
            }
            // A blocking wait for a child process; there is no event to wait on.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Crashes the server: an immediate shutdown (SIGQUIT), which writes nothing more (WAL
    /// that was not flushed is lost, and the next start recovers from the WAL), as a power
    /// loss would. [`PgServer::restart`] starts it again.
    pub fn crash(&mut self) {
        if let Some(tie) = self.tie.as_mut() {
            let _ = std::io::Write::write_all(tie, b"q");
        }
        self.stop();
    }

    /// Stops the server (SIGINT: fast shutdown) and waits up to 20 s, then kills it.
    pub fn stop(&mut self) {
        drop(self.tie.take());
        let Some(mut child) = self.child.take() else { return };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `psql` against `url` with one SQL command; its output, or the error.
pub fn psql(bindir: &Path, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(bindir.join("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The directory holding `initdb` and `postgres`.
pub fn bindir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os(BINDIR_VAR) {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!("{BINDIR_VAR}={} has no initdb and postgres", dir.display()))
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = e.path().join("bin");
            has_server(&dir).then_some((version, dir))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir).ok_or_else(|| {
        format!("no PostgreSQL server binaries (initdb, postgres) found: {INSTALL_HINT}")
    })
}

fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &UNPRIVILEGED.to_string(),
            "--regid",
            &UNPRIVILEGED.to_string(),
            "--clear-groups",
            "--reset-env",
        ]);
        cmd.arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// The effective uid, from `/proc/self/status` (Linux).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}
