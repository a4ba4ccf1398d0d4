//! Tests of recipient key discovery, and what they share: real keys made once by GnuPG and
//! certificates from a test CA, a canned WKD fetcher and a canned DNS resolver (both
//! counting what they are asked), and a discovery over a SQLite store.

#![allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests

mod cache;
mod choice;
mod dane;
mod https;
mod wkd;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealgate_dns::{BoxFuture, DnsError, OpenpgpkeyAnswer, SmimeaAnswer};
use sealgate_store::{Store, StoredKey};
use sealgate_testkit::db::{TestBackend, TestDb};
use sealgate_testkit::gpg::{GpgHome, KeySpec};
use sealgate_types::AuditRecord;

use super::{KeyFinding, KeySettings, KeyWant, RecipientKeys, WkdFetcher};
use crate::error::FetchError;
pub(crate) use crate::test_dns::FakeDns;
use crate::{Discovery, ProbeSettings};

/// The recipient of most tests.
pub(crate) const JOE: &str = "joe@example.test";
/// Its domain.
pub(crate) const DOMAIN: &str = "example.test";

/// The TTLs of the lab's discovery.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(600);
pub(crate) const NEGATIVE_TTL: Duration = Duration::from_secs(120);
pub(crate) const FAILURE_TTL: Duration = Duration::from_secs(10);

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// OpenPGP keys made by GnuPG, binary, with their fingerprints; made once per test run.
pub(crate) struct Keys {
    /// joe, Ed25519 + Curve25519, no expiry.
    pub(crate) good: (Vec<u8>, String),
    /// joe, expiring in two days.
    pub(crate) sooner: (Vec<u8>, String),
    /// joe, expiring in five days.
    pub(crate) later: (Vec<u8>, String),
    /// joe, expired (made ten days ago for a day).
    pub(crate) expired: (Vec<u8>, String),
    /// joe, revoked.
    pub(crate) revoked: (Vec<u8>, String),
    /// joe, no encryption-capable key.
    pub(crate) signing_only: (Vec<u8>, String),
    /// someone@example.test, not joe.
    pub(crate) stranger: (Vec<u8>, String),
    /// `good`, ASCII-armored.
    pub(crate) good_armored: Vec<u8>,
}

pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let made = |email: &str, spec: KeySpec| {
            let home = GpgHome::new();
            let fpr = home.gen_key(email, spec);
            (home.export_public(&fpr, false), fpr)
        };
        let home = GpgHome::new();
        let good_fpr = home.gen_key(JOE, KeySpec::Default);
        Keys {
            good: (home.export_public(&good_fpr, false), good_fpr.clone()),
            good_armored: home.export_public(&good_fpr, true),
            sooner: expiring(JOE, 2),
            later: expiring(JOE, 5),
            expired: made(JOE, KeySpec::Expired),
            revoked: made(JOE, KeySpec::Revoked),
            signing_only: made(JOE, KeySpec::SigningOnly),
            stranger: made("someone@example.test", KeySpec::Default),
        }
    })
}

/// A key for `email` whose primary and encryption keys expire in `days` days.
fn expiring(email: &str, days: u32) -> (Vec<u8>, String) {
    let home = GpgHome::new();
    let expiry = format!("{days}d");
    let made = home.run(
        &["--quick-gen-key", email, "ed25519", "cert,sign", &expiry],
        None,
    );
    assert!(made.ok, "{}", made.stderr);
    let fpr = home.fingerprint_of(email);
    let sub = home.run(&["--quick-add-key", &fpr, "cv25519", "encr", &expiry], None);
    assert!(sub.ok, "{}", sub.stderr);
    (home.export_public(&fpr, false), fpr)
}

/// What the canned WKD fetcher answers for one host and path.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// 200 with this body.
    Body(Vec<u8>),
    /// Another status.
    Status(u16),
    /// No answer in time.
    Timeout,
}

/// A WKD fetcher with canned answers: hosts never set do not exist (NXDOMAIN); a known host
/// answers 404 for paths never set. Counts requests per host.
#[derive(Debug, Default)]
pub(crate) struct FakeWkd {
    routes: Mutex<HashMap<(String, String), Answer>>,
    hosts: Mutex<HashSet<String>>,
    asked: Mutex<Vec<String>>,
}

impl FakeWkd {
    pub(crate) fn set(&self, host: &str, path: &str, answer: Answer) {
        self.hosts.lock().unwrap().insert(host.to_owned());
        let key = (host.to_owned(), path.to_owned());
        self.routes.lock().unwrap().insert(key, answer);
    }

    /// Serves `body` by the advanced method for joe.
    pub(crate) fn advanced(&self, answer: Answer) {
        let url = super::wkd::WkdUrl::advanced("joe", DOMAIN);
        self.set(&url.host, &url.path, answer);
    }

    /// Serves `body` by the direct method for joe.
    pub(crate) fn direct(&self, answer: Answer) {
        let url = super::wkd::WkdUrl::direct("joe", DOMAIN);
        self.set(&url.host, &url.path, answer);
    }

