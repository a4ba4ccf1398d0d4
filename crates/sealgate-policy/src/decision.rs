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
/// Invariant: `chain` is never empty and ends with [`Method::Portal`]; when `level` is
/// [`Level::Required`] it never holds [`Method::TlsOpportunistic`].
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
        // The chain always ends with the portal, so it is never empty.
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
