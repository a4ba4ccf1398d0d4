//! [`Resolver`] over hickory-resolver: system resolv.conf or configured servers.
//!
//! Two hickory resolvers sit inside [`HickoryResolver`]: a plain one for routing (MX,
//! addresses) and TXT, which must keep working for unsigned zones and whatever the
//! validator thinks, and a DNSSEC-validating one (see [`crate::validated`]) for TLSA and
//! the secure-route check.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{ResolverBuilder, TokioResolver};

use crate::anchors::Anchors;
use crate::validated::Validating;
use crate::{
    BoxFuture, DnsError, MxHost, MxRecords, OpenpgpkeyAnswer, Resolver, Secured, SmimeaAnswer,
    TlsaAnswer, normalize_name,
};

/// How the hickory resolver reaches DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// Recursive nameservers to ask, each over UDP and TCP on its own port. Empty
    /// means the system configuration (`/etc/resolv.conf`). Pointing this at a
    /// private server (a lab, split-horizon DNS, a local validating resolver) is
    /// ordinary configuration.
    pub nameservers: Vec<SocketAddr>,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times to send a query before giving up (at least 1).
    pub attempts: usize,
    /// Validate TLSA, OPENPGPKEY, SMIMEA and secure-route lookups with DNSSEC in-process
    /// (default true). When false, [`Resolver::tlsa`], [`Resolver::openpgpkey`] and
    /// [`Resolver::smimea`] always answer [`Secured::Insecure`] and
    /// [`Resolver::secure_route`] `false`: DANE and DNS-published keys are off.
    pub dnssec: bool,
    /// Where DNSSEC validation starts. `None` (the default) uses hickory's built-in root
    /// zone KSKs. `Some` names a file of DNSKEY records in zone-file presentation format,
    /// one per line (`example.test. 3600 IN DNSKEY 257 3 13 <base64>`, `;` comments),
    /// which replaces the root keys: an island of trust for private or lab zones (list
    /// the root KSKs in it too to keep validating the public DNS). Names outside every
    /// anchored zone count as insecure. Read once, by [`HickoryResolver::new`]; ignored
    /// when `dnssec` is false.
    pub trust_anchor_file: Option<PathBuf>,
}

impl DnsConfig {
    /// Default per-query timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default number of tries per query.
    pub const DEFAULT_ATTEMPTS: usize = 2;
    /// DNSSEC validation is on unless turned off.
    pub const DEFAULT_DNSSEC: bool = true;
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            attempts: Self::DEFAULT_ATTEMPTS,
            dnssec: Self::DEFAULT_DNSSEC,
            trust_anchor_file: None,
        }
    }
}

/// The production [`Resolver`], built on hickory-resolver with its cache.
///
/// The hosts file is not consulted: mail routing follows DNS (RFC 5321 §5.1).
#[derive(Clone, Debug)]
pub struct HickoryResolver {
    /// Not validating: MX, addresses, TXT.
    inner: TokioResolver,
    /// Validating: TLSA, OPENPGPKEY, SMIMEA and secure routes. `None` when DNSSEC is off.
    validating: Option<Validating>,
}

impl HickoryResolver {
    /// Build a resolver from `cfg`, reading the trust-anchor file if one is configured
    /// ([`DnsError::TrustAnchor`] names the file and what is wrong with it). Needs a
    /// Tokio runtime only when queried.
    pub fn new(cfg: &DnsConfig) -> Result<Self, DnsError> {
        let inner = builder(cfg)?.build().map_err(config_error)?;
        let validating = if cfg.dnssec {
            let anchors = match &cfg.trust_anchor_file {
                Some(path) => Anchors::from_file(path)?,
                None => Anchors::root(),
            };
            let resolver = builder(cfg)?
                .with_trust_anchor(anchors.keys())
                .build()
                .map_err(config_error)?;
            Some(Validating::new(resolver, anchors))
        } else {
            None
        };
        Ok(Self { inner, validating })
    }

