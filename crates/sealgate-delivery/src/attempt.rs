//! Delivering the claimed recipients of one domain: route, probe, decide per recipient (each
//! decision audited before anything is sent), then send each message over a verified or an
//! opportunistic session as decided, settle every recipient, bounce what failed for good.

use std::collections::BTreeMap;

use sealgate_audit::AuditEvent;
use sealgate_discovery::DomainProbe;
use sealgate_policy::{Decision, DomainEvidence, Failed, Method};
use sealgate_queue::{AttemptReport, Claim, Group, Recorder};
use sealgate_types::{HoldReason, Outcome};
use tracing::{info, warn};

use crate::client::{ClientError, Envelope, SmtpConnection};
use crate::connect;
use crate::context::DeliveryContext;
use crate::encrypt;
use crate::facts;
use crate::plan;
use crate::route::{self, Failure, Target};

mod outcome;

use outcome::{
    class, evidence, failure_reports, local_reason, report, settle, transaction_reports,
};

/// Recipients of one message that go the same way, with their decisions.
type Part = Vec<(Claim, Decision)>;

/// How a part of a message leaves, from its decisions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// Verified TLS, with the pins the decisions carry.
    Verified(Vec<String>),
    /// Authenticated TLS: a WebPKI-valid certificate for the MX host name.
    Authenticated,
    /// Opportunistic TLS.
    Opportunistic,
    /// A copy encrypted to one recipient's key (OpenPGP or S/MIME), sent over opportunistic
    /// TLS, or over verified TLS with these pins when the sender asked for REQUIRETLS.
    Encrypted {
        /// The recipient the copy is for.
        rcpt: String,
        /// `Some(pins)` when the copy must travel over verified TLS.
        verified: Option<Vec<String>>,
    },
    /// Sealed on the secure portal, the recipient notified (`[portal]` enabled).
    Portal,
    /// Held by policy: the chosen method cannot be carried out here now (the portal while it
    /// is disabled). Nothing is sent; the recipient waits.
    Held(HoldReason),
}

/// A message decided and ready to send: its recipients grouped by way, the content as it
/// will leave (content-trigger headers and the portal passphrase header removed), the copies
/// encrypted per recipient, the passphrase for portal recipients, and its
/// `key_discovered`/`decision`/`alert` events.
struct Prepared {
    parts: BTreeMap<Way, Part>,
    content: Vec<u8>,
    sealed: BTreeMap<String, Vec<u8>>,
    passphrase: Option<String>,
    events: Vec<AuditEvent>,
}

impl Prepared {
    /// Bytes held in memory.
    fn size(&self) -> usize {
        self.content.len() + self.sealed.values().map(Vec::len).sum::<usize>()
    }
}

/// Messages decided together: their events are committed (with other tasks' events, by the
/// recorder) before any of them is sent. Bounded, since their contents are held in memory
/// meanwhile.
const WINDOW_MESSAGES: usize = 32;
const WINDOW_BYTES: usize = 16 << 20;

/// What one domain's batch shares: its route and what discovery found.
struct DomainRun<'a> {
    ctx: &'a DeliveryContext,
    recorder: &'a Recorder,
    domain: &'a str,
    targets: Vec<Target>,
    probe: DomainProbe,
    evidence: DomainEvidence,
    /// The operator's route for the domain, when it has one: every session goes to its hosts
    /// under its TLS requirement.
    hop: Option<connect::Hop>,
    /// Open sessions by cache key (opportunistic, or verified with a set of pins).
    open: BTreeMap<String, (SmtpConnection, Target)>,
}

