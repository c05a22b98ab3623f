//! The connection pool and its runtime.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};

use crate::settings::PgSettings;

/// The smallest pool: an approval resolution holds one connection (its row) while the audit
/// events it writes take another.
pub const MIN_POOL_SIZE: usize = 2;

/// Why the database could not be used. Messages name the database as
/// `postgres://USER@HOST:PORT/DATABASE`, never with its password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database cannot be reached, or did not answer in time; worth retrying.
    #[error("database {url} is unavailable: {detail}")]
    Unavailable {
        /// The database, without password.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The database refused a statement.
    #[error("database {url}: {detail}")]
    Statement {
        /// The database, without password.
        url: String,
        /// The server's message and SQLSTATE.
        detail: String,
    },
    /// The schema is older than this build needs.
    #[error(
        "database {url} has schema version {found}; this agent-safe needs version {needed}: run \
         `agent-safe db migrate`"
    )]
    SchemaTooOld {
        /// The database, without password.
        url: String,
        /// Its schema version (0: never migrated).
        found: u32,
        /// The version this build needs.
        needed: u32,
    },
    /// The schema is newer than this build knows.
    #[error(
        "database {url} has schema version {found}, newer than this agent-safe knows \
         (version {known}): upgrade agent-safe to a release that knows version {found}"
    )]
    SchemaTooNew {
        /// The database, without password.
        url: String,
        /// Its schema version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The pool or its runtime could not be set up.
    #[error("cannot set up the database connection pool: {0}")]
    Setup(String),
}

impl DbError {
    /// Whether retrying later may succeed (the database is down or slow).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A connection pool, cheap to clone. Its calls block: use it from synchronous code or a
/// blocking thread (`spawn_blocking`), never from an async task.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// Drives the pool's connections; shut down in the background on drop, so dropping the
    /// last handle is fine anywhere.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    url: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({})", self.inner.url)
    }
}

impl Database {
    /// A pool for `settings`. Connects lazily: an unreachable database is reported by the
    /// first call, not here.
    pub fn connect(settings: &PgSettings) -> Result<Self, DbError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("agent-safe-pg")
            .enable_all()
            .build()
            .map_err(|e| DbError::Setup(e.to_string()))?;
        let mut config = settings.url.config().clone();
        config.connect_timeout(settings.connect_timeout);
        let timeout = format!("-c statement_timeout={}", settings.statement_timeout.as_millis());
        let options = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {timeout}"),
            _ => timeout,
        };
        config.options(&options);
        config.application_name("agent-safe");
        let tls =
            agent_safe_http::tls_client_config().map_err(|e| DbError::Setup(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(MIN_POOL_SIZE))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| DbError::Setup(e.to_string()))?;
        let url = settings.url.to_string();
        Ok(Self { inner: Arc::new(Inner { runtime: Some(runtime), pool, url }) })
    }

    /// Whether the database answers now: a connection from the pool (made anew when the
    /// pooled ones broke) and `SELECT 1`.
    pub fn ping(&self) -> Result<(), DbError> {
        self.run(async |c| c.simple_query("SELECT 1").await.map(|_| ()))
    }

    /// The database, as messages show it (no password).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Runs `f` with a pooled connection and waits for it. Callable from anywhere: from a
    /// thread that is running async code (a runtime's worker, where blocking on another
    /// runtime would panic) the wait happens on a thread of its own.
    pub(crate) fn run<T: Send>(
        &self,
        f: impl AsyncFnOnce(&mut Object) -> Result<T, tokio_postgres::Error> + Send,
    ) -> Result<T, DbError> {
        self.block(|runtime| {
            runtime.block_on(async {
                let mut client = self.inner.pool.get().await.map_err(|e| self.pool_error(e))?;
                f(&mut client).await.map_err(|e| self.error(&e))
            })
        })?
    }

    /// One pooled connection held for several statements run from synchronous code, for a
    /// transaction whose steps are not all SQL (see [`Session`]).
    pub(crate) fn session(&self) -> Result<Session<'_>, DbError> {
        let client = self.block(|runtime| {
            runtime.block_on(async { self.inner.pool.get().await.map_err(|e| self.pool_error(e)) })
        })??;
        Ok(Session { db: self, client: Some(client), in_transaction: false })
    }

    /// Runs `work` with the pool's runtime, on this thread, or on a thread of its own when
    /// this one is running async code.
    fn block<T: Send>(
        &self,
        work: impl FnOnce(&tokio::runtime::Runtime) -> T + Send,
    ) -> Result<T, DbError> {
        let Some(runtime) = &self.inner.runtime else {
            return Err(DbError::Setup("the pool is shut down".to_owned()));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(work(runtime));
        }
        std::thread::scope(|s| s.spawn(|| work(runtime)).join())
            .map_err(|_| DbError::Setup("a database call panicked".to_owned()))
    }

    /// Classifies a driver error: connection trouble is [`DbError::Unavailable`], a refused
    /// statement [`DbError::Statement`].
    pub(crate) fn error(&self, e: &tokio_postgres::Error) -> DbError {
        classify(&self.inner.url, e)
    }

    fn pool_error(&self, e: PoolError) -> DbError {
        pool_error(&self.inner.url, e)
    }

    /// A connection of its own, out of the pool (it is closed when dropped, never returned):
    /// for session state such as an advisory lock. Awaited on the caller's runtime.
    pub(crate) async fn detached(&self) -> Result<deadpool_postgres::ClientWrapper, DbError> {
        let client = self.inner.pool.get().await.map_err(|e| self.pool_error(e))?;
        Ok(Object::take(client))
    }

    /// What a background task needs: the pool and the URL to name in errors.
    pub(crate) fn pool(&self) -> (Pool, String) {
        (self.inner.pool.clone(), self.inner.url.clone())
    }

    /// Runs `task` on the pool's runtime, in the background.
    pub(crate) fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), DbError> {
        let Some(runtime) = &self.inner.runtime else {
            return Err(DbError::Setup("the pool is shut down".to_owned()));
        };
        drop(runtime.spawn(task));
        Ok(())
    }
}

