//! `[[delivery.route]]`: where mail for some domains goes instead of their MX hosts (like
//! Postfix's transport map), and the default smarthost (`domains = ["*"]`, like `relayhost`),
//! each with the TLS its hosts must prove.

use std::net::IpAddr;

use serde::Deserialize;

use crate::Problem;

/// How the hosts of a route must prove themselves. Whatever leaves by the route does so under
/// this requirement: a route that demands verification never carries anything in the clear,
/// whatever the recipient's decision allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTls {
    /// DANE (RFC 7672): DNSSEC-secure usable TLSA records at `_PORT._tcp.HOST`.
    Dane,
    /// A certificate chain valid under the WebPKI (or `delivery.ca_file`) for the host name
    /// (or `tls_name`).
    Webpki,
    /// The SHA-256 of the host's certificate or public key is one of `pins`.
    Pinned,
    /// STARTTLS when offered, unauthenticated. The route gives no verified TLS: recipients
    /// whose decision needs it go to their next method.
    Opportunistic,
}

impl RouteTls {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteTls::Dane => "dane",
            RouteTls::Webpki => "webpki",
            RouteTls::Pinned => "pinned",
            RouteTls::Opportunistic => "opportunistic",
        }
    }
}

/// `[[delivery.route]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name for the log and the decision evidence, such as "perimeter" or "partner-lab".
    pub name: String,
    /// The recipient domains routed here: "partner.example" (that domain), ".partner.example"
    /// (its subdomains), "*" (every domain no other route names: the smarthost). An exact
    /// domain beats a subdomain pattern, a longer pattern a shorter one, and both beat "*".
    pub domains: Vec<String>,
    /// The next hops in the order to try them: host names (their addresses are looked up,
    /// no MX lookup) or address literals such as "[192.0.2.7]" or "[2001:db8::7]".
    pub hosts: Vec<String>,
    /// TCP port of the hosts. Default: `delivery.smtp_port`.
    #[serde(default)]
    pub port: Option<u16>,
    /// "dane", "webpki", "pinned" or "opportunistic" (no default: say what the hop owes).
    pub tls: RouteTls,
    /// For `tls = "pinned"`: SHA-256 (hex) of the hosts' leaf certificate DER or of its
    /// SubjectPublicKeyInfo; any one matching is enough.
    #[serde(default)]
    pub pins: Vec<String>,
    /// For `tls = "webpki"`: the name the certificate must carry, when it is not the host
    /// name (required for an address literal).
    #[serde(default)]
    pub tls_name: Option<String>,
}

/// The address of a host written as an address literal ("[192.0.2.7]"), if it is one.
pub fn address_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

fn is_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_pin(s: &str) -> bool {
    let hex: String = s.trim().chars().filter(|c| *c != ':').collect();
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn validate(routes: &[RouteConfig], problems: &mut Vec<Problem>) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let key = |field: &str| format!("delivery.route[{i}].{field}");
        let mut bad = |k: String, msg: &str| problems.push(Problem::new(k, msg));
        if r.name.is_empty()
            || r.name
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            bad(key("name"), "must be a word without spaces");
        } else if routes[..i].iter().any(|o| o.name == r.name) {
            bad(key("name"), "another route has this name");
        }
        if r.domains.is_empty() {
            bad(
                key("domains"),
                "name at least one domain, \".domain\" or \"*\"",
            );
        }
        for d in &r.domains {
            let d = d.to_ascii_lowercase();
            let name = d.strip_prefix('.').unwrap_or(&d);
            if d != "*" && !is_name(name) {
                bad(
                    key("domains"),
                    "entries are domains (\"partner.example\"), subdomain patterns (\".partner.example\") or \"*\"",
                );
            } else if let Some((_, other)) = seen.iter().find(|(s, _)| *s == d) {
                let msg = format!("{d} is routed by delivery.route[{other}] already");
                bad(key("domains"), &msg);
                continue;
            }
            seen.push((d, i));
        }
        if r.hosts.is_empty() {
            bad(key("hosts"), "name at least one host");
        }
        for h in &r.hosts {
            let literal = address_literal(h);
            if literal.is_none() && !is_name(h) {
                bad(
                    key("hosts"),
                    "entries are host names or address literals such as \"[192.0.2.7]\"",
                );
            }
            if literal.is_some() && r.tls == RouteTls::Dane {
                bad(
                    key("tls"),
                    "DANE needs host names (TLSA records are looked up by name), not address literals",
                );
            }
            if literal.is_some() && r.tls == RouteTls::Webpki && r.tls_name.is_none() {
                bad(
                    key("tls_name"),
                    "an address literal host under tls = \"webpki\" needs the name its certificate carries",
                );
            }
        }
        if r.port == Some(0) {
            bad(key("port"), "must be a port number from 1 to 65535");
        }
        match r.tls {
            RouteTls::Pinned if r.pins.is_empty() => {
                bad(key("pins"), "tls = \"pinned\" needs at least one pin");
            }
            RouteTls::Pinned => {}
            _ if !r.pins.is_empty() => {
                bad(key("pins"), "pins are only used with tls = \"pinned\"");
            }
            _ => {}
        }
        if r.pins.iter().any(|p| !is_pin(p)) {
            bad(
                key("pins"),
                "each pin is a SHA-256 in hex (64 digits, \":\" separators allowed)",
            );
        }
        if let Some(n) = &r.tls_name {
            if r.tls != RouteTls::Webpki {
                bad(key("tls_name"), "only used with tls = \"webpki\"");
            } else if !is_name(n) {
                bad(key("tls_name"), "must be a DNS name");
            }
        }
    }
}
