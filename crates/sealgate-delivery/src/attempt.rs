//! Delivering the claimed recipients of one domain: route, connect (MX failover), send each
//! message over the shared connection, settle every recipient, bounce what failed for good.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use sealgate_audit::AttemptEvidence;
use sealgate_dns::{Routing, random_shuffle, route};
use sealgate_queue::{AttemptOutcome, Claim, Settled};
use tracing::{debug, info, warn};

use crate::client::{ClientError, Envelope, Outcome, SmtpConnection, TransactionResult};
use crate::dsn::DsnKind;
use crate::worker::DeliveryContext;

/// One candidate address to connect to.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    addr: SocketAddr,
}

/// Why no transaction could happen, as it will be reported.
#[derive(Debug, Clone)]
struct Failure {
    outcome: AttemptOutcome,
    reason: String,
    target: Option<Target>,
}

impl Failure {
    fn temporary(reason: impl Into<String>, target: Option<Target>) -> Self {
        Self {
            outcome: AttemptOutcome::Temporary,
            reason: reason.into(),
            target,
        }
    }
    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            outcome: AttemptOutcome::Permanent,
            reason: reason.into(),
            target: None,
        }
    }
}

/// DSNs owed after settling: failures (bounced) and delay warnings, with the reason each.
#[derive(Default)]
struct Notices {
    failed: Vec<(Claim, String)>,
    delayed: Vec<(Claim, String)>,
}

impl Notices {
    fn note(&mut self, claim: &Claim, settled: Option<Settled>, reason: &str) {
        match settled {
            Some(Settled::Bounced { reason }) => self.failed.push((claim.clone(), reason)),
            Some(Settled::Deferred {
                warn_sender: true, ..
            }) => {
                self.delayed.push((claim.clone(), reason.to_owned()));
            }
            _ => {}
        }
    }

    async fn send(self, ctx: &DeliveryContext, remote_mta: Option<&str>) {
        crate::bounce::send_dsns(ctx, DsnKind::Failure, self.failed, remote_mta).await;
        crate::bounce::send_dsns(ctx, DsnKind::Delay, self.delayed, remote_mta).await;
    }
}

/// Delivers every claim of `domain` (they all share the route and, when possible, one connection).
pub(crate) async fn deliver_domain(ctx: &DeliveryContext, domain: &str, claims: Vec<Claim>) {
    let targets = match resolve_targets(ctx, domain).await {
        Ok(t) => t,
        Err(f) => return fail_all(ctx, &claims, &f).await,
    };
    let mut messages: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
    for c in claims {
        messages
            .entry(c.recipient.message_id.clone())
            .or_default()
            .push(c);
    }
    let mut conn: Option<(SmtpConnection, Target)> = None;
    for (message_id, group) in messages {
        let content = match ctx
            .queue
            .open(&message_id.parse().unwrap_or_default())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(msg_id = %message_id, error = %e, "cannot open the queued message");
                let reason = format!("local error: cannot open the queued message: {e}");
                fail_all(ctx, &group, &Failure::temporary(reason, None)).await;
                continue;
            }
        };
        let (c, target) = match conn.take() {
            Some(open) => open,
            None => match connect_any(ctx, &targets).await {
                Ok(open) => open,
                Err(f) => {
                    fail_all(ctx, &group, &f).await;
                    continue;
                }
            },
        };
        conn = deliver_message(ctx, c, target, &group, &content).await;
    }
    if let Some((c, _)) = conn {
        c.quit().await;
    }
}

/// Settles every claim with the same failure, then sends the DSNs owed.
async fn fail_all(ctx: &DeliveryContext, claims: &[Claim], f: &Failure) {
    let mut notices = Notices::default();
    for c in claims {
        settle_failure(ctx, c, f, &mut notices).await;
    }
    notices
        .send(ctx, f.target.as_ref().map(|t| t.host.as_str()))
        .await;
}

/// One transaction for one message's recipients; returns the connection if still usable.
async fn deliver_message(
    ctx: &DeliveryContext,
    mut c: SmtpConnection,
    target: Target,
    group: &[Claim],
    content: &[u8],
) -> Option<(SmtpConnection, Target)> {
    let env = Envelope {
        sender: group[0].sender.clone(),
        recipients: group.iter().map(|c| c.recipient.rcpt.clone()).collect(),
    };
    let mut notices = Notices::default();
    let keep = match c.send(&env, content).await {
        Ok(result) => {
            settle_result(ctx, group, &result, &c, &target, &mut notices).await;
            c.is_usable()
        }
        Err(e) => {
            // These two are found before MAIL: the session is still usable.
            let keep = matches!(e, ClientError::NeedsSmtputf8 | ClientError::TooBig { .. });
            let f = Failure {
                outcome: class(&e),
                reason: local_reason(&e, &env),
                target: Some(target.clone()),
            };
            for claim in group {
                settle_failure(ctx, claim, &f, &mut notices).await;
            }
            keep
        }
    };
    notices.send(ctx, Some(&target.host)).await;
    if keep {
        Some((c, target))
    } else {
        c.quit().await;
        None
    }
}

