//! The per-method caches, on Tokio's paused clock: secure DNS answers live their TTL capped
//! by `max_ttl`, WKD keys `max_ttl`, "nothing published" the negative TTL, failures the
//! failure TTL. The store is left out (it is read on every call anyway), so the network
//! steps are driven directly.

use sealgate_dns::{Secured, SmimeaRecord};
use sealgate_testkit::smime::{EmailCertSpec, issue_email};
use sealgate_testkit::tls::TestCa;

use super::*;
use crate::keys::KeyDiscovery;
use crate::keys::discover::Address;

struct CacheLab {
    keys: KeyDiscovery,
    wkd: Arc<FakeWkd>,
    dns: Arc<FakeDns>,
    _db: TestDb,
}

async fn lab(settings: KeySettings) -> CacheLab {
    let db = TestDb::new(TestBackend::Sqlite).await;
    let store = Store::connect(&db.url, 1, Duration::from_secs(5))
        .await
        .unwrap();
    let (wkd, dns) = (Arc::new(FakeWkd::default()), Arc::new(FakeDns::default()));
    let keys = KeyDiscovery::new(
        dns.clone(),
        store,
        wkd.clone(),
        None,
        settings,
        &probe_settings(),
    );
    CacheLab {
        keys,
        wkd,
        dns,
        _db: db,
    }
}

impl CacheLab {
    async fn pgp(&self) {
        let addr = Address::parse(JOE).unwrap();
        self.keys.pgp(&addr, Vec::new(), Vec::new(), now()).await;
    }

    async fn smime(&self) {
        let addr = Address::parse(JOE).unwrap();
        self.keys.smime(&addr, Vec::new(), Vec::new(), now()).await;
    }

    /// Asks at once, `before` later and `after` later (from the start), on the paused
    /// clock: how many network requests (WKD, DNS) had been made after each ask.
    async fn ask_around(&self, before: u64, after: u64) -> [(usize, usize); 3] {
        let (mut counts, mut clock) = ([(0, 0); 3], 0);
        for (count, at) in counts.iter_mut().zip([0, before, after]) {
            tokio::time::advance(Duration::from_secs(at - clock)).await;
            clock = at;
            self.pgp().await;
            *count = (self.wkd.requests(), self.dns.lookups());
        }
        counts
    }
}

fn wkd_only() -> KeySettings {
    KeySettings {
        openpgpkey: false,
        ..KeySettings::default()
    }
}

fn openpgpkey_only() -> KeySettings {
    KeySettings {
        wkd: false,
        ..KeySettings::default()
    }
}

fn secure(ttl: u32) -> sealgate_dns::OpenpgpkeyAnswer {
    Secured::Secure {
        records: vec![keys().good.0.clone()],
        ttl,
    }
}

#[tokio::test]
async fn a_secure_openpgpkey_answer_is_cached_for_its_ttl() {
    let lab = lab(openpgpkey_only()).await;
    lab.dns.openpgpkey(secure(300));
    tokio::time::pause();
    assert_eq!(lab.ask_around(299, 301).await, [(0, 1), (0, 1), (0, 2)]);
}

#[tokio::test]
async fn a_long_dns_ttl_is_capped_by_max_ttl() {
    let lab = lab(openpgpkey_only()).await;
    lab.dns.openpgpkey(secure(86_400));
    let max = MAX_TTL.as_secs();
    tokio::time::pause();
    let asked = lab.ask_around(max - 1, max + 1).await;
    assert_eq!(asked, [(0, 1), (0, 1), (0, 2)]);
}

#[tokio::test]
async fn a_wkd_key_is_cached_for_max_ttl() {
    let lab = lab(wkd_only()).await;
    lab.wkd.advanced(Answer::Body(keys().good.0.clone()));
    let max = MAX_TTL.as_secs();
    tokio::time::pause();
    let asked = lab.ask_around(max - 1, max + 1).await;
    assert_eq!(asked, [(1, 0), (1, 0), (2, 0)]);
}

#[tokio::test]
async fn nothing_published_is_cached_for_the_negative_ttl() {
    let published_nothing = lab(KeySettings::default()).await;
    published_nothing.wkd.advanced(Answer::Status(404));
    // An unsigned zone's records are as good as none.
    let unsigned = lab(openpgpkey_only()).await;
    unsigned.dns.openpgpkey(Secured::Insecure);
    let negative = NEGATIVE_TTL.as_secs();
    tokio::time::pause();
    let asked = published_nothing.ask_around(negative - 1, negative + 1);
    assert_eq!(asked.await, [(1, 1), (1, 1), (2, 2)]);
    let asked = unsigned.ask_around(negative - 1, negative + 1);
    assert_eq!(asked.await, [(0, 1), (0, 1), (0, 2)]);
}

#[tokio::test]
async fn failures_are_cached_for_the_failure_ttl() {
    let lab = lab(KeySettings::default()).await;
    lab.wkd.advanced(Answer::Status(503));
    lab.dns.openpgpkey(Secured::Bogus {
        reason: "signature expired".into(),
    });
    let failure = FAILURE_TTL.as_secs();
    tokio::time::pause();
    let asked = lab.ask_around(failure - 1, failure + 1).await;
    assert_eq!(asked, [(1, 1), (1, 1), (2, 2)]);
}

#[tokio::test]
async fn each_method_keeps_its_own_expiry() {
    let lab = lab(KeySettings::default()).await;
    lab.wkd.advanced(Answer::Body(keys().good.0.clone()));
    // WKD found a key (max_ttl), OPENPGPKEY nothing (negative TTL).
    let negative = NEGATIVE_TTL.as_secs();
    tokio::time::pause();
    let asked = lab.ask_around(negative - 1, negative + 1).await;
    assert_eq!(asked, [(1, 1), (1, 1), (1, 2)]);
}

#[tokio::test]
async fn a_secure_smimea_answer_is_cached_for_its_ttl() {
    let lab = lab(KeySettings::default()).await;
    let cert = issue_email(&TestCa::new(), JOE, EmailCertSpec::default());
    lab.dns.smimea(Secured::Secure {
        records: vec![SmimeaRecord {
            usage: 3,
            selector: 0,
            matching: 0,
            data: cert.cert_der,
        }],
        ttl: 60,
    });
    tokio::time::pause();
    lab.smime().await;
    tokio::time::advance(Duration::from_secs(59)).await;
    lab.smime().await;
    assert_eq!(lab.dns.lookups(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    lab.smime().await;
    assert_eq!(lab.dns.lookups(), 2);
}
