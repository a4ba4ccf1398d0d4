//! Queue errors, each with its class.

/// What went wrong in a queue operation.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database failed or was unreachable.
    #[error("queue storage failed: {0}")]
    Store(#[from] sealgate_store::StoreError),
    /// Sealing or opening a body failed.
    #[error("sealing failed: {0}")]
    Crypto(#[from] sealgate_crypto::CryptoError),
    /// No such message.
    #[error("message {0} not found")]
    NotFound(String),
    /// A stored message id that is not a queue id (a UUID): never read as another id.
    #[error("message id {id:?} is not a queue id: {source}")]
    BadId {
        /// The id as stored.
        id: String,
        /// Why it does not parse.
        source: uuid::Error,
    },
    /// Another writer changed what this operation depended on; nothing was written.
    #[error("queue changed underneath: {0}")]
    Conflict(String),
}

impl QueueError {
    /// True when retrying later may succeed (database down, pool exhausted). SMTP maps this to
    /// 451 4.3.0; everything else is also answered with a 4xx, since a client's message must
    /// never be refused permanently for our own fault.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Conflict(_) => true,
            Self::Crypto(_) | Self::NotFound(_) | Self::BadId { .. } => false,
        }
    }

    /// True when the database had no disk space for the change (nothing was written; it
    /// succeeds once space is freed). SMTP maps this to 452 4.3.1 (RFC 3463: mail system full).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_full())
    }
}
