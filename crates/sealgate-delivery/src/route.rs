//! Where a domain's mail goes: MX routing (RFC 5321 §5.1, RFC 7505) to an ordered list of
//! addresses, and why no transaction could happen when none can.

use std::net::SocketAddr;

use sealgate_dns::{Resolver, Routing, random_shuffle, route};
use sealgate_types::Outcome;

use crate::plan::{self, Via};

/// One candidate address to connect to, and how the session on it was verified.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) addr: SocketAddr,
    /// `None` for an opportunistic session.
    pub(crate) via: Option<Via>,
}

/// Why no transaction could happen, as it will be reported.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) outcome: Outcome,
    pub(crate) reason: String,
    pub(crate) target: Option<Target>,
    /// Set when verified TLS was refused by a peer of a domain whose DNS or HTTPS policy
    /// demands it: a possible attack the audit raises as an alert.
    pub(crate) alert: Option<String>,
}

impl Failure {
    pub(crate) fn temporary(reason: impl Into<String>, target: Option<Target>) -> Self {
        Self {
            outcome: Outcome::Temporary,
            reason: reason.into(),
            target,
            alert: None,
        }
    }
    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Permanent,
            reason: reason.into(),
            target: None,
            alert: None,
        }
    }
}

/// MX routing (RFC 5321 §5.1) to an ordered list of addresses.
pub(crate) async fn resolve_targets(
    resolver: &dyn Resolver,
    port: u16,
    domain: &str,
) -> Result<Vec<Target>, Failure> {
    let routing = route(resolver, domain, random_shuffle).await.map_err(|e| {
        let code = if e.is_permanent() { "5.1.2" } else { "4.4.3" };
        let reason = format!("{code} DNS lookup for {domain} failed: {e}");
        if e.is_permanent() {
            Failure::permanent(reason)
        } else {
            Failure::temporary(reason, None)
        }
    })?;
    let routes = match routing {
        // RFC 7505 §4.1: a null MX means the domain accepts no mail; bounce at once.
        Routing::NullMx => {
            return Err(Failure::permanent(format!(
                "5.1.10 {domain} does not accept mail (null MX, RFC 7505)"
            )));
        }
        Routing::Hosts(r) => r,
    };
    let mut targets = Vec::new();
    let mut last = String::new();
    for r in routes {
        match resolver.ips(&r.host).await {
            Ok(ips) => targets.extend(ips.into_iter().map(|ip| Target {
                host: r.host.clone(),
                addr: SocketAddr::new(ip, port),
                via: None,
            })),
            Err(e) => last = format!("address lookup for {} failed: {e}", r.host),
        }
    }
    if targets.is_empty() {
        let reason = if last.is_empty() {
            format!("no address for any mail host of {domain}")
        } else {
            last
        };
        return Err(Failure::temporary(reason, None));
    }
    Ok(targets)
}

/// The MX host names of `targets`, in order, without repeats.
pub(crate) fn hosts_of(targets: &[Target]) -> Vec<String> {
    plan::unique_hosts(targets.iter().map(|t| t.host.clone()))
}

/// What a route's hosts must prove (`[[delivery.route]] tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopTls {
    /// DANE: DNSSEC-secure usable TLSA records of each host.
    Dane,
    /// A WebPKI-valid chain (or `delivery.ca_file`) for the host name, or for `name`.
    WebPki {
        /// The name the certificate must carry, when not the host name.
        name: Option<String>,
    },
    /// The host's certificate or key has one of these SHA-256 pins (hex).
    Pinned(Vec<String>),
    /// STARTTLS when offered, unauthenticated: no verified TLS by this route.
    Opportunistic,
}

impl HopTls {
    /// The configuration spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            HopTls::Dane => "dane",
            HopTls::WebPki { .. } => "webpki",
            HopTls::Pinned(_) => "pinned",
            HopTls::Opportunistic => "opportunistic",
        }
    }
}

/// An operator's next hop for some domains (`[[delivery.route]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The route's name.
    pub name: String,
    /// Host names or address literals ("[192.0.2.7]"), tried in order.
    pub hosts: Vec<String>,
    /// Their port.
    pub port: u16,
    /// What they must prove.
    pub tls: HopTls,
}

impl NextHop {
    /// What the hosts must prove, for the evidence: "pinned TLS to [192.0.2.7]:25".
    pub fn describe(&self) -> String {
        let what = match &self.tls {
            HopTls::Dane => "DANE-verified TLS",
            HopTls::WebPki { .. } => "WebPKI-verified TLS",
            HopTls::Pinned(_) => "pinned TLS",
            HopTls::Opportunistic => "opportunistic TLS",
        };
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{h}:{}", self.port))
            .collect();
        match &self.tls {
            HopTls::WebPki { name: Some(n) } => {
                format!("{what} for {n} to {}", hosts.join(", "))
            }
            _ => format!("{what} to {}", hosts.join(", ")),
        }
    }

    /// The key of this hop's sessions in the connection cache: everything that decides how
    /// a session to it was authenticated, so a changed route never reuses an older session.
    pub(crate) fn cache_key(&self) -> String {
        format!("route\u{0}{self:?}")
    }
}

