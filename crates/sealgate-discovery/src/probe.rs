//! [`Discovery`]: everything known about one recipient domain before deciding — DANE per MX
//! host (cached by TTL, negative answers by the negative TTL), the MTA-STS policy, and the
//! downgrade memory — plus the two things delivery reports back: a verified-TLS sighting
//! (the ratchet) and TLS-RPT session counts; and, when turned on, recipient keys
//! ([`crate::keys`]).

use std::sync::Arc;
use std::time::Duration;

use sealgate_dns::Resolver;
use sealgate_encrypt::smime::TrustStore;
use sealgate_store::{Store, TlsRptSession, VerifiedDomain};
use sealgate_types::security::{DomainEvidence, MtaStsMode};
use sealgate_types::time::now_micros;
use tracing::warn;

use crate::DiscoveryError;
use crate::cache::ProbeCache;
use crate::dane::{self, DaneProbe, DaneStatus};
use crate::keys::{KeyDiscovery, KeySettings, KeyWant, RecipientKeys, WkdFetcher};
use crate::mta_sts::{HttpsFetcher, MtaSts, StsLookup};

/// How often a verified-TLS sighting of an already remembered domain is written again.
const SIGHTING_REFRESH: i64 = 24 * 3600 * 1_000_000;

/// Probe settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    /// The port TLSA names are built for (`_25._tcp.HOST`).
    pub smtp_port: u16,
    /// Longest time a secure TLSA answer is cached, even when its TTL is longer.
    pub max_ttl: Duration,
    /// How long "no TLSA" and "unsigned" answers are cached.
    pub negative_ttl: Duration,
    /// How long failed or bogus answers are cached before asking again.
    pub failure_ttl: Duration,
    /// Most domains cached.
    pub max_entries: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            smtp_port: 25,
            max_ttl: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(300),
            failure_ttl: Duration::from_secs(30),
            max_entries: 10_000,
        }
    }
}

/// What discovery found about one recipient domain.
#[derive(Clone, Debug)]
pub struct DomainProbe {
    /// The domain (lowercase).
    pub domain: String,
    /// DANE per MX host.
    pub dane: DaneProbe,
    /// The MTA-STS lookup; `None` when MTA-STS is turned off.
    pub sts: Option<StsLookup>,
    /// The downgrade memory: when the domain was last seen with verified TLS.
    pub verified_before: Option<VerifiedDomain>,
    /// Problems reading local state, for the evidence.
    pub notes: Vec<String>,
}

impl DomainProbe {
    /// A domain whose mail goes by an operator's route: its MX hosts are not probed, so
    /// nothing about them is known.
    pub fn routed(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            dane: DaneProbe {
                route_secure: false,
                hosts: Vec::new(),
            },
            sts: None,
            verified_before: None,
            notes: Vec::new(),
        }
    }

    /// What the probes found, as the policy engine reads it (pins come from the rules, and
    /// STARTTLS is not probed ahead of a connection).
    pub fn evidence(&self) -> DomainEvidence {
        DomainEvidence {
            dane: self.dane.summary(),
            mta_sts: self.sts.as_ref().map_or(MtaStsMode::None, StsLookup::mode),
            pins: Vec::new(),
            starttls_seen: false,
            seen_verified_before: self.verified_before.is_some(),
            route: None,
        }
    }
}

/// The probes, their caches and the persisted per-domain state. Share behind an `Arc`.
#[derive(Debug)]
pub struct Discovery {
    resolver: Arc<dyn Resolver>,
    sts: Option<Arc<MtaSts>>,
    store: Store,
    dane_cache: ProbeCache<DaneProbe>,
    settings: ProbeSettings,
    /// Recipient key discovery, when turned on.
    keys: Option<KeyDiscovery>,
}

