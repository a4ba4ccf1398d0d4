//! Failed AUTH attempts counted across sessions, per user and client address and per client
//! address alone, so a password cannot be guessed by opening session after session.
//!
//! A client address is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64).
//! Once a limit is reached, AUTH for that key is refused with 454 4.7.0 *before* any password
//! is checked — the right one included — until the cool-down has passed. Refused attempts do
//! not count and are not checked, so a blocked client costs no Argon2 and no audit rows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::{IpNet, Ipv6Net};
use tokio::time::Instant;

/// Most keys tracked at once; beyond, expired ones are dropped, then the oldest.
const CAPACITY: usize = 100_000;

/// Limits for [`AuthThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures for one user from one client address within `window`.
    pub per_user: u32,
    /// Failures for any users from one client address within `window`.
    pub per_client: u32,
    /// The counting window, and the cool-down once a limit is reached.
    pub window: Duration,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    User(IpNet, String),
    Client(IpNet),
}

struct Count {
    failures: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

/// A limit newly reached by a failure: who is blocked and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocked {
    /// The user, for the per-user limit.
    pub user: Option<String>,
    /// The client address (IPv6: its /64).
    pub client: IpNet,
    /// Failures counted.
    pub failures: u32,
    /// Time left in the cool-down.
    pub for_: Duration,
}

/// Counts of failed AUTH attempts.
pub(crate) struct AuthThrottle {
    limits: ThrottleLimits,
    counts: Mutex<HashMap<Key, Count>>,
}

impl AuthThrottle {
    pub(crate) fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// True while `user` from `ip` may not try to authenticate.
    pub(crate) fn is_blocked(&self, ip: IpAddr, user: Option<&str>) -> bool {
        let client = client_of(ip);
        let now = Instant::now();
        let counts = lock(&self.counts);
        let blocked = |k: &Key| {
            counts
                .get(k)
                .and_then(|c| c.blocked_until)
                .is_some_and(|t| t > now)
        };
        blocked(&Key::Client(client))
            || user.is_some_and(|u| blocked(&Key::User(client, u.to_owned())))
    }

    /// Counts a failure; returns the limits it made reach (to be recorded once each).
    pub(crate) fn failed(&self, ip: IpAddr, user: Option<&str>) -> Vec<Blocked> {
        let client = client_of(ip);
        let now = Instant::now();
        let mut counts = lock(&self.counts);
        make_room(&mut counts, now, self.limits.window);
        let mut keys = vec![(Key::Client(client), self.limits.per_client)];
        if let Some(u) = user {
            keys.push((Key::User(client, u.to_owned()), self.limits.per_user));
        }
        let mut reached = Vec::new();
        for (key, limit) in keys {
            let count = counts.entry(key.clone()).or_insert(Count {
                failures: 0,
                first: now,
                blocked_until: None,
            });
            if count.blocked_until.is_none() && now >= count.first + self.limits.window {
                // The window passed without reaching the limit: start counting again.
                *count = Count {
                    failures: 0,
                    first: now,
                    blocked_until: None,
                };
            }
            count.failures += 1;
            if count.failures >= limit && count.blocked_until.is_none() {
                count.blocked_until = Some(now + self.limits.window);
                reached.push(Blocked {
                    user: match key {
                        Key::User(_, u) => Some(u),
                        Key::Client(_) => None,
                    },
                    client,
                    failures: count.failures,
                    for_: self.limits.window,
                });
            }
        }
        reached
    }

    /// A successful AUTH clears the user's count from that address (not the address's own).
    pub(crate) fn succeeded(&self, ip: IpAddr, user: &str) {
        let key = Key::User(client_of(ip), user.to_owned());
        lock(&self.counts).remove(&key);
    }
}

