//! Planning a domain's deliveries: what discovery found becomes the policy engine's evidence,
//! each recipient gets a [`Decision`], and each MX host gets the peer authentication that
//! verified TLS demands of it (or the reason it cannot be used).

use sealgate_discovery::dane::HostDane;
use sealgate_discovery::keys::{KeyWant, RecipientKeys};
use sealgate_discovery::mta_sts::{StsMode, StsPolicy};
use sealgate_discovery::{Discovery, DomainProbe};
use sealgate_policy::{DaneStatus, Decision, DomainEvidence, MessageFacts, Rules};

use crate::encrypt;
use crate::verify::PeerAuth;

/// How an authenticated peer proved itself; also its TLS-RPT policy type (RFC 8460 §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// DANE TLSA (RFC 7672).
    Dane,
    /// MTA-STS enforce (RFC 8461).
    MtaSts,
    /// An operator pin.
    Pinned,
    /// `tls-authenticated`: a WebPKI chain (or `delivery.ca_file`) for the MX host name, with
    /// no DNS or HTTPS policy behind the host name.
    WebPki,
}

impl Via {
    /// The audit spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Via::Dane => "dane",
            Via::MtaSts => "mta-sts",
            Via::Pinned => "pinned",
            Via::WebPki => "webpki",
        }
    }

    /// The TLS-RPT policy type.
    pub(crate) fn rpt_policy_type(self) -> &'static str {
        match self {
            Via::Dane => "tlsa",
            Via::MtaSts => "sts",
            Via::Pinned | Via::WebPki => "no-policy-found",
        }
    }
}

/// The MTA-STS policy of the probe in `mode`, if that is what applies.
pub(crate) fn sts_policy(p: &DomainProbe, mode: StsMode) -> Option<&StsPolicy> {
    p.sts
        .as_ref()
        .and_then(|l| l.policy.as_ref())
        .filter(|pol| pol.mode == mode)
}

/// `d` with what discovery noted added to its evidence.
fn with_probe_notes(mut d: Decision, probe: &DomainProbe) -> Decision {
    d.evidence.extend(probe.notes.iter().cloned());
    if let Some(sts) = &probe.sts {
        d.evidence
            .extend(sts.notes.iter().map(|n| format!("mta-sts: {n}")));
    }
    d
}

/// A recipient's decision and the keys found for it.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    /// The decision (key findings in its evidence).
    pub decision: Decision,
    /// What key lookups found (empty when the decision needed none).
    pub keys: RecipientKeys,
}

/// Decides for `rcpt`, looking up its OpenPGP key and S/MIME certificate first when the rules
/// would prefer one of those methods to everything else the domain offers.
pub(crate) async fn plan_recipient(
    discovery: &Discovery,
    rules: &Rules,
    rcpt: &str,
    probe: &DomainProbe,
    evidence: &DomainEvidence,
    facts: &MessageFacts,
) -> Planned {
    // The policy says which keys could change its choice; only those are looked up, and the
    // recipient is decided once.
    let prepared = sealgate_policy::prepare(rules, rcpt, evidence, facts);
    let matter = prepared.keys_that_matter();
    let want = KeyWant {
        pgp: matter.pgp,
        smime: matter.smime,
    };
    let keys = if want.pgp || want.smime {
        discovery.recipient_keys(rcpt, want).await
    } else {
        RecipientKeys::default()
    };
    let mut decision = with_probe_notes(prepared.decide(&keys.evidence()), probe);
    decision.evidence.extend(encrypt::key_notes(&keys));
    Planned { decision, keys }
}

