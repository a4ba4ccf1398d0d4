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
    /// Delivered, and then the recipient's side sent it back (a bounce to our return path,
    /// tied to this recipient): the address does not work. A DSN went to the sender.
    Returned,
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
            Self::Returned => "returned",
        }
    }

    /// True once nothing more will happen to this recipient.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Delivered | Self::Bounced | Self::Returned)
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
            "returned" => Self::Returned,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}

/// Why a recipient waits by policy rather than because of the remote side: the method its
/// decision chose cannot be carried out here now. The recipient stays `deferred` (retried,
/// warned about and bounced on the queue's schedule, never sent by a weaker method); the hold
/// is recorded on its row and in its `deferred` audit record, so that `queue list --state held`,
/// DSNs and the audit can tell a hold from a remote 4xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HoldReason {
    /// The decision chose the secure portal and this node has none (`[portal] enabled = false`).
    PortalDisabled,
    /// The decision's chain reached the secure portal for a message Sealgate wrote itself
    /// (a notice or one-time code), which never goes there.
    NoPortalForNotices,
    /// Every method of the decision's chain failed or was ruled out at send time.
    NoMethodLeft,
}

impl HoldReason {
    /// The stored and audited name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PortalDisabled => "portal-disabled",
            Self::NoPortalForNotices => "no-portal-for-notices",
            Self::NoMethodLeft => "no-method-left",
        }
    }

    /// What an operator or sender is told.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PortalDisabled => {
                "the policy chose the secure portal, which is not enabled on this relay"
            }
            Self::NoPortalForNotices => {
                "the policy chose the secure portal, where Sealgate's own notices never go"
            }
            Self::NoMethodLeft => "no method of the policy's chain can be taken now",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How one delivery attempt ended for one recipient: the one spelling of an attempt's result,
/// from the SMTP client's reading of a reply to the audit's `attempt` record and the queue's
/// settlement. Anything not clearly delivered, permanent or held is temporary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The next hop took responsibility (2xx after DATA), or the portal holds the message.
    Delivered,
    /// Try again later (4xx, connection trouble, timeouts). Unknown failures are temporary.
    #[default]
    Temporary,
    /// Never going to work (5xx, null MX, no such domain).
    Permanent,
    /// Nothing was sent: the policy holds the recipient (its chosen method cannot be carried
    /// out here now). Retried and bounced on the same schedule as a temporary failure, but
    /// recorded as a hold, with its reason.
    Held(HoldReason),
}

impl Outcome {
    /// A reply code's class: 2xx delivered, 5xx permanent, anything else temporary.
    pub fn of_reply_code(code: u16) -> Self {
        match code {
            200..=299 => Self::Delivered,
            500..=599 => Self::Permanent,
            _ => Self::Temporary,
        }
    }

    /// The audited name (`delivered`, `temporary`, `permanent`, `held`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Temporary => "temporary",
            Self::Permanent => "permanent",
            Self::Held(_) => "held",
        }
    }

    /// The policy's hold, for a held outcome.
    pub fn hold(&self) -> Option<HoldReason> {
        match self {
            Self::Held(h) => Some(*h),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Recorded as its audited name; the hold's reason travels in the `deferred` record.
impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::{HoldReason, Outcome};

    #[test]
    fn reply_codes_fall_into_three_classes() {
        assert_eq!(Outcome::of_reply_code(250), Outcome::Delivered);
        assert_eq!(Outcome::of_reply_code(451), Outcome::Temporary);
        assert_eq!(Outcome::of_reply_code(554), Outcome::Permanent);
        // Nonsense and intermediate replies are never final.
        assert_eq!(Outcome::of_reply_code(354), Outcome::Temporary);
        assert_eq!(Outcome::of_reply_code(0), Outcome::Temporary);
        assert_eq!(Outcome::of_reply_code(999), Outcome::Temporary);
    }

    #[test]
    fn a_hold_is_recorded_by_its_name_and_keeps_its_reason() {
        let held = Outcome::Held(HoldReason::PortalDisabled);
        assert_eq!(serde_json::to_string(&held).unwrap(), "\"held\"");
        assert_eq!(held.hold(), Some(HoldReason::PortalDisabled));
        assert_eq!(Outcome::Delivered.hold(), None);
    }
}
