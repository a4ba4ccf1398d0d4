//! Password checks that a client cannot turn against the server's memory and CPU.
//!
//! Each Argon2id verification takes about 19 MiB and tens of milliseconds. Two things bound
//! that: a semaphore lets only a few run at once (the rest wait their turn; nobody is refused
//! for it), and a short-lived cache remembers successful checks, so an EHR that opens one
//! connection per message pays Argon2 once per cache period, not per message.
//!
//! The cache is keyed by an in-memory HMAC of user and password ([`CredentialDigest`]) and
//! remembers which stored hash the password was checked against. Every check still reads the
//! stored hash, so a password change or a removed user (by any node or by the CLI, which are
//! other processes) ends a cached success at once.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sealgate_crypto::{CredentialDigest, hash_password, verify_password};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::IngressError;

/// Most successes remembered at once; beyond, the entry closest to expiry makes room.
const CACHE_CAPACITY: usize = 10_000;
/// Checks of the same credentials take turns on one of these locks (chosen by their digest),
/// so twenty sessions that connect at once with the same password run Argon2 once, not
/// `concurrency` times; the others find the success remembered when their turn comes.
const STRIPES: usize = 64;

/// A remembered success.
struct Cached {
    /// Digest of the stored hash the password was checked against.
    stored: [u8; 32],
    expires: Instant,
}

/// Verifies AUTH passwords with bounded concurrency and a cache of successes.
pub(crate) struct PasswordChecker {
    permits: Semaphore,
    stripes: Vec<tokio::sync::Mutex<()>>,
    digest: CredentialDigest,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// A hash to check unknown users' passwords against, made on first need, so an unknown
    /// name costs what a known one does and timing does not reveal which names exist.
    decoy: OnceLock<String>,
}

impl PasswordChecker {
    /// At most `concurrency` verifications at once; successes remembered for `ttl` (zero: not).
    pub(crate) fn new(concurrency: usize, ttl: Duration) -> Result<Self, IngressError> {
        Ok(Self {
            permits: Semaphore::new(concurrency.max(1)),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            digest: CredentialDigest::new().map_err(IngressError::Crypto)?,
            ttl,
            cache: Mutex::new(HashMap::new()),
            decoy: OnceLock::new(),
        })
    }

    /// True when `password` is `user`'s. `stored` is the user's PHC hash as just read from
    /// the store (`None`: no such user).
    pub(crate) async fn check(&self, user: &str, password: &str, stored: Option<String>) -> bool {
        let key = self.digest.of(&[user.as_bytes(), password.as_bytes()]);
        let stamp = stored
            .as_ref()
            .map(|h| self.digest.of(&[b"stored", h.as_bytes()]));
        if stamp.is_some_and(|s| self.remembered(&key, &s)) {
            return true;
        }
        let _turn = self.stripes[usize::from(key[0]) % STRIPES].lock().await;
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        // Another session may have checked the same credentials while this one waited.
        if stamp.is_some_and(|s| self.remembered(&key, &s)) {
            return true;
        }
        let ok = match stored {
            Some(hash) => blocking(password, move |pw| verify_password(pw, &hash)).await,
            None => {
                let decoy = self.decoy().await;
                // Only the time spent matters here, not the result.
                let _ = blocking(password, move |pw| {
                    decoy.is_some_and(|d| verify_password(pw, &d))
                })
                .await;
                false
            }
        };
        if let (true, Some(stamp)) = (ok, stamp) {
            self.remember(key, stamp);
        }
        ok
    }

    async fn decoy(&self) -> Option<String> {
        if let Some(d) = self.decoy.get() {
            return Some(d.clone());
        }
        let made = tokio::task::spawn_blocking(|| hash_password("sealgate decoy").ok())
            .await
            .ok()
            .flatten()?;
        Some(self.decoy.get_or_init(|| made).clone())
    }

    fn remembered(&self, key: &[u8; 32], stamp: &[u8; 32]) -> bool {
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        match cache.get(key) {
            Some(c) if c.expires > now && &c.stored == stamp => true,
            Some(_) => {
                cache.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: [u8; 32], stored: [u8; 32]) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, c| c.expires > now);
        }
        if cache.len() >= CACHE_CAPACITY {
            let soonest = cache.iter().min_by_key(|(_, c)| c.expires).map(|(k, _)| *k);
            if let Some(k) = soonest {
                cache.remove(&k);
            }
        }
        let expires = now + self.ttl;
        cache.insert(key, Cached { stored, expires });
    }
}

/// Runs a password check on the blocking pool (Argon2 would stall the async workers).
async fn blocking(password: &str, f: impl FnOnce(&str) -> bool + Send + 'static) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || f(&password))
        .await
        .unwrap_or(false)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(password: &str) -> Option<String> {
        Some(hash_password(password).expect("hash"))
    }

    #[tokio::test]
    async fn a_remembered_success_needs_no_verification_but_only_for_the_same_stored_hash() {
        let checker = PasswordChecker::new(1, Duration::from_secs(60)).expect("checker");
        let hash = stored("pw");
        assert!(checker.check("ehr", "pw", hash.clone()).await);
        // No verification can run any more: only remembered successes still pass.
        checker.permits.close();
        assert!(checker.check("ehr", "pw", hash.clone()).await);
        assert!(!checker.check("ehr", "other", hash.clone()).await);
        assert!(!checker.check("billing", "pw", hash).await, "another user");
        assert!(
            !checker.check("ehr", "pw", stored("pw")).await,
            "the password was set again"
        );
        assert!(
            !checker.check("ehr", "pw", None).await,
            "the user was removed"
        );
    }

    #[tokio::test]
    async fn successes_are_forgotten_after_their_time_or_never_kept_with_a_zero_ttl() {
        let hash = stored("pw");
        let off = PasswordChecker::new(1, Duration::ZERO).expect("checker");
        assert!(off.check("ehr", "pw", hash.clone()).await);
        off.permits.close();
        assert!(!off.check("ehr", "pw", hash.clone()).await);

        let short = PasswordChecker::new(1, Duration::from_millis(300)).expect("checker");
        assert!(short.check("ehr", "pw", hash.clone()).await);
        short.permits.close();
        assert!(short.check("ehr", "pw", hash.clone()).await);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!short.check("ehr", "pw", hash).await);
    }

    #[tokio::test]
    async fn unknown_users_and_wrong_passwords_fail_and_are_not_remembered() {
        let checker = PasswordChecker::new(2, Duration::from_secs(60)).expect("checker");
        assert!(!checker.check("nobody", "pw", None).await);
        assert!(!checker.check("ehr", "wrong", stored("pw")).await);
        assert!(lock(&checker.cache).is_empty());
    }
}
