//! Fetching a policy file over HTTPS (RFC 8461 §3.3), behind the [`PolicyFetcher`] seam.
//!
//! [`HttpsFetcher`] holds the HTTPS machinery the crate shares (resolving through our
//! [`Resolver`], pinning the connection to those addresses, our roots, no redirects, a size
//! cap, one deadline): MTA-STS policies here, and Web Key Directory keys
//! ([`crate::keys::WkdFetcher`]) through the same crate-internal GET.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use rustls::pki_types::CertificateDer;
use sealgate_dns::{BoxFuture, Resolver};

use crate::error::{DiscoveryError, FetchError};
use crate::mta_sts::policy::normalize_domain;

/// The largest policy accepted (RFC 8461 §3.3 suggests senders limit policies to 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The path of the policy on `mta-sts.<domain>` (RFC 8461 §3.2).
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// Fetches the policy text of a domain. The production fetcher is [`HttpsFetcher`]; the
/// seam lets the policy rules be tested from canned texts.
pub trait PolicyFetcher: Send + Sync + std::fmt::Debug {
    /// The body of `https://mta-sts.<domain>/.well-known/mta-sts.txt`, once every check of
    /// RFC 8461 §3.2–3.3 has passed (the caller still parses it).
    fn fetch<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<String, FetchError>>;
}

/// How [`HttpsFetcher`] reaches policy servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// The port of the policy server. RFC 8461 uses HTTPS on 443; another port is only for a
    /// lab or test network.
    pub https_port: u16,
    /// The most one fetch may take, from resolving the host to the last byte.
    pub timeout: Duration,
    /// Certificate authorities trusted besides (or instead of) the public ones: a private PKI
    /// of a closed network, or a test CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Whether the public WebPKI roots (the Mozilla set, built in) are trusted.
    pub public_roots: bool,
}

impl FetchConfig {
    /// The standard HTTPS port.
    pub const DEFAULT_PORT: u16 = 443;
    /// RFC 8461 §3.3 suggests about a minute; half that keeps a delivery attempt from
    /// waiting long on a slow policy server.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            https_port: Self::DEFAULT_PORT,
            timeout: Self::DEFAULT_TIMEOUT,
            extra_roots: Vec::new(),
            public_roots: true,
        }
    }
}

/// The production [`PolicyFetcher`] (and [`crate::keys::WkdFetcher`]): HTTPS with WebPKI
/// validation, resolving the host through our [`Resolver`] and connecting only to the
/// addresses it returned.
#[derive(Clone)]
pub struct HttpsFetcher {
    config: FetchConfig,
    tls: rustls::ClientConfig,
    resolver: Arc<dyn Resolver>,
}

impl std::fmt::Debug for HttpsFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsFetcher")
            .field("https_port", &self.config.https_port)
            .field("timeout", &self.config.timeout)
            .field("extra_roots", &self.config.extra_roots.len())
            .field("public_roots", &self.config.public_roots)
            .finish_non_exhaustive()
    }
}

/// One GET through the shared HTTPS machinery of [`HttpsFetcher`].
pub(crate) struct Get<'a> {
    /// The host to resolve, connect to and validate the certificate for.
    pub(crate) host: &'a str,
    /// The path and query, from the leading `/`, already percent-encoded.
    pub(crate) path: &'a str,
    /// The largest body accepted, in bytes.
    pub(crate) limit: usize,
    /// Checks the headers of a 200 answer before its body is read.
    pub(crate) check: fn(&reqwest::Response) -> Result<(), FetchError>,
    /// What the fetch is for, in the `User-Agent` (`mta-sts`, `wkd`).
    pub(crate) purpose: &'static str,
}

impl HttpsFetcher {
    /// A fetcher trusting the roots `config` names. Fails when a root is unusable or when no
    /// root at all would be trusted.
    pub fn new(config: FetchConfig, resolver: Arc<dyn Resolver>) -> Result<Self, DiscoveryError> {
        let tls = tls_config(&config)?;
        Ok(Self {
            config,
            tls,
            resolver,
        })
    }

    async fn fetch_policy(&self, domain: &str) -> Result<String, FetchError> {
        let domain = normalize_domain(domain).ok_or_else(|| FetchError::InvalidDomain {
            domain: domain.to_owned(),
        })?;
        let host = format!("mta-sts.{domain}");
        let body = self
            .get(&Get {
                host: &host,
                path: WELL_KNOWN_PATH,
                limit: MAX_POLICY_BYTES,
                check: check_media_type,
                purpose: "mta-sts",
            })
            .await?;
        String::from_utf8(body).map_err(|_| FetchError::NotUtf8)
    }

