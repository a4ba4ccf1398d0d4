//! Errors of the discovery probes.

use std::time::Duration;

/// What went wrong while probing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A DNS lookup failed (not a validated denial: those are answers, not errors).
    #[error("dns lookup failed")]
    Dns(#[from] sealgate_dns::DnsError),
    /// Reading or writing persisted probe state failed.
    #[error("probe state storage failed")]
    Store(#[from] sealgate_store::StoreError),
    /// The name given is not a syntactically valid domain, so nothing was looked up.
    #[error("invalid domain name {domain:?}")]
    InvalidDomain {
        /// The name as given.
        domain: String,
    },
    /// The domain publishes no usable `_mta-sts` TXT record (RFC 8461 §3.1).
    #[error("no usable _mta-sts record for {domain}")]
    NoStsRecord {
        /// The policy domain.
        domain: String,
        /// Why none was usable.
        #[source]
        source: StsRecordError,
    },
    /// The MTA-STS policy could not be fetched over HTTPS (RFC 8461 §3.3).
    #[error("fetching the mta-sts policy of {domain} failed")]
    PolicyFetch {
        /// The policy domain.
        domain: String,
        /// What failed.
        #[source]
        source: FetchError,
    },
    /// The MTA-STS policy was fetched but is not a valid policy (RFC 8461 §3.2).
    #[error("the mta-sts policy of {domain} is invalid")]
    PolicyInvalid {
        /// The policy domain.
        domain: String,
        /// What is wrong with it.
        #[source]
        source: PolicyError,
    },
    /// The HTTPS fetcher's TLS settings could not be built (an unusable extra root, say).
    #[error("https fetcher (mta-sts, wkd) tls setup failed")]
    FetcherSetup(#[source] rustls::Error),
    /// The HTTPS fetcher would trust no certificate authority at all.
    #[error("https fetcher (mta-sts, wkd) has no trusted certificate authorities")]
    NoTrustAnchors,
}

impl DiscoveryError {
    /// The message with every source after it, `": "`-separated: what an operator reads.
    pub fn detail(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            text.push_str(": ");
            text.push_str(&e.to_string());
            source = e.source();
        }
        text
    }

    /// The RFC 8460 §4.3.2.2 result type a TLS report gives this failure, when it is an
    /// MTA-STS policy failure: `sts-webpki-invalid` for a certificate that does not validate,
    /// `sts-policy-invalid` for a policy that is not valid (including a wrong media type),
    /// `sts-policy-fetch-error` for any other fetch failure.
    pub fn tls_rpt_result_type(&self) -> Option<&'static str> {
        match self {
            Self::PolicyFetch {
                source: FetchError::Certificate { .. },
                ..
            } => Some("sts-webpki-invalid"),
            Self::PolicyFetch {
                source: FetchError::ContentType { .. } | FetchError::NotUtf8,
                ..
            }
            | Self::PolicyInvalid { .. } => Some("sts-policy-invalid"),
            Self::PolicyFetch { .. } => Some("sts-policy-fetch-error"),
            _ => None,
        }
    }
}

/// Why a `_mta-sts` TXT answer holds no usable record (RFC 8461 §3.1). In every case the
/// domain has no available policy; a cached one still applies until it expires (§5.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StsRecordError {
    /// No TXT record at all (NXDOMAIN or NODATA), or none beginning with `v=STSv1`.
    #[error("no v=STSv1 record")]
    Missing,
    /// More than one record begins with `v=STSv1`.
    #[error("{count} v=STSv1 records where exactly one is allowed")]
    Several {
        /// How many.
        count: usize,
    },
    /// The one `v=STSv1` record does not follow the grammar.
    #[error("invalid v=STSv1 record ({reason}): {record:?}")]
    Invalid {
        /// What is wrong.
        reason: String,
        /// The record (at most 64 characters of it).
        record: String,
    },
}

