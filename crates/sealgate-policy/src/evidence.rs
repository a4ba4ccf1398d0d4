//! Evidence: what the probes found (the shared vocabulary of `sealgate_types::security`,
//! re-exported here) and the facts of the message, handed to [`crate::decide`] as plain data.

use serde::{Deserialize, Serialize};

pub use sealgate_types::security::{
    Credential, DaneStatus, DomainEvidence, MtaStsMode, RecipientEvidence, RouteEvidence, Unusable,
};

/// The facts of a message that content triggers look at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessageFacts {
    /// The decoded `Subject`.
    pub subject: String,
    /// Header fields as (name, unfolded value), in message order.
    pub headers: Vec<(String, String)>,
    /// A sample of the decoded body text for DLP patterns.
    pub body_sample: String,
    /// The sender asked for REQUIRETLS (RFC 8689): protection is required whatever the rules
    /// say, and only methods that keep it (never opportunistic TLS).
    pub requiretls: bool,
    /// The message is one Sealgate wrote itself without protected content (a portal notice
    /// or one-time code): protection is not required whatever the rules say, and it travels
    /// only by TLS — verified when the domain offers it, else opportunistic — never by the
    /// portal (a notice about the portal must not itself go to the portal) or encryption.
    pub phi_free: bool,
}

impl MessageFacts {
    /// Values of every header named `name` (ASCII case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}
