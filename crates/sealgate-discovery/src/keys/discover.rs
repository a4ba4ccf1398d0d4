//! [`KeyDiscovery`]: the store, then the network methods through their caches, then the
//! choice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealgate_dns::Resolver;
use sealgate_encrypt::pgp::PgpCert;
use sealgate_encrypt::smime::{SmimeCert, TrustStore};
use sealgate_encrypt::{KeyInfo, KeyKind, Problem};
use sealgate_store::{Store, StoredKey};
use tracing::{debug, warn};

use super::select::{Candidate, Checked, Expiry, Lookup, any_usable, choose, discovered};
use super::{
    Discovered, KeyFinding, KeySettings, KeySource, KeyWant, RecipientKeys, WkdFetcher, dns, wkd,
};
use crate::ProbeSettings;
use crate::cache::ProbeCache;
use crate::mta_sts::policy::normalize_domain;

/// Recipient key discovery with its caches. Held by [`crate::Discovery`].
#[derive(Debug)]
pub(crate) struct KeyDiscovery {
    resolver: Arc<dyn Resolver>,
    store: Store,
    fetcher: Arc<dyn WkdFetcher>,
    /// The roots PKIX-EE SMIMEA certificates must chain to.
    trust: Option<TrustStore>,
    settings: KeySettings,
    ttls: Ttls,
    pgp_cache: ProbeCache<Lookup<PgpCert>>,
    smime_cache: ProbeCache<Lookup<SmimeCert>>,
}

/// How long each kind of answer is cached.
#[derive(Clone, Copy, Debug)]
struct Ttls {
    max: Duration,
    negative: Duration,
    failure: Duration,
}

/// A recipient address split for lookups: the local part as given, the domain lowercase.
pub(super) struct Address<'a> {
    given: &'a str,
    local: &'a str,
    domain: String,
}

impl<'a> Address<'a> {
    /// `local@domain` with a valid host name as domain.
    pub(super) fn parse(given: &'a str) -> Option<Self> {
        let (local, domain) = given.rsplit_once('@')?;
        let domain = normalize_domain(domain)?;
        (!local.is_empty()).then_some(Self {
            given,
            local,
            domain,
        })
    }

    /// The cache key of `method`'s answer for this address.
    fn key(&self, method: &str) -> String {
        format!("{method} {}@{}", self.local, self.domain)
    }
}

impl KeyDiscovery {
    pub(crate) fn new(
        resolver: Arc<dyn Resolver>,
        store: Store,
        fetcher: Arc<dyn WkdFetcher>,
        trust: Option<TrustStore>,
        settings: KeySettings,
        probe: &ProbeSettings,
    ) -> Self {
        Self {
            resolver,
            store,
            fetcher,
            trust,
            settings,
            ttls: Ttls {
                max: probe.max_ttl,
                negative: probe.negative_ttl,
                failure: probe.failure_ttl,
            },
            pgp_cache: ProbeCache::new(probe.max_entries, probe.negative_ttl),
            smime_cache: ProbeCache::new(probe.max_entries, probe.negative_ttl),
        }
    }

    /// The keys of `address` for the kinds wanted and turned on, validated at `now` (Unix
    /// seconds).
    pub(crate) async fn recipient_keys(
        &self,
        address: &str,
        want: KeyWant,
        now: i64,
    ) -> RecipientKeys {
        let pgp_on = want.pgp && self.settings.pgp;
        let smime_on = want.smime && self.settings.smime;
        if !pgp_on && !smime_on {
            return RecipientKeys::not_looked();
        }
        let Some(addr) = Address::parse(address) else {
            let notes = [format!(
                "{address:?} is not an address keys can be looked up for"
            )];
            return RecipientKeys {
                pgp: absent_if(pgp_on, &notes),
                smime: absent_if(smime_on, &notes),
                discovered: Vec::new(),
            };
        };
        let stored = self.stored(&addr).await;
        let (pgp, smime) = tokio::join!(
            async {
                if !pgp_on {
                    return None;
                }
                Some(self.pgp(&addr, stored.pgp, stored.pgp_notes, now).await)
            },
            async {
                if !smime_on {
                    return None;
                }
                Some(
                    self.smime(&addr, stored.smime, stored.smime_notes, now)
                        .await,
                )
            }
        );
        let mut keys = RecipientKeys::not_looked();
        if let Some((finding, found)) = pgp {
            keys.pgp = finding;
            keys.discovered.extend(found);
        }
        if let Some((finding, found)) = smime {
            keys.smime = finding;
            keys.discovered.extend(found);
        }
        keys
    }

