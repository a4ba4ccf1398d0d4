//! Crypto errors.

use std::path::PathBuf;

/// What went wrong sealing, opening, or handling keys.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file could not be read or created.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file's content is not a key ring.
    #[error("key file {path} line {line}: {reason}")]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The key file holds no key.
    #[error("key file {0} holds no key")]
    NoKey(PathBuf),
    /// A sealed blob names a key that is not in the ring.
    #[error("sealed with key {0:?}, which is not in the key ring")]
    UnknownKey(String),
    /// A sealed blob is truncated or not ours.
    #[error("sealed data is malformed")]
    Malformed,
    /// Authentication failed: wrong key, wrong message id, or tampered data.
    #[error("sealed data failed authentication")]
    Authentication,
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Password(String),
}
