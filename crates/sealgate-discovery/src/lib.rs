//! Sealgate discovery (L2): the probes that gather evidence about a recipient domain before
//! the policy engine decides — DANE TLSA per MX host (RFC 7672, DNSSEC-validated through the
//! [`sealgate_dns::Resolver`] seam) and MTA-STS (RFC 8461: the `_mta-sts` TXT record, the
//! policy fetched over HTTPS through a fetch seam, cached by id until `max_age` in the store) —
//! and the recipients' keys for end-to-end encryption ([`keys`]: the local store, WKD,
//! DNSSEC-validated OPENPGPKEY and SMIMEA). Probe results are cached in memory with TTLs,
//! including negative answers.
//!
//! It returns plain data; it never decides (that is `sealgate-policy`, a sibling it must not
//! import) and never connects to SMTP peers. It may depend on L1 crates (`sealgate-encrypt`
//! for parsing and validating keys) and `sealgate-types`.

pub mod cache;
pub mod dane;
pub mod error;
pub mod keys;
pub mod mta_sts;
mod probe;
#[cfg(test)]
mod test_dns;

pub use error::DiscoveryError;
pub use keys::{
    Discovered, KeyFinding, KeySettings, KeySource, KeyWant, RecipientKeys, WkdFetcher,
};
pub use probe::{Discovery, DomainProbe, ProbeSettings};