    /// OpenPGP: the store's candidates (`stored`), then WKD and OPENPGPKEY side by side.
    pub(super) async fn pgp(
        &self,
        addr: &Address<'_>,
        stored: Vec<Candidate<PgpCert>>,
        notes: Vec<String>,
        now: i64,
    ) -> (KeyFinding<PgpCert>, Vec<Discovered>) {
        let network = || async {
            let cache = &self.pgp_cache;
            let wkd = async {
                let lookup = wkd::lookup(self.fetcher.as_ref(), addr.local, &addr.domain);
                self.cached(self.settings.wkd, cache, addr.key("wkd"), lookup)
                    .await
            };
            let dane = async {
                let lookup = dns::openpgpkey(self.resolver.as_ref(), addr.local, &addr.domain);
                self.cached(
                    self.settings.openpgpkey,
                    cache,
                    addr.key("openpgpkey"),
                    lookup,
                )
                .await
            };
            let (wkd, dane) = tokio::join!(wkd, dane);
            wkd.into_iter().chain(dane).collect()
        };
        let validate = |c: &Candidate<PgpCert>| c.cert.info(now);
        self.find(KeyKind::Pgp, addr, stored, notes, network, validate)
            .await
    }

    /// S/MIME: the store's candidates (`stored`), then SMIMEA.
    pub(super) async fn smime(
        &self,
        addr: &Address<'_>,
        stored: Vec<Candidate<SmimeCert>>,
        notes: Vec<String>,
        now: i64,
    ) -> (KeyFinding<SmimeCert>, Vec<Discovered>) {
        let network = || async {
            let lookup = dns::smimea(self.resolver.as_ref(), addr.local, &addr.domain);
            let key = addr.key("smimea");
            let smimea = self.cached(self.settings.smimea, &self.smime_cache, key, lookup);
            smimea.await.into_iter().collect()
        };
        let validate = |c: &Candidate<SmimeCert>| self.smime_info(c, now);
        self.find(KeyKind::Smime, addr, stored, notes, network, validate)
            .await
    }

    /// RFC 8162 §2 with RFC 6698 §2.1.1: a DANE-EE certificate is authenticated by DNSSEC
    /// alone; a PKIX-EE one must also chain to the trust roots, and so must a stored one
    /// (as `sealgate keys import` and `list` check it). Without trust roots those are
    /// untrusted.
    fn smime_info(&self, candidate: &Candidate<SmimeCert>, now: i64) -> KeyInfo {
        if candidate.source == (KeySource::Smimea { usage: 3 }) {
            return candidate.cert.info(None, now);
        }
        if let Some(trust) = &self.trust {
            return candidate.cert.info(Some(trust), now);
        }
        let mut info = candidate.cert.info(None, now);
        if info.status.is_ok() {
            info.status = Err(Problem::Untrusted(format!(
                "a certificate from {} needs trust roots, and none are configured",
                candidate.source
            )));
        }
        info
    }

