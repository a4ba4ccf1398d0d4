//! Sealgate DNS (L1): the [`Resolver`] seam (MX and address lookups), its hickory
//! implementation ([`HickoryResolver`]) and MX routing ([`route`], RFC 5321 §5.1,
//! RFC 7505).
//!
//! Callers hold a `&dyn Resolver` (or an `Arc<dyn Resolver>`), so routing rules
//! are testable from canned answers and end-to-end tests point the hickory
//! resolver at a real DNS server on loopback through [`DnsConfig::nameservers`].
//!
//! TLSA, OPENPGPKEY and SMIMEA lookups and the secure-route check are DNSSEC-validated
//! in-process (hickory's validator, from the root KSKs or an island-of-trust file:
//! [`DnsConfig::trust_anchor_file`]) and classified as a [`Secured`] answer; MX, address
//! and TXT lookups are not, so routing works the same for signed and unsigned zones.
//!
//! This crate must not depend on any other Sealgate crate.

mod anchor_text;
mod anchors;
mod error;
mod hickory;
mod route;
mod validated;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub use error::DnsError;
pub use hickory::{DnsConfig, HickoryResolver, plain_resolver};
pub use route::{Route, Routing, random_shuffle, route};

/// A boxed, `Send` future: the return type of [`Resolver`] methods, so the trait
/// stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The DNS lookups Sealgate needs, as a seam.
///
/// Names are domain names without a trailing dot (one is accepted); lookups are
/// always absolute (no search list).
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// The MX records of `domain`, classified (RFC 5321 §5.1, RFC 7505).
    ///
    /// NXDOMAIN for `domain` is a permanent [`DnsError::NxDomain`]; a domain that
    /// exists without MX records is [`MxRecords::Implicit`].
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>>;

    /// The A and AAAA addresses of `host`, IPv4 first. An empty `Vec` means the
    /// name exists but has no address; NXDOMAIN is [`DnsError::NxDomain`].
    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>>;

    /// The DNSSEC-validated TLSA records at `_{port}._tcp.{host}` (RFC 6698, RFC 7672 §2.2),
    /// classified by their validation state. Never an error for "no records": that is
    /// [`TlsaAnswer::SecureNone`] or [`TlsaAnswer::Insecure`].
    fn tlsa<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>>;

    /// Whether the MX RRset of `domain` (or, for a domain without MX, its address records)
    /// and the address records of `host` validate as DNSSEC-secure (RFC 7672 §2.2.1: DANE
    /// applies only to MX hosts found securely). A bogus answer on that route is
    /// [`DnsError::DnssecBogus`] (RFC 7672 §2.2.1: the route must not be used), not `false`.
    fn secure_route<'a>(
        &'a self,
        domain: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Result<bool, DnsError>>;

    /// The TXT strings at `name` (each record's character-strings concatenated). An empty
    /// `Vec` for NODATA; NXDOMAIN is [`DnsError::NxDomain`]. Used for `_mta-sts` (RFC 8461 §3.1).
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>>;

    /// The DNSSEC-validated OPENPGPKEY records at `name` (RFC 7929 §3: the caller builds
    /// `<hash of the local part>._openpgpkey.<domain>`): each record's transferable public
    /// key, unparsed. RFC 7929 §5.1: only a DNSSEC-verified answer is used, so callers take
    /// [`Secured::Secure`] records and nothing else. Never an error for "no records".
    fn openpgpkey<'a>(&'a self, name: &'a str)
    -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>>;

    /// The DNSSEC-validated SMIMEA records at `name` (RFC 8162 §3: the caller builds
    /// `<hash of the local part>._smimecert.<domain>`), classified as for
    /// [`Resolver::openpgpkey`]; as there, only [`Secured::Secure`] records are used (RFC
    /// 8162 §6).
    fn smimea<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>>;
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

impl TlsaRecord {
    /// Whether SMTP uses this record: RFC 7672 §3.1.3 — only DANE-TA(2) and DANE-EE(3), with
    /// selectors 0/1 and matching types 0/1/2; PKIX usages 0/1 are unusable for SMTP.
    pub fn is_usable_for_smtp(&self) -> bool {
        matches!(self.usage, 2 | 3) && self.selector <= 1 && self.matching <= 2
    }
}

/// One SMIMEA record (RFC 8162 §2: the TLSA wire format, applied to S/MIME certificates).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SmimeaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The association data (a DER certificate for selector 0, matching 0).
    pub data: Vec<u8>,
}

