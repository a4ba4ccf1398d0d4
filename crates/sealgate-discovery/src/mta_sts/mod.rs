//! MTA-STS discovery (RFC 8461): the `_mta-sts` TXT record, the policy fetched over HTTPS,
//! the policy cached in the store by id until `max_age` (§5.1), and a proactive refresher
//! (§10.2).
//!
//! [`MtaSts::lookup`] gives the policy to apply to a domain and how it was obtained. A cached
//! policy survives a missing or blocked TXT record and a blocked or tampered policy fetch
//! until it expires, so an attacker on the path cannot strip an `enforce` policy by
//! interfering with discovery.

pub mod fetch;
pub mod policy;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use sealgate_dns::{DnsError, Resolver};
use sealgate_store::Store;
use sealgate_types::security::MtaStsMode;
use sealgate_types::time::now_micros;

use crate::cache::ProbeCache;
use crate::error::{DiscoveryError, StsRecordError};

pub use fetch::{FetchConfig, HttpsFetcher, MAX_POLICY_BYTES, PolicyFetcher, WELL_KNOWN_PATH};
pub use policy::{MAX_AGE_LIMIT, StsMode, StsPolicy, mx_pattern_matches, parse_sts_record};

/// How a lookup obtained its policy (or why it has none).
#[derive(Clone, Debug)]
pub enum StsState {
    /// The policy was fetched and validated just now, and stored.
    Fresh,
    /// The TXT record's id matches an unexpired cached policy, which is used without a fetch.
    Cached,
    /// Discovery failed (the TXT record is missing, unusable or unreadable, or the policy
    /// fetch failed) but an unexpired cached policy exists, so it applies (RFC 8461 §5.1).
    CachedAfterFailure {
        /// What failed.
        error: Arc<DiscoveryError>,
    },
    /// The domain publishes no MTA-STS record and nothing is cached.
    NoPolicy,
    /// Nothing usable: discovery failed and nothing is cached. RFC 8461 §5.1 has the sender
    /// deliver as though the domain had no policy.
    Failed {
        /// What failed.
        error: Arc<DiscoveryError>,
    },
}

/// The outcome of [`MtaSts::lookup`].
#[derive(Clone, Debug)]
pub struct StsLookup {
    /// The policy to apply, if any (for `Fresh`, `Cached`, `CachedAfterFailure`).
    pub policy: Option<StsPolicy>,
    /// How it was obtained.
    pub state: StsState,
    /// What an operator may want to know about the lookup (one sentence each).
    pub notes: Vec<String>,
}

impl StsLookup {
    /// The mode in force, in the policy engine's words: the applied policy's mode; unknown
    /// when discovery failed with nothing cached; none without a policy.
    pub fn mode(&self) -> MtaStsMode {
        match (&self.policy, &self.state) {
            (Some(pol), _) => match pol.mode {
                StsMode::Enforce => MtaStsMode::Enforce,
                StsMode::Testing => MtaStsMode::Testing,
                StsMode::None => MtaStsMode::None,
            },
            (None, StsState::Failed { .. }) => MtaStsMode::Unknown,
            (None, _) => MtaStsMode::None,
        }
    }

    fn new(policy: Option<StsPolicy>, state: StsState, notes: Vec<String>) -> Self {
        Self {
            policy,
            state,
            notes,
        }
    }
}

/// What the TXT step found.
enum Discovery {
    /// A valid record with this id.
    Id(String),
    /// Definitely no usable record (NXDOMAIN, NODATA, none/several/invalid `v=STSv1`).
    NoRecord(DiscoveryError),
    /// The lookup itself failed (timeout, SERVFAIL): nothing is known.
    Unknown(DiscoveryError),
}

/// MTA-STS discovery for outbound delivery. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MtaSts {
    resolver: Arc<dyn Resolver>,
    fetcher: Arc<dyn PolicyFetcher>,
    store: Store,
    /// Domains without a usable policy, so that they are not probed for every message.
    negative: ProbeCache<StsLookup>,
}

