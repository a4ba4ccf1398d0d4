//! The delivery side of the queue: claiming due recipients and settling each attempt.

use std::time::Duration;

use sealgate_audit::{AttemptEvidence, AuditEvent};
use sealgate_store::{MessageRow, RecipientRow, Settlement};
use sealgate_types::{RecipientState, time};

use crate::{Queue, QueueError, RetryPolicy};

/// A recipient claimed for delivery, with its message's envelope.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The recipient row (state `inflight`, leased to the claimer).
    pub recipient: RecipientRow,
    /// The envelope sender ("" for the null sender).
    pub sender: String,
    /// When the message was accepted (microseconds since the epoch).
    pub received_at: i64,
}

/// How one attempt for one recipient ended. Unknown failures are temporary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The next hop took responsibility (2xx after DATA).
    Delivered,
    /// Try again later (4xx, connection trouble, timeouts).
    Temporary,
    /// Never going to work (5xx, null MX, no such domain).
    Permanent,
}

/// What settling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Done: delivered.
    Delivered,
    /// To be retried at this time (microseconds).
    Deferred {
        /// When.
        next_attempt_at: i64,
        /// The message has waited past `delay_warning` and this recipient's sender was not yet
        /// warned: the caller sends a "delayed" DSN (recorded as sent with this settlement).
        warn_sender: bool,
    },
    /// Given up: the caller sends the DSN (unless the sender is null).
    Bounced {
        /// Why, for the DSN and the audit.
        reason: String,
    },
    /// Our lease had expired and another worker owns the recipient: nothing was written.
    LeaseLost,
}

impl Queue {
    /// Claims up to `limit` due recipients for `owner` for `lease`.
    pub async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Claim>, QueueError> {
        let now = time::now_micros();
        let until = now.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let rows = self.store.claim_due(owner, now, until, limit).await?;
        let mut claims = Vec::with_capacity(rows.len());
        for recipient in rows {
            let message: Option<MessageRow> = self.store.message(&recipient.message_id).await?;
            let message =
                message.ok_or_else(|| QueueError::NotFound(recipient.message_id.clone()))?;
            claims.push(Claim {
                recipient,
                sender: message.sender,
                received_at: message.received_at,
            });
        }
        Ok(claims)
    }

    /// Records one attempt and its consequence in one transaction: the `attempt` audit event,
    /// then `delivered`, `deferred` (with the backoff of `policy`, spread by `unit` in [0, 1))
    /// or `bounced` (permanent failure, or a temporary one past `policy.max_age`).
    pub async fn settle(
        &self,
        claim: &Claim,
        owner: &str,
        outcome: AttemptOutcome,
        evidence: AttemptEvidence,
        policy: &RetryPolicy,
        unit: f64,
    ) -> Result<Settled, QueueError> {
        let now = time::now_micros();
        let r = &claim.recipient;
        let reason = evidence
            .reply
            .clone()
            .unwrap_or_else(|| "no reply".to_owned());
        let attempts = u32::try_from(r.attempts + 1).unwrap_or(u32::MAX);
        let (settled, event) = match outcome {
            AttemptOutcome::Delivered => {
                let mx = evidence.mx.clone().unwrap_or_default();
                let ev = AuditEvent::Delivered {
                    message_id: r.message_id.clone(),
                    recipient: r.rcpt.clone(),
                    mx,
                    reply: reason.clone(),
                };
                (Settled::Delivered, ev)
            }
            AttemptOutcome::Temporary if !policy.expired(claim.received_at, now) => {
                let delay = policy.delay_after(attempts, unit);
                let next_attempt_at =
                    now.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
                let ev = AuditEvent::Deferred {
                    message_id: r.message_id.clone(),
                    recipient: r.rcpt.clone(),
                    reason: reason.clone(),
                    next_attempt_at,
                };
                let warn_sender = r.warned_at.is_none()
                    && !claim.sender.is_empty()
                    && policy.warning_due(claim.received_at, now);
                (
                    Settled::Deferred {
                        next_attempt_at,
                        warn_sender,
                    },
                    ev,
                )
            }
            AttemptOutcome::Temporary => {
                let why = format!(
                    "gave up after {attempts} attempts over the queue lifetime; last: {reason}"
                );
                let ev = AuditEvent::Bounced {
                    message_id: r.message_id.clone(),
                    recipient: r.rcpt.clone(),
                    reason: why.clone(),
                };
                (Settled::Bounced { reason: why }, ev)
            }
            AttemptOutcome::Permanent => {
                let ev = AuditEvent::Bounced {
                    message_id: r.message_id.clone(),
                    recipient: r.rcpt.clone(),
                    reason: reason.clone(),
                };
                (
                    Settled::Bounced {
                        reason: reason.clone(),
                    },
                    ev,
                )
            }
        };
        let state = match &settled {
            Settled::Delivered => RecipientState::Delivered,
            Settled::Deferred { .. } => RecipientState::Deferred,
            _ => RecipientState::Bounced,
        };
        let (next_attempt_at, warned_at) = match &settled {
            Settled::Deferred {
                next_attempt_at,
                warn_sender,
            } => (*next_attempt_at, warn_sender.then_some(now)),
            _ => (now, None),
        };
        let settlement = Settlement {
            state,
            next_attempt_at,
            last_reply: Some(reason),
            counts_as_attempt: true,
            warned_at,
        };
        let attempt = AuditEvent::Attempt {
            message_id: r.message_id.clone(),
            recipient: r.rcpt.clone(),
            evidence,
        };
        let records = [attempt.into_record(), event.into_record()];
        if !self
            .store
            .settle(r.id, owner, &settlement, &records)
            .await?
        {
            return Ok(Settled::LeaseLost);
        }
        Ok(settled)
    }

    /// Gives back everything `owner` holds, untried (graceful shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, QueueError> {
        Ok(self.store.release_leases(owner, time::now_micros()).await?)
    }
}
