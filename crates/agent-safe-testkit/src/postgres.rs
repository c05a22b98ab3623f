//! Test support for suites that run against PostgreSQL (feature `postgres`).
//!
//! - **One server per test process**: the server `cargo xtask ci` started, named by
//!   [`URL_VAR`] (the URL of its `postgres` database; a configured server that does not answer
//!   is an error, not a skip), else one started here from the machine's server binaries
//!   ([`PgServer`], data under `target/pg/`), stopped when the test process exits. Without
//!   binaries, [`database`] prints a loud `SKIPPED` line and returns `Ok(None)`; `cargo xtask
//!   ci` never gets there (it fails first, saying how to install them).
//! - **A fresh database per test** (`CREATE DATABASE`), so tests run in parallel and never
//!   see each other's rows.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::pg_server::{INSTALL_HINT, PgServer, URL_VAR, bindir, psql};

#[derive(Debug)]
struct Shared {
    /// URL of the `postgres` database (a URL without the database name's path part changed).
    admin_url: String,
    bindir: PathBuf,
    _server: Option<PgServer>,
}

static SERVER: OnceLock<Result<Shared, Unavailable>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone)]
enum Unavailable {
    Skip(String),
    Fail(String),
}

/// A fresh, empty database for `test`: its URL. `Ok(None)` (after a loud `SKIPPED` line) when
/// no server can be had; an error when the configured server does not answer.
pub fn database(test: &str) -> Result<Option<String>, String> {
    let shared = match SERVER.get_or_init(find_or_start) {
        Ok(shared) => shared,
        Err(Unavailable::Fail(e)) => return Err(e.clone()),
        Err(Unavailable::Skip(why)) => {
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED {test}: no PostgreSQL server ({why}). Run `cargo xtask ci`, or \
                 {INSTALL_HINT}, or set {URL_VAR}. ***"
            );
            return Ok(None);
        }
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let slug: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(30)
        .collect();
    let name = format!("t{}_{n}_{slug}", std::process::id());
    psql(&shared.bindir, &shared.admin_url, &format!("CREATE DATABASE \"{name}\""))?;
    Ok(Some(with_database(&shared.admin_url, &name)))
}

/// The directory of the server binaries and `psql` of the shared server.
pub fn server_bindir() -> Option<PathBuf> {
    match SERVER.get_or_init(find_or_start) {
        Ok(shared) => Some(shared.bindir.clone()),
        Err(_) => None,
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let (prefix, _) = base.rsplit_once('/').unwrap_or((base, ""));
    format!("{prefix}/{database}")
}

fn find_or_start() -> Result<Shared, Unavailable> {
    let bindir = match bindir() {
        Ok(dir) => dir,
        Err(e) => {
            return Err(if std::env::var_os(URL_VAR).is_some() {
                Unavailable::Fail(format!("{URL_VAR} is set but psql is missing: {e}"))
            } else {
                Unavailable::Skip(e)
            });
        }
    };
    if let Ok(url) = std::env::var(URL_VAR) {
        return match psql(&bindir, &url, "SELECT 1") {
            Ok(_) => Ok(Shared { admin_url: url, bindir, _server: None }),
            Err(e) => Err(Unavailable::Fail(format!("`{URL_VAR}` does not answer: {e}"))),
        };
    }
    // target/pg/<pid>: next to the test binary's target directory.
    let dir = clusters_dir("pg").join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let server = PgServer::start(&dir).map_err(Unavailable::Fail)?;
    Ok(Shared { admin_url: server.url("postgres"), bindir, _server: Some(server) })
}

/// `target/<name>`, next to the test binary's target directory, without the clusters of test
/// processes that have exited (a server dies with its process). Clusters are named
/// `<pid>` or `<pid>-<anything>`.
fn clusters_dir(name: &str) -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().find(|a| a.ends_with("target")).map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let parent = target.join(name);
    for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let pid = file_name.split('-').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    parent
}

/// A server of its own for `test`, for tests that stop or restart it (the shared one must stay
/// up for the others): its superuser URL is [`PgServer::url`]. `Ok(None)` after a loud
/// `SKIPPED` line without server binaries (`cargo xtask ci` fails before that).
pub fn own_server(test: &str) -> Result<Option<PgServer>, String> {
    if let Err(why) = bindir() {
        if std::env::var_os(URL_VAR).is_some() {
            return Err(format!("{URL_VAR} is set but the server binaries are missing: {why}"));
        }
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED {test}: no PostgreSQL server binaries ({why}); {INSTALL_HINT} ***"
        );
        return Ok(None);
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = clusters_dir("pg-own").join(format!("{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    PgServer::start(&dir).map(Some)
}
