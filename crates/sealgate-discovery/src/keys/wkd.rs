//! The OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service §3.1), behind the
//! [`WkdFetcher`] seam.
//!
//! The key of `local@domain` is at `hu/<z-base-32 of SHA-1 of the lowercased local part>`,
//! first under the advanced method's host `openpgpkey.<domain>`, then — only when that host
//! does not resolve (NXDOMAIN, no address) or cannot be connected to (refused, unreachable,
//! failed handshake) — under the direct method's `<domain>`. A 404 from the advanced host
//! means "no key" and the direct method is not asked; a certificate that does not validate,
//! a timeout or another status is a failure and is not retried by the other method either.
//!
//! The answer is one or more certificates, binary or armored, at most [`MAX_WKD_BYTES`].
//! Redirects are not followed, not even to the same host: the directory belongs to the
//! recipient's domain and the key must come from the host the address names (any 3xx is a
//! failure). The production fetcher is [`crate::mta_sts::HttpsFetcher`], with its deadline,
//! address pinning and roots.

use std::time::Duration;

use sealgate_dns::BoxFuture;
use sealgate_encrypt::pgp::PgpCert;

use super::KeySource;
use super::select::{Candidate, Expiry, Lookup};
use crate::error::FetchError;
use crate::mta_sts::HttpsFetcher;
use crate::mta_sts::fetch::Get;

/// The largest WKD answer accepted: a few certificates with their signatures fit easily.
pub const MAX_WKD_BYTES: usize = 256 * 1024;

/// The z-base-32 alphabet (draft-koch-openpgp-webkey-service §3.1, after Zooko's z-base-32).
const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Fetches a WKD document. The production fetcher is [`HttpsFetcher`]; the seam lets the
/// method rules be tested from canned answers.
pub trait WkdFetcher: Send + Sync + std::fmt::Debug {
    /// The body of a 200 answer to `GET https://{host}{path}` (`path` holds the query), of at
    /// most [`MAX_WKD_BYTES`]. A 404 is [`FetchError::Status`] with status 404.
    fn get<'a>(
        &'a self,
        host: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

impl WkdFetcher for HttpsFetcher {
    fn get<'a>(
        &'a self,
        host: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            let get = Get {
                host,
                path,
                limit: MAX_WKD_BYTES,
                // Keys are served as application/octet-stream, but the type proves nothing:
                // the certificate parser decides.
                check: |_| Ok(()),
                purpose: "wkd",
            };
            HttpsFetcher::get(self, &get).await
        })
    }
}

/// `data` in z-base-32: 5-bit groups from the most significant bit, the last one padded with
/// zero bits, no padding characters.
pub fn zbase32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ZBASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ZBASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The WKD hash of a local part: SHA-1 of it with ASCII letters lowercased (other characters
/// unchanged), z-base-32 encoded (32 characters).
pub fn wkd_hash(local: &str) -> String {
    zbase32(&openssl::sha::sha1(local.to_ascii_lowercase().as_bytes()))
}

/// Where one WKD method looks for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WkdUrl {
    /// The host: `openpgpkey.<domain>` (advanced) or `<domain>` (direct).
    pub host: String,
    /// The path and query: `/.well-known/openpgpkey/[<domain>/]hu/<hash>?l=<local>`.
    pub path: String,
}

impl WkdUrl {
    /// The advanced method's location for `local@domain` (`domain` already lowercase).
    pub fn advanced(local: &str, domain: &str) -> Self {
        Self {
            host: format!("openpgpkey.{domain}"),
            path: format!(
                "/.well-known/openpgpkey/{domain}/hu/{}?l={}",
                wkd_hash(local),
                percent_encode(local)
            ),
        }
    }

    /// The direct method's location for `local@domain` (`domain` already lowercase).
    pub fn direct(local: &str, domain: &str) -> Self {
        Self {
            host: domain.to_owned(),
            path: format!(
                "/.well-known/openpgpkey/hu/{}?l={}",
                wkd_hash(local),
                percent_encode(local)
            ),
        }
    }

    /// The whole URL.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.host, self.path)
    }
}

/// RFC 3986 §2.1: every octet but the unreserved characters (§2.3) as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Looks up the key of `local@domain`: advanced method, then direct when the advanced host
/// is unreachable.
pub(crate) async fn lookup(fetcher: &dyn WkdFetcher, local: &str, domain: &str) -> Lookup<PgpCert> {
    let advanced = WkdUrl::advanced(local, domain);
    match fetcher.get(&advanced.host, &advanced.path).await {
        Ok(body) => parse(KeySource::WkdAdvanced, &body),
        Err(e) if is_not_found(&e) => nothing(KeySource::WkdAdvanced, "no key published (404)"),
        Err(e) if host_unreachable(&e) => {
            let mut lookup = direct(fetcher, local, domain).await;
            let note = format!(
                "wkd-advanced: {} unreachable ({}); direct method asked",
                advanced.host,
                describe(&e)
            );
            lookup.notes.insert(0, note);
            lookup
        }
        Err(e) => failed(KeySource::WkdAdvanced, &e),
    }
}