impl MtaSts {
    /// How long "no policy" answers are remembered by default.
    pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5 * 60);
    /// How many "no policy" answers are remembered at most by default.
    pub const DEFAULT_NEGATIVE_ENTRIES: usize = 10_000;

    /// Discovery over `resolver` and `fetcher`, caching policies in `store`, and remembering
    /// up to `negative_entries` domains without a policy for `negative_ttl` each.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        fetcher: Arc<dyn PolicyFetcher>,
        store: Store,
        negative_ttl: Duration,
        negative_entries: usize,
    ) -> Self {
        Self {
            resolver,
            fetcher,
            store,
            negative: ProbeCache::new(negative_entries, negative_ttl),
        }
    }

    /// The MTA-STS policy of `domain` and how it was obtained (RFC 8461 §5.1):
    /// - a TXT id equal to that of the unexpired cached policy: the cached policy, no fetch;
    /// - another id, or nothing cached: fetch, validate and store the policy; if that fails,
    ///   keep using the unexpired cached policy;
    /// - no usable TXT record: the unexpired cached policy if there is one, else no policy
    ///   (remembered for the negative TTL).
    pub async fn lookup(&self, domain: &str) -> StsLookup {
        let Some(domain) = policy::normalize_domain(domain) else {
            let error = DiscoveryError::InvalidDomain {
                domain: domain.to_owned(),
            };
            return StsLookup::new(None, failed(error), Vec::new());
        };
        if let Some(mut hit) = self.negative.get(&domain) {
            hit.notes.push("answer from the negative cache".to_owned());
            return hit;
        }
        let mut notes = Vec::new();
        let cached = match self.cached(&domain, &mut notes).await {
            Ok(cached) => cached,
            // Without the cache a missing record cannot be told from a stripped one.
            Err(error) => return StsLookup::new(None, failed(error), notes),
        };
        let lookup = match (self.discover(&domain).await, cached) {
            (Discovery::Id(id), Some(policy)) if policy.id == id => {
                notes.push(format!("policy id {id} unchanged: cached policy used"));
                StsLookup::new(Some(policy), StsState::Cached, notes)
            }
            (Discovery::Id(id), cached) => self.fetch_and_store(&domain, &id, cached, notes).await,
            (Discovery::NoRecord(error) | Discovery::Unknown(error), Some(policy)) => {
                notes.push("cached policy applies until it expires (RFC 8461 §5.1)".to_owned());
                StsLookup::new(Some(policy), after_failure(error), notes)
            }
            (Discovery::NoRecord(why), None) => {
                notes.push(why.detail());
                StsLookup::new(None, StsState::NoPolicy, notes)
            }
            (Discovery::Unknown(error), None) => StsLookup::new(None, failed(error), notes),
        };
        self.remember_negative(&domain, &lookup);
        lookup
    }

    /// Fetches again every cached policy that expires within `within` (and has not expired),
    /// for a background task (RFC 8461 §10.2: refresh cached policies before they expire so
    /// that a later blocked discovery still finds one). A failed refresh keeps the old
    /// policy. Returns how many policies were renewed.
    pub async fn refresh_expiring(&self, within: Duration) -> usize {
        let now = now_micros();
        let within = i64::try_from(within.as_micros()).unwrap_or(i64::MAX);
        let rows = match self
            .store
            .mta_sts_expiring(now.saturating_add(within))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "mta-sts refresh could not list cached policies");
                return 0;
            }
        };
        let mut renewed = 0;
        for row in rows.into_iter().filter(|r| r.expires_at > now) {
            let Some(old) = StsPolicy::from_row(&row) else {
                continue;
            };
            let Discovery::Id(id) = self.discover(&row.domain).await else {
                tracing::info!(domain = %row.domain, "mta-sts refresh found no record; old policy kept");
                continue;
            };
            let lookup = self
                .fetch_and_store(&row.domain, &id, Some(old), Vec::new())
                .await;
            if matches!(lookup.state, StsState::Fresh) {
                renewed += 1;
            }
        }
        renewed
    }

    /// The unexpired cached policy of `domain`, if any. A row this version cannot read is
    /// treated as absent (and noted); a store failure is an error.
    async fn cached(
        &self,
        domain: &str,
        notes: &mut Vec<String>,
    ) -> Result<Option<StsPolicy>, DiscoveryError> {
        let Some(row) = self.store.mta_sts_get(domain).await? else {
            return Ok(None);
        };
        let Some(policy) = StsPolicy::from_row(&row) else {
            notes.push(format!(
                "cached policy has unknown mode {:?}: ignored",
                row.mode
            ));
            return Ok(None);
        };
        if policy.is_expired(now_micros()) {
            notes.push(format!("cached policy id {} has expired", policy.id));
            return Ok(None);
        }
        Ok(Some(policy))
    }

    /// Looks up `_mta-sts.<domain>` TXT (RFC 8461 §3.1).
    async fn discover(&self, domain: &str) -> Discovery {
        let name = format!("_mta-sts.{domain}");
        let records = match self.resolver.txt(&name).await {
            Ok(records) => records,
            Err(DnsError::NxDomain { .. }) => Vec::new(),
            Err(e) => return Discovery::Unknown(DiscoveryError::Dns(e)),
        };
        match policy::parse_sts_record(&records) {
            Ok(id) => Discovery::Id(id),
            Err(source) => Discovery::NoRecord(no_record(domain, source)),
        }
    }

    /// Fetches and validates the policy for TXT `id`; stores it on success. On failure the
    /// unexpired `cached` policy (if any) stays in force.
    async fn fetch_and_store(
        &self,
        domain: &str,
        id: &str,
        cached: Option<StsPolicy>,
        mut notes: Vec<String>,
    ) -> StsLookup {
        let (policy, body) = match self.fetch_valid(domain, id).await {
            Ok(fetched) => fetched,
            Err(error) => return not_fetched(domain, id, cached, error, notes),
        };
        if let Err(e) = self.store.mta_sts_put(&policy.to_row(domain, &body)).await {
            tracing::warn!(domain = %domain, error = %e, "mta-sts policy could not be stored");
            notes.push("policy could not be stored; it is used for this lookup only".to_owned());
        }
        tracing::info!(domain = %domain, policy_id = %id, mode = %policy.mode,
            max_age = policy.max_age, "mta-sts policy fetched");
        StsLookup::new(Some(policy), StsState::Fresh, notes)
    }

    /// The fetched policy text, parsed: an invalid policy is a failed fetch.
    async fn fetch_valid(
        &self,
        domain: &str,
        id: &str,
    ) -> Result<(StsPolicy, String), DiscoveryError> {
        let body =
            self.fetcher
                .fetch(domain)
                .await
                .map_err(|source| DiscoveryError::PolicyFetch {
                    domain: domain.to_owned(),
                    source,
                })?;
        let policy = StsPolicy::parse(&body, id, now_micros()).map_err(|source| {
            DiscoveryError::PolicyInvalid {
                domain: domain.to_owned(),
                source,
            }
        })?;
        Ok((policy, body))
    }

    /// Remembers answers that carry no policy, except failures of the DNS or the store
    /// (transient: the next lookup should try again).
    fn remember_negative(&self, domain: &str, lookup: &StsLookup) {
        let remember = match &lookup.state {
            StsState::NoPolicy => true,
            StsState::Failed { error } => {
                !matches!(**error, DiscoveryError::Dns(_) | DiscoveryError::Store(_))
            }
            _ => false,
        };
        if remember {
            self.negative.insert_negative(domain, lookup.clone());
        }
    }
}

