//! Opening a session to a domain's mail hosts (found by [`crate::route`]): opportunistic
//! sessions, verified-TLS sessions that try each MX host with the authentication it owes
//! (DANE, MTA-STS, pin), and authenticated-TLS sessions (a WebPKI-valid certificate for the
//! MX host name), counting every TLS session for TLS-RPT.

use sealgate_discovery::DomainProbe;
use sealgate_discovery::dane::HostDane;
use sealgate_discovery::mta_sts::StsMode;
use sealgate_store::{TlsRptFailure, TlsRptSession};
use sealgate_types::time::now_micros;
use tracing::{debug, info};

use crate::client::{ClientError, SmtpConnection, TlsPolicy};
use crate::context::DeliveryContext;
use crate::plan::{self, Via};
use crate::route::{Failure, HopTls, Target};
use crate::verify::{PeerAuth, classify_failure};

/// An opportunistic session: STARTTLS when offered, and required (unauthenticated) by a host
/// whose TLSA records are all unusable ([`plan::tls_mandatory`]). Hosts with a bogus TLSA
/// answer are skipped. Under an MTA-STS `testing` policy each host is first tried with the
/// policy's checks, and a failure is counted for TLS-RPT and then ignored (RFC 8461 §5).
pub(crate) async fn connect_opportunistic(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    targets: &[Target],
) -> Result<(SmtpConnection, Target), Failure> {
    let mut last = Failure::temporary("no mail host could be reached", None);
    for t in targets {
        if !plan::host_usable(probe, &t.host) {
            last = Failure::temporary(
                format!("{}: DNSSEC-bogus TLSA answer; host not used", t.host),
                Some(t.clone()),
            );
            continue;
        }
        if let Some(pol) = plan::sts_policy(probe, StsMode::Testing) {
            if pol.mx_matches(&t.host) {
                if let Ok(open) = try_verified(ctx, probe, t, PeerAuth::WebPki, Via::MtaSts).await {
                    return Ok(open);
                }
            } else {
                let detail = format!("{} is not among the policy's mx patterns", t.host);
                report_tls(ctx, probe, t, "sts", Some(("validation-failure", detail))).await;
            }
        }
        let mandatory = plan::tls_mandatory(probe, &t.host);
        let required;
        let tls = match &mandatory {
            Some(_) => {
                required = TlsPolicy::Required(ctx.verifiers.opportunistic_config());
                &required
            }
            None => &ctx.tls,
        };
        match SmtpConnection::connect(t.addr, &t.host, &ctx.client, tls).await {
            Ok(c) => {
                debug!(mx = %t.host, addr = %t.addr, tls = c.tls().is_some(),
                    tls_mandatory = mandatory.is_some(), "connected");
                return Ok((c, t.clone()));
            }
            Err(e) => {
                info!(mx = %t.host, addr = %t.addr, error = %e, tls_mandatory = mandatory.is_some(),
                    "mail host failed, trying the next");
                // A refusal by one host is no verdict on the domain: the next host may accept.
                let reason = match &mandatory {
                    Some(why) => format!("4.7.5 {why}; nothing was sent: {e}"),
                    None => format!("{}: {e}", t.host),
                };
                last = Failure::temporary(reason, Some(t.clone()));
            }
        }
    }
    Err(last)
}

/// A verified-TLS session: each host in order with the authentication it owes; a host that
/// owes none, or fails it, is skipped. Nothing is ever sent over a session that failed
/// verification.
pub(crate) async fn connect_verified(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    targets: &[Target],
    pins: &[String],
) -> Result<(SmtpConnection, Target), Failure> {
    let refused = match try_hosts(ctx, probe, targets, |host| {
        plan::peer_auth(probe, pins, host)
    })
    .await
    {
        Ok(open) => return Ok(open),
        Err(refused) => refused,
    };
    let reasons = refused.reasons.join("; ");
    let demanded = probe.evidence().shows_verified_tls();
    let alert = (refused.by_peer && demanded).then(|| {
        format!(
            "verified TLS to {} failed although its DNS or HTTPS policy demands it (possible attack): {reasons}",
            probe.domain,
        )
    });
    let reason = format!(
        "4.7.5 verified TLS impossible for {}: {reasons}",
        probe.domain
    );
    Err(Failure {
        alert,
        ..Failure::temporary(reason, refused.last_target)
    })
}

/// An authenticated-TLS session (`tls-authenticated`): STARTTLS with TLS 1.2 or later (the
/// only versions the client speaks) and a certificate that validates under the WebPKI (or
/// `delivery.ca_file`) for the MX host name, each host in order. No STARTTLS, a wrong name,
/// an expired or untrusted certificate or an older TLS version: the host is skipped and
/// nothing is sent to it. Hosts with a bogus TLSA answer are never contacted.
pub(crate) async fn connect_authenticated(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    targets: &[Target],
) -> Result<(SmtpConnection, Target), Failure> {
    let webpki = |host: &str| {
        if plan::host_usable(probe, host) {
            Ok((PeerAuth::WebPki, Via::WebPki))
        } else {
            Err(format!("{host}: DNSSEC-bogus TLSA answer; host not used"))
        }
    };
    let refused = match try_hosts(ctx, probe, targets, webpki).await {
        Ok(open) => return Ok(open),
        Err(refused) => refused,
    };
    let reason = format!(
        "4.7.5 authenticated TLS impossible for {}: {}",
        probe.domain,
        refused.reasons.join("; ")
    );
    Err(Failure::temporary(reason, refused.last_target))
}

