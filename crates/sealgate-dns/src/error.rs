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
    /// SERVFAIL, REFUSED, timeouts, I/O and configuration failures are transient:
    /// RFC 5321 §4.5.4.1 has the relay keep trying until its give-up time.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NxDomain { .. } | Self::InvalidName { .. } => true,
            Self::Timeout { .. }
            | Self::ServerError { .. }
            | Self::Lookup { .. }
            | Self::Config { .. } => false,
        }
    }
}