/// [`Database::error`] for code without a [`Database`] (background tasks).
pub(crate) fn classify(url: &str, e: &tokio_postgres::Error) -> DbError {
    let url = url.to_owned();
    match e.as_db_error() {
        // 08: connection exception; 57P01-57P03: shutdown, crash, cannot connect now;
        // 57014: statement timeout (query_canceled); 53: insufficient resources.
        Some(db)
            if !matches!(&db.code().code()[..2], "08" | "53")
                && !matches!(db.code().code(), "57P01" | "57P02" | "57P03" | "57014") =>
        {
            DbError::Statement { url, detail: format!("{} ({})", db.message(), db.code().code()) }
        }
        Some(db) => {
            DbError::Unavailable { url, detail: format!("{} ({})", db.message(), db.code().code()) }
        }
        None => DbError::Unavailable { url, detail: chain(e) },
    }
}

/// A pool error, classified as [`classify`] does.
pub(crate) fn pool_error(url: &str, e: PoolError) -> DbError {
    match e {
        PoolError::Backend(e) => classify(url, &e),
        PoolError::Timeout(kind) => DbError::Unavailable {
            url: url.to_owned(),
            detail: format!("no connection in time ({kind:?})"),
        },
        other => DbError::Unavailable { url: url.to_owned(), detail: other.to_string() },
    }
}

/// An error and its causes, `: `-separated (tokio-postgres puts the I/O error in the source).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}

/// A pooled connection held by synchronous code between statements (see
/// [`Database::session`]). A transaction begun and not committed is rolled back when the
/// session is dropped; a connection that cannot roll back is closed, never returned to the
/// pool mid-transaction.
pub(crate) struct Session<'a> {
    db: &'a Database,
    client: Option<Object>,
    in_transaction: bool,
}

impl Session<'_> {
    /// Runs `f` on the held connection and waits for it.
    pub(crate) fn run<T: Send>(
        &mut self,
        f: impl AsyncFnOnce(&mut Object) -> Result<T, tokio_postgres::Error> + Send,
    ) -> Result<T, DbError> {
        let db = self.db;
        let Some(client) = self.client.as_mut() else {
            return Err(DbError::Setup("the session's connection was closed".to_owned()));
        };
        db.block(|runtime| runtime.block_on(async { f(client).await.map_err(|e| db.error(&e)) }))?
    }

    /// `BEGIN`: what follows is one transaction, committed by [`Session::commit`].
    pub(crate) fn begin(&mut self) -> Result<(), DbError> {
        self.run(async |c| c.batch_execute("BEGIN").await)?;
        self.in_transaction = true;
        Ok(())
    }

    /// `COMMIT`.
    pub(crate) fn commit(mut self) -> Result<(), DbError> {
        let committed = self.run(async |c| c.batch_execute("COMMIT").await);
        if committed.is_ok() {
            self.in_transaction = false;
        }
        committed
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.in_transaction
            && self.run(async |c| c.batch_execute("ROLLBACK").await).is_err()
            && let Some(client) = self.client.take()
        {
            // Out of the pool: dropping it closes the connection.
            drop(Object::take(client));
        }
    }
}