/// Why no host gave an authenticated session.
struct Refused {
    /// One per host, in order (repeats dropped).
    reasons: Vec<String>,
    /// The last host tried.
    last_target: Option<Target>,
    /// Some host was tried and refused (rather than ruled out before connecting).
    by_peer: bool,
}

/// Each host in order with the authentication `auth` says it owes (or why it cannot be
/// used): the first session that authenticates, or why none did.
async fn try_hosts(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    targets: &[Target],
    auth: impl Fn(&str) -> Result<(PeerAuth, Via), String>,
) -> Result<(SmtpConnection, Target), Refused> {
    let mut refused = Refused {
        reasons: Vec::new(),
        last_target: None,
        by_peer: false,
    };
    for t in targets {
        let (how, via) = match auth(&t.host) {
            Ok(a) => a,
            Err(why) => {
                refused.reasons.push(why);
                continue;
            }
        };
        match try_verified(ctx, probe, t, how, via).await {
            Ok(open) => return Ok(open),
            Err(why) => {
                refused.by_peer = true;
                refused.reasons.push(why);
                refused.last_target = Some(t.clone());
            }
        }
    }
    refused.reasons.dedup();
    Err(refused)
}

/// One verified connection attempt, counted for TLS-RPT; the reason on failure.
async fn try_verified(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    t: &Target,
    auth: PeerAuth,
    via: Via,
) -> Result<(SmtpConnection, Target), String> {
    let policy = TlsPolicy::Required(ctx.verifiers.client_config(&auth));
    match SmtpConnection::connect(t.addr, &t.host, &ctx.client, &policy).await {
        Ok(c) => {
            info!(mx = %t.host, addr = %t.addr, via = via.as_str(), "verified TLS session");
            report_tls(ctx, probe, t, via.rpt_policy_type(), None).await;
            if matches!(via, Via::Dane | Via::MtaSts) {
                ctx.discovery.note_verified(probe, via.as_str()).await;
            }
            let target = Target {
                via: Some(via),
                ..t.clone()
            };
            Ok((c, target))
        }
        Err(e) => {
            let (kind, detail) = failure_kind(&e);
            info!(mx = %t.host, addr = %t.addr, via = via.as_str(), result = kind, error = %e, "verified TLS refused");
            let reason = format!("{} ({}): {kind}: {detail}", t.host, via.as_str());
            report_tls(ctx, probe, t, via.rpt_policy_type(), Some((kind, detail))).await;
            Err(reason)
        }
    }
}

/// The RFC 8460 result type of a failed verified connection.
fn failure_kind(e: &ClientError) -> (&'static str, String) {
    if let Some(found) = classify_failure(e) {
        return found;
    }
    match e {
        ClientError::TlsRequired => ("starttls-not-supported", e.to_string()),
        _ => ("validation-failure", e.to_string()),
    }
}

async fn report_tls(
    ctx: &DeliveryContext,
    probe: &DomainProbe,
    t: &Target,
    policy_type: &str,
    failure: Option<(&str, String)>,
) {
    let session = TlsRptSession {
        domain: probe.domain.clone(),
        policy_type: policy_type.to_owned(),
        failure: failure.map(|(kind, detail)| TlsRptFailure {
            result_type: kind.to_owned(),
            mx_host: t.host.clone(),
            ip: t.addr.ip().to_string(),
            detail,
        }),
        at: now_micros(),
    };
    ctx.discovery.record_tls(&[session]).await;
}

/// A domain's route for this run: the hop, and for a DANE hop what each host's TLSA records
/// said (looked up once per run, before the decisions).
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    pub(crate) next: std::sync::Arc<crate::route::NextHop>,
    pub(crate) tlsa: Vec<(String, sealgate_discovery::dane::HostDane)>,
}

impl Hop {
    /// The hop, with its hosts' TLSA records looked up when it is a DANE hop.
    pub(crate) async fn look_up(
        resolver: &dyn sealgate_dns::Resolver,
        next: std::sync::Arc<crate::route::NextHop>,
    ) -> Self {
        let mut tlsa = Vec::new();
        if next.tls == HopTls::Dane {
            for h in &next.hosts {
                let state = sealgate_discovery::dane::host_tlsa(resolver, h, next.port).await;
                tlsa.push((h.to_ascii_lowercase(), state));
            }
        }
        Self { next, tlsa }
    }