/// What is wrong with a policy file (RFC 8461 §3.2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A line is not `key: value` with a valid key, or holds control characters.
    #[error("line {line} is not a valid \"key: value\" field")]
    Malformed {
        /// The line number, from 1.
        line: usize,
    },
    /// A required field is absent.
    #[error("required field {field:?} is missing")]
    Missing {
        /// `version`, `mode`, `max_age` or `mx`.
        field: &'static str,
    },
    /// `version` is not `STSv1` (in any case).
    #[error("version {found:?} is not STSv1")]
    Version {
        /// The value found (at most 64 characters).
        found: String,
    },
    /// `mode` is not `enforce`, `testing` or `none` (in any case).
    #[error("mode {found:?} is not enforce, testing or none")]
    Mode {
        /// The value found (at most 64 characters).
        found: String,
    },
    /// `max_age` is not a number of at most ten digits.
    #[error("max_age {found:?} is not a number of seconds")]
    MaxAge {
        /// The value found (at most 64 characters).
        found: String,
    },
    /// `max_age` exceeds 31557600 seconds.
    #[error("max_age {max_age} exceeds 31557600 seconds")]
    MaxAgeTooLarge {
        /// The value found.
        max_age: u64,
    },
    /// An `mx` value is not a host name or `*.` followed by one.
    #[error("mx {found:?} on line {line} is not a host name pattern")]
    Mx {
        /// The line number, from 1.
        line: usize,
        /// The value found (at most 64 characters).
        found: String,
    },
    /// A field that may appear once (`version`, `mode`, `max_age`) appears again with
    /// another value: which one the domain meant cannot be known.
    #[error(
        "field {field:?} appears twice with different values: {first:?} on line {first_line}, \
         {second:?} on line {line}"
    )]
    Conflict {
        /// `version`, `mode` or `max_age`.
        field: &'static str,
        /// The first value (at most 64 characters).
        first: String,
        /// The line of the first value, from 1.
        first_line: usize,
        /// The conflicting value (at most 64 characters).
        second: String,
        /// The line of the conflicting value, from 1.
        line: usize,
    },
}

/// Which step of fetching a policy over HTTPS failed (RFC 8461 §3.3).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The domain is not a valid host name, so no URL was built.
    #[error("invalid policy domain {domain:?}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
    },
    /// Resolving the policy host failed.
    #[error("resolving {host} failed")]
    Resolve {
        /// `mta-sts.<domain>`.
        host: String,
        /// The DNS failure.
        #[source]
        source: sealgate_dns::DnsError,
    },
    /// The policy host has no address.
    #[error("{host} has no address")]
    NoAddress {
        /// `mta-sts.<domain>`.
        host: String,
    },
    /// The server's certificate does not validate for the policy host (RFC 8461 §3.3: WebPKI,
    /// valid for `mta-sts.<domain>`).
    #[error("certificate of {host} is not valid for it")]
    Certificate {
        /// `mta-sts.<domain>`.
        host: String,
        /// The TLS failure.
        #[source]
        source: reqwest::Error,
    },
    /// Connecting, the TLS handshake or the exchange failed otherwise (refused, reset, closed
    /// without an answer).
    #[error("https request to {host} failed")]
    Request {
        /// `mta-sts.<domain>`.
        host: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// No complete answer within the configured time.
    #[error("no answer from {host} within {after:?}")]
    Timeout {
        /// `mta-sts.<domain>`.
        host: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The server answered with a redirect, which must not be followed (RFC 8461 §3.3).
    #[error("server redirected ({status}) to {location:?}; redirects are not followed")]
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// The server answered with a status other than 200 (RFC 8461 §3.3).
    #[error("server answered {status}, not 200")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not `text/plain` (RFC 8461 §3.2).
    #[error("media type is {found:?}, not text/plain")]
    ContentType {
        /// The `Content-Type` header, if any.
        found: Option<String>,
    },
    /// The policy is larger than the limit (RFC 8461 §3.3 suggests 64 KiB).
    #[error("response is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Reading the body failed part way.
    #[error("reading the response from {host} failed")]
    Body {
        /// `mta-sts.<domain>`.
        host: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The policy is not UTF-8 text.
    #[error("response is not utf-8 text")]
    NotUtf8,
}
