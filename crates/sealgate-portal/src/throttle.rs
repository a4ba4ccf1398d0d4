//! Refused state-changing requests, counted per client network in a sliding window: past the
//! limit, a client's POSTs get 429 until its oldest refusal leaves the window.
//!
//! In memory and bounded: at most `limit` instants per client and [`MAX_TRACKED_CLIENTS`]
//! clients, so no stream of refusals from however many addresses can grow it further. When
//! the table is full, clients whose refusals all left the window go first, then the one with
//! the fewest refusals (the longest ago among equals): a flood from many addresses pushes out
//! its own one-off entries, not the clients already throttled. Per node: a cluster's nodes
//! each count their own.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Most clients tracked at once (about 2 MiB with the default limit).
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Who is counted: an IPv4 address, or an IPv6 /64 (one host usually holds a whole /64, so
/// counting single IPv6 addresses would count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// `ip`, with an IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer)
    /// as the IPv4 address it is.
    pub fn canonical(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        }
    }

    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match Self::canonical(ip) {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(network)))
            }
            v4 => Self(v4),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// What counting one refusal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Refusals of this client now in the window.
    pub refusals: u32,
    /// This refusal reached the limit: the client is throttled from now on.
    pub throttled_now: bool,
}

/// The per-client sliding-window counter of refusals.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<ClientKey, VecDeque<Instant>>>,
}

impl Throttle {
    /// At most `limit` (at least 1) refusals per client within `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn live(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }

    /// How long `client` must wait before posting again, when it is throttled at `now`.
    pub fn blocked(&self, client: ClientKey, now: Instant) -> Option<Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let times = clients.get_mut(&client)?;
        self.live(times, now);
        if times.len() < self.limit as usize {
            return None;
        }
        let oldest = *times.front()?;
        Some(
            self.window
                .saturating_sub(now.saturating_duration_since(oldest)),
        )
    }

    /// Counts a refusal of `client` at `now`.
    pub fn refuse(&self, client: ClientKey, now: Instant) -> Counted {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(&client) && clients.len() >= MAX_TRACKED_CLIENTS {
            self.make_room(&mut clients, now);
        }
        let times = clients.entry(client).or_default();
        self.live(times, now);
        let before = times.len();
        if before < self.limit as usize {
            times.push_back(now);
        }
        let refusals = u32::try_from(times.len()).unwrap_or(u32::MAX);
        Counted {
            refusals,
            throttled_now: before < self.limit as usize && refusals >= self.limit,
        }
    }

    /// Drops clients with nothing left in the window; if none, the one with the fewest
    /// refusals, the longest ago among equals.
    fn make_room(&self, clients: &mut HashMap<ClientKey, VecDeque<Instant>>, now: Instant) {
        clients.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < self.window)
        });
        if clients.len() < MAX_TRACKED_CLIENTS {
            return;
        }
        let stalest = clients
            .iter()
            .min_by_key(|(_, times)| (times.len(), times.back().copied()))
            .map(|(k, _)| *k);
        if let Some(k) = stalest {
            clients.remove(&k);
        }
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().expect("ip"))
    }

    #[test]
    fn a_client_is_throttled_at_the_limit_until_its_oldest_refusal_leaves_the_window() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let c = key("192.0.2.1");
        assert_eq!(t.blocked(c, at(0)), None);
        assert!(!t.refuse(c, at(0)).throttled_now);
        assert!(!t.refuse(c, at(10)).throttled_now);
        assert_eq!(t.blocked(c, at(10)), None);
        let third = t.refuse(c, at(20));
        assert_eq!(
            third,
            Counted {
                refusals: 3,
                throttled_now: true
            }
        );
        assert_eq!(t.blocked(c, at(20)), Some(Duration::from_secs(40)));
        assert_eq!(t.blocked(key("192.0.2.2"), at(20)), None, "others are not");
        // More refusals while throttled neither count nor say "throttled" again.
        assert_eq!(
            t.refuse(c, at(30)),
            Counted {
                refusals: 3,
                throttled_now: false
            }
        );
        assert_eq!(t.blocked(c, at(59)), Some(Duration::from_secs(1)));
        assert_eq!(
            t.blocked(c, at(60)),
            None,
            "the first refusal left the window"
        );
        assert!(
            t.refuse(c, at(61)).throttled_now,
            "and the next one fills it again"
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_slash_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("192.0.2.1").to_string(), "192.0.2.1");
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound_and_keeps_recent_offenders() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let offender = key("198.51.100.1");
        t.refuse(offender, start);
        t.refuse(offender, start + Duration::from_secs(5));
        // A flood of single refusals from as many different networks as the table holds,
        // and more, all older than the offender's last one except the very newest.
        for n in 0..(MAX_TRACKED_CLIENTS as u32 + 50) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n));
            t.refuse(ClientKey::of(ip), start + Duration::from_secs(6));
        }
        assert_eq!(t.tracked(), MAX_TRACKED_CLIENTS);
        assert!(
            t.blocked(offender, start + Duration::from_secs(6))
                .is_some(),
            "one-off entries make room, not a throttled client"
        );
        // Once the window has passed, expired entries make room before any live one goes.
        let later = start + Duration::from_secs(120);
        t.refuse(key("203.0.113.9"), later);
        assert_eq!(t.tracked(), 1);
    }
}
