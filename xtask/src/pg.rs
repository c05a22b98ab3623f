//! The PostgreSQL server of `cargo xtask ci`'s tests: started from the machine's server
//! binaries by the test kit's launcher (the same file, compiled here too), data under
//! `target/pg/xtask`, its URL handed to the tests in `AGENT_SAFE_TEST_DATABASE_URL`, stopped
//! at the end. Without the binaries the step fails, saying how to install them.

use std::path::Path;

use anyhow::Context as _;

#[path = "../../crates/agent-safe-testkit/src/pg_server.rs"]
#[allow(dead_code, reason = "the test kit's launcher; xtask uses part of it")]
mod pg_server;

pub(crate) use pg_server::URL_VAR;

/// Runs `f` with the URL of a fresh server's `postgres` database.
pub(crate) fn with_postgres<T>(
    root: &Path,
    f: impl FnOnce(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = crate::target_dir(root).join("pg").join("xtask");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let server = pg_server::PgServer::start(&dir)
        .map_err(|e| anyhow::anyhow!("cannot start PostgreSQL for the tests: {e}"))?;
    let result = f(&server.url("postgres"));
    drop(server);
    result
}
