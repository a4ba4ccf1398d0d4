//! The SSRF guard: a webhook URL is posted to only at public addresses, or at addresses in
//! `[webhooks] allow_networks`. It is checked on the address actually connected to: names are
//! resolved by [`GuardedResolver`], which hands the HTTP client only permitted addresses, and
//! an address literal in the URL is checked before the request. Plain `http://` goes only to
//! allowed networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses may be posted to.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
    /// Public addresses too (`https://`), or only the allowed networks (`http://`).
    public: bool,
}

impl Guard {
    /// The guard of `https://` URLs: public addresses and `allow`.
    pub fn https(allow: &[IpNet]) -> Self {
        Self {
            allow: allow.to_vec(),
            public: true,
        }
    }

    /// The guard of plain `http://` URLs: `allow` only.
    pub fn http(allow: &[IpNet]) -> Self {
        Self {
            allow: allow.to_vec(),
            public: false,
        }
    }

    /// Why `ip` may not be posted to, if it may not.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        if !self.public {
            return Some(format!(
                "{ip} is not in webhooks.allow_networks (plain http:// is allowed only there)"
            ));
        }
        not_public(ip).map(|what| {
            format!("{ip} is {what}; allow it in webhooks.allow_networks to post there")
        })
    }
}

/// An IPv4 address carried in an IPv6 one (mapped, compatible, NAT64, 6to4) as that IPv4
/// address, so `::ffff:127.0.0.1` is loopback.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                let [a, b] = hi.to_be_bytes();
                let [c, d] = lo.to_be_bytes();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            };
            match s {
                // 64:ff9b::/96 (NAT64) and ::/96 (IPv4-compatible, deprecated).
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo]
                    if !(hi == 0 && lo <= 1) =>
                {
                    embedded(hi, lo)
                }
                // 2002::/16 (6to4).
                [0x2002, hi, lo, ..] => embedded(hi, lo),
                _ => ip,
            }
        }
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn not_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("an unspecified address")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("a shared (carrier-grade NAT) address")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("an IETF protocol assignment")
            } else if v4.is_documentation() {
                Some("a documentation address")
            } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
                Some("a benchmarking address")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("a multicast or reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("a unique local (private) address")
            } else if (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else if first == 0x0100 && v6.segments()[1..4] == [0, 0, 0] {
                Some("a discard-only address")
            } else if v6 == Ipv6Addr::UNSPECIFIED {
                Some("an unspecified address")
            } else {
                None
            }
        }
    }
}

/// Resolves names with the system resolver and keeps only the addresses the guard permits; a
/// name left with none fails to resolve, naming what it resolved to.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver for one guard.
    pub fn new(guard: Guard) -> Self {
        Self {
            guard: Arc::new(guard),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = Vec::new();
            let mut ok = Vec::new();
            for a in found {
                match guard.refusal(a.ip()) {
                    None => ok.push(a),
                    Some(why) => refused.push(why),
                }
            }
            if ok.is_empty() {
                let why = if refused.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} refused by the SSRF guard: {}", refused.join("; "))
                };
                return Err(why.into());
            }
            let addrs: Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn non_public_addresses_are_refused_unless_allowed() {
        let g = Guard::https(&[]);
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(g.refusal(ip(bad)).is_some(), "{bad} should be refused");
        }
        for good in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "1.1.1.1",
        ] {
            assert_eq!(g.refusal(ip(good)), None, "{good}");
        }
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap_or_default();
        let g = Guard::https(&[loopback]);
        assert_eq!(g.refusal(ip("127.0.0.1")), None);
        assert_eq!(g.refusal(ip("::ffff:127.0.0.2")), None);
        assert!(g.refusal(ip("169.254.169.254")).is_some());
        // Plain http only to the allowed networks, public or not.
        let h = Guard::http(&[loopback]);
        assert_eq!(h.refusal(ip("127.0.0.9")), None);
        assert!(h.refusal(ip("1.1.1.1")).is_some());
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_refused_addresses_does_not_resolve() {
        let r = GuardedResolver::new(Guard::https(&[]));
        let name: Name = "localhost".parse().unwrap_or_else(|_| unreachable!());
        let err = match r.resolve(name).await {
            Ok(_) => String::from("resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("refused by the SSRF guard"), "{err}");
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap_or_default();
        let r = GuardedResolver::new(Guard::https(&[loopback]));
        let name: Name = "localhost".parse().unwrap_or_else(|_| unreachable!());
        let addrs: Vec<SocketAddr> = r
            .resolve(name)
            .await
            .map(|a| a.collect())
            .unwrap_or_default();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