/// Delivers every claim of `domain` (they all share the route and, when possible, sessions).
pub(crate) async fn deliver_domain(
    ctx: &DeliveryContext,
    recorder: &Recorder,
    domain: &str,
    claims: Vec<Claim>,
) {
    let next_hop = ctx.routes.current().for_domain(domain);
    let (targets, probe, evidence, hop) = match next_hop {
        Some(next) => {
            let targets = match route::hop_targets(ctx.resolver.as_ref(), &next).await {
                Ok(t) => t,
                Err(f) => return settle(ctx, failure_reports(&claims, &f).into()).await,
            };
            let hop = connect::Hop::look_up(ctx.resolver.as_ref(), next).await;
            let evidence = DomainEvidence {
                route: Some(hop.evidence()),
                ..DomainEvidence::default()
            };
            (targets, DomainProbe::routed(domain), evidence, Some(hop))
        }
        None => {
            let targets =
                match route::resolve_targets(ctx.resolver.as_ref(), ctx.smtp_port, domain).await {
                    Ok(t) => t,
                    Err(f) => return settle(ctx, failure_reports(&claims, &f).into()).await,
                };
            let probe = ctx
                .discovery
                .probe(domain, &route::hosts_of(&targets))
                .await;
            let evidence = probe.evidence();
            (targets, probe, evidence, None)
        }
    };
    let mut run = DomainRun {
        ctx,
        recorder,
        domain,
        targets,
        probe,
        evidence,
        hop,
        open: BTreeMap::new(),
    };
    let mut messages: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
    for c in claims {
        messages
            .entry(c.recipient.message_id.clone())
            .or_default()
            .push(c);
    }
    let mut window = Vec::new();
    let mut bytes = 0;
    for (message_id, group) in messages {
        if let Some(p) = run.prepare(&message_id, group).await {
            bytes += p.size();
            window.push(p);
        }
        if window.len() >= WINDOW_MESSAGES || bytes >= WINDOW_BYTES {
            run.send_window(std::mem::take(&mut window)).await;
            bytes = 0;
        }
    }
    run.send_window(window).await;
    for (key, (c, target)) in std::mem::take(&mut run.open) {
        ctx.connections
            .put(&key, c, target, ctx.max_connections_per_domain)
            .await;
    }
}

