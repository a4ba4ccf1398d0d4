//! The store's one error type.

use std::path::PathBuf;

/// What went wrong talking to the database. Every variant names the operation that failed and
/// carries the driver's error as its source. [`StoreError::is_unavailable`] tells transient
/// unavailability (retry later; SMTP 451 4.3.0) from everything else.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database url scheme {scheme:?} (expected sqlite: or postgres:)")]
    UnsupportedUrl {
        /// The scheme found (never the whole URL, which may hold a password).
        scheme: String,
    },
    /// The directory that should hold the SQLite file could not be created.
    #[error("cannot create database directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Opening the pool or its first connection failed.
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Writing a new message, its recipients and its audit record failed (nothing was written).
    #[error("enqueueing message {message_id} failed")]
    Enqueue {
        /// The queue id being written.
        message_id: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Appending to the audit chain failed.
    #[error("appending to the audit log failed")]
    AppendAudit(#[source] sqlx::Error),
    /// Reading the audit log or its head failed.
    #[error("reading the audit log failed")]
    ReadAudit(#[source] sqlx::Error),
    /// Reading messages or recipients failed.
    #[error("reading the queue failed")]
    ReadQueue(#[source] sqlx::Error),
    /// Reading or changing users failed.
    #[error("user {op} failed")]
    Users {
        /// `upsert`, `remove`, `list` or `lookup`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or changing API keys failed.
    #[error("API key {op} failed")]
    ApiKeys {
        /// `add`, `lookup`, `list` or `revoke`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or changing stored DKIM keys failed.
    #[error("DKIM key {op} failed")]
    DkimKeys {
        /// `add`, `list` or `remove`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or changing webhook endpoints or the webhook outbox failed.
    #[error("webhook {op} failed")]
    Webhooks {
        /// What was being done (`add endpoint`, `claim`, `settle`, `replay`, ...).
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or writing per-domain security state (downgrade memory, TLS-RPT counts) failed.
    #[error("domain security {op} failed")]
    Security {
        /// `read`, `mark-verified`, `forget`, `tls-rpt-record` or `tls-rpt-read`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or writing cached MTA-STS policies (RFC 8461 §5) failed.
    #[error("mta-sts policy {op} failed")]
    MtaSts {
        /// `get`, `put` or `expiring`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or changing recipients' stored keys and certificates failed (nothing was written).
    #[error("recipient key {op} failed")]
    Keys {
        /// `put`, `for`, `list` or `remove`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Claiming, settling or releasing recipients under a lease failed (nothing was written).
    #[error("queue {op} failed")]
    Lease {
        /// `claim`, `settle`, `release`, `reschedule`, `mark` or `note`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or changing the secure portal's messages, grants or sessions failed (nothing
    /// was written).
    #[error("portal {op} failed")]
    Portal {
        /// `deposit`, `read`, `set-code`, `fail-attempt`, `open-session`, `record`, `reply`,
        /// `revoke`, `extend` or `purge`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The caller handed over arguments that do not fit together (nothing was written).
    #[error("invalid store request: {what}")]
    Invalid {
        /// What does not fit.
        what: &'static str,
    },
    /// Listening for new audit rows failed.
    #[error("audit listener failed")]
    Listen(#[source] sqlx::Error),
    /// Reading the schema's state or granting the serving role failed.
    #[error("database schema {op} failed")]
    Schema {
        /// `status` or `grant`.
        op: &'static str,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A raw operator statement failed.
    #[error("raw statement failed")]
    Raw(#[source] sqlx::Error),
    /// A stored value is not one this version understands.
    #[error("stored {what} is invalid: {value:?}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

impl StoreError {
    /// True when the database is (for now) unreachable or overloaded rather than refusing the
    /// operation: connection, TLS and I/O errors, pool timeouts, a closed pool, SQLite busy,
    /// locked past the busy timeout or out of disk space, and PostgreSQL connection / resource /
    /// shutdown / retryable transaction errors. The caller should retry later (SMTP: 451 4.3.0;
    /// 452 4.3.1 when [`StoreError::is_full`]).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::CreateDir { .. } => true,
            Self::Migrate(
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
            ) => sqlx_unavailable(e),
            _ => self.driver_error().is_some_and(sqlx_unavailable),
        }
    }

    /// True when the database could not write because its disk is full: SQLite's
    /// `SQLITE_FULL`, PostgreSQL's SQLSTATE 53100 `disk_full`, or an I/O error saying so. Such
    /// an error is also [unavailable](StoreError::is_unavailable): nothing was written, and
    /// the same operation succeeds once space is freed. SMTP answers it with `452 4.3.1`
    /// (RFC 3463: mail system full).
    pub fn is_full(&self) -> bool {
        match self {
            Self::CreateDir { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            Self::Migrate(
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _),
            ) => sqlx_full(e),
            _ => self.driver_error().is_some_and(sqlx_full),
        }
    }

    /// The driver's error behind an operation that failed in the database.
    fn driver_error(&self) -> Option<&sqlx::Error> {
        match self {
            Self::Connect(e)
            | Self::Enqueue { source: e, .. }
            | Self::Lease { source: e, .. }
            | Self::AppendAudit(e)
            | Self::ReadAudit(e)
            | Self::ReadQueue(e)
            | Self::Users { source: e, .. }
            | Self::DkimKeys { source: e, .. }
            | Self::Webhooks { source: e, .. }
            | Self::ApiKeys { source: e, .. }
            | Self::MtaSts { source: e, .. }
            | Self::Keys { source: e, .. }
            | Self::Security { source: e, .. }
            | Self::Portal { source: e, .. }
            | Self::Schema { source: e, .. }
            | Self::Listen(e)
            | Self::Raw(e) => Some(e),
            Self::CreateDir { .. }
            | Self::Migrate(_)
            | Self::UnsupportedUrl { .. }
            | Self::Corrupt { .. }
            | Self::Invalid { .. } => None,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_code(&c)),
        _ => false,
    }
}

fn sqlx_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| full_code(&c)),
        _ => false,
    }
}

/// The SQLite primary result code of a numeric (possibly extended) code: its low byte.
fn sqlite_primary(code: &str) -> Option<i32> {
    if code.len() < 5 {
        code.parse::<i32>().ok().map(|n| n & 0xff)
    } else {
        None
    }
}

/// PostgreSQL reports a five-character SQLSTATE; SQLite its (extended) result code as a
/// number of at most four digits.
fn transient_code(code: &str) -> bool {
    if let Some(n) = sqlite_primary(code) {
        // SQLITE_BUSY 5, SQLITE_LOCKED 6, SQLITE_IOERR 10, SQLITE_FULL 13, SQLITE_CANTOPEN 14
        return matches!(n, 5 | 6 | 10 | 13 | 14);
    }
    // 08 connection exception, 53 insufficient resources, 57P01..57P03 shutdown / cannot connect
    // now, 40001 serialization failure, 40P01 deadlock.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// SQLITE_FULL (13, "database or disk is full"), or PostgreSQL's 53100 `disk_full`.
fn full_code(code: &str) -> bool {
    match sqlite_primary(code) {
        Some(n) => n == 13,
        None => code == "53100",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_io_errors_are_unavailable() {
        assert!(StoreError::Connect(sqlx::Error::PoolTimedOut).is_unavailable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(StoreError::AppendAudit(sqlx::Error::Io(io)).is_unavailable());
        assert!(!StoreError::ReadQueue(sqlx::Error::RowNotFound).is_unavailable());
    }

    #[test]
    fn sqlite_full_and_postgres_disk_full_are_full_and_transient() {
        for code in ["13", "53100"] {
            assert!(full_code(code), "{code}");
            assert!(transient_code(code), "{code}");
        }
        // Busy, I/O error, PostgreSQL out of memory / too many connections, a constraint, and
        // a five-digit SQLSTATE that only looks like a SQLite number: not "disk full".
        for code in ["5", "10", "14", "19", "53200", "53300", "23505", "13000"] {
            assert!(!full_code(code), "{code}");
        }
    }

    #[test]
    fn an_enqueue_or_claim_failing_for_disk_space_is_full_and_unavailable() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = StoreError::Enqueue {
            message_id: "m".into(),
            source: sqlx::Error::Io(full),
        };
        assert!(e.is_full() && e.is_unavailable());
        let dir = StoreError::CreateDir {
            path: "/full".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert!(dir.is_full() && dir.is_unavailable());
        let busy = StoreError::Lease {
            op: "claim",
            source: sqlx::Error::PoolTimedOut,
        };
        assert!(!busy.is_full() && busy.is_unavailable());
        assert!(!StoreError::ReadQueue(sqlx::Error::RowNotFound).is_full());
    }

    #[test]
    fn busy_locked_and_connection_codes_are_transient() {
        for code in ["5", "517", "6", "10", "08006", "53300", "57P01", "40P01"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["19", "2067", "23505", "P0001", "42P01"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}