impl Discovery {
    /// Discovery over `resolver`, with MTA-STS when `sts` is given.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        sts: Option<Arc<MtaSts>>,
        store: Store,
        settings: ProbeSettings,
    ) -> Self {
        Self {
            resolver,
            sts,
            store,
            dane_cache: ProbeCache::new(settings.max_entries, settings.negative_ttl),
            settings,
            keys: None,
        }
    }

    /// Turns recipient key discovery on, with WKD fetched over HTTPS as `settings.fetch`
    /// says; S/MIME certificates from the store and from PKIX-EE SMIMEA records must chain
    /// to `trust` (DANE-EE ones need no chain). Fails when those HTTPS settings trust no
    /// usable root. TTLs and cache size are this discovery's [`ProbeSettings`].
    pub fn with_keys(
        self,
        settings: KeySettings,
        trust: Option<TrustStore>,
    ) -> Result<Self, DiscoveryError> {
        let fetcher = HttpsFetcher::new(settings.fetch.clone(), self.resolver.clone())?;
        Ok(self.with_key_fetcher(settings, trust, Arc::new(fetcher)))
    }

    /// As [`Discovery::with_keys`], with WKD documents fetched through `fetcher`
    /// (`settings.fetch` is then unused).
    pub fn with_key_fetcher(
        mut self,
        settings: KeySettings,
        trust: Option<TrustStore>,
        fetcher: Arc<dyn WkdFetcher>,
    ) -> Self {
        self.keys = Some(KeyDiscovery::new(
            self.resolver.clone(),
            self.store.clone(),
            fetcher,
            trust,
            settings,
            &self.settings,
        ));
        self
    }

    /// The OpenPGP and S/MIME credentials of `address` that `want` asks for, validated now:
    /// see [`crate::keys`]. Both are `NotLooked` when key discovery is off.
    pub async fn recipient_keys(&self, address: &str, want: KeyWant) -> RecipientKeys {
        self.recipient_keys_at(address, want, now_micros() / 1_000_000)
            .await
    }

    /// As [`Discovery::recipient_keys`], validating at `now` (Unix seconds).
    pub async fn recipient_keys_at(&self, address: &str, want: KeyWant, now: i64) -> RecipientKeys {
        match &self.keys {
            Some(keys) => keys.recipient_keys(address, want, now).await,
            None => RecipientKeys::not_looked(),
        }
    }

    /// The MTA-STS discovery, when enabled (for the background refresher).
    pub fn mta_sts(&self) -> Option<&Arc<MtaSts>> {
        self.sts.as_ref()
    }

    /// Probes `domain`, whose MX hosts (in routing order) are `hosts`.
    pub async fn probe(&self, domain: &str, hosts: &[String]) -> DomainProbe {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let sts = async {
            match &self.sts {
                Some(sts) => Some(sts.lookup(&domain).await),
                None => None,
            }
        };
        let (dane, sts, before) = tokio::join!(
            self.dane(&domain, hosts),
            sts,
            self.store.verified_domain(&domain)
        );
        let mut notes = Vec::new();
        let verified_before = before.unwrap_or_else(|e| {
            warn!(domain = %domain, error = %e, "cannot read the downgrade memory");
            notes.push(format!("downgrade memory unreadable: {e}"));
            None
        });
        DomainProbe {
            domain,
            dane,
            sts,
            verified_before,
            notes,
        }
    }

    /// The DANE probe of `domain`'s `hosts`, from the cache when fresh.
    async fn dane(&self, domain: &str, hosts: &[String]) -> DaneProbe {
        let key = format!("{domain} {}", hosts.join(" "));
        if let Some(hit) = self.dane_cache.get(&key) {
            return hit;
        }
        let probe = dane::probe(
            self.resolver.as_ref(),
            domain,
            hosts,
            self.settings.smtp_port,
        )
        .await;
        match probe.summary() {
            DaneStatus::Valid => {
                let ttl = probe
                    .min_ttl()
                    .map_or(self.settings.max_ttl, |t| Duration::from_secs(u64::from(t)));
                self.dane_cache
                    .insert(&key, probe.clone(), ttl.min(self.settings.max_ttl));
            }
            DaneStatus::Unknown | DaneStatus::Bogus => {
                self.dane_cache
                    .insert(&key, probe.clone(), self.settings.failure_ttl);
            }
            DaneStatus::Unusable | DaneStatus::SecureNoTlsa | DaneStatus::Insecure => {
                self.dane_cache.insert_negative(&key, probe.clone());
            }
        }
        probe
    }

    /// Records that `domain` was just delivered to with verified TLS `via` `dane` or
    /// `mta-sts` (the downgrade ratchet). Writes at most once a day per domain.
    pub async fn note_verified(&self, probe: &DomainProbe, via: &str) {
        let fresh = probe.verified_before.as_ref().is_some_and(|v| {
            v.verified_via == via && now_micros() - v.last_seen_at < SIGHTING_REFRESH
        });
        if fresh {
            return;
        }
        if let Err(e) = self.store.mark_verified_domain(&probe.domain, via).await {
            warn!(domain = %probe.domain, error = %e, "cannot record the verified-TLS sighting");
        }
    }

    /// Counts TLS sessions for TLS-RPT (RFC 8460). Failures to write are logged, never fatal.
    pub async fn record_tls(&self, sessions: &[TlsRptSession]) {
        if let Err(e) = self.store.tls_rpt_record(sessions).await {
            warn!(error = %e, sessions = sessions.len(), "cannot record TLS-RPT counts");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The DANE probe cache over a counting resolver: secure answers live their TTL (capped),
    //! negative answers the negative TTL, failures the failure TTL.

    use std::net::IpAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sealgate_dns::{
        BoxFuture, DnsError, MxRecords, OpenpgpkeyAnswer, Secured, SmimeaAnswer, TlsaAnswer,
        TlsaRecord,
    };
    use sealgate_testkit::db::{TestBackend, TestDb};

    use super::*;

    #[derive(Debug)]
    struct Counting {
        answer: Mutex<Result<TlsaAnswer, String>>,
        tlsa_calls: AtomicUsize,
    }

    impl Counting {
        fn new(answer: Result<TlsaAnswer, String>) -> Arc<Self> {
            Arc::new(Self {
                answer: Mutex::new(answer),
                tlsa_calls: AtomicUsize::new(0),
            })
        }
        fn calls(&self) -> usize {
            self.tlsa_calls.load(Ordering::SeqCst)
        }
    }

    impl Resolver for Counting {
        fn mx<'a>(&'a self, _d: &'a str) -> BoxFuture<'a, Result<MxRecords, DnsError>> {
            Box::pin(async { Ok(MxRecords::Implicit) })
        }
        fn ips<'a>(&'a self, _h: &'a str) -> BoxFuture<'a, Result<Vec<IpAddr>, DnsError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn tlsa<'a>(
            &'a self,
            host: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, Result<TlsaAnswer, DnsError>> {
            self.tlsa_calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.answer.lock().unwrap().clone();
            Box::pin(async move {
                answer.map_err(|rcode| DnsError::ServerError {
                    name: host.to_owned(),
                    record_type: "TLSA",
                    rcode,
                })
            })
        }
        fn secure_route<'a>(
            &'a self,
            _d: &'a str,
            _h: &'a str,
        ) -> BoxFuture<'a, Result<bool, DnsError>> {
            Box::pin(async { Ok(true) })
        }
        fn txt<'a>(&'a self, _n: &'a str) -> BoxFuture<'a, Result<Vec<String>, DnsError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn openpgpkey<'a>(
            &'a self,
            _n: &'a str,
        ) -> BoxFuture<'a, Result<OpenpgpkeyAnswer, DnsError>> {
            Box::pin(async { Ok(Secured::Insecure) })
        }
        fn smimea<'a>(&'a self, _n: &'a str) -> BoxFuture<'a, Result<SmimeaAnswer, DnsError>> {
            Box::pin(async { Ok(Secured::Insecure) })
        }
    }

    fn secure(ttl: u32) -> TlsaAnswer {
        TlsaAnswer::Secure {
            records: vec![TlsaRecord {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![7; 32],
            }],
            ttl,
        }
    }

    async fn discovery(resolver: Arc<Counting>) -> (Discovery, TestDb) {
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 2, Duration::from_secs(5))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let settings = ProbeSettings {
            max_ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(120),
            failure_ttl: Duration::from_secs(10),
            ..ProbeSettings::default()
        };
        (Discovery::new(resolver, None, store, settings), db)
    }

    /// Probes three times: now, after `before`, after `after` (time paused after setup; the
    /// DANE probe alone, which touches no database).
    async fn probe_twice_around(d: &Discovery, before: Duration, after: Duration) -> DaneStatus {
        tokio::time::pause();
        let hosts = vec!["mx.example.test".to_owned()];
        let first = d.dane("example.test", &hosts).await.summary();
        tokio::time::advance(before).await;
        d.dane("example.test", &hosts).await;
        tokio::time::advance(after - before).await;
        d.dane("example.test", &hosts).await;
        first
    }

    #[tokio::test]
    async fn a_secure_answer_is_cached_for_its_ttl() {
        let r = Counting::new(Ok(secure(300)));
        let (d, _db) = discovery(r.clone()).await;
        let summary =
            probe_twice_around(&d, Duration::from_secs(299), Duration::from_secs(301)).await;
        assert_eq!(summary, DaneStatus::Valid);
        assert_eq!(r.calls(), 2, "cached within the TTL, asked again after it");
    }

    #[tokio::test]
    async fn a_long_ttl_is_capped_by_max_ttl() {
        let r = Counting::new(Ok(secure(86_400)));
        let (d, _db) = discovery(r.clone()).await;
        probe_twice_around(&d, Duration::from_secs(599), Duration::from_secs(601)).await;
        assert_eq!(r.calls(), 2);
    }

    #[tokio::test]
    async fn no_tlsa_is_cached_for_the_negative_ttl() {
        let r = Counting::new(Ok(TlsaAnswer::SecureNone));
        let (d, _db) = discovery(r.clone()).await;
        let summary =
            probe_twice_around(&d, Duration::from_secs(119), Duration::from_secs(121)).await;
        assert_eq!(summary, DaneStatus::SecureNoTlsa);
        assert_eq!(r.calls(), 2);
    }

    #[tokio::test]
    async fn a_failed_lookup_is_retried_after_the_failure_ttl() {
        let r = Counting::new(Err("SERVFAIL".into()));
        let (d, _db) = discovery(r.clone()).await;
        let summary = probe_twice_around(&d, Duration::from_secs(9), Duration::from_secs(11)).await;
        assert_eq!(summary, DaneStatus::Unknown);
        assert_eq!(r.calls(), 2);
        *r.answer.lock().unwrap() = Ok(secure(300));
        tokio::time::advance(Duration::from_secs(11)).await;
        let hosts = vec!["mx.example.test".to_owned()];
        assert_eq!(
            d.dane("example.test", &hosts).await.summary(),
            DaneStatus::Valid,
            "recovered once the failure expired"
        );
    }

    #[tokio::test]
    async fn the_downgrade_memory_is_read_and_written_once_a_day() {
        let r = Counting::new(Ok(secure(300)));
        let (d, _db) = discovery(r).await;
        let hosts = vec!["mx.example.test".to_owned()];
        let p = d.probe("example.test", &hosts).await;
        assert!(p.verified_before.is_none());
        d.note_verified(&p, "dane").await;
        let p = d.probe("example.test", &hosts).await;
        let seen = p.verified_before.clone().expect("remembered");
        assert_eq!(seen.verified_via, "dane");
        d.note_verified(&p, "dane").await;
        let again = d
            .probe("example.test", &hosts)
            .await
            .verified_before
            .unwrap();
        assert_eq!(
            again.last_seen_at, seen.last_seen_at,
            "no rewrite within a day"
        );
    }
}