/// A DNSSEC-classified answer (RFC 4035 §4.3): what a validated lookup of one record type
/// established, with the records only when they validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secured<T> {
    /// Validated records (all of them, usable or not) and the answer's TTL in seconds.
    Secure {
        /// The records.
        records: Vec<T>,
        /// The smallest TTL of the answer.
        ttl: u32,
    },
    /// A validated denial (NODATA or NXDOMAIN): the name publishes no such records.
    SecureNone,
    /// The zone is not signed (or not under a trust anchor): records, if any, are ignored
    /// (RFC 7672 §2.2; the same for OPENPGPKEY and SMIMEA).
    Insecure,
    /// Validation failed: possible attack; nothing in the answer may be used (for TLSA,
    /// RFC 7672 §2.2: the MX must not be used).
    Bogus {
        /// What failed.
        reason: String,
    },
}

/// The DNSSEC-classified answer of a TLSA lookup.
pub type TlsaAnswer = Secured<TlsaRecord>;

/// The DNSSEC-classified answer of an OPENPGPKEY lookup: one transferable public key
/// (binary, unparsed) per record (RFC 7929 §2.1).
pub type OpenpgpkeyAnswer = Secured<Vec<u8>>;

/// The DNSSEC-classified answer of an SMIMEA lookup.
pub type SmimeaAnswer = Secured<SmimeaRecord>;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxHost {
    /// Lower is tried first.
    pub preference: u16,
    /// The mail exchanger, lowercase ASCII without a trailing dot. The root
    /// (`"."`, RFC 7505's null MX) is the empty string.
    pub exchange: String,
}

impl MxHost {
    /// An MX record, with `exchange` normalised (lowercase, no trailing dot).
    pub fn new(preference: u16, exchange: &str) -> Self {
        Self {
            preference,
            exchange: normalize_name(exchange),
        }
    }

    /// True for an exchange of `"."`, the root: RFC 7505's null MX target.
    pub fn is_null(&self) -> bool {
        self.exchange.is_empty() || self.exchange == "."
    }
}

/// The MX answer for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxRecords {
    /// The MX records, sorted by preference (ties in answer order), none null.
    Hosts(Vec<MxHost>),
    /// The domain exists but has no MX records: it is its own mail exchanger
    /// (the implicit MX, RFC 5321 §5.1).
    Implicit,
    /// The domain accepts no mail (RFC 7505 null MX): bounce at once.
    NullMx,
}

impl MxRecords {
    /// Classify the MX records found for a domain.
    ///
    /// RFC 7505 §3: a null MX (exchange ".") must be the only MX record; when
    /// other records are present the null entries are ignored. No records at
    /// all is the implicit MX (RFC 5321 §5.1).
    pub fn classify(mut hosts: Vec<MxHost>) -> Self {
        if hosts.is_empty() {
            return Self::Implicit;
        }
        hosts.retain(|h| !h.is_null());
        if hosts.is_empty() {
            // Only "." records. RFC 7505 §3 defines the null MX with preference
            // 0; a lone "." at another preference names no host either.
            return Self::NullMx;
        }
        hosts.sort_by_key(|h| h.preference);
        Self::Hosts(hosts)
    }
}

/// Lowercase and strip one trailing dot: the form names take in this crate.
pub(crate) fn normalize_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    #[test]
    fn mx_host_new_lowercases_and_strips_the_trailing_dot() {
        let h = MxHost::new(10, "MX1.Example.TEST.");
        assert_eq!(h.exchange, "mx1.example.test");
        assert!(!h.is_null());
        assert!(MxHost::new(0, ".").is_null());
    }

    #[test]
    fn classify_sorts_by_preference_keeping_answer_order_for_ties() {
        let got = MxRecords::classify(vec![
            MxHost::new(20, "c"),
            MxHost::new(10, "b"),
            MxHost::new(10, "a"),
        ]);
        let want = vec![
            MxHost::new(10, "b"),
            MxHost::new(10, "a"),
            MxHost::new(20, "c"),
        ];
        assert_eq!(got, MxRecords::Hosts(want));
    }

    #[test]
    fn classify_single_dot_is_null_mx() {
        assert_eq!(
            MxRecords::classify(vec![MxHost::new(0, ".")]),
            MxRecords::NullMx
        );
    }

    #[test]
    fn classify_dot_among_others_is_ignored() {
        let got = MxRecords::classify(vec![MxHost::new(0, "."), MxHost::new(10, "mx")]);
        assert_eq!(got, MxRecords::Hosts(vec![MxHost::new(10, "mx")]));
    }

    #[test]
    fn classify_nothing_is_implicit() {
        assert_eq!(MxRecords::classify(vec![]), MxRecords::Implicit);
    }
}