impl DomainRun<'_> {
    /// Opens and decides one message's recipients of this domain; `None` when they were
    /// handed back or settled already (lease too short, content unreadable).
    async fn prepare(&self, message_id: &str, group: Vec<Claim>) -> Option<Prepared> {
        let ctx = self.ctx;
        if !hand_back_if_late(ctx, message_id, &group).await {
            return None;
        }
        let content = match ctx.queue.open_stored(message_id).await {
            Ok(c) => c,
            Err(e) => {
                warn!(msg_id = %message_id, error = %e, "cannot open the queued message");
                let reason = format!("local error: cannot open the queued message: {e}");
                let f = Failure::temporary(reason, None);
                settle(ctx, failure_reports(&group, &f).into()).await;
                return None;
            }
        };
        let mut message_facts = facts::facts(&content);
        message_facts.requiretls = group[0].requiretls;
        message_facts.phi_free = group[0].phi_free;
        let passphrase = crate::portal::passphrase(&message_facts.headers);
        let mut events = Vec::new();
        let mut planned = Vec::with_capacity(group.len());
        let rules = ctx.rules.current();
        for c in &group {
            let p = plan::plan_recipient(
                &ctx.discovery,
                &rules,
                &c.recipient.rcpt,
                &self.probe,
                &self.evidence,
                &message_facts,
            )
            .await;
            events.extend(encrypt::discovered_events(message_id, &p.keys));
            planned.push(p);
        }
        // Content triggers are the same for every recipient of the message. The portal
        // passphrase never leaves, whatever the method.
        let d0 = &planned[0].decision;
        let mut strip = d0.strip_headers.clone();
        strip.push(crate::portal::PASSPHRASE_HEADER.to_owned());
        let content = facts::rewrite(&content, &strip, d0.subject_tag_to_remove.as_deref())
            .unwrap_or(content);
        // Signed last, after every change: what leaves is what was signed. The author (and
        // with it the signing domain) is the same for the message and every encrypted copy.
        let from = message_facts
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("from"))
            .map(|(_, v)| v.as_str());
        let (content, signed) = sign(ctx, from, content);
        // The ARC set goes on last: its message signature covers ours.
        let (content, arc) = arc_seal(ctx, content);
        let signed: Vec<String> = signed.into_iter().chain(arc).collect();
        let mut parts: BTreeMap<Way, Part> = BTreeMap::new();
        let mut sealed = BTreeMap::new();
        let mut decisions = Vec::with_capacity(group.len());
        for (claim, mut p) in group.into_iter().zip(planned) {
            let (way, copy) = self.realise(&claim, &mut p, &content);
            let copy = copy.map(|c| {
                let (c, how) = sign(ctx, from, c);
                p.decision.evidence.extend(how);
                c
            });
            if matches!(
                way,
                Way::Verified(_) | Way::Authenticated | Way::Opportunistic
            ) {
                p.decision.evidence.extend(signed.clone());
            }
            if let Some(copy) = copy {
                sealed.insert(claim.recipient.rcpt.clone(), copy);
            }
            decisions.push((claim.clone(), p.decision.clone()));
            parts.entry(way).or_default().push((claim, p.decision));
        }
        let (claims, ds): (Vec<Claim>, Vec<Decision>) = decisions.into_iter().unzip();
        events.extend(decision_events(self.domain, &claims, &ds));
        Some(Prepared {
            parts,
            content,
            sealed,
            passphrase,
            events,
        })
    }

    /// Carries out the encryption a decision chose (now, so a key unusable at send time is
    /// caught): the way the recipient leaves and its encrypted copy. When encryption fails,
    /// the recipient falls to the next method of its chain and the evidence says why.
    fn realise(
        &self,
        claim: &Claim,
        p: &mut plan::Planned,
        content: &[u8],
    ) -> (Way, Option<Vec<u8>>) {
        let now = sealgate_types::time::now_micros() / 1_000_000;
        let rcpt = &claim.recipient.rcpt;
        let d = &mut p.decision;
        loop {
            match d.chosen() {
                Method::TlsVerified => return (Way::Verified(d.pins.clone()), None),
                Method::TlsAuthenticated => return (Way::Authenticated, None),
                Method::TlsOpportunistic => return (Way::Opportunistic, None),
                m @ (Method::Pgp | Method::Smime) => {
                    match encrypt::seal(&self.ctx.encryption, m, rcpt, &p.keys, content, now) {
                        Ok(enc) => {
                            d.evidence
                                .push(format!("{m}: encrypted: {}", enc.used.join("; ")));
                            let verified = claim.requiretls.then(|| d.pins.clone());
                            let way = Way::Encrypted {
                                rcpt: rcpt.clone(),
                                verified,
                            };
                            return (way, Some(enc.message));
                        }
                        Err(why) => {
                            warn!(rcpt = %rcpt, method = %m, reason = %why, "encryption failed; next method");
                            let why = why.to_string();
                            match d.after(&Failed::Encryption { method: m, why }) {
                                Some(next) => *d = next,
                                None => return (Way::Held(HoldReason::NoMethodLeft), None),
                            }
                        }
                    }
                }
                // A phi-free message (a notice) never goes to the portal, whatever its chain.
                Method::Portal if claim.phi_free => {
                    return (Way::Held(HoldReason::NoPortalForNotices), None);
                }
                Method::Portal if self.ctx.portal.is_some() => return (Way::Portal, None),
                Method::Portal => return (Way::Held(HoldReason::PortalDisabled), None),
            }
        }
    }

    /// Has the window's decisions committed, then sends each message by way. Each way returns
    /// one report per recipient; every report of the window is settled here, part by part
    /// (a part's copy has left, so it is settled before the next is sent).
    async fn send_window(&mut self, mut window: Vec<Prepared>) {
        if window.is_empty() {
            return;
        }
        let events = window
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.events))
            .collect();
        if let Err(e) = self.recorder.record(events).await {
            // No attempt without its decision on record.
            let reason = format!("local error: cannot record the decision: {e}");
            let claims: Vec<Claim> = window
                .iter()
                .flat_map(|p| p.parts.values().flatten().map(|(c, _)| c.clone()))
                .collect();
            let f = Failure::temporary(reason, None);
            return settle(self.ctx, failure_reports(&claims, &f).into()).await;
        }
        for p in window {
            for (way, part) in p.parts {
                let claims: Vec<Claim> = part.iter().map(|(c, _)| c.clone()).collect();
                let id = &claims[0].recipient.message_id;
                if !hand_back_if_late(self.ctx, id, &claims).await {
                    continue;
                }
                let group = self
                    .by_way(way, &part, &p.content, &p.sealed, p.passphrase.as_deref())
                    .await;
                settle(self.ctx, group).await;
            }
        }
    }

    /// Carries out one way for one part of a message: what settles its recipients (their
    /// reports, and what must be written with them).
    async fn by_way(
        &mut self,
        way: Way,
        part: &[(Claim, Decision)],
        content: &[u8],
        sealed: &BTreeMap<String, Vec<u8>>,
        passphrase: Option<&str>,
    ) -> Group {
        match way {
            Way::Verified(pins) => match self
                .send_tls(Method::TlsVerified, &pins, part, content)
                .await
            {
                Ok(reports) => reports.into(),
                Err(f) => {
                    self.failed_to_portal(Method::TlsVerified, part, &f, content, passphrase)
                        .await
                }
            },
            Way::Authenticated => match self
                .send_tls(Method::TlsAuthenticated, &[], part, content)
                .await
            {
                Ok(reports) => reports.into(),
                Err(f) => {
                    self.failed_to_portal(Method::TlsAuthenticated, part, &f, content, passphrase)
                        .await
                }
            },
            Way::Opportunistic => self.send_opportunistic(part, content).await.into(),
            Way::Encrypted { rcpt, verified } => {
                let Some(copy) = sealed.get(&rcpt) else {
                    // Every encrypted way has its copy (made with it in `realise`).
                    let f = Failure::temporary("local error: the encrypted copy is missing", None);
                    return failure_reports(&claims_of(part), &f).into();
                };
                match verified {
                    Some(pins) => match self.send_tls(Method::TlsVerified, &pins, part, copy).await
                    {
                        Ok(reports) => reports.into(),
                        Err(f) => self.transport_failed(Method::TlsVerified, part, &f),
                    },
                    None => self.send_opportunistic(part, copy).await.into(),
                }
            }
            Way::Portal => self.to_portal(part, content, passphrase).await,
            Way::Held(why) => held(part, why).into(),
        }
    }

    /// Recipients whose chosen method is the portal: sealed for it, the deposit written with
    /// their settlement.
    async fn to_portal(
        &self,
        part: &[(Claim, Decision)],
        content: &[u8],
        passphrase: Option<&str>,
    ) -> Group {
        let Some(settings) = &self.ctx.portal else {
            return held(part, HoldReason::PortalDisabled).into();
        };
        crate::portal::deposit_group(&self.ctx.queue, settings, part, content, passphrase).await
    }

    /// Sends over a session whose peer proved itself as `method` demands: verified TLS
    /// (DANE, MTA-STS or `pins`) or authenticated TLS (WebPKI); `Err` when no such session
    /// could be had (nothing was sent).
    async fn send_tls(
        &mut self,
        method: Method,
        pins: &[String],
        part: &[(Claim, Decision)],
        content: &[u8],
    ) -> Result<Vec<AttemptReport>, Failure> {
        let key = format!("{}\u{0}{method}\u{0}{}", self.domain, pins.join(","));
        if let Some(hop) = self.hop.clone() {
            // A routed domain: the route's requirement, whatever the decision's pins.
            let key = format!("{}\u{0}{}\u{0}verified", hop.next.cache_key(), self.domain);
            let open = match self.take_open(&key).await {
                Some(open) => Ok(open),
                None => connect::connect_hop(self.ctx, &hop, &self.targets, true).await,
            };
            let (c, target) = open?;
            return Ok(self.send(key, c, target, part, content).await);
        }
        let open = match self.take_open(&key).await {
            Some(open) => Ok(open),
            None if method == Method::TlsAuthenticated => {
                connect::connect_authenticated(self.ctx, &self.probe, &self.targets).await
            }
            None => connect::connect_verified(self.ctx, &self.probe, &self.targets, pins).await,
        };
        let (c, target) = open?;
        Ok(self.send(key, c, target, part, content).await)
    }

    /// Verified or authenticated TLS (`failed`) could not be had at connect time for a
    /// message's own recipients: those whose chain goes on to the portal are sealed there
    /// now — the alert, the failed try, the deposit and their settlement one transaction; the
    /// others wait, as [`DomainRun::transport_failed`] says.
    async fn failed_to_portal(
        &self,
        failed: Method,
        part: &[(Claim, Decision)],
        f: &Failure,
        content: &[u8],
        passphrase: Option<&str>,
    ) -> Group {
        let (portal, rest): (Vec<_>, Vec<_>) = part.iter().cloned().partition(|(c, d)| {
            self.ctx.portal.is_some()
                && !c.phi_free
                && next_after(d, failed, f) == Some(Method::Portal)
        });
        if portal.is_empty() {
            return self.transport_failed(failed, part, f);
        }
        let mut group = self.to_portal(&portal, content, passphrase).await;
        group.before = portal
            .iter()
            .flat_map(|(c, _)| {
                let reason = format!("{}; nothing was sent; falls to the portal", f.reason);
                let mut ev = evidence(f.target.as_ref(), None, None, &reason, f.outcome);
                ev.method = Some(failed.as_str().to_owned());
                ev.verification = Some("failed".to_owned());
                let attempt = AuditEvent::Attempt {
                    message_id: c.recipient.message_id.clone(),
                    recipient: c.recipient.rcpt.clone(),
                    evidence: ev,
                };
                self.alert(c, f).into_iter().chain([attempt])
            })
            .collect();
        if !rest.is_empty() {
            let waiting = self.transport_failed(failed, &rest, f);
            group.before.extend(waiting.before);
            group.reports.extend(waiting.reports);
        }
        group
    }

    /// The connect-time failure's alert (a policy demanded verification) for `c`, if any.
    fn alert(&self, c: &Claim, f: &Failure) -> Option<AuditEvent> {
        let alert = f.alert.as_ref()?;
        warn!(domain = %self.domain, rcpt = %c.recipient.rcpt, alert = %alert, "security alert");
        Some(AuditEvent::Alert {
            message_id: Some(c.recipient.message_id.clone()),
            recipient: Some(c.recipient.rcpt.clone()),
            domain: self.domain.to_owned(),
            alert: alert.clone(),
        })
    }

    /// Verified or authenticated TLS (`failed`) could not be had at connect time: nothing was
    /// sent; each recipient falls to the next method of its chain (opportunistic TLS never);
    /// when that cannot be taken now it waits and is tried again.
    fn transport_failed(&self, failed: Method, part: &[(Claim, Decision)], f: &Failure) -> Group {
        let reports = part
            .iter()
            .map(|(c, d)| {
                let next = next_after(d, failed, f).map_or("none".to_owned(), |m| m.to_string());
                let reason = format!(
                    "{}; nothing was sent; next method {next} cannot be taken now, the message waits",
                    f.reason
                );
                // It waits whatever the connection's failure was: the recipient is not done.
                let mut ev =
                    evidence(f.target.as_ref(), None, None, &reason, Outcome::Temporary);
                ev.method = Some(failed.as_str().to_owned());
                ev.verification = Some("failed".to_owned());
                report(c, ev)
            })
            .collect();
        let before = part.iter().filter_map(|(c, _)| self.alert(c, f)).collect();
        Group {
            reports,
            before,
            deposit: None,
        }
    }

    async fn send_opportunistic(
        &mut self,
        part: &[(Claim, Decision)],
        content: &[u8],
    ) -> Vec<AttemptReport> {
        let (key, open) = match self.hop.clone() {
            // A routed domain: the route's own requirement is the floor of every session.
            Some(hop) => {
                let key = format!("{}\u{0}{}\u{0}any", hop.next.cache_key(), self.domain);
                let open = match self.take_open(&key).await {
                    Some(open) => Ok(open),
                    None => connect::connect_hop(self.ctx, &hop, &self.targets, false).await,
                };
                (key, open)
            }
            None => {
                let key = format!("{}\u{0}opportunistic", self.domain);
                let open = match self.take_open_opportunistic(&key).await {
                    Some(open) => Ok(open),
                    None => {
                        connect::connect_opportunistic(self.ctx, &self.probe, &self.targets).await
                    }
                };
                (key, open)
            }
        };
        match open {
            Ok((c, target)) => self.send(key, c, target, part, content).await,
            Err(f) => failure_reports(&claims_of(part), &f),
        }
    }

    /// As [`DomainRun::take_open`], except that a plaintext session to a host that now
    /// requires TLS ([`plan::tls_mandatory`]) is closed rather than used.
    async fn take_open_opportunistic(&mut self, key: &str) -> Option<(SmtpConnection, Target)> {
        let (c, target) = self.take_open(key).await?;
        if c.tls().is_none() && plan::tls_mandatory(&self.probe, &target.host).is_some() {
            c.quit().await;
            return None;
        }
        Some((c, target))
    }

    /// A session open in this run or idle in the cache under `key`.
    async fn take_open(&mut self, key: &str) -> Option<(SmtpConnection, Target)> {
        match self.open.remove(key) {
            Some(open) => Some(open),
            None => self.ctx.connections.take(key).await,
        }
    }

    /// One transaction on an established session, its reports; keeps the session for reuse
    /// when usable.
    async fn send(
        &mut self,
        key: String,
        mut c: SmtpConnection,
        target: Target,
        part: &[(Claim, Decision)],
        content: &[u8],
    ) -> Vec<AttemptReport> {
        let method = part[0].1.chosen();
        let mut reports = Vec::with_capacity(part.len());
        let mut keep = true;
        for (env, group) in self.envelopes(claims_of(part)) {
            if !keep {
                // The session ended with an earlier recipient's transaction: these wait.
                let reason = "the session closed before this recipient's transaction; retried";
                let ev = evidence(Some(&target), Some(&c), None, reason, Outcome::Temporary);
                reports.extend(group.iter().map(|cl| report(cl, ev.clone())));
                continue;
            }
            // The data goes out only once it is on record that this node is sending it.
            let ids = group.iter().map(|c| c.recipient.id).collect();
            let clearance = self.recorder.clear_to_send(ids);
            let (sent, usable) = match c.send_cleared(&env, content, clearance).await {
                Ok(result) => (
                    transaction_reports(&group, &result, &c, &target),
                    c.is_usable(),
                ),
                Err(e) => {
                    // These are found before MAIL: the session is still usable.
                    let usable = matches!(
                        e,
                        ClientError::NeedsSmtputf8
                            | ClientError::RequireTlsUnsupported
                            | ClientError::TooBig { .. }
                    );
                    let outcome = class(&e);
                    let reason = local_reason(&e, &env);
                    let ev = evidence(Some(&target), Some(&c), None, &reason, outcome);
                    (
                        group.iter().map(|cl| report(cl, ev.clone())).collect(),
                        usable,
                    )
                }
            };
            reports.extend(sent);
            keep = usable;
        }
        for r in &mut reports {
            r.evidence.method = Some(method.as_str().to_owned());
            r.evidence.verification = Some(
                target
                    .via
                    .map_or("none (opportunistic)", |v| v.as_str())
                    .to_owned(),
            );
        }
        if keep {
            self.open.insert(key, (c, target));
        } else {
            c.quit().await;
        }
        reports
    }
}