    async fn lookup_mx(&self, domain: &str) -> Result<MxRecords, DnsError> {
        let name = absolute_name(domain)?;
        let lookup = match self.inner.mx_lookup(name).await {
            Ok(lookup) => lookup,
            // NODATA: the domain exists without MX, so it is its own exchanger.
            Err(e) if is_nodata(&e) => return Ok(MxRecords::Implicit),
            Err(e) => return Err(classify(domain, "MX", e)),
        };
        let hosts = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(MxHost::new(mx.preference, &mx.exchange.to_ascii())),
                _ => None,
            })
            .collect();
        Ok(MxRecords::classify(hosts))
    }

    async fn lookup_ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = absolute_name(host)?;
        let (v4, v6) = tokio::join!(
            self.inner.ipv4_lookup(name.clone()),
            self.inner.ipv6_lookup(name)
        );
        let v4 = addresses(host, "A", v4);
        let v6 = addresses(host, "AAAA", v6);
        merge_families(host, v4, v6)
    }

    async fn lookup_tlsa(&self, host: &str, port: u16) -> Result<TlsaAnswer, DnsError> {
        match &self.validating {
            Some(v) => v.tlsa(&normalize_name(host), port).await,
            None => Ok(TlsaAnswer::Insecure),
        }
    }

    async fn lookup_openpgpkey(&self, name: &str) -> Result<OpenpgpkeyAnswer, DnsError> {
        match &self.validating {
            Some(v) => v.openpgpkey(&normalize_name(name)).await,
            None => Ok(Secured::Insecure),
        }
    }

    async fn lookup_smimea(&self, name: &str) -> Result<SmimeaAnswer, DnsError> {
        match &self.validating {
            Some(v) => v.smimea(&normalize_name(name)).await,
            None => Ok(Secured::Insecure),
        }
    }

    async fn lookup_secure_route(&self, domain: &str, host: &str) -> Result<bool, DnsError> {
        match &self.validating {
            Some(v) => v.secure_route(domain, host).await,
            None => Ok(false),
        }
    }

    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let fqdn = absolute_name(name)?;
        match self.inner.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    // RFC 7208 §3.3 and RFC 8461 §3.1: a record's strings are joined
                    // without separators.
                    RData::TXT(txt) => {
                        Some(String::from_utf8_lossy(&txt.txt_data.concat()).into_owned())
                    }
                    _ => None,
                })
                .collect()),
            Err(e) if is_nodata(&e) => Ok(Vec::new()),
            Err(e) => Err(classify(name, "TXT", e)),
        }
    }
}

impl Resolver for HickoryResolver {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
        Box::pin(self.lookup_mx(domain))
    }

    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        Box::pin(self.lookup_ips(host))
    }

    fn tlsa<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>> {
        Box::pin(self.lookup_tlsa(host, port))
    }

    fn secure_route<'a>(
        &'a self,
        domain: &'a str,
        host: &'a str,
    ) -> BoxFuture<'a, Result<bool, DnsError>> {
        Box::pin(self.lookup_secure_route(domain, host))
    }

    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        Box::pin(self.lookup_txt(name))
    }

    fn openpgpkey<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>> {
        Box::pin(self.lookup_openpgpkey(name))
    }

    fn smimea<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>> {
        Box::pin(self.lookup_smimea(name))
    }
}

/// A plain (not validating) resolver with the configured servers and options, for libraries
/// that take hickory's own type (DKIM and ARC verification of arriving messages).
pub fn plain_resolver(cfg: &DnsConfig) -> Result<TokioResolver, DnsError> {
    builder(cfg)?.build().map_err(config_error)
}

