//! Throwaway databases for store-level tests: one fresh database per test, on each backend.
//!
//! SQLite databases are files in a temporary directory that lives as long as the [`TestDb`].
//! PostgreSQL databases are created on the cluster named by `DATABASE_URL` (the admin URL) with
//! a unique name; they are not dropped, because the test cluster itself is throwaway.

use sqlx::{AssertSqlSafe, Connection, Executor};

/// The backends every store test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL cluster at `DATABASE_URL`.
    Postgres,
}

/// Every backend, for tests that loop over them.
pub fn backends() -> [TestBackend; 2] {
    [TestBackend::Sqlite, TestBackend::Postgres]
}

/// A fresh, empty (unmigrated) database.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to open it with.
    pub url: String,
    /// Which backend it is on.
    pub backend: TestBackend,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates the database. Panics when it cannot: a test must never skip silently.
    pub async fn new(backend: TestBackend) -> TestDb {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("sealgate.db").display());
                TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                }
            }
            TestBackend::Postgres => {
                let admin = Self::admin_url();
                let name = format!("sealgate_t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the PostgreSQL at DATABASE_URL");
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .await
                    .expect("create a test database");
                let _ = conn.close().await;
                TestDb {
                    url: with_database(&admin, &name),
                    backend,
                    _dir: None,
                }
            }
        }
    }

    /// The PostgreSQL admin URL from `DATABASE_URL`; panics when it is not set.
    pub fn admin_url() -> String {
        std::env::var("DATABASE_URL").unwrap_or_else(|_| {
            panic!("DATABASE_URL is not set: run scripts/test, which starts a throwaway PostgreSQL")
        })
    }
}

/// `url` with its database (path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    match query {
        Some(q) => format!("{}/{name}?{q}", &base[..path]),
        None => format!("{}/{name}", &base[..path]),
    }
}

/// Turns `async fn case(backend: TestBackend)` scenarios into two tokio tests each,
/// `sqlite::case` and `postgres::case`. Start the list with `multi_thread:` for a four-worker
/// runtime (tests of concurrent writers).
#[macro_export]
macro_rules! on_each_backend {
    (multi_thread: $($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case($crate::db::TestBackend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case($crate::db::TestBackend::Postgres).await;
            })*
        }
    };
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $case() {
                super::$case($crate::db::TestBackend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $case() {
                super::$case($crate::db::TestBackend::Postgres).await;
            })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://pg@127.0.0.1:5432/postgres", "t1"),
            "postgres://pg@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://pg@h?sslmode=disable", "t1"),
            "postgres://pg@h/t1?sslmode=disable"
        );
    }
}
