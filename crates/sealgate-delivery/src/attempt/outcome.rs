//! Settling what an attempt found: one report per recipient (its `attempt` evidence and
//! outcome), client errors as reasons with their enhanced status codes, and the settlement of
//! a group of reports with the DSNs it calls for.

use sealgate_audit::AttemptEvidence;
use sealgate_queue::{AttemptReport, Claim, Group, Settled};
use sealgate_types::Outcome;
use tracing::{info, warn};

use crate::client::{ClientError, Envelope, SmtpConnection, TransactionResult};
use crate::context::DeliveryContext;
use crate::route::{Failure, Target};

/// One report per claim, all with the same failure.
pub(super) fn failure_reports(claims: &[Claim], f: &Failure) -> Vec<AttemptReport> {
    claims
        .iter()
        .map(|c| {
            report(
                c,
                evidence(f.target.as_ref(), None, None, &f.reason, f.outcome),
            )
        })
        .collect()
}

/// A client error as a reason with the enhanced status code it stands for, so DSNs and the
/// audit say more than "5.0.0".
pub(super) fn local_reason(e: &ClientError, env: &Envelope) -> String {
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
        // RFC 8689 §5: "REQUIRETLS support required".
        ClientError::RequireTlsUnsupported => "5.7.30",
        ClientError::Timeout { .. } => "4.4.2",
        ClientError::NotCleared(_) => "4.3.0",
        _ => return e.to_string(),
    };
    format!("{code} {e}")
}

pub(super) fn class(e: &ClientError) -> Outcome {
    if e.is_permanent() {
        Outcome::Permanent
    } else {
        Outcome::Temporary
    }
}

pub(super) fn evidence(
    target: Option<&Target>,
    conn: Option<&SmtpConnection>,
    code: Option<u16>,
    reply: &str,
    outcome: Outcome,
) -> AttemptEvidence {
    let tls = conn.and_then(SmtpConnection::tls);
    AttemptEvidence {
        mx: target.map(|t| t.host.clone()),
        ip: target.map(|t| t.addr.ip().to_string()),
        tls_version: tls.map(|t| t.version.clone()),
        cipher: tls.map(|t| t.cipher.clone()),
        peer_cert_sha256: tls.and_then(|t| t.peer_cert_sha256.clone()),
        method: None,
        verification: None,
        reply_code: code,
        reply: Some(reply.to_owned()),
        outcome,
    }
}

pub(super) fn report(claim: &Claim, evidence: AttemptEvidence) -> AttemptReport {
    AttemptReport {
        claim: claim.clone(),
        evidence,
    }
}

/// One report per recipient of a finished transaction, from its own reply.
pub(super) fn transaction_reports(
    group: &[Claim],
    result: &TransactionResult,
    conn: &SmtpConnection,
    target: &Target,
) -> Vec<AttemptReport> {
    group
        .iter()
        .map(|claim| {
            let (outcome, reply) = result.outcome_for(&claim.recipient.rcpt);
            let text = reply.to_string().trim_end().replace("\r\n", " ");
            report(
                claim,
                evidence(Some(target), Some(conn), Some(reply.code), &text, outcome),
            )
        })
        .collect()
}

/// A random number in [0, 1) for retry jitter (falls back to the middle if the OS fails us).
pub(super) fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Settles a group — the events before it, its portal deposit, its reports and the DSNs they
/// call for — in one transaction.
pub(super) async fn settle(ctx: &DeliveryContext, group: Group) {
    let ids: Vec<(String, String)> = group
        .reports
        .iter()
        .map(|r| {
            (
                r.claim.recipient.message_id.clone(),
                r.claim.recipient.rcpt.clone(),
            )
        })
        .collect();
    let build = sealgate_queue::dsn_builder(&ctx.hostname);
    match ctx
        .queue
        .settle_group(&ctx.owner, group, &ctx.retry, &unit_random, &build)
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
