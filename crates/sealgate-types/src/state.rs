//! Recipient states in the durable queue.

use std::fmt;
use std::str::FromStr;

/// Where one recipient of one message stands. Stored as its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    /// Accepted and waiting for (another) delivery attempt.
    Queued,
    /// Claimed by a delivery worker under a lease.
    Inflight,
    /// A temporary failure happened; retried at `next_attempt_at`.
    Deferred,
    /// The next hop accepted the message.
    Delivered,
    /// Permanently failed; a DSN went (or was not due) to the sender.
    Bounced,
}

impl RecipientState {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Inflight => "inflight",
            Self::Deferred => "deferred",
            Self::Delivered => "delivered",
            Self::Bounced => "bounced",
        }
    }

    /// True once nothing more will happen to this recipient.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Delivered | Self::Bounced)
    }
}

impl fmt::Display for RecipientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A stored state name that is not one of ours.
#[derive(Debug, thiserror::Error)]
#[error("unknown recipient state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for RecipientState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Self::Queued,
            "inflight" => Self::Inflight,
            "deferred" => Self::Deferred,
            "delivered" => Self::Delivered,
            "bounced" => Self::Bounced,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}
