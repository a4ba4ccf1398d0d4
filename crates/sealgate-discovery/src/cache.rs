//! An in-memory cache of probe answers keyed by domain or host name.
//!
//! Every entry expires at its own time: a positive answer lives for the TTL given when it is
//! inserted (a DNS TTL, say), a negative answer ("no record", "no policy") for the cache's one
//! negative TTL. The cache holds at most `max_entries`; inserting a new key into a full cache
//! drops the expired entries first and then the oldest ones. Time is Tokio's clock, so tests
//! drive it with `tokio::time::pause()` and `advance`.
//!
//! Keys are compared as given: callers normalise names (lowercase, no trailing dot) first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How far ahead an entry with an unrepresentably long TTL expires (about 100 years).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A bounded map from name to probe answer with per-entry expiry. Cheap to share behind an
/// `Arc`; every method takes `&self` and holds an internal lock only briefly (never across an
/// `.await`).
pub struct ProbeCache<V> {
    inner: Mutex<Inner<V>>,
    max_entries: usize,
    negative_ttl: Duration,
}

impl<V> std::fmt::Debug for ProbeCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeCache")
            .field("len", &self.lock().entries.len())
            .field("max_entries", &self.max_entries)
            .field("negative_ttl", &self.negative_ttl)
            .finish()
    }
}

struct Inner<V> {
    entries: HashMap<Arc<str>, Entry<V>>,
    /// Expiry order: (expires, seq) → key.
    by_expiry: BTreeMap<(Instant, u64), Arc<str>>,
    /// Insertion order: seq → key (seq only grows, so the first is the oldest).
    by_age: BTreeMap<u64, Arc<str>>,
    next_seq: u64,
}

struct Entry<V> {
    value: V,
    expires: Instant,
    seq: u64,
}

impl<V: Clone> ProbeCache<V> {
    /// An empty cache holding at most `max_entries` answers, negative ones for `negative_ttl`.
    pub fn new(max_entries: usize, negative_ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                by_expiry: BTreeMap::new(),
                by_age: BTreeMap::new(),
                next_seq: 0,
            }),
            max_entries,
            negative_ttl,
        }
    }

    /// The TTL of negative answers.
    pub fn negative_ttl(&self) -> Duration {
        self.negative_ttl
    }

    /// The unexpired answer for `key`, if any (an expired one is dropped).
    pub fn get(&self, key: &str) -> Option<V> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(entry) if entry.expires > now => Some(entry.value.clone()),
            Some(_) => {
                inner.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches a positive answer for `ttl` (a zero TTL caches nothing and drops any old entry).
    pub fn insert(&self, key: &str, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.remove(key);
        if ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        let expires = now.checked_add(ttl).unwrap_or_else(|| now + FAR_FUTURE);
        inner.make_room(self.max_entries, now);
        inner.add(key, value, expires);
    }

    /// Caches a negative answer ("nothing there") for the cache's negative TTL.
    pub fn insert_negative(&self, key: &str, value: V) {
        self.insert(key, value, self.negative_ttl);
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many entries are held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.by_expiry.clear();
        inner.by_age.clear();
    }
}

