//! Errors of parsing credentials and encrypting.

/// What went wrong reading a credential or encrypting a message.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// The input is not a credential (or message) this crate can read.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The credential is readable but must not be used.
    #[error("{fingerprint}: {problem}")]
    Unusable {
        /// The key or certificate fingerprint.
        fingerprint: String,
        /// Why.
        problem: crate::Problem,
    },
    /// The organisation's own signing or archive key cannot be used.
    #[error("organisation key: {0}")]
    OrgKey(String),
    /// The cryptographic library failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl From<openssl::error::ErrorStack> for EncryptError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        EncryptError::Crypto(format!("openssl: {e}"))
    }
}