/// The direct method: a host that cannot be reached publishes nothing.
async fn direct(fetcher: &dyn WkdFetcher, local: &str, domain: &str) -> Lookup<PgpCert> {
    let url = WkdUrl::direct(local, domain);
    match fetcher.get(&url.host, &url.path).await {
        Ok(body) => parse(KeySource::WkdDirect, &body),
        Err(e) if is_not_found(&e) => nothing(KeySource::WkdDirect, "no key published (404)"),
        Err(e) if host_unreachable(&e) => nothing(
            KeySource::WkdDirect,
            &format!(
                "{} unreachable ({}): no web key directory",
                url.host,
                describe(&e)
            ),
        ),
        Err(e) => failed(KeySource::WkdDirect, &e),
    }
}

/// The certificates of a 200 answer; an answer holding none is a failure of the server.
fn parse(source: KeySource, body: &[u8]) -> Lookup<PgpCert> {
    let problem = match PgpCert::parse_all(body) {
        Ok(certs) if !certs.is_empty() => {
            let candidates = certs
                .into_iter()
                .map(|cert| Candidate { cert, source })
                .collect();
            // A key found over HTTPS has no TTL of its own: cached for `max_ttl`.
            return Lookup::new(candidates, Vec::new(), Expiry::Answer(Duration::MAX));
        }
        Ok(_) => "the answer holds no OpenPGP certificate".to_owned(),
        Err(e) => format!("the answer is not an OpenPGP certificate: {e}"),
    };
    Lookup::new(
        Vec::new(),
        vec![format!("{source}: {problem}")],
        Expiry::Failure,
    )
}

fn nothing(source: KeySource, why: &str) -> Lookup<PgpCert> {
    Lookup::new(
        Vec::new(),
        vec![format!("{source}: {why}")],
        Expiry::Negative,
    )
}

fn failed(source: KeySource, e: &FetchError) -> Lookup<PgpCert> {
    let note = format!("{source}: lookup failed: {}", describe(e));
    Lookup::new(Vec::new(), vec![note], Expiry::Failure)
}

fn is_not_found(e: &FetchError) -> bool {
    matches!(e, FetchError::Status { status: 404 })
}

/// The host does not resolve, or no connection to it could be made. A transient DNS failure
/// and a certificate that does not validate are neither: the host may well be there.
fn host_unreachable(e: &FetchError) -> bool {
    match e {
        FetchError::Resolve { source, .. } => source.is_permanent(),
        FetchError::NoAddress { .. } => true,
        FetchError::Request { source, .. } => source.is_connect(),
        _ => false,
    }
}

/// A fetch failure as one line, with its causes, worded for keys rather than policies.
fn describe(e: &FetchError) -> String {
    let mut text = match e {
        FetchError::TooLarge { limit } => {
            return format!("the answer is larger than {limit} bytes");
        }
        FetchError::Body { host, .. } => format!("reading the answer from {host} failed"),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    #[test]
    fn zbase32_encodes_known_vectors() {
        assert_eq!(zbase32(b""), "");
        // One bit set at the top, then at the bottom of a byte.
        assert_eq!(zbase32(&[0x80]), "oy");
        assert_eq!(zbase32(&[0x01]), "yr");
        assert_eq!(zbase32(&[0xff; 5]), "99999999");
        assert_eq!(zbase32(&[0; 5]), "yyyyyyyy");
        assert_eq!(zbase32(&[0x00, 0x44, 0x32, 0x14, 0xc7]), "ybndrfg8");
    }

    #[test]
    fn the_wkd_hash_of_the_drafts_example_matches() {
        // draft-koch-openpgp-webkey-service §3.1: Joe.Doe@Example.ORG.
        assert_eq!(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
        assert_eq!(wkd_hash("joe.doe"), wkd_hash("JOE.DOE"));
    }

    #[test]
    fn urls_follow_the_advanced_and_direct_methods() {
        let advanced = WkdUrl::advanced("Joe.Doe", "example.org");
        assert_eq!(
            advanced.url(),
            "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/\
             iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        let direct = WkdUrl::direct("Joe.Doe", "example.org");
        assert_eq!(
            direct.url(),
            "https://example.org/.well-known/openpgpkey/hu/\
             iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
    }

    #[test]
    fn the_local_part_is_percent_encoded_in_the_query() {
        let url = WkdUrl::direct("a+b c&d=é~_-", "example.org");
        assert!(
            url.path.ends_with("?l=a%2Bb%20c%26d%3D%C3%A9~_-"),
            "{}",
            url.path
        );
    }

    #[test]
    fn only_missing_hosts_and_refused_connections_count_as_unreachable() {
        let nx = FetchError::Resolve {
            host: "openpgpkey.example.org".into(),
            source: sealgate_dns::DnsError::NxDomain {
                name: "openpgpkey.example.org".into(),
            },
        };
        assert!(host_unreachable(&nx));
        let timeout = FetchError::Resolve {
            host: "openpgpkey.example.org".into(),
            source: sealgate_dns::DnsError::Timeout {
                name: "openpgpkey.example.org".into(),
                record_type: "A",
            },
        };
        assert!(!host_unreachable(&timeout));
        assert!(host_unreachable(&FetchError::NoAddress {
            host: "h".into()
        }));
        assert!(!host_unreachable(&FetchError::Status { status: 500 }));
        assert!(is_not_found(&FetchError::Status { status: 404 }));
    }
}
