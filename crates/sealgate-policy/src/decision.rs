//! The result of [`crate::decide`]: what to do for one recipient, and why.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::method::{Level, Method};

/// Which rule set the level or forced method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The org default (lowest precedence).
    Default,
    /// A content trigger: subject tag, the security header, or a DLP pattern.
    ContentTrigger,
    /// A per-domain override.
    DomainOverride,
    /// A per-address override.
    AddressOverride,
    /// The sender's REQUIRETLS (RFC 8689): raises the level above every rule.
    Requiretls,
    /// A message Sealgate wrote itself without protected content (a portal notice): no rule
    /// applies, protection is not required.
    PhiFree,
}

impl Source {
    /// The evidence spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "org default",
            Source::ContentTrigger => "content trigger",
            Source::DomainOverride => "domain override",
            Source::AddressOverride => "address override",
            Source::Requiretls => "REQUIRETLS (RFC 8689)",
            Source::PhiFree => "phi-free",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one recipient: audited (`decision`) before delivery.
///
/// Invariants: `chain` is never empty; when `level` is [`Level::Required`] it never holds
/// [`Method::TlsOpportunistic`]. For a message with protected content it ends with
/// [`Method::Portal`]. For a phi-free message (a portal notice, [`Source::PhiFree`]) it holds
/// only `tls-verified` (when available) then `tls-opportunistic` — never the portal, PGP or
/// S/MIME; when neither can be used (a DNSSEC-bogus domain, or REQUIRETLS without verified
/// TLS) it is `tls-verified` alone, which cannot connect, so the message waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether protection is required.
    pub level: Level,
    /// The rule that set `level`.
    pub level_source: Source,
    /// The method some rule forced first, and which rule; it leads `chain` only when it was
    /// available.
    pub forced: Option<(Method, Source)>,
    /// Ordered fallback chain: the first is the chosen method, each next one is tried when the
    /// previous fails at delivery time.
    pub chain: Vec<Method>,
    /// Pinned certificate fingerprints the TLS worker must match (sorted, no duplicates).
    pub pins: Vec<String>,
    /// What was probed, what was found, which rules fired and why each preferred method was
    /// not chosen; one line each, in a fixed order.
    pub evidence: Vec<String>,
    /// Conditions the audit must raise as alerts (possible downgrade attack).
    pub alerts: Vec<String>,
    /// Header fields (names) to remove before sending.
    pub strip_headers: Vec<String>,
    /// The subject tag, exactly as it appears in the subject, to remove before sending.
    pub subject_tag_to_remove: Option<String>,
}

impl Decision {
    /// The chosen method: the head of the chain.
    pub fn chosen(&self) -> Method {
        // The chain is never empty (see the invariants above).
        self.chain.first().copied().unwrap_or(Method::Portal)
    }

    /// The evidence and alerts as text, one line each, for `sealgate check` and tests.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for line in &self.evidence {
            out.push_str(line);
            out.push('\n');
        }
        for alert in &self.alerts {
            out.push_str("ALERT ");
            out.push_str(alert);
            out.push('\n');
        }
        out
    }
}