    /// The body of a 200 answer to `GET https://{host}{path}`, within the configured timeout
    /// from resolving the host to the last byte.
    pub(crate) async fn get(&self, get: &Get<'_>) -> Result<Vec<u8>, FetchError> {
        let after = self.config.timeout;
        match tokio::time::timeout(after, self.get_once(get)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                host: get.host.to_owned(),
                after,
            }),
        }
    }

    /// Resolves the host, then GETs the path from those addresses only.
    async fn get_once(&self, get: &Get<'_>) -> Result<Vec<u8>, FetchError> {
        let host = get.host;
        let addrs = self.addresses(host).await?;
        let client = self.client(host, &addrs)?;
        let url = format!("https://{host}{}", get.path);
        let user_agent = format!("sealgate/{} ({})", env!("CARGO_PKG_VERSION"), get.purpose);
        let response = client
            .get(url)
            .header(USER_AGENT, user_agent)
            .send()
            .await
            .map_err(|e| classify(host, self.config.timeout, e))?;
        check_status(&response)?;
        (get.check)(&response)?;
        read_capped(host, self.config.timeout, response, get.limit).await
    }

    async fn addresses(&self, host: &str) -> Result<Vec<SocketAddr>, FetchError> {
        let ips = self
            .resolver
            .ips(host)
            .await
            .map_err(|source| FetchError::Resolve {
                host: host.to_owned(),
                source,
            })?;
        if ips.is_empty() {
            return Err(FetchError::NoAddress {
                host: host.to_owned(),
            });
        }
        let port = self.config.https_port;
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    /// A client for one fetch: pinned to `addrs`, no proxy, no redirects, our roots.
    fn client(&self, host: &str, addrs: &[SocketAddr]) -> Result<reqwest::Client, FetchError> {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            // The port of the pinned address is used because the URL names none.
            .resolve_to_addrs(host, addrs)
            // RFC 8461 §3.3: HTTP 3xx redirects MUST NOT be followed. WKD follows none either
            // (a key must come from the host the address names: crate::keys::wkd).
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .no_proxy()
            .timeout(self.config.timeout)
            .connect_timeout(self.config.timeout)
            .build()
            .map_err(|source| FetchError::Request {
                host: host.to_owned(),
                source,
            })
    }
}

impl PolicyFetcher for HttpsFetcher {
    fn fetch<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<String, FetchError>> {
        Box::pin(self.fetch_policy(domain))
    }
}

/// rustls settings: RFC 8461 §3.3 has the certificate validated by WebPKI for the policy host,
/// so a standard verifier over the configured roots, with the aws-lc-rs provider.
fn tls_config(config: &FetchConfig) -> Result<rustls::ClientConfig, DiscoveryError> {
    let mut roots = rustls::RootCertStore::empty();
    if config.public_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in &config.extra_roots {
        roots
            .add(cert.clone())
            .map_err(DiscoveryError::FetcherSetup)?;
    }
    if roots.is_empty() {
        return Err(DiscoveryError::NoTrustAnchors);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(DiscoveryError::FetcherSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// RFC 8461 §3.3: only a 200 answer carries a policy, and a redirect is never followed.
fn check_status(response: &reqwest::Response) -> Result<(), FetchError> {
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(FetchError::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    if status != reqwest::StatusCode::OK {
        return Err(FetchError::Status {
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// RFC 8461 §3.2: the policy is served as `text/plain` (parameters such as charset allowed),
/// which keeps content uploaded to a shared web server from passing as a policy.
fn check_media_type(response: &reqwest::Response) -> Result<(), FetchError> {
    let found = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_text_plain = found.as_deref().is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("text/plain")
    });
    if is_text_plain {
        Ok(())
    } else {
        Err(FetchError::ContentType { found })
    }
}

/// The body, read chunk by chunk and refused as soon as it exceeds `limit` bytes.
async fn read_capped(
    host: &str,
    timeout: Duration,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(FetchError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        if e.is_timeout() {
            FetchError::Timeout {
                host: host.to_owned(),
                after: timeout,
            }
        } else {
            FetchError::Body {
                host: host.to_owned(),
                source: e,
            }
        }
    })? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Tells a certificate failure and a timeout from other request failures.
fn classify(host: &str, timeout: Duration, e: reqwest::Error) -> FetchError {
    let host = host.to_owned();
    if e.is_timeout() {
        FetchError::Timeout {
            host,
            after: timeout,
        }
    } else if is_certificate_error(&e) {
        FetchError::Certificate { host, source: e }
    } else {
        FetchError::Request { host, source: e }
    }
}

/// Whether a rustls certificate rejection is somewhere in the chain of `e`. `io::Error` hides
/// its payload from `source()`, so it is opened with `get_ref()`.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            return is_certificate_error(inner);
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    #[test]
    fn a_fetcher_trusting_nothing_is_refused() {
        let resolver = std::sync::Arc::new(crate::test_dns::FakeDns::default());
        let config = FetchConfig {
            public_roots: false,
            ..FetchConfig::default()
        };
        let err = HttpsFetcher::new(config, resolver).unwrap_err();
        assert!(matches!(err, DiscoveryError::NoTrustAnchors), "{err:?}");
    }

    #[test]
    fn a_malformed_extra_root_is_refused() {
        let config = FetchConfig {
            extra_roots: vec![CertificateDer::from(vec![1, 2, 3])],
            ..FetchConfig::default()
        };
        let err = HttpsFetcher::new(
            config,
            std::sync::Arc::new(crate::test_dns::FakeDns::default()),
        )
        .unwrap_err();
        assert!(matches!(err, DiscoveryError::FetcherSetup(_)), "{err:?}");
    }

    #[test]
    fn certificate_errors_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let io = std::io::Error::other(tls);
        assert!(is_certificate_error(&io));
        let other = std::io::Error::other(rustls::Error::DecryptError);
        assert!(!is_certificate_error(&other));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!is_certificate_error(&plain));
    }
}