/// `hosts` in order, each once.
pub(crate) fn unique_hosts(hosts: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in hosts {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// How `host` must prove itself for verified TLS, or why it cannot be used:
/// DANE takes precedence over MTA-STS for a host with usable TLSA records (RFC 8461 §2); a
/// host outside an enforce policy's `mx` patterns is not used (§4.1); pins serve a domain
/// with neither.
pub(crate) fn peer_auth(
    p: &DomainProbe,
    pins: &[String],
    host: &str,
) -> Result<(PeerAuth, Via), String> {
    match p.dane.host(host) {
        Some(HostDane::Usable { records, .. }) => {
            return Ok((
                PeerAuth::Dane {
                    records: records.clone(),
                    names: vec![host.to_owned(), p.domain.clone()],
                },
                Via::Dane,
            ));
        }
        // RFC 7672 §2.2: a bogus TLSA answer means the MX must not be used.
        Some(HostDane::Bogus { reason }) => {
            return Err(format!("DNSSEC-bogus TLSA answer for {host}: {reason}"));
        }
        _ => {}
    }
    if let Some(pol) = sts_policy(p, StsMode::Enforce) {
        if pol.mx_matches(host) {
            return Ok((PeerAuth::WebPki, Via::MtaSts));
        }
        return Err(format!(
            "{host} is not among the MTA-STS policy's mx patterns ({})",
            pol.mx.join(", ")
        ));
    }
    if !pins.is_empty() {
        return Ok((
            PeerAuth::Pinned {
                sha256: pins.to_vec(),
            },
            Via::Pinned,
        ));
    }
    if let Some(HostDane::Unusable) = p.dane.host(host) {
        return Err(format!(
            "no usable DANE TLSA record (only unusable ones: TLS mandatory but \
             unauthenticated), MTA-STS enforce policy or pin for {host}"
        ));
    }
    Err(format!(
        "no DANE TLSA records, MTA-STS enforce policy or pin for {host}"
    ))
}

/// Why `host` must get TLS even on an opportunistic session, when it must: RFC 7672 §2.2,
/// DNSSEC-secure TLSA records none of which is usable make TLS mandatory for the host, though
/// unauthenticated (so never verified TLS). Every message to the host is held to it: no
/// STARTTLS or a failed handshake means the host is not used.
pub(crate) fn tls_mandatory(p: &DomainProbe, host: &str) -> Option<String> {
    matches!(p.dane.host(host), Some(HostDane::Unusable)).then(|| {
        format!(
            "TLS is mandatory for {host} (RFC 7672 §2.2: DNSSEC-secure TLSA records, none usable)"
        )
    })
}

/// Whether `host` may be used at all, even for opportunistic TLS (a bogus TLSA answer
/// rules it out, RFC 7672 §2.2).
pub(crate) fn host_usable(p: &DomainProbe, host: &str) -> bool {
    !matches!(p.dane.host(host), Some(HostDane::Bogus { .. }))
}

/// What `sealgate check` shows: the decision for one recipient and, per MX host, how verified
/// TLS would authenticate it (or why it could not).
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// The recipient address.
    pub address: String,
    /// The decision, evidence and alerts.
    pub decision: Decision,
    /// `(MX host, how verified TLS would authenticate it)`, in preference order.
    pub hosts: Vec<(String, String)>,
    /// Why routing failed, if it did.
    pub route_error: Option<String>,
}

impl CheckReport {
    /// The report as text, one fact per line.
    pub fn render(&self) -> String {
        let d = &self.decision;
        let chain: Vec<&str> = d.chain.iter().map(|m| m.as_str()).collect();
        let mut out = format!(
            "recipient: {}\nmethod:    {}\nlevel:     {} ({})\nchain:     {}\n",
            self.address,
            d.chosen(),
            d.level,
            d.level_source,
            chain.join(" > ")
        );
        if let Some(e) = &self.route_error {
            out.push_str(&format!("route:     {e}\n"));
        }
        for (host, how) in &self.hosts {
            out.push_str(&format!("mx:        {host}: {how}\n"));
        }
        out.push_str("evidence:\n");
        for line in d.explain().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// A dry run of the decision for `address`: routes, probes and decides exactly as delivery
/// would, and sends nothing.
pub async fn check(
    resolver: &dyn sealgate_dns::Resolver,
    discovery: &sealgate_discovery::Discovery,
    rules: &Rules,
    routes: &crate::route::Routes,
    address: &str,
    facts: &MessageFacts,
) -> CheckReport {
    let domain = address
        .rsplit_once('@')
        .map_or(address, |(_, d)| d)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if let Some(next) = routes.for_domain(&domain) {
        return check_routed(resolver, discovery, rules, next, address, &domain, facts).await;
    }
    let keep_order = |_: &mut [sealgate_dns::Route]| {};
    let (hosts, route_error) = match sealgate_dns::route(resolver, &domain, keep_order).await {
        Ok(sealgate_dns::Routing::Hosts(routes)) => {
            (unique_hosts(routes.into_iter().map(|r| r.host)), None)
        }
        Ok(sealgate_dns::Routing::NullMx) => (
            Vec::new(),
            Some(format!("{domain} accepts no mail (null MX, RFC 7505)")),
        ),
        Err(e) => (Vec::new(), Some(format!("MX lookup failed: {e}"))),
    };
    let probe = discovery.probe(&domain, &hosts).await;
    let mut evidence = probe.evidence();
    if route_error.is_some() {
        // No MX hosts were found, so nothing about DANE is known.
        evidence.dane = DaneStatus::Unknown;
    }
    let decision = plan_recipient(discovery, rules, address, &probe, &evidence, facts)
        .await
        .decision;
    let hosts = hosts
        .iter()
        .map(|h| {
            let how = match peer_auth(&probe, &decision.pins, h) {
                Ok((PeerAuth::Dane { records, .. }, _)) => {
                    format!("dane ({} usable TLSA records)", records.len())
                }
                Ok((_, via)) => via.as_str().to_owned(),
                Err(why) => format!("not verifiable: {why}"),
            };
            (h.clone(), how)
        })
        .collect();
    CheckReport {
        address: address.to_owned(),
        decision,
        hosts,
        route_error,
    }
}

/// [`check`] for a domain an operator's route carries: the route's hosts, and how each must
/// prove itself.
async fn check_routed(
    resolver: &dyn sealgate_dns::Resolver,
    discovery: &sealgate_discovery::Discovery,
    rules: &Rules,
    next: std::sync::Arc<crate::route::NextHop>,
    address: &str,
    domain: &str,
    facts: &MessageFacts,
) -> CheckReport {
    let hop = crate::connect::Hop::look_up(resolver, next).await;
    let probe = DomainProbe::routed(domain);
    let evidence = DomainEvidence {
        route: Some(hop.evidence()),
        ..DomainEvidence::default()
    };
    let decision = plan_recipient(discovery, rules, address, &probe, &evidence, facts)
        .await
        .decision;
    let hosts = hop
        .next
        .hosts
        .iter()
        .map(|h| {
            let how = match hop.auth(h) {
                None => "opportunistic (route)".to_owned(),
                Some(Ok((_, via))) => format!("{} (route {})", via.as_str(), hop.next.name),
                Some(Err(why)) => format!("not verifiable: {why}"),
            };
            (format!("{h}:{}", hop.next.port), how)
        })
        .collect();
    CheckReport {
        address: address.to_owned(),
        decision,
        hosts,
        route_error: None,
    }
}