    /// What the policy is told about the route: `unverified` says why it gives no verified
    /// TLS now (an opportunistic route, or a DANE route none of whose hosts has usable
    /// DNSSEC-secure TLSA records).
    pub(crate) fn evidence(&self) -> sealgate_policy::RouteEvidence {
        let unverified = match &self.next.tls {
            HopTls::Opportunistic => Some("tls = \"opportunistic\": no verified TLS".to_owned()),
            HopTls::Dane
                if !self
                    .tlsa
                    .iter()
                    .any(|(_, s)| matches!(s, HostDane::Usable { .. })) =>
            {
                let states: Vec<String> = self
                    .tlsa
                    .iter()
                    .map(|(h, s)| format!("{h}: {}", dane_state(s)))
                    .collect();
                Some(format!(
                    "no host with usable DNSSEC-secure TLSA records ({})",
                    states.join("; ")
                ))
            }
            _ => None,
        };
        sealgate_policy::RouteEvidence {
            name: self.next.name.clone(),
            tls: self.next.describe(),
            unverified,
        }
    }

    /// How `host` must prove itself on this hop, or why it cannot: `None` for an
    /// opportunistic hop.
    pub(crate) fn auth(&self, host: &str) -> Option<Result<(PeerAuth, Via), String>> {
        Some(match &self.next.tls {
            HopTls::Opportunistic => return None,
            HopTls::WebPki { .. } => Ok((PeerAuth::WebPki, Via::WebPki)),
            HopTls::Pinned(pins) => Ok((
                PeerAuth::Pinned {
                    sha256: pins.clone(),
                },
                Via::Pinned,
            )),
            HopTls::Dane => match self.tlsa.iter().find(|(h, _)| h == host) {
                Some((_, HostDane::Usable { records, .. })) => Ok((
                    PeerAuth::Dane {
                        records: records.clone(),
                        names: vec![host.to_owned()],
                    },
                    Via::Dane,
                )),
                Some((_, state)) => Err(format!("{host}: {}", dane_state(state))),
                None => Err(format!("{host}: TLSA records not looked up")),
            },
        })
    }
}

fn dane_state(s: &HostDane) -> String {
    match s {
        HostDane::Usable { .. } => "usable TLSA records".to_owned(),
        HostDane::Unusable => "TLSA records, none usable for SMTP".to_owned(),
        HostDane::NoTlsa => "no TLSA records (secure denial)".to_owned(),
        HostDane::Insecure => "unsigned: DANE does not apply".to_owned(),
        HostDane::Bogus { reason } => format!("DNSSEC-bogus: {reason}"),
        HostDane::Failed { reason } => format!("lookup failed: {reason}"),
    }
}

/// A session to a routed domain's hop. Whatever the recipient's decision, the session is
/// what the route demands: its hosts prove themselves as the route says (so nothing leaves
/// in the clear by a route that demands verification); an opportunistic hop uses STARTTLS
/// when offered, and cannot serve `verified` (a decision for verified TLS). Routes are the
/// operator's, not the domain's: no TLS-RPT, no downgrade memory.
pub(crate) async fn connect_hop(
    ctx: &DeliveryContext,
    hop: &Hop,
    targets: &[Target],
    verified: bool,
) -> Result<(SmtpConnection, Target), Failure> {
    let name = &hop.next.name;
    let mut reasons: Vec<String> = Vec::new();
    let mut last_target = None;
    for t in targets {
        let (policy, via) = match hop.auth(&t.host) {
            None if verified => {
                return Err(Failure::temporary(
                    format!("4.7.5 route {name} gives no verified TLS (tls = \"opportunistic\")"),
                    None,
                ));
            }
            None => (ctx.tls.clone(), None),
            Some(Err(why)) => {
                reasons.push(why);
                continue;
            }
            Some(Ok((auth, via))) => (
                TlsPolicy::Required(ctx.verifiers.client_config(&auth)),
                Some(via),
            ),
        };
        match SmtpConnection::connect(t.addr, &t.host, &ctx.client, &policy).await {
            Ok(c) => {
                info!(route = %name, host = %t.host, addr = %t.addr,
                    via = via.map_or("none", Via::as_str), "route session");
                let target = Target { via, ..t.clone() };
                return Ok((c, target));
            }
            Err(e) => {
                info!(route = %name, host = %t.host, addr = %t.addr, error = %e, "route host failed, trying the next");
                let how = via.map_or(String::new(), |v| format!(" ({})", v.as_str()));
                let (kind, detail) = match via {
                    Some(_) => failure_kind(&e),
                    None => ("failed", e.to_string()),
                };
                reasons.push(format!("{} [{}]{how}: {kind}: {detail}", t.host, t.addr));
                last_target = Some(t.clone());
            }
        }
    }
    reasons.dedup();
    let reason = match hop.next.tls {
        HopTls::Opportunistic => format!(
            "route {name}: no host could be reached: {}",
            reasons.join("; ")
        ),
        _ => format!(
            "4.7.5 route {name}: {} impossible: {}",
            hop.next.describe(),
            reasons.join("; ")
        ),
    };
    Err(Failure::temporary(reason, last_target))
}