/// The operator's routes: exact domains, subdomain patterns and the smarthost.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    exact: std::collections::HashMap<String, std::sync::Arc<NextHop>>,
    /// (".partner.example", hop), longest first.
    suffixes: Vec<(String, std::sync::Arc<NextHop>)>,
    smarthost: Option<std::sync::Arc<NextHop>>,
}

impl Routes {
    /// The table of `(domain patterns, hop)` (patterns as in `[[delivery.route]] domains`,
    /// checked when the configuration was loaded; the first route naming a pattern wins).
    pub fn new(routes: Vec<(Vec<String>, NextHop)>) -> Self {
        let mut table = Routes::default();
        for (patterns, hop) in routes {
            let hop = std::sync::Arc::new(hop);
            for p in patterns {
                let p = p.trim_end_matches('.').to_ascii_lowercase();
                if p == "*" {
                    table.smarthost.get_or_insert_with(|| hop.clone());
                } else if p.starts_with('.') {
                    if !table.suffixes.iter().any(|(s, _)| *s == p) {
                        table.suffixes.push((p, hop.clone()));
                    }
                } else {
                    table.exact.entry(p).or_insert_with(|| hop.clone());
                }
            }
        }
        table
            .suffixes
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table
    }

    /// Whether no route is configured.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.suffixes.is_empty() && self.smarthost.is_none()
    }

    /// The hop for `domain`: its exact entry, else the longest subdomain pattern it falls
    /// under, else the smarthost; `None`: by its MX hosts.
    pub fn for_domain(&self, domain: &str) -> Option<std::sync::Arc<NextHop>> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(hop) = self.exact.get(&domain) {
            return Some(hop.clone());
        }
        self.suffixes
            .iter()
            .find(|(s, _)| domain.ends_with(s.as_str()))
            .map(|(_, hop)| hop.clone())
            .or_else(|| self.smarthost.clone())
    }
}

/// The addresses of a hop's hosts, in order: address literals as they are, names by their
/// address records (no MX lookup). The target's host is the name its certificate is checked
/// against (`tls_name` when set).
pub(crate) async fn hop_targets(
    resolver: &dyn Resolver,
    hop: &NextHop,
) -> Result<Vec<Target>, Failure> {
    let tls_name = match &hop.tls {
        HopTls::WebPki { name } => name.clone(),
        _ => None,
    };
    let mut targets = Vec::new();
    let mut last = String::new();
    for h in &hop.hosts {
        let literal = h
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<std::net::IpAddr>().ok());
        // An address literal is checked (and named to the peer) as the address itself.
        let name = tls_name
            .clone()
            .or_else(|| literal.map(|ip| ip.to_string()))
            .unwrap_or_else(|| h.clone());
        let ips = match literal {
            Some(ip) => vec![ip],
            None => match resolver.ips(h).await {
                Ok(ips) => ips,
                Err(e) => {
                    last = format!("address lookup for {h} failed: {e}");
                    continue;
                }
            },
        };
        targets.extend(ips.into_iter().map(|ip| Target {
            host: name.clone(),
            addr: SocketAddr::new(ip, hop.port),
            via: None,
        }));
    }
    if targets.is_empty() {
        let reason = format!(
            "4.4.3 route {}: no address for any of its hosts{}",
            hop.name,
            if last.is_empty() {
                String::new()
            } else {
                format!(" ({last})")
            }
        );
        return Err(Failure::temporary(reason, None));
    }
    Ok(targets)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    fn hop(name: &str) -> NextHop {
        NextHop {
            name: name.to_owned(),
            hosts: vec!["[192.0.2.7]".to_owned()],
            port: 25,
            tls: HopTls::Opportunistic,
        }
    }

    #[test]
    fn an_exact_domain_beats_a_longer_pattern_which_beats_a_shorter_one_and_the_smarthost() {
        let routes = Routes::new(vec![
            (vec!["*".to_owned()], hop("smarthost")),
            (vec![".example".to_owned()], hop("short")),
            (vec![".lab.example".to_owned()], hop("long")),
            (
                vec!["lab.example".to_owned(), "Partner.Test.".to_owned()],
                hop("exact"),
            ),
        ]);
        let name = |d: &str| routes.for_domain(d).map(|h| h.name.clone());
        assert_eq!(name("lab.example").as_deref(), Some("exact"));
        assert_eq!(name("PARTNER.test").as_deref(), Some("exact"));
        assert_eq!(name("x.lab.example").as_deref(), Some("long"));
        assert_eq!(name("other.example").as_deref(), Some("short"));
        // A pattern covers subdomains only, and no partial label matches.
        assert_eq!(name("example").as_deref(), Some("smarthost"));
        assert_eq!(name("xlab.example").as_deref(), Some("short"));
        assert_eq!(name("elsewhere.org").as_deref(), Some("smarthost"));
        assert!(Routes::new(vec![]).for_domain("elsewhere.org").is_none());
    }

    #[test]
    fn a_changed_route_gets_another_cache_key() {
        let a = hop("partner");
        let b = NextHop {
            tls: HopTls::Pinned(vec!["ab".repeat(32)]),
            ..a.clone()
        };
        assert_ne!(a.cache_key(), b.cache_key());
        assert_eq!(b.describe(), "pinned TLS to [192.0.2.7]:25",);
    }
}
