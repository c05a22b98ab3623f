//! Where the database is and how the pool behaves.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A `postgres://` (or `postgresql://`, or libpq `key=value`) connection string. `Debug` and
/// `Display` show `postgres://USER@HOST:PORT/DATABASE`, never the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    shown: String,
}

impl DatabaseUrl {
    /// The parsed connection settings (password included: do not log them).
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    /// Parses a connection string; the error never quotes it (it may hold a password).
    fn from_str(text: &str) -> Result<Self, String> {
        let config = tokio_postgres::Config::from_str(text.trim())
            .map_err(|e| format!("invalid database URL: {}", scrub(&e.to_string(), text)))?;
        if config.get_hosts().is_empty() {
            return Err("invalid database URL: it names no host".to_owned());
        }
        let shown = describe(&config);
        Ok(Self { config, shown })
    }
}

/// `message` without any occurrence of the URL's password (tokio-postgres's parse errors name
/// the option they could not read, not its value, but make sure).
fn scrub(message: &str, url: &str) -> String {
    match tokio_postgres::Config::from_str(url)
        .ok()
        .and_then(|c| c.get_password().map(<[u8]>::to_vec))
    {
        Some(password) if !password.is_empty() => {
            message.replace(&*String::from_utf8_lossy(&password), "***")
        }
        _ => message.to_owned(),
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().unwrap_or_else(|| config.get_user().unwrap_or("postgres"));
    format!("postgres://{user}{host}:{port}/{db}")
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown)
    }
}

/// The database and the pool's limits.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Where the database is.
    pub url: DatabaseUrl,
    /// Connections kept at most (default 16; at least [`crate::MIN_POOL_SIZE`]).
    pub pool_size: usize,
    /// Longest a statement may run before the server cancels it (default 5 s).
    pub statement_timeout: Duration,
    /// Longest to wait for a connection, new or from the pool (default 5 s).
    pub connect_timeout: Duration,
}

impl PgSettings {
    /// `url` with the default limits.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}