impl<V> ProbeCache<V> {
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // A panic while holding the lock leaves the maps consistent (every mutation is
        // completed before anything can panic), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<V> Inner<V> {
    fn add(&mut self, key: &str, value: V, expires: Instant) {
        let key: Arc<str> = Arc::from(key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires, seq), key.clone());
        self.by_age.insert(seq, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                expires,
                seq,
            },
        );
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.by_expiry.remove(&(old.expires, old.seq));
            self.by_age.remove(&old.seq);
        }
    }

    /// Drops expired entries, then the oldest, until one more fits.
    fn make_room(&mut self, max_entries: usize, now: Instant) {
        while self.entries.len() >= max_entries {
            let expired = self
                .by_expiry
                .first_key_value()
                .filter(|((expires, _), _)| *expires <= now)
                .map(|(_, key)| key.clone());
            let victim = expired.or_else(|| self.by_age.first_key_value().map(|(_, k)| k.clone()));
            match victim {
                Some(key) => self.remove(&key),
                None => break,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;
    use tokio::time::advance;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn positive_answer_lives_exactly_its_own_ttl() {
        let cache = ProbeCache::new(10, MINUTE);
        cache.insert("a.test", 1, Duration::from_secs(300));
        cache.insert("b.test", 2, Duration::from_secs(30));
        advance(Duration::from_secs(29)).await;
        assert_eq!(cache.get("a.test"), Some(1));
        assert_eq!(cache.get("b.test"), Some(2));
        advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get("b.test"), None, "expires at its ttl");
        assert_eq!(cache.get("a.test"), Some(1));
        advance(Duration::from_secs(270)).await;
        assert_eq!(cache.get("a.test"), None);
        assert!(cache.is_empty(), "expired entries are dropped on read");
    }

    #[tokio::test(start_paused = true)]
    async fn negative_answer_lives_the_negative_ttl() {
        let cache = ProbeCache::new(10, Duration::from_secs(120));
        cache.insert_negative("gone.test", "nothing");
        assert_eq!(cache.negative_ttl(), Duration::from_secs(120));
        advance(Duration::from_secs(119)).await;
        assert_eq!(cache.get("gone.test"), Some("nothing"));
        advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get("gone.test"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn reinsert_replaces_value_and_expiry() {
        let cache = ProbeCache::new(10, MINUTE);
        cache.insert("a.test", 1, Duration::from_secs(10));
        advance(Duration::from_secs(5)).await;
        cache.insert("a.test", 2, Duration::from_secs(10));
        advance(Duration::from_secs(9)).await;
        assert_eq!(cache.get("a.test"), Some(2));
        assert_eq!(cache.len(), 1);
        cache.insert("a.test", 3, Duration::ZERO);
        assert_eq!(cache.get("a.test"), None, "a zero ttl drops the entry");
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn full_cache_evicts_expired_entries_before_live_ones() {
        let cache = ProbeCache::new(3, MINUTE);
        cache.insert("old-live.test", 1, Duration::from_secs(600));
        cache.insert("short.test", 2, Duration::from_secs(10));
        cache.insert("live.test", 3, Duration::from_secs(600));
        advance(Duration::from_secs(11)).await;
        cache.insert("new.test", 4, Duration::from_secs(600));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("old-live.test"), Some(1), "oldest but live: kept");
        assert_eq!(cache.get("short.test"), None);
        assert_eq!(cache.get("new.test"), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn full_cache_of_live_entries_evicts_the_oldest() {
        let cache = ProbeCache::new(2, MINUTE);
        cache.insert("first.test", 1, Duration::from_secs(600));
        cache.insert("second.test", 2, Duration::from_secs(60));
        cache.insert("third.test", 3, Duration::from_secs(600));
        assert_eq!(cache.get("first.test"), None, "the oldest goes");
        assert_eq!(cache.get("second.test"), Some(2));
        assert_eq!(cache.get("third.test"), Some(3));
        // Replacing a key refreshes its age.
        cache.insert("second.test", 22, Duration::from_secs(60));
        cache.insert("fourth.test", 4, Duration::from_secs(60));
        assert_eq!(cache.get("third.test"), None);
        assert_eq!(cache.get("second.test"), Some(22));
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_a_key_in_a_full_cache_evicts_nothing_else() {
        let cache = ProbeCache::new(2, MINUTE);
        cache.insert("a.test", 1, MINUTE);
        cache.insert("b.test", 2, MINUTE);
        cache.insert("b.test", 3, MINUTE);
        assert_eq!(cache.get("a.test"), Some(1));
        assert_eq!(cache.get("b.test"), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_capacity_caches_nothing_and_huge_ttls_do_not_overflow() {
        let none = ProbeCache::new(0, MINUTE);
        none.insert("a.test", 1, MINUTE);
        assert_eq!(none.get("a.test"), None);

        let cache = ProbeCache::new(1, MINUTE);
        cache.insert("a.test", 1, Duration::MAX);
        advance(Duration::from_secs(10 * 365 * 24 * 3600)).await;
        assert_eq!(cache.get("a.test"), Some(1));
        cache.remove("a.test");
        assert!(cache.is_empty());
        cache.insert("b.test", 2, MINUTE);
        cache.clear();
        assert_eq!(cache.get("b.test"), None);
    }
}