/// A client error as a reason with the enhanced status code it stands for, so DSNs and the
/// audit say more than "5.0.0".
fn local_reason(e: &ClientError, env: &Envelope) -> String {
    let code = match e {
        // RFC 6531 §3.7.4.2: 5.6.7 for a non-ASCII address, 5.6.9 for non-ASCII headers.
        ClientError::NeedsSmtputf8
            if env
                .recipients
                .iter()
                .chain([&env.sender])
                .any(|a| !a.is_ascii()) =>
        {
            "5.6.7"
        }
        ClientError::NeedsSmtputf8 => "5.6.9",
        ClientError::TooBig { .. } => "5.3.4",
        ClientError::Timeout { .. } => "4.4.2",
        _ => return e.to_string(),
    };
    format!("{code} {e}")
}

fn class(e: &ClientError) -> AttemptOutcome {
    if e.is_permanent() {
        AttemptOutcome::Permanent
    } else {
        AttemptOutcome::Temporary
    }
}

/// MX routing (RFC 5321 §5.1) to an ordered list of addresses.
async fn resolve_targets(ctx: &DeliveryContext, domain: &str) -> Result<Vec<Target>, Failure> {
    let routing = route(ctx.resolver.as_ref(), domain, random_shuffle)
        .await
        .map_err(|e| {
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
        match ctx.resolver.ips(&r.host).await {
            Ok(ips) => targets.extend(ips.into_iter().map(|ip| Target {
                host: r.host.clone(),
                addr: SocketAddr::new(ip, ctx.smtp_port),
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

/// Tries each address in order until one session is established.
async fn connect_any(
    ctx: &DeliveryContext,
    targets: &[Target],
) -> Result<(SmtpConnection, Target), Failure> {
    let mut last = Failure::temporary("no mail host could be reached", None);
    for t in targets {
        match SmtpConnection::connect(t.addr, &t.host, &ctx.client, &ctx.tls).await {
            Ok(c) => {
                debug!(mx = %t.host, addr = %t.addr, tls = c.tls().is_some(), "connected");
                return Ok((c, t.clone()));
            }
            Err(e) => {
                info!(mx = %t.host, addr = %t.addr, error = %e, "mail host failed, trying the next");
                // A refusal by one host is no verdict on the domain: the next host may accept.
                last = Failure::temporary(format!("{}: {e}", t.host), Some(t.clone()));
            }
        }
    }
    Err(last)
}

fn evidence(
    target: Option<&Target>,
    conn: Option<&SmtpConnection>,
    code: Option<u16>,
    reply: &str,
    outcome: &AttemptOutcome,
) -> AttemptEvidence {
    let tls = conn.and_then(SmtpConnection::tls);
    AttemptEvidence {
        mx: target.map(|t| t.host.clone()),
        ip: target.map(|t| t.addr.ip().to_string()),
        tls_version: tls.map(|t| t.version.clone()),
        cipher: tls.map(|t| t.cipher.clone()),
        peer_cert_sha256: tls.and_then(|t| t.peer_cert_sha256.clone()),
        reply_code: code,
        reply: Some(reply.to_owned()),
        outcome: match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Temporary => "temporary",
            AttemptOutcome::Permanent => "permanent",
        }
        .to_owned(),
    }
}

/// Settles each recipient of one transaction.
async fn settle_result(
    ctx: &DeliveryContext,
    group: &[Claim],
    result: &TransactionResult,
    conn: &SmtpConnection,
    target: &Target,
    notices: &mut Notices,
) {
    for claim in group {
        let (outcome, reply) = match result.outcome_for(&claim.recipient.rcpt) {
            Outcome::Delivered(r) => (AttemptOutcome::Delivered, r),
            Outcome::Temporary(r) => (AttemptOutcome::Temporary, r),
            Outcome::Permanent(r) => (AttemptOutcome::Permanent, r),
        };
        let text = reply.to_string().trim_end().replace("\r\n", " ");
        let ev = evidence(Some(target), Some(conn), Some(reply.code), &text, &outcome);
        notices.note(claim, settle(ctx, claim, outcome, ev).await, &text);
    }
}

/// Settles a recipient no transaction was possible for.
async fn settle_failure(ctx: &DeliveryContext, claim: &Claim, f: &Failure, notices: &mut Notices) {
    let ev = evidence(f.target.as_ref(), None, None, &f.reason, &f.outcome);
    notices.note(
        claim,
        settle(ctx, claim, f.outcome.clone(), ev).await,
        &f.reason,
    );
}

async fn settle(
    ctx: &DeliveryContext,
    claim: &Claim,
    outcome: AttemptOutcome,
    ev: AttemptEvidence,
) -> Option<Settled> {
    let unit = crate::bounce::unit_random();
    match ctx
        .queue
        .settle(claim, &ctx.owner, outcome, ev, &ctx.retry, unit)
        .await
    {
        Ok(Settled::LeaseLost) => {
            warn!(
                rcpt_id = claim.recipient.id,
                "lease lost before settling; another node owns this recipient now"
            );
            None
        }
        Ok(s) => {
            info!(msg_id = %claim.recipient.message_id, rcpt = %claim.recipient.rcpt, settled = ?s, "attempt settled");
            Some(s)
        }
        Err(e) => {
            // The lease will expire and the recipient will be tried again: at-least-once.
            warn!(error = %e, rcpt_id = claim.recipient.id, "settling failed");
            None
        }
    }
}
