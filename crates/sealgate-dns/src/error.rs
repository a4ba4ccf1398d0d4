//! The one error type of this crate, with its delivery class.

use hickory_resolver::net::NetError;
use hickory_resolver::proto::ProtoError;

/// A DNS lookup that did not produce an answer.
///
/// Every variant says its class through [`DnsError::is_permanent`]: a mail relay
/// bounces on a permanent error and retries a transient one later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN): mail to it can never be delivered.
    #[error("domain {name} does not exist")]
    NxDomain {
        /// The name that was looked up.
        name: String,
    },
    /// The name is not a valid DNS name, so no lookup was sent.
    #[error("invalid domain name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it did not parse.
        #[source]
        source: Box<ProtoError>,
    },
    /// No server answered within the configured timeout and attempts.
    #[error("{record_type} lookup of {name} timed out")]
    Timeout {
        /// The name that was looked up.
        name: String,
        /// The record type asked for (`MX`, `A`, `AAAA`).
        record_type: &'static str,
    },
    /// A server answered with an error code such as SERVFAIL or REFUSED.
    #[error("{record_type} lookup of {name} failed: server answered {rcode}")]
    ServerError {
        /// The name that was looked up.
        name: String,
        /// The record type asked for.
        record_type: &'static str,
        /// The DNS response code, as text (`SERVFAIL`, `REFUSED`, ...).
        rcode: String,
    },
    /// Any other failure: I/O, a malformed answer, no usable connection.
    #[error("{record_type} lookup of {name} failed")]
    Lookup {
        /// The name that was looked up.
        name: String,
        /// The record type asked for.
        record_type: &'static str,
        /// What hickory reported.
        #[source]
        source: Box<NetError>,
    },
    /// A DNSSEC-validated answer on the route to a mail host is bogus (RFC 4035 §4.3):
    /// possibly an attack. RFC 7672 §2.2.1: the route must not be used; retry later.
    #[error("{record_type} records of {name} fail dnssec validation: {reason}")]
    DnssecBogus {
        /// The name that was looked up.
        name: String,
        /// The record type asked for.
        record_type: &'static str,
        /// What failed.
        reason: String,
    },
    /// A DNSSEC-validated lookup got an answer hickory left indeterminate (RFC 4035
    /// §4.3: the data needed to decide was not obtained). Never read as insecure.
    #[error("{record_type} lookup of {name}: dnssec state indeterminate")]
    DnssecIndeterminate {
        /// The name that was looked up.
        name: String,
        /// The record type asked for.
        record_type: &'static str,
    },
    /// The DNSSEC trust-anchor file could not be read or is not valid.
    #[error("dnssec trust anchor file {}: {reason}", path.display())]
    TrustAnchor {
        /// The file, as configured.
        path: std::path::PathBuf,
        /// What is wrong with it (with the line number where there is one).
        reason: String,
    },
    /// The resolver could not be built (system configuration unreadable, say).
    #[error("dns resolver could not be configured")]
    Config {
        /// What hickory reported.
        #[source]
        source: Box<NetError>,
    },
}

impl DnsError {
    /// True when retrying cannot help: the name does not exist or is not a name.
    ///
    /// SERVFAIL, REFUSED, timeouts, I/O, bogus or indeterminate DNSSEC state and configuration
    /// failures (including the trust-anchor file) are transient:
    /// RFC 5321 §4.5.4.1 has the relay keep trying until its give-up time.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NxDomain { .. } | Self::InvalidName { .. } => true,
            Self::Timeout { .. }
            | Self::ServerError { .. }
            | Self::Lookup { .. }
            | Self::DnssecBogus { .. }
            | Self::DnssecIndeterminate { .. }
            | Self::TrustAnchor { .. }
            | Self::Config { .. } => false,
        }
    }
}
