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

/// What failed when delivery tried a decision's chosen method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// No MX host passed verification (DANE, MTA-STS or a pin) at connect time; nothing was
    /// sent.
    VerifiedTls {
        /// Why, as delivery saw it.
        why: String,
    },
    /// No MX host offered STARTTLS with TLS 1.2 or later and a certificate valid under the
    /// WebPKI for its name; nothing was sent.
    AuthenticatedTls {
        /// Why, as delivery saw it.
        why: String,
    },
    /// Encrypting to the recipient's key or certificate failed at send time (it expired, was
    /// revoked, or the content could not be wrapped).
    Encryption {
        /// The method that failed (`pgp` or `smime`).
        method: Method,
        /// Why, naming the method (as delivery words it: `pgp failed: …`).
        why: String,
    },
}

impl Decision {
    /// The decision once `failed` has happened to it, or `None` when nothing is left to try
    /// now (the recipient waits). The walk down the chain lives here, not in delivery:
    ///
    /// - after a failed encryption, the failed method goes and the next one is chosen;
    /// - after failed verified TLS (or failed authenticated TLS), that method and everything
    ///   before it go, and so does `tls-opportunistic`: unauthenticated TLS is never the
    ///   fallback of a failed verification, since it is what an attacker who broke the
    ///   verification would leave us — at any level. (`tls-authenticated` follows a failed
    ///   `tls-verified` only when the operator allowed it: the chain holds it only then.)
    ///
    /// The chain only shrinks (what is left keeps its order), so no method the rules left out
    /// ever comes back, and at level `required` nothing unprotected can be chosen. The
    /// evidence gains one line saying what failed and where the recipient goes.
    pub fn after(&self, failed: &Failed) -> Option<Decision> {
        let (chain, what): (Vec<Method>, String) = match failed {
            Failed::VerifiedTls { why } => (
                self.after_transport(Method::TlsVerified),
                format!("tls-verified failed: {why}"),
            ),
            Failed::AuthenticatedTls { why } => (
                self.after_transport(Method::TlsAuthenticated),
                format!("tls-authenticated failed: {why}"),
            ),
            Failed::Encryption { method, why } => {
                let chain = self.chain.iter().copied().filter(|m| m != method).collect();
                (chain, why.clone())
            }
        };
        let mut next = self.clone();
        next.chain = chain;
        let head = *next.chain.first()?;
        next.evidence
            .push(format!("{what}; falls to the next method: {head}"));
        Some(next)
    }

    /// The chain after transport `failed`: what follows it, without `tls-opportunistic`.
    fn after_transport(&self, failed: Method) -> Vec<Method> {
        let rest = match self.chain.iter().position(|m| *m == failed) {
            Some(i) => &self.chain[i + 1..],
            None => &self.chain[..],
        };
        rest.iter()
            .copied()
            .filter(|m| *m != Method::TlsOpportunistic)
            .collect()
    }

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
