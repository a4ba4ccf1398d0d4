//! Recipient key discovery: the OpenPGP certificate or S/MIME certificate to encrypt to.
//!
//! [`crate::Discovery::recipient_keys`] looks in the local store first (keys an operator
//! imported), and only when that holds no usable key for the kind asks the network:
//! OpenPGP through the Web Key Directory ([`wkd`], draft-koch-openpgp-webkey-service:
//! advanced method, then direct) and DANE OPENPGPKEY ([`dns`], RFC 7929), S/MIME through
//! SMIMEA ([`dns`], RFC 8162). DNS answers count only when DNSSEC-validated. A DANE-EE
//! SMIMEA certificate is authenticated by DNSSEC alone; PKIX-EE and stored certificates must
//! chain to the configured trust roots.
//!
//! Network answers are cached per method and address ([`crate::cache::ProbeCache`]): a
//! secure DNS answer for its TTL, a WKD key for `max_ttl`, "nothing published" for the
//! negative TTL and failures (timeouts, bogus DNSSEC, 5xx) for the failure TTL, all capped by
//! [`crate::ProbeSettings`]. The cache holds certificates, never what validation said about
//! them: every call validates at its own `now`, so a key that expired since it was fetched is
//! reported expired. The store is read on every call (imports and removals apply at once).

mod discover;
pub mod dns;
mod select;
pub mod wkd;

#[cfg(test)]
mod tests;

use sealgate_encrypt::{KeyInfo, KeyKind};
use sealgate_types::security::{Credential, RecipientEvidence, Unusable};

pub(crate) use discover::KeyDiscovery;
pub use wkd::{MAX_WKD_BYTES, WkdFetcher};

use crate::mta_sts::FetchConfig;

/// Which key discovery methods are on. TTLs and cache size come from
/// [`crate::ProbeSettings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySettings {
    /// Look for OpenPGP keys at all (in the store, and by the network methods below).
    pub pgp: bool,
    /// Ask the Web Key Directory of the recipient's domain.
    pub wkd: bool,
    /// Ask DNS for OPENPGPKEY records (RFC 7929).
    pub openpgpkey: bool,
    /// Look for S/MIME certificates at all (in the store, and by SMIMEA).
    pub smime: bool,
    /// Ask DNS for SMIMEA records (RFC 8162).
    pub smimea: bool,
    /// How WKD is fetched over HTTPS (port, timeout, trusted roots).
    pub fetch: FetchConfig,
}

impl Default for KeySettings {
    /// Every method on, WKD over the standard HTTPS settings.
    fn default() -> Self {
        Self {
            pgp: true,
            wkd: true,
            openpgpkey: true,
            smime: true,
            smimea: true,
            fetch: FetchConfig::default(),
        }
    }
}

/// Which kinds of credential the caller wants for a recipient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyWant {
    /// An OpenPGP certificate.
    pub pgp: bool,
    /// An S/MIME certificate.
    pub smime: bool,
}

/// Where a key or certificate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The local store (an operator's import).
    Store,
    /// WKD, advanced method (`openpgpkey.<domain>`).
    WkdAdvanced,
    /// WKD, direct method (`<domain>`).
    WkdDirect,
    /// A DNSSEC-validated OPENPGPKEY record (RFC 7929).
    Openpgpkey,
    /// A DNSSEC-validated SMIMEA record (RFC 8162) with this certificate usage: 3 (DANE-EE)
    /// or 1 (PKIX-EE).
    Smimea {
        /// The record's certificate usage.
        usage: u8,
    },
}

impl KeySource {
    /// The audit and evidence spelling: `store`, `wkd-advanced`, `wkd-direct`, `openpgpkey`
    /// or `smimea`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Store => "store",
            KeySource::WkdAdvanced => "wkd-advanced",
            KeySource::WkdDirect => "wkd-direct",
            KeySource::Openpgpkey => "openpgpkey",
            KeySource::Smimea { .. } => "smimea",
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was found for one kind of credential.
#[derive(Clone, Debug)]
pub enum KeyFinding<C> {
    /// Not looked for: not wanted, or the kind is turned off.
    NotLooked,
    /// Nothing bound to the address was found.
    Absent {
        /// What each method found or why it failed, one sentence each.
        notes: Vec<String>,
    },
    /// The best credential bound to the address: a usable one when there is one (the
    /// store's before the network's, then the one expiring last), else the best unusable
    /// one, so the evidence can say why (`info.status`: expired, revoked, signing-only).
    Found {
        /// The credential.
        cert: C,
        /// What validation found at the time of the call.
        info: KeyInfo,
        /// Where it came from.
        source: KeySource,
        /// What the methods found besides, one sentence each.
        notes: Vec<String>,
    },
}

impl<C> Default for KeyFinding<C> {
    /// [`KeyFinding::NotLooked`].
    fn default() -> Self {
        KeyFinding::NotLooked
    }
}

impl<C> KeyFinding<C> {
    /// The credential encryption may use now, if there is one.
    pub fn usable(&self) -> Option<(&C, &KeyInfo, KeySource)> {
        match self {
            KeyFinding::Found {
                cert, info, source, ..
            } if info.usable() => Some((cert, info, *source)),
            _ => None,
        }
    }

    /// The notes (empty when not looked).
    pub fn notes(&self) -> &[String] {
        match self {
            KeyFinding::NotLooked => &[],
            KeyFinding::Absent { notes } | KeyFinding::Found { notes, .. } => notes,
        }
    }
}

/// A credential just fetched from the network (not from the cache, not from the store),
/// for a `key_discovered` audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The recipient address it was looked up for.
    pub address: String,
    /// OpenPGP or S/MIME.
    pub kind: KeyKind,
    /// The method that found it.
    pub source: KeySource,
    /// Its fingerprint (as [`KeyInfo::fingerprint`]).
    pub fingerprint: String,
    /// `usable: <what encryption would use>` or `unusable: <why>`, at discovery time.
    pub validity: String,
}

/// What key discovery found for one recipient. The default is nothing looked for.
#[derive(Clone, Debug, Default)]
pub struct RecipientKeys {
    /// The OpenPGP certificate.
    pub pgp: KeyFinding<sealgate_encrypt::pgp::PgpCert>,
    /// The S/MIME certificate.
    pub smime: KeyFinding<sealgate_encrypt::smime::SmimeCert>,
    /// Fresh network discoveries (not cache hits, not the local store), one per candidate,
    /// for `key_discovered` audit events.
    pub discovered: Vec<Discovered>,
}

impl RecipientKeys {
    /// Nothing looked for (the default).
    pub fn not_looked() -> Self {
        Self::default()
    }

    /// What was found, as the policy engine reads it.
    pub fn evidence(&self) -> RecipientEvidence {
        RecipientEvidence {
            pgp: self.pgp.credential(),
            smime: self.smime.credential(),
        }
    }
}

impl<C> KeyFinding<C> {
    /// The finding as the policy engine reads it: usable, unusable and why, or absent (also
    /// when it was not looked for).
    pub fn credential(&self) -> Credential {
        let KeyFinding::Found { info, .. } = self else {
            return Credential::Absent;
        };
        match &info.status {
            Ok(_) => Credential::Usable {
                fingerprint: info.fingerprint.clone(),
            },
            Err(p) => Credential::Unusable {
                fingerprint: info.fingerprint.clone(),
                reason: match p.class() {
                    "expired" => Unusable::Expired,
                    "revoked" => Unusable::Revoked,
                    "signing-only" => Unusable::SigningOnly,
                    _ => Unusable::Invalid,
                },
            },
        }
    }
}
