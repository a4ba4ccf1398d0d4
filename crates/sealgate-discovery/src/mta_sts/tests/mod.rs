//! Tests of MTA-STS discovery, and the lab they run in: a real DNS server (`TestDns`), a real
//! HTTPS policy server (`TestHttps`) with a test-CA certificate, the hickory resolver, the
//! HTTPS fetcher and a SQLite store.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

mod fetch;
mod lookup;
mod policy;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealgate_dns::{
    BoxFuture, DnsConfig, DnsError, HickoryResolver, MxRecords, OpenpgpkeyAnswer, Resolver,
    SmimeaAnswer, TlsaAnswer,
};
use sealgate_store::Store;
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_testkit::dns::TestDns;
use sealgate_testkit::https::TestHttps;
use sealgate_testkit::tls::TestCa;

use super::{FetchConfig, HttpsFetcher, MtaSts};

/// The policy domain of most tests.
pub(crate) const DOMAIN: &str = "example.test";
/// Its policy host.
pub(crate) const HOST: &str = "mta-sts.example.test";

/// An enforce policy for `mx.example.test`, one day.
pub(crate) const ENFORCE: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";
/// A testing policy for `*.example.test`, one week.
pub(crate) const TESTING: &str =
    "version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 604800\n";

/// Zone text for `example.test.`: the SOA plus `records`.
pub(crate) fn zone(records: &str) -> String {
    format!("@ 60 IN SOA ns hostmaster 1 60 60 60 60\n{records}")
}

/// The zone of an MTA-STS domain whose policy host is on 127.0.0.1, with TXT id `id`.
pub(crate) fn sts_zone(id: &str) -> String {
    zone(&format!(
        "mta-sts 60 IN A 127.0.0.1\n_mta-sts 60 IN TXT \"v=STSv1; id={id}\"\n"
    ))
}

/// The lab's DNS: a real `TestDns` behind the hickory resolver, replaceable mid-test (a new
/// zone means a new server and a resolver with an empty cache), counting TXT and address
/// lookups.
#[derive(Debug)]
pub(crate) struct LabDns {
    current: Mutex<(Arc<dyn Resolver>, Arc<TestDns>)>,
    txt_lookups: AtomicUsize,
    ip_lookups: AtomicUsize,
}

impl LabDns {
    async fn serve(zone_text: &str) -> (Arc<dyn Resolver>, Arc<TestDns>) {
        let dns = TestDns::start(&[("example.test.", zone_text)]).await;
        let config = DnsConfig {
            nameservers: vec![dns.addr],
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let resolver = HickoryResolver::new(&config).unwrap();
        (Arc::new(resolver), Arc::new(dns))
    }

    pub(crate) async fn start(zone_text: &str) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(Self::serve(zone_text).await),
            txt_lookups: AtomicUsize::new(0),
            ip_lookups: AtomicUsize::new(0),
        })
    }

    /// Serves `zone_text` from now on.
    pub(crate) async fn set_zone(&self, zone_text: &str) {
        let next = Self::serve(zone_text).await;
        *self.current.lock().unwrap() = next;
    }

    pub(crate) fn txt_lookups(&self) -> usize {
        self.txt_lookups.load(Ordering::SeqCst)
    }

    pub(crate) fn ip_lookups(&self) -> usize {
        self.ip_lookups.load(Ordering::SeqCst)
    }

    fn resolver(&self) -> Arc<dyn Resolver> {
        self.current.lock().unwrap().0.clone()
    }
}

impl Resolver for LabDns {
    fn mx<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
        Box::pin(async move { self.resolver().mx(domain).await })
    }
    fn ips<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
        self.ip_lookups.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { self.resolver().ips(host).await })
    }
    fn tlsa<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>> {
        Box::pin(async move { self.resolver().tlsa(host, port).await })
    }
    fn secure_route<'a>(&'a self, d: &'a str, h: &'a str) -> BoxFuture<'a, Result<bool, DnsError>> {
        Box::pin(async move { self.resolver().secure_route(d, h).await })
    }
    fn txt<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
        self.txt_lookups.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { self.resolver().txt(name).await })
    }
    fn openpgpkey<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>> {
        Box::pin(async move { self.resolver().openpgpkey(name).await })
    }
    fn smimea<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>> {
        Box::pin(async move { self.resolver().smimea(name).await })
    }
}

/// Everything MTA-STS discovery talks to, for real, on loopback.
pub(crate) struct Lab {
    pub(crate) ca: TestCa,
    pub(crate) https: TestHttps,
    pub(crate) dns: Arc<LabDns>,
    pub(crate) store: Store,
    pub(crate) sts: MtaSts,
    _db: TestDb,
}

impl Lab {
    /// A lab serving `zone_text` for `example.test.` and an HTTPS server whose certificate
    /// names `cert_names`; "no policy" answers are remembered for `negative_ttl`.
    pub(crate) async fn start(zone_text: &str, cert_names: &[&str], negative_ttl: Duration) -> Lab {
        let ca = TestCa::new();
        let https = TestHttps::start("127.0.0.1:0".parse().unwrap(), &ca, cert_names).await;
        let dns = LabDns::start(zone_text).await;
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 4, Duration::from_secs(10))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let sts = discovery(&https, &ca, &dns, &store, negative_ttl);
        Lab {
            ca,
            https,
            dns,
            store,
            sts,
            _db: db,
        }
    }

    /// The usual lab: `example.test` publishing id `1`, its policy host certified.
    pub(crate) async fn standard() -> Lab {
        Self::start(&sts_zone("1"), &[HOST], Duration::from_secs(300)).await
    }

    /// Fetcher settings that reach the lab's HTTPS server and trust only the lab's CA.
    pub(crate) fn fetch_config(&self) -> FetchConfig {
        fetch_config(&self.https, &self.ca)
    }

    /// Another discovery instance over the same DNS, HTTPS server and store (a restarted
    /// relay, or a second node).
    pub(crate) fn discovery(&self, negative_ttl: Duration) -> MtaSts {
        discovery(&self.https, &self.ca, &self.dns, &self.store, negative_ttl)
    }
}

fn fetch_config(https: &TestHttps, ca: &TestCa) -> FetchConfig {
    FetchConfig {
        https_port: https.addr().port(),
        timeout: Duration::from_secs(5),
        extra_roots: vec![ca.cert_der()],
        public_roots: false,
    }
}

fn discovery(
    https: &TestHttps,
    ca: &TestCa,
    dns: &Arc<LabDns>,
    store: &Store,
    negative_ttl: Duration,
) -> MtaSts {
    let fetcher = HttpsFetcher::new(fetch_config(https, ca), dns.clone()).unwrap();
    MtaSts::new(
        dns.clone(),
        Arc::new(fetcher),
        store.clone(),
        negative_ttl,
        100,
    )
}