impl DomainRun<'_> {
    /// The transactions for `group` (one message's recipients on one session): one, from the
    /// message's envelope sender; or, with `[returns]` and a real sender, one per recipient
    /// from that recipient's return path (VERP), so a later bounce names its recipient.
    /// Sealgate's own notices carry their return path already; DSNs keep the null sender.
    fn envelopes(&self, group: Vec<Claim>) -> Vec<(Envelope, Vec<Claim>)> {
        let first = &group[0];
        let requiretls = first.requiretls;
        match self.ctx.queue.returns() {
            Some(paths) if !first.sender.is_empty() && !first.phi_free => group
                .into_iter()
                .map(|c| {
                    let env = Envelope {
                        sender: paths.address(c.recipient.id),
                        recipients: vec![c.recipient.rcpt.clone()],
                        requiretls,
                    };
                    (env, vec![c])
                })
                .collect(),
            _ => {
                let env = Envelope {
                    sender: first.sender.clone(),
                    recipients: group.iter().map(|c| c.recipient.rcpt.clone()).collect(),
                    requiretls,
                };
                vec![(env, group)]
            }
        }
    }
}

/// `content` with its DKIM signatures in front, and what the decision records about them
/// (nothing when no key is configured at all). A message that cannot be signed leaves
/// unsigned, and the decision says why.
fn sign(ctx: &DeliveryContext, from: Option<&str>, content: Vec<u8>) -> (Vec<u8>, Option<String>) {
    let keys = ctx.dkim.current();
    if keys.is_empty() {
        return (content, None);
    }
    match keys.sign(from, &content) {
        Ok((headers, how)) if !headers.is_empty() => {
            let mut out = Vec::with_capacity(headers.len() + content.len());
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(&content);
            (out, Some(how.to_string()))
        }
        Ok((_, how)) => (content, Some(how.to_string())),
        Err(e) => {
            warn!(error = %e, "DKIM signing failed; sent unsigned");
            (content, Some(format!("dkim: unsigned ({e})")))
        }
    }
}

