//! Ingress errors (set-up failures; per-session problems become SMTP replies).

use std::path::PathBuf;

/// What can stop ingress from starting or a listener from running.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// A TLS certificate or key file could not be read or parsed.
    #[error("tls file {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[[relay.tenant]]` file (networks, secret) could not be read or used.
    #[error("relay tenant file {path}: {reason}")]
    TenantFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[[relay.tenant]]`'s sender rules do not parse.
    #[error("relay tenant {tenant}: {source}")]
    TenantSenders {
        /// The tenant's name.
        tenant: String,
        /// What is wrong with its rules.
        source: sealgate_types::SenderRuleError,
    },
    /// rustls refused the certificate/key pair.
    #[error("tls configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The AUTH guard could not be set up (no randomness for its key).
    #[error("auth guard: {0}")]
    Crypto(#[source] sealgate_crypto::CryptoError),
}
