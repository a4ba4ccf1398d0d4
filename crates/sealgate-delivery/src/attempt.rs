//! Delivering the claimed recipients of one domain: route, connect (MX failover), send each
//! message over the shared connection, settle every recipient, bounce what failed for good.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use sealgate_audit::AttemptEvidence;
use sealgate_dns::{Routing, random_shuffle, route};
use sealgate_queue::{AttemptOutcome, AttemptReport, Claim, Settled};
use tracing::{debug, info, warn};

use crate::client::{ClientError, Envelope, Outcome, SmtpConnection, TransactionResult};
use crate::worker::DeliveryContext;

/// One candidate address to connect to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
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
    let mut conn: Option<(SmtpConnection, Target)> = ctx.connections.take(domain).await;
    for (message_id, group) in messages {
        if !lease_left(ctx, &group) {
            // Another node may take these over soon: sending now could deliver twice.
            info!(msg_id = %message_id, "lease nearly expired before sending; handing the recipients back");
            if let Err(e) = ctx.queue.unclaim(&ctx.owner, &group).await {
                warn!(error = %e, "could not hand recipients back; their leases expire on their own");
            }
            continue;
        }
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
    if let Some((c, target)) = conn {
        ctx.connections
            .put(domain, c, target, ctx.max_connections_per_domain)
            .await;
    }
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

/// Settles every claim with the same failure (and the DSNs it calls for).
async fn fail_all(ctx: &DeliveryContext, claims: &[Claim], f: &Failure) {
    let reports = claims
        .iter()
        .map(|c| {
            report(
                c,
                f.outcome.clone(),
                evidence(f.target.as_ref(), None, None, &f.reason, &f.outcome),
            )
        })
        .collect();
    settle(ctx, reports).await;
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
    let (reports, keep) = match c.send(&env, content).await {
        Ok(result) => (
            transaction_reports(group, &result, &c, &target),
            c.is_usable(),
        ),
        Err(e) => {
            // These two are found before MAIL: the session is still usable.
            let keep = matches!(e, ClientError::NeedsSmtputf8 | ClientError::TooBig { .. });
            let f = Failure {
                outcome: class(&e),
                reason: local_reason(&e, &env),
                target: Some(target.clone()),
            };
            let ev = evidence(f.target.as_ref(), None, None, &f.reason, &f.outcome);
            (
                group
                    .iter()
                    .map(|c| report(c, f.outcome.clone(), ev.clone()))
                    .collect(),
                keep,
            )
        }
    };
    settle(ctx, reports).await;
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

fn report(claim: &Claim, outcome: AttemptOutcome, evidence: AttemptEvidence) -> AttemptReport {
    AttemptReport {
        claim: claim.clone(),
        outcome,
        evidence,
    }
}

/// One report per recipient of a finished transaction, from its own reply.
fn transaction_reports(
    group: &[Claim],
    result: &TransactionResult,
    conn: &SmtpConnection,
    target: &Target,
) -> Vec<AttemptReport> {
    group
        .iter()
        .map(|claim| {
            let (outcome, reply) = match result.outcome_for(&claim.recipient.rcpt) {
                Outcome::Delivered(r) => (AttemptOutcome::Delivered, r),
                Outcome::Temporary(r) => (AttemptOutcome::Temporary, r),
                Outcome::Permanent(r) => (AttemptOutcome::Permanent, r),
            };
            let text = reply.to_string().trim_end().replace("\r\n", " ");
            report(
                claim,
                outcome.clone(),
                evidence(Some(target), Some(conn), Some(reply.code), &text, &outcome),
            )
        })
        .collect()
}

/// A random number in [0, 1) for retry jitter (falls back to the middle if the OS fails us).
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Settles the reports and queues their DSNs in one transaction.
async fn settle(ctx: &DeliveryContext, reports: Vec<AttemptReport>) {
    let ids: Vec<(String, String)> = reports
        .iter()
        .map(|r| {
            (
                r.claim.recipient.message_id.clone(),
                r.claim.recipient.rcpt.clone(),
            )
        })
        .collect();
    let build = crate::bounce::dsn_builder(&ctx.hostname);
    match ctx
        .queue
        .settle_group(&ctx.owner, reports, &ctx.retry, &unit_random, &build)
        .await
    {
        Ok(settled) => {
            for ((msg, rcpt), s) in ids.iter().zip(settled) {
                match s {
                    Settled::LeaseLost => {
                        warn!(msg_id = %msg, rcpt = %rcpt, "lease lost before settling; another node owns this recipient now")
                    }
                    s => info!(msg_id = %msg, rcpt = %rcpt, settled = ?s, "attempt settled"),
                }
            }
        }
        // The leases will expire and the recipients will be tried again: at-least-once.
        Err(e) => warn!(error = %e, rcpts = ids.len(), "settling failed"),
    }
}