/// `content` with an ARC set in front when it arrived signed and `[arc]` is on, and what the
/// decision records about it (nothing when sealing is off or there was nothing to attest).
/// A message that cannot be sealed leaves without a set, and the decision says why.
fn arc_seal(ctx: &DeliveryContext, content: Vec<u8>) -> (Vec<u8>, Option<String>) {
    use sealgate_crypto::arc::Sealed;
    let Some(sealer) = &ctx.arc else {
        return (content, None);
    };
    match sealer.seal(&content) {
        Ok((set, how @ Sealed::Added { .. })) => {
            let mut out = Vec::with_capacity(set.len() + content.len());
            out.extend_from_slice(set.as_bytes());
            out.extend_from_slice(&content);
            (out, Some(how.to_string()))
        }
        Ok((_, Sealed::NotNeeded(_))) => (content, None),
        Ok((_, how)) => (content, Some(how.to_string())),
        Err(e) => {
            warn!(error = %e, "ARC sealing failed; sent without a set");
            (content, Some(format!("arc: not sealed ({e})")))
        }
    }
}

/// The claims of a part.
fn claims_of(part: &[(Claim, Decision)]) -> Vec<Claim> {
    part.iter().map(|(c, _)| c.clone()).collect()
}

/// Recipients held by policy (their chosen method cannot be carried out here now):
/// deferred with the hold on record (and bounced once too old), never sent by a weaker
/// method.
fn held(part: &[(Claim, Decision)], why: HoldReason) -> Vec<AttemptReport> {
    part.iter()
        .map(|(c, d)| {
            let m = d.chosen();
            let reason = format!(
                "4.7.0 delivery method {m} chosen by policy is not available yet ({}); \
                 the message waits (protection level {})",
                why.describe(),
                d.level
            );
            let mut ev = evidence(None, None, None, &reason, Outcome::Held(why));
            ev.method = Some(m.as_str().to_owned());
            report(c, ev)
        })
        .collect()
}

