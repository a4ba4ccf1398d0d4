//! Sealgate DNS (L1): the [`Resolver`] seam (MX and address lookups), its hickory
//! implementation ([`HickoryResolver`]) and MX routing ([`route`], RFC 5321 §5.1,
//! RFC 7505).
//!
//! Callers hold a `&dyn Resolver` (or an `Arc<dyn Resolver>`), so routing rules
//! are testable from canned answers and end-to-end tests point the hickory
//! resolver at a real DNS server on loopback through [`DnsConfig::nameservers`].
//!
//! This crate must not depend on any other Sealgate crate. Later issues add
//! DNSSEC-validated lookups (TLSA, OPENPGPKEY, SMIMEA) as further `Resolver`
//! methods.

mod error;
mod hickory;
mod route;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub use error::DnsError;
pub use hickory::{DnsConfig, HickoryResolver};
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
}

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
