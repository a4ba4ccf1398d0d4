//! The audit crate's one error type.

use sealgate_store::StoreError;

/// Why an audit operation could not run. A broken chain is not an error: it is reported in
/// [`crate::VerifyReport`].
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading the log (or waiting for new rows) failed.
    #[error("reading the audit log failed")]
    Store(#[from] StoreError),
}

impl AuditError {
    /// True when the database is unavailable for now (retry later).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
        }
    }
}
