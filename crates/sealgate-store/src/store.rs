//! The [`Store`] handle: connecting, migrating, closing.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AssertSqlSafe, Connection, Executor, SqlSafeStr, Transaction};

use crate::error::StoreError;

/// Which database is behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the default under `./data/`).
    Sqlite,
    /// A PostgreSQL server, possibly shared by several relay nodes.
    Postgres,
}

/// Set on every new SQLite connection. WAL lets readers run beside the one writer;
/// `synchronous=FULL` makes every commit durable, because an accepted message must survive
/// power loss; the busy timeout (10 s) makes writers queue for the write lock instead of
/// failing at once (past it the error is "unavailable": 451 4.3.0).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON;";

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "delay_warning",
        include_str!("../../../migrations/sqlite/0002_delay_warning.sql"),
    ),
    (
        3,
        "policy",
        include_str!("../../../migrations/sqlite/0003_policy.sql"),
    ),
    (
        4,
        "keys",
        include_str!("../../../migrations/sqlite/0004_keys.sql"),
    ),
    (
        5,
        "portal",
        include_str!("../../../migrations/sqlite/0005_portal.sql"),
    ),
    (
        6,
        "sending",
        include_str!("../../../migrations/sqlite/0006_sending.sql"),
    ),
    (
        7,
        "user_senders",
        include_str!("../../../migrations/sqlite/0007_user_senders.sql"),
    ),
    (
        8,
        "holds",
        include_str!("../../../migrations/sqlite/0008_holds.sql"),
    ),
    (
        9,
        "dkim_keys",
        include_str!("../../../migrations/sqlite/0009_dkim_keys.sql"),
    ),
    (
        10,
        "api_keys",
        include_str!("../../../migrations/sqlite/0010_api_keys.sql"),
    ),
    (
        11,
        "idempotency",
        include_str!("../../../migrations/sqlite/0011_idempotency.sql"),
    ),
    (
        12,
        "webhooks",
        include_str!("../../../migrations/sqlite/0012_webhooks.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "delay_warning",
        include_str!("../../../migrations/postgres/0002_delay_warning.sql"),
    ),
    (
        3,
        "policy",
        include_str!("../../../migrations/postgres/0003_policy.sql"),
    ),
    (
        4,
        "keys",
        include_str!("../../../migrations/postgres/0004_keys.sql"),
    ),
    (
        5,
        "portal",
        include_str!("../../../migrations/postgres/0005_portal.sql"),
    ),
    (
        6,
        "sending",
        include_str!("../../../migrations/postgres/0006_sending.sql"),
    ),
    (
        7,
        "user_senders",
        include_str!("../../../migrations/postgres/0007_user_senders.sql"),
    ),
    (
        8,
        "holds",
        include_str!("../../../migrations/postgres/0008_holds.sql"),
    ),
    (
        9,
        "dkim_keys",
        include_str!("../../../migrations/postgres/0009_dkim_keys.sql"),
    ),
    (
        10,
        "api_keys",
        include_str!("../../../migrations/postgres/0010_api_keys.sql"),
    ),
    (
        11,
        "idempotency",
        include_str!("../../../migrations/postgres/0011_idempotency.sql"),
    ),
    (
        12,
        "webhooks",
        include_str!("../../../migrations/postgres/0012_webhooks.sql"),
    ),
];

/// A handle on the database: a connection pool plus the backend it talks to. Cloning is cheap
/// and every clone shares the pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    url: Arc<str>,
    /// SQLite has one writer at a time. Writers of this process queue here, first come first
    /// served, before taking a pooled connection, instead of spinning in SQLite's busy handler
    /// (whose sleeps made tail latency spike under load). Other processes on the same file
    /// still meet the busy timeout. `None` on PostgreSQL.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    acquire_timeout: Duration,
}

