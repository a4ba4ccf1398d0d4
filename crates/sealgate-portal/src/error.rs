//! The portal's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong serving the portal. Handlers answer every error with a generic page
/// (500 or 503); the detail goes to the log, never message content, tokens or codes.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The database failed or was unreachable.
    #[error("portal storage failed: {0}")]
    Store(#[from] sealgate_store::StoreError),
    /// Queueing a code email, reply or read receipt failed.
    #[error("queueing a portal message failed: {0}")]
    Queue(#[from] sealgate_queue::QueueError),
    /// Opening or sealing portal content failed (wrong master key, tampered row).
    #[error("portal content could not be opened or sealed: {0}")]
    Crypto(#[from] sealgate_crypto::CryptoError),
    /// The operating system's random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
    /// The certificate or key for HTTPS could not be loaded.
    #[error("portal TLS file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS configuration was refused by rustls.
    #[error("portal TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} for the portal")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl PortalError {
    /// True when retrying later may succeed (the database is unavailable): answered with 503.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Queue(e) => e.is_transient(),
            _ => false,
        }
    }
}