/// A resolver builder with the configured servers and options (no hosts file).
fn builder(cfg: &DnsConfig) -> Result<ResolverBuilder<TokioRuntimeProvider>, DnsError> {
    let mut builder = if cfg.nameservers.is_empty() {
        TokioResolver::builder_tokio().map_err(config_error)?
    } else {
        let servers = cfg.nameservers.iter().map(|a| nameserver(*a)).collect();
        let config = ResolverConfig::from_name_servers(servers);
        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = cfg.timeout;
    // hickory counts retries after the first try.
    opts.attempts = cfg.attempts.saturating_sub(1);
    opts.use_hosts_file = ResolveHosts::Never;
    Ok(builder)
}

fn config_error(e: NetError) -> DnsError {
    DnsError::Config {
        source: Box::new(e),
    }
}

/// One configured server, over UDP and TCP on the same port.
fn nameserver(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// Parse `name` as an absolute name, so no search list ever applies.
pub(crate) fn absolute_name(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_ascii(name).map_err(|e| DnsError::InvalidName {
        name: name.to_owned(),
        source: Box::new(e),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// The addresses of one family: NODATA is an empty list.
fn addresses(
    host: &str,
    record_type: &'static str,
    result: Result<Lookup, NetError>,
) -> Result<Vec<IpAddr>, DnsError> {
    match result {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect()),
        Err(e) if is_nodata(&e) => Ok(Vec::new()),
        Err(e) => Err(classify(host, record_type, e)),
    }
}

/// Combine the A and AAAA answers. Addresses from one family are used even if
/// the other failed (the failure is logged); with no address at all, a
/// transient failure wins over NXDOMAIN so the relay retries.
fn merge_families(
    host: &str,
    v4: Result<Vec<IpAddr>, DnsError>,
    v6: Result<Vec<IpAddr>, DnsError>,
) -> Result<Vec<IpAddr>, DnsError> {
    match (v4, v6) {
        (Ok(mut v4), Ok(v6)) => {
            v4.extend(v6);
            Ok(v4)
        }
        (Ok(found), Err(e)) | (Err(e), Ok(found)) if !found.is_empty() => {
            tracing::warn!(host = %host, error = %e, "address lookup failed for one family");
            Ok(found)
        }
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => Err(e),
        (Err(a), Err(b)) => Err(if a.is_permanent() { b } else { a }),
    }
}

/// NOERROR with no answer of the asked type: the name exists.
pub(crate) fn is_nodata(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NoError
    )
}

/// Map a hickory failure to our error and its class.
pub(crate) fn classify(name: &str, record_type: &'static str, e: NetError) -> DnsError {
    let name = name.to_owned();
    if e.is_nx_domain() {
        return DnsError::NxDomain { name };
    }
    match e {
        NetError::Timeout => DnsError::Timeout { name, record_type },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::ServerError {
            name,
            record_type,
            rcode: code.to_str().to_owned(),
        },
        source => DnsError::Lookup {
            name,
            record_type,
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    fn nx(name: &str) -> Result<Vec<IpAddr>, DnsError> {
        Err(DnsError::NxDomain { name: name.into() })
    }

    fn timeout(name: &str) -> Result<Vec<IpAddr>, DnsError> {
        Err(DnsError::Timeout {
            name: name.into(),
            record_type: "AAAA",
        })
    }

    #[test]
    fn one_family_answering_is_enough() {
        let v4: IpAddr = "127.0.0.2".parse().unwrap();
        let got = merge_families("h", Ok(vec![v4]), timeout("h")).unwrap();
        assert_eq!(got, vec![v4]);
    }

    #[test]
    fn no_address_and_a_timeout_is_transient() {
        let err = merge_families("h", nx("h"), timeout("h")).unwrap_err();
        assert!(!err.is_permanent());
        let err = merge_families("h", Ok(vec![]), timeout("h")).unwrap_err();
        assert!(!err.is_permanent());
    }

    #[test]
    fn nxdomain_for_both_families_is_permanent() {
        let err = merge_families("h", nx("h"), nx("h")).unwrap_err();
        assert!(err.is_permanent());
    }

    #[test]
    fn invalid_names_are_rejected_before_any_lookup() {
        let err = absolute_name("bad..name").unwrap_err();
        assert!(err.is_permanent(), "{err}");
    }
}