/// The `decision` events (and `alert` events for its alerts) of one message's recipients.
fn decision_events(domain: &str, group: &[Claim], decisions: &[Decision]) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    for (c, d) in group.iter().zip(decisions) {
        events.push(AuditEvent::Decision {
            message_id: c.recipient.message_id.clone(),
            recipient: c.recipient.rcpt.clone(),
            level: d.level.as_str().to_owned(),
            level_source: d.level_source.as_str().to_owned(),
            method: d.chosen().as_str().to_owned(),
            chain: d.chain.iter().map(|m| m.as_str().to_owned()).collect(),
            evidence: d.evidence.clone(),
            alerts: d.alerts.clone(),
        });
        for alert in &d.alerts {
            events.push(AuditEvent::Alert {
                message_id: Some(c.recipient.message_id.clone()),
                recipient: Some(c.recipient.rcpt.clone()),
                domain: domain.to_owned(),
                alert: alert.clone(),
            });
        }
    }
    events
}

/// Hands `group` back to the queue when its lease no longer covers a transaction (another
/// node may take it over soon: sending now could deliver twice); true when it may be sent.
async fn hand_back_if_late(ctx: &DeliveryContext, message_id: &str, group: &[Claim]) -> bool {
    if lease_left(ctx, group) {
        return true;
    }
    info!(msg_id = %message_id, "lease nearly expired before sending; handing the recipients back");
    if let Err(e) = ctx.queue.unclaim(&ctx.owner, group).await {
        warn!(error = %e, "could not hand recipients back; their leases expire on their own");
    }
    false
}

/// True when every claim's lease leaves time for a transaction's data phase (half the data
/// timeout; the configuration guarantees leases of at least the whole data timeout).
fn lease_left(ctx: &DeliveryContext, group: &[Claim]) -> bool {
    let margin = i64::try_from(ctx.client.data_timeout.as_micros() / 2).unwrap_or(i64::MAX);
    let now = sealgate_types::time::now_micros();
    group.iter().all(|c| {
        c.recipient
            .lease_until
            .is_some_and(|until| until - now >= margin)
    })
}

/// Where `d` goes after verified or authenticated TLS (`failed`) could not be had, with `f`
/// (the policy's walk, [`Decision::after`]): never to opportunistic TLS; `None` when nothing
/// is left to try now.
fn next_after(d: &Decision, failed: Method, f: &Failure) -> Option<Method> {
    let why = f.reason.clone();
    let failed = match failed {
        Method::TlsAuthenticated => Failed::AuthenticatedTls { why },
        _ => Failed::VerifiedTls { why },
    };
    d.after(&failed).map(|next| next.chosen())
}