/// A fetch that failed or brought an invalid policy: logged and noted with the reason, and
/// treated alike (RFC 8461 §5.1), so an invalid policy never replaces the unexpired `cached`
/// one: a domain that had an `enforce` policy keeps it until it expires.
fn not_fetched(
    domain: &str,
    id: &str,
    cached: Option<StsPolicy>,
    error: DiscoveryError,
    mut notes: Vec<String>,
) -> StsLookup {
    let why = error.detail();
    let kept = cached.as_ref().map_or("none", |old| old.id.as_str());
    if matches!(error, DiscoveryError::PolicyInvalid { .. }) {
        tracing::warn!(domain = %domain, policy_id = %id, error = %why, cached_id = %kept,
            "mta-sts policy invalid; not used");
    } else {
        tracing::warn!(domain = %domain, policy_id = %id, error = %why, cached_id = %kept,
            "mta-sts policy fetch failed");
    }
    notes.push(format!("policy for id {id} not used: {why}"));
    match cached {
        Some(old) => {
            notes.push(format!(
                "cached id {} kept ({}, until it expires; RFC 8461 §5.1)",
                old.id, old.mode
            ));
            StsLookup::new(Some(old), after_failure(error), notes)
        }
        None => StsLookup::new(None, failed(error), notes),
    }
}

fn no_record(domain: &str, source: StsRecordError) -> DiscoveryError {
    DiscoveryError::NoStsRecord {
        domain: domain.to_owned(),
        source,
    }
}

fn failed(error: DiscoveryError) -> StsState {
    StsState::Failed {
        error: Arc::new(error),
    }
}

fn after_failure(error: DiscoveryError) -> StsState {
    StsState::CachedAfterFailure {
        error: Arc::new(error),
    }
}