/// A write transaction, holding the SQLite write gate (if any) until it ends.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits; the gate is released after the commit returns.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl std::fmt::Debug for Store {
    // The URL may carry a password, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool on `url` (`sqlite://./data/sealgate.db`, `sqlite:///abs/path.db`,
    /// `postgres://user@host/db`) and checks that one connection works. A SQLite file and its
    /// directory are created when missing.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        // Idempotent: only the first call installs the drivers.
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let connect_url = match backend {
            Backend::Sqlite => prepare_sqlite(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .after_release(|conn, _meta| Box::pin(still_usable(conn)))
            .connect(&connect_url)
            .await
            .map_err(StoreError::Connect)?;
        let write_gate =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store {
            pool,
            backend,
            url: url.into(),
            write_gate,
            acquire_timeout,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL this store was opened with (may contain a password: never log it).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Applies the embedded, forward-only migrations for this backend. Safe to call on every
    /// start: applied versions are skipped.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = self
            .migrations()
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(StoreError::Migrate)
    }

    /// The embedded migrations of this backend: `(version, name, sql)`, oldest first.
    pub(crate) fn migrations(&self) -> &'static [(i64, &'static str, &'static str)] {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        }
    }

    /// Operator and test escape hatch: runs `sql` as-is (several statements allowed) and
    /// returns the rows affected. Nothing in the relay calls it; tamper tests use it to drop
    /// the append-only triggers and edit audit rows.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await
            .map_err(StoreError::Raw)?;
        Ok(done.rows_affected())
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting up to the busy timeout) so it can never fail later on a lock
    /// upgrade; on PostgreSQL it is a plain `BEGIN` and the audit head row lock serialises.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let gate = match &self.write_gate {
            Some(g) => {
                let wait = tokio::time::timeout(self.acquire_timeout, g.clone().lock_owned());
                Some(wait.await.map_err(|_| sqlx::Error::PoolTimedOut)?)
            }
            None => None,
        };
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _gate: gate })
    }
}

/// Whether a connection coming back to the pool may be handed out again: not when it is
/// still inside a transaction. That happens when the database ended a transaction on its own:
/// SQLite rolls the whole transaction back when a write fails with `SQLITE_FULL` (disk full) or
/// an I/O error, the driver's `ROLLBACK` then fails ("no transaction is active") and the driver
/// still counts the transaction as open, so every later `BEGIN IMMEDIATE` on that connection
/// would fail, long after space was freed. Such a connection is closed; the pool opens a fresh
/// one when needed. Only a connection that still counts a transaction is pinged, which lets the
/// rollback queued by a dropped transaction finish; every other release costs no round trip.
async fn still_usable(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let usable = !conn.is_in_transaction();
    if !usable {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    Ok(usable)
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(StoreError::UnsupportedUrl {
            scheme: scheme.to_owned(),
        }),
    }
}

/// The file a SQLite URL points at, or `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates the database's directory and asks SQLite to create the file (`mode=rwc`) unless
/// the URL already says otherwise.
fn prepare_sqlite(url: &str) -> Result<String, StoreError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(url.to_owned());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(match url.split_once('?') {
        Some((_, q)) if q.split('&').any(|kv| kv.starts_with("mode=")) => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(
            backend_of("sqlite://./data/x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            backend_of("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            backend_of("mysql://u:secret@h/db"),
            Err(StoreError::UnsupportedUrl { scheme }) if scheme == "mysql"
        ));
    }

    #[test]
    fn sqlite_urls_name_relative_and_absolute_files() {
        assert_eq!(
            sqlite_path("sqlite://./data/sealgate.db"),
            Some(PathBuf::from("./data/sealgate.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/sg.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/sg.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn sqlite_urls_get_create_mode_unless_they_set_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = format!("sqlite://{}/sub/x.db", dir.path().display());
        assert_eq!(prepare_sqlite(&base).ok(), Some(format!("{base}?mode=rwc")));
        assert!(dir.path().join("sub").is_dir());
        let ro = format!("{base}?mode=ro");
        assert_eq!(prepare_sqlite(&ro).ok(), Some(ro.clone()));
        let other = format!("{base}?cache=private");
        assert_eq!(
            prepare_sqlite(&other).ok(),
            Some(format!("{other}&mode=rwc"))
        );
    }
}