    /// How many requests went to `host`.
    pub(crate) fn asked(&self, host: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|h| *h == host)
            .count()
    }

    /// How many requests were made.
    pub(crate) fn requests(&self) -> usize {
        self.asked.lock().unwrap().len()
    }

    fn answer(&self, host: &str, path: &str) -> Result<Vec<u8>, FetchError> {
        self.asked.lock().unwrap().push(host.to_owned());
        if !self.hosts.lock().unwrap().contains(host) {
            let source = DnsError::NxDomain { name: host.into() };
            return Err(FetchError::Resolve {
                host: host.into(),
                source,
            });
        }
        let key = (host.to_owned(), path.to_owned());
        match self.routes.lock().unwrap().get(&key).cloned() {
            Some(Answer::Body(body)) => Ok(body),
            Some(Answer::Status(status)) => Err(FetchError::Status { status }),
            Some(Answer::Timeout) => Err(FetchError::Timeout {
                host: host.into(),
                after: Duration::from_secs(5),
            }),
            None => Err(FetchError::Status { status: 404 }),
        }
    }
}

impl WkdFetcher for FakeWkd {
    fn get<'a>(
        &'a self,
        host: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        let answer = self.answer(host, path);
        Box::pin(async move { answer })
    }
}

/// The lab's resolver ([`FakeDns`]) answering for joe.
impl FakeDns {
    /// Answers joe's OPENPGPKEY lookups with `answer`.
    pub(crate) fn openpgpkey(&self, answer: OpenpgpkeyAnswer) {
        let name = super::dns::openpgpkey_name("joe", DOMAIN);
        self.openpgpkey.lock().unwrap().insert(name, answer);
    }

    /// Answers joe's SMIMEA lookups with `answer`.
    pub(crate) fn smimea(&self, answer: SmimeaAnswer) {
        let name = super::dns::smimea_name("joe", DOMAIN);
        self.smimea.lock().unwrap().insert(name, answer);
    }
}

/// A discovery with key discovery on, over the canned fetcher and resolver and a SQLite
/// store.
pub(crate) struct Lab {
    pub(crate) discovery: Discovery,
    pub(crate) wkd: Arc<FakeWkd>,
    pub(crate) dns: Arc<FakeDns>,
    pub(crate) store: Store,
    _db: TestDb,
}

pub(crate) fn probe_settings() -> ProbeSettings {
    ProbeSettings {
        max_ttl: MAX_TTL,
        negative_ttl: NEGATIVE_TTL,
        failure_ttl: FAILURE_TTL,
        ..ProbeSettings::default()
    }
}

impl Lab {
    pub(crate) async fn new(settings: KeySettings) -> Lab {
        Self::with_trust(settings, None).await
    }

    pub(crate) async fn with_trust(
        settings: KeySettings,
        trust: Option<sealgate_encrypt::smime::TrustStore>,
    ) -> Lab {
        let db = TestDb::new(TestBackend::Sqlite).await;
        let store = Store::connect(&db.url, 2, Duration::from_secs(5))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let (wkd, dns) = (Arc::new(FakeWkd::default()), Arc::new(FakeDns::default()));
        let discovery = Discovery::new(dns.clone(), None, store.clone(), probe_settings())
            .with_key_fetcher(settings, trust, wkd.clone());
        Lab {
            discovery,
            wkd,
            dns,
            store,
            _db: db,
        }
    }

    /// The keys of joe, OpenPGP only.
    pub(crate) async fn pgp(&self) -> RecipientKeys {
        self.discovery.recipient_keys(JOE, PGP).await
    }

    /// Stores `material` for joe, as an operator's import would.
    pub(crate) async fn store_key(&self, kind: &str, material: &[u8], fingerprint: &str) {
        let key = StoredKey {
            kind: kind.into(),
            fingerprint: fingerprint.into(),
            address: JOE.into(),
            material: material.to_vec(),
            source: "import".into(),
            expires: None,
            added_at: 1,
        };
        let audit = AuditRecord {
            kind: "key_imported".into(),
            message_id: None,
            recipient: Some(JOE.into()),
            data: serde_json::json!({ "fingerprint": fingerprint }),
        };
        self.store.keys_put(&[key], &audit).await.unwrap();
    }
}

/// OpenPGP wanted, S/MIME not.
pub(crate) const PGP: KeyWant = KeyWant {
    pgp: true,
    smime: false,
};
/// S/MIME wanted, OpenPGP not.
pub(crate) const SMIME: KeyWant = KeyWant {
    pgp: false,
    smime: true,
};

/// The fingerprint, source and validity class of a finding: `("FPR", "wkd-advanced",
/// "usable")`, or `None` when nothing was found.
pub(crate) fn summary<C>(finding: &KeyFinding<C>) -> Option<(String, &'static str, &'static str)> {
    match finding {
        KeyFinding::Found { info, source, .. } => {
            let class = info
                .status
                .as_ref()
                .map_or_else(|p| p.class(), |_| "usable");
            Some((info.fingerprint.clone(), source.as_str(), class))
        }
        _ => None,
    }
}

/// The notes of a finding, joined, for assertions.
pub(crate) fn notes<C>(finding: &KeyFinding<C>) -> String {
    finding.notes().join(" | ")
}