/// Drops counts whose window and cool-down are over; at capacity, also the oldest.
fn make_room(counts: &mut HashMap<Key, Count>, now: Instant, window: Duration) {
    if counts.len() < CAPACITY {
        return;
    }
    counts.retain(|_, c| match c.blocked_until {
        Some(until) => until > now,
        None => now < c.first + window,
    });
    while counts.len() >= CAPACITY {
        let oldest = counts
            .iter()
            .min_by_key(|(_, c)| c.first)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => counts.remove(&k),
            None => break,
        };
    }
}

/// The address a count is kept for: IPv4 as is (also when IPv4-mapped), IPv6 by its /64.
pub(crate) fn client_of(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet::from(IpAddr::V4(v4)),
            None => Ipv6Net::new(v6, 64)
                .map(|n| IpNet::V6(n.trunc()))
                .unwrap_or_else(|_| IpNet::from(IpAddr::V6(v6))),
        },
        v4 => IpNet::from(v4),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ThrottleLimits = ThrottleLimits {
        per_user: 3,
        per_client: 5,
        window: Duration::from_secs(600),
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test(start_paused = true)]
    async fn the_per_user_limit_blocks_that_user_from_that_address_until_the_cool_down_ends() {
        let t = AuthThrottle::new(LIMITS);
        let a = ip("192.0.2.7");
        assert!(t.failed(a, Some("ehr")).is_empty());
        assert!(t.failed(a, Some("ehr")).is_empty());
        assert!(!t.is_blocked(a, Some("ehr")));
        let reached = t.failed(a, Some("ehr"));
        assert_eq!(reached.len(), 1);
        assert_eq!(reached[0].user.as_deref(), Some("ehr"));
        assert_eq!(reached[0].failures, 3);
        assert!(t.is_blocked(a, Some("ehr")));
        assert!(
            !t.is_blocked(a, Some("billing")),
            "another user is not blocked"
        );
        assert!(
            !t.is_blocked(ip("192.0.2.8"), Some("ehr")),
            "nor another address"
        );
        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(t.is_blocked(a, Some("ehr")));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!t.is_blocked(a, Some("ehr")));
    }

    #[tokio::test(start_paused = true)]
    async fn the_per_address_limit_blocks_every_user_and_counts_an_ipv6_slash_64_as_one() {
        let t = AuthThrottle::new(LIMITS);
        for (n, user) in ["a", "b", "c", "d"].iter().enumerate() {
            let host = ip(&format!("2001:db8:1:2::{}", n + 1));
            assert!(t.failed(host, Some(user)).is_empty(), "{user}");
        }
        let reached = t.failed(ip("2001:db8:1:2::ff"), None);
        assert_eq!(reached.len(), 1);
        assert_eq!(reached[0].user, None);
        assert_eq!(reached[0].client.to_string(), "2001:db8:1:2::/64");
        assert!(t.is_blocked(ip("2001:db8:1:2::abcd"), Some("e")));
        assert!(t.is_blocked(ip("2001:db8:1:2::abcd"), None));
        assert!(!t.is_blocked(ip("2001:db8:1:3::1"), Some("e")));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_spread_wider_than_the_window_never_block() {
        let t = AuthThrottle::new(LIMITS);
        let a = ip("192.0.2.7");
        for _ in 0..10 {
            assert!(t.failed(a, Some("ehr")).is_empty());
            assert!(t.failed(a, Some("ehr")).is_empty());
            tokio::time::advance(Duration::from_secs(601)).await;
        }
        assert!(!t.is_blocked(a, Some("ehr")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_clears_the_users_count_but_not_the_addresss() {
        let t = AuthThrottle::new(LIMITS);
        let a = ip("::ffff:192.0.2.7");
        t.failed(a, Some("ehr"));
        t.failed(a, Some("ehr"));
        t.succeeded(ip("192.0.2.7"), "ehr");
        t.failed(a, Some("ehr"));
        t.failed(a, Some("ehr"));
        assert!(
            !t.is_blocked(a, Some("ehr")),
            "counting restarted after the success"
        );
        let reached = t.failed(a, Some("other"));
        assert_eq!(reached.len(), 1, "five failures from the address in all");
        assert!(t.is_blocked(ip("192.0.2.7"), None));
    }
}
