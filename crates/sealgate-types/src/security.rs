//! The security vocabulary shared by discovery and the policy engine: what the probes found
//! about a recipient's domain (DANE status, MTA-STS mode, pins, downgrade memory) and about
//! the recipient (its OpenPGP key and S/MIME certificate). Discovery fills these from DNS,
//! HTTPS and key stores; `sealgate-policy` decides from them; tests build them by hand.
//! Defined once, here, so neither translates the other's words. Nothing here performs I/O.

use serde::{Deserialize, Serialize};

/// The DANE TLSA state of the recipient domain's MX hosts (RFC 7672 §2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaneStatus {
    /// DNSSEC-secure TLSA records with at least one usable record (usage 2 or 3).
    Valid,
    /// DNSSEC-secure TLSA records, none of them usable (only PKIX usages 0/1, or
    /// parameters that cannot match): RFC 7672 §2.2 makes TLS mandatory for such an MX but
    /// unauthenticated, so it is not verified TLS.
    Unusable,
    /// The zone is signed but publishes no TLSA records.
    SecureNoTlsa,
    /// The zone is unsigned: any TLSA records are ignored (RFC 7672 §2.2.1).
    Insecure,
    /// DNSSEC validation failed: a possible attack; the MX must not be used.
    Bogus,
    /// Not probed yet, or the lookup failed.
    #[default]
    Unknown,
}

impl DaneStatus {
    /// The evidence spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DaneStatus::Valid => "valid",
            DaneStatus::Unusable => "unusable",
            DaneStatus::SecureNoTlsa => "secure-no-tlsa",
            DaneStatus::Insecure => "insecure",
            DaneStatus::Bogus => "bogus",
            DaneStatus::Unknown => "unknown",
        }
    }
}

/// The MTA-STS policy mode in force for the domain (RFC 8461 §5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MtaStsMode {
    /// A valid (possibly cached) policy in `enforce` mode.
    Enforce,
    /// A policy in `testing` mode: failures are reported, not enforced.
    Testing,
    /// No policy, or a policy in `none` mode.
    None,
    /// Not probed yet, or the fetch failed with nothing cached.
    #[default]
    Unknown,
}

impl MtaStsMode {
    /// The evidence spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::Testing => "testing",
            MtaStsMode::None => "none",
            MtaStsMode::Unknown => "unknown",
        }
    }
}

/// What is known about the recipient's domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainEvidence {
    /// DANE TLSA state.
    pub dane: DaneStatus,
    /// MTA-STS mode.
    pub mta_sts: MtaStsMode,
    /// Certificate fingerprints (SHA-256, hex) pinned by the operator for this domain, as
    /// stored outside the rules (e.g. by the API). Empty: no pin.
    pub pins: Vec<String>,
    /// Whether an MX of the domain offered STARTTLS when last seen.
    pub starttls_seen: bool,
    /// Downgrade memory: the domain was once seen with verified TLS (DANE or MTA-STS
    /// enforce).
    pub seen_verified_before: bool,
    /// The operator's route that carries the domain's mail instead of its MX hosts
    /// (`[[delivery.route]]`); the MX facts above are then not probed.
    pub route: Option<RouteEvidence>,
}

/// A route of the operator's (`[[delivery.route]]`) that carries a domain's mail: verified
/// TLS for the domain means what the route demands of its hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEvidence {
    /// The route's name.
    pub name: String,
    /// What its hosts must prove, e.g. "pinned TLS to [192.0.2.7]:25".
    pub tls: String,
    /// Why the route gives no verified TLS now; `None` when it does.
    pub unverified: Option<String>,
}

impl DomainEvidence {
    /// Whether the domain shows verified TLS from DNS or HTTPS now (pins aside), or its
    /// route demands verified TLS of its hosts.
    pub fn shows_verified_tls(&self) -> bool {
        if let Some(r) = &self.route {
            return r.unverified.is_none();
        }
        self.dane == DaneStatus::Valid || self.mta_sts == MtaStsMode::Enforce
    }

    /// The domain once showed verified TLS and now shows none: a possible downgrade attack.
    /// Never for a routed domain: its MX hosts are not what the mail goes to.
    pub fn downgraded(&self) -> bool {
        self.route.is_none() && self.seen_verified_before && !self.shows_verified_tls()
    }
}

/// Why a key or certificate that was found cannot be used for encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unusable {
    /// Past its expiry.
    Expired,
    /// Revoked by its owner or issuer.
    Revoked,
    /// Has no encryption-capable (sub)key or key usage.
    SigningOnly,
    /// Fails validation otherwise (untrusted chain, malformed).
    Invalid,
}

impl Unusable {
    /// The evidence spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unusable::Expired => "expired",
            Unusable::Revoked => "revoked",
            Unusable::SigningOnly => "signing-only",
            Unusable::Invalid => "invalid",
        }
    }
}

/// The state of a recipient's OpenPGP key or S/MIME certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Credential {
    /// Nothing found.
    #[default]
    Absent,
    /// Found and usable for encryption.
    Usable {
        /// Key or certificate fingerprint (hex).
        fingerprint: String,
    },
    /// Found but not usable.
    Unusable {
        /// Key or certificate fingerprint (hex).
        fingerprint: String,
        /// Why it cannot be used.
        reason: Unusable,
    },
}

impl Credential {
    /// Whether it can be used to encrypt.
    pub fn is_usable(&self) -> bool {
        matches!(self, Credential::Usable { .. })
    }

    /// One evidence phrase: `usable (FPR)`, `absent`, `revoked (FPR)`.
    pub fn describe(&self) -> String {
        match self {
            Credential::Absent => "none found".to_owned(),
            Credential::Usable { fingerprint } => format!("usable ({fingerprint})"),
            Credential::Unusable {
                fingerprint,
                reason,
            } => format!("{} ({fingerprint})", reason.as_str()),
        }
    }
}

/// What is known about one recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecipientEvidence {
    /// The recipient's OpenPGP key.
    pub pgp: Credential,
    /// The recipient's S/MIME certificate.
    pub smime: Credential,
}