    /// The store's candidates first: when one is usable the network is not asked.
    async fn find<C, N, F>(
        &self,
        kind: KeyKind,
        addr: &Address<'_>,
        stored: Vec<Candidate<C>>,
        mut notes: Vec<String>,
        network: N,
        validate: impl Fn(&Candidate<C>) -> KeyInfo,
    ) -> (KeyFinding<C>, Vec<Discovered>)
    where
        N: FnOnce() -> F,
        F: Future<Output = Vec<(Lookup<C>, bool)>>,
    {
        let check = |c: Candidate<C>| Checked {
            info: validate(&c),
            cert: c.cert,
            source: c.source,
        };
        let mut checked: Vec<Checked<C>> = stored.into_iter().map(check).collect();
        if any_usable(addr.given, &checked) {
            return (choose(addr.given, checked, notes), Vec::new());
        }
        let mut fresh = Vec::new();
        for (lookup, is_fresh) in network().await {
            notes.extend(lookup.notes);
            for candidate in lookup.candidates {
                let candidate = check(candidate);
                if is_fresh {
                    fresh.push(fresh_record(addr, kind, &candidate));
                }
                checked.push(candidate);
            }
        }
        (choose(addr.given, checked, notes), fresh)
    }

    /// One method's answer from `cache`, or `fetch`ed and cached by its expiry (`true` with
    /// it when fresh); `None` when the method is off.
    async fn cached<C: Clone>(
        &self,
        enabled: bool,
        cache: &ProbeCache<Lookup<C>>,
        key: String,
        fetch: impl Future<Output = Lookup<C>>,
    ) -> Option<(Lookup<C>, bool)> {
        if !enabled {
            return None;
        }
        if let Some(hit) = cache.get(&key) {
            return Some((hit, false));
        }
        let lookup = fetch.await;
        let ttl = match lookup.expiry {
            Expiry::Answer(ttl) => ttl.min(self.ttls.max),
            Expiry::Negative => self.ttls.negative,
            Expiry::Failure => self.ttls.failure,
        };
        cache.insert(&key, lookup.clone(), ttl);
        Some((lookup, true))
    }

    /// The credentials the store holds for the address, by kind (read on every call).
    async fn stored(&self, addr: &Address<'_>) -> Stored {
        let mut stored = Stored::default();
        let rows = match self.store.keys_for(addr.given).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!(rcpt_domain = %addr.domain, error = %e, "cannot read the local key store");
                let note = format!("store: unreadable: {e}");
                stored.pgp_notes.push(note.clone());
                stored.smime_notes.push(note);
                return stored;
            }
        };
        for row in rows {
            match row.kind.as_str() {
                "pgp" => match PgpCert::from_bytes(&row.material) {
                    Ok(cert) => stored.pgp.push(from_store(cert)),
                    Err(e) => stored.pgp_notes.push(unreadable(&row, &e)),
                },
                "smime" => match SmimeCert::from_der(&row.material) {
                    Ok(cert) => stored.smime.push(from_store(cert)),
                    Err(e) => stored.smime_notes.push(unreadable(&row, &e)),
                },
                // Kinds this version does not know: not ours to use.
                _ => {}
            }
        }
        stored
    }
}

/// What the store holds for one address.
#[derive(Default)]
struct Stored {
    pgp: Vec<Candidate<PgpCert>>,
    smime: Vec<Candidate<SmimeCert>>,
    /// Problems reading the OpenPGP keys (or the store).
    pgp_notes: Vec<String>,
    /// Problems reading the S/MIME certificates (or the store).
    smime_notes: Vec<String>,
}

/// The audit record of a candidate just fetched, logged (no key material).
fn fresh_record<C>(addr: &Address<'_>, kind: KeyKind, candidate: &Checked<C>) -> Discovered {
    let record = discovered(addr.given, kind, candidate);
    debug!(
        rcpt_domain = %addr.domain,
        kind = kind.as_str(),
        source = %record.source,
        fingerprint = %record.fingerprint,
        validity = %record.validity,
        "key discovered"
    );
    record
}

fn from_store<C>(cert: C) -> Candidate<C> {
    Candidate {
        cert,
        source: KeySource::Store,
    }
}

fn unreadable(row: &StoredKey, e: &dyn std::fmt::Display) -> String {
    format!(
        "store: {} key {} unreadable: {e}",
        row.kind, row.fingerprint
    )
}

fn absent_if<C>(on: bool, notes: &[String]) -> KeyFinding<C> {
    match on {
        true => KeyFinding::Absent {
            notes: notes.to_vec(),
        },
        false => KeyFinding::NotLooked,
    }
}
