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
