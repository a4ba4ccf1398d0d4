//! The delivery side of the queue: claiming due recipients and settling each attempt.

use std::time::Duration;

use sealgate_audit::{AttemptEvidence, AuditEvent};
use std::collections::BTreeMap;

use sealgate_store::{NewNotice, RecipientRow, SettleItem, Settlement};
use sealgate_types::{HoldReason, MessageId, Outcome, RecipientState, time};

use crate::{IncomingMessage, Queue, QueueError, RetryPolicy, data_digest};

/// A recipient claimed for delivery, with its message's envelope.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The recipient row (state `inflight`, leased to the claimer).
    pub recipient: RecipientRow,
    /// The envelope sender ("" for the null sender).
    pub sender: String,
    /// When the message was accepted (microseconds since the epoch).
    pub received_at: i64,
    /// The message was accepted with REQUIRETLS (RFC 8689): send it only over TLS to a peer
    /// that offers REQUIRETLS, and pass the option on.
    pub requiretls: bool,
    /// The message is one Sealgate wrote itself without protected content (origin
    /// [`crate::ORIGIN_NOTICE`]: a portal notice or one-time code), so the policy engine
    /// lets it travel without protection.
    pub phi_free: bool,
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
        /// The wait is the policy's: why.
        held: Option<HoldReason>,
    },
    /// Given up: the caller sends the DSN (unless the sender is null).
    Bounced {
        /// Why, for the DSN and the audit.
        reason: String,
    },
    /// Our lease had expired and another worker owns the recipient: nothing was written.
    LeaseLost,
}

/// The kind of notice a settlement calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Recipients bounced: a failure DSN.
    Failure,
    /// Recipients still waiting past `delay_warning`: a delay DSN.
    Delay,
}

/// One attempt's result for one claimed recipient.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    /// The claim.
    pub claim: Claim,
    /// What the attempt saw and how it ended (becomes the `attempt` audit event).
    pub evidence: AttemptEvidence,
}

impl AttemptReport {
    /// How the attempt ended.
    pub fn outcome(&self) -> Outcome {
        self.evidence.outcome
    }
}

/// What one settle transaction writes: the reports, and before them the events that led to
/// them (a refused verification's alert and failed try) and the portal deposit they went to.
#[derive(Debug, Default)]
pub struct Group {
    /// One report per recipient.
    pub reports: Vec<AttemptReport>,
    /// Written first, in order.
    pub before: Vec<AuditEvent>,
    /// Written after `before`, before the reports' records.
    pub deposit: Option<sealgate_store::PortalDeposit>,
}

impl From<Vec<AttemptReport>> for Group {
    fn from(reports: Vec<AttemptReport>) -> Self {
        Self {
            reports,
            ..Self::default()
        }
    }
}

/// One recipient listed in a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecipient {
    /// The recipient address.
    pub recipient: String,
    /// Why (the reply or the local reason).
    pub reason: String,
    /// The host that answered, if any.
    pub remote_mta: Option<String>,
}

/// What a notice builder is given.
#[derive(Debug)]
pub struct NoticeRequest<'a> {
    /// Failure or delay.
    pub kind: NoticeKind,
    /// The notice's own queue id.
    pub id: MessageId,
    /// The original message's queue id.
    pub original_id: &'a str,
    /// The original sender, who receives the notice.
    pub to: &'a str,
    /// When the original was accepted.
    pub received_at: i64,
    /// The original message (for its header section).
    pub original: &'a [u8],
    /// The recipients the notice is about.
    pub recipients: &'a [NoticeRecipient],
}

/// A built notice: its content and Message-ID.
#[derive(Debug)]
pub struct NoticeContent {
    /// The complete message.
    pub content: Vec<u8>,
    /// Its Message-ID header value.
    pub header_message_id: Option<String>,
    /// Our host name (recorded as the notice's origin).
    pub hostname: String,
}

/// Builds notice messages: [`crate::dsn_builder`] renders them as DSNs.
pub type NoticeBuilder<'a> = &'a (dyn Fn(&NoticeRequest<'_>) -> NoticeContent + Sync);

/// The decision for one report, before anything is written.
struct Decision {
    settled: Settled,
    item: SettleItem,
}

fn decide(report: AttemptReport, policy: &RetryPolicy, unit: f64, now: i64) -> Decision {
    let AttemptReport { claim, evidence } = report;
    let outcome = evidence.outcome;
    let r = &claim.recipient;
    let reason = evidence
        .reply
        .clone()
        .unwrap_or_else(|| "no reply".to_owned());
    let attempts = u32::try_from(r.attempts + 1).unwrap_or(u32::MAX);
    let (msg, rcpt) = (r.message_id.clone(), r.rcpt.clone());
    let (settled, event) = match outcome {
        Outcome::Delivered => {
            let mx = evidence.mx.clone().unwrap_or_default();
            (
                Settled::Delivered,
                AuditEvent::Delivered {
                    message_id: msg.clone(),
                    recipient: rcpt.clone(),
                    mx,
                    reply: reason.clone(),
                },
            )
        }
        Outcome::Temporary | Outcome::Held(_) if !policy.expired(claim.received_at, now) => {
            let held = outcome.hold();
            let delay = policy.delay_after(attempts, unit);
            let next_attempt_at =
                now.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
            let warn_sender = r.warned_at.is_none()
                && !claim.sender.is_empty()
                && policy.warning_due(claim.received_at, now);
            let ev = AuditEvent::Deferred {
                message_id: msg.clone(),
                recipient: rcpt.clone(),
                reason: reason.clone(),
                next_attempt_at,
                held: held.map(|h| h.as_str().to_owned()),
            };
            (
                Settled::Deferred {
                    next_attempt_at,
                    warn_sender,
                    held,
                },
                ev,
            )
        }
        Outcome::Temporary | Outcome::Held(_) => {
            let why =
                format!("{reason} (gave up after {attempts} attempts over the queue lifetime)");
            (
                Settled::Bounced {
                    reason: why.clone(),
                },
                AuditEvent::Bounced {
                    message_id: msg.clone(),
                    recipient: rcpt.clone(),
                    reason: why,
                },
            )
        }
        Outcome::Permanent => (
            Settled::Bounced {
                reason: reason.clone(),
            },
            AuditEvent::Bounced {
                message_id: msg.clone(),
                recipient: rcpt.clone(),
                reason: reason.clone(),
            },
        ),
    };
    let (state, next_attempt_at, warned_at, held) = match &settled {
        Settled::Delivered => (RecipientState::Delivered, now, None, None),
        Settled::Deferred {
            next_attempt_at,
            warn_sender,
            held,
        } => (
            RecipientState::Deferred,
            *next_attempt_at,
            warn_sender.then_some(now),
            held.map(|h| h.as_str().to_owned()),
        ),
        Settled::Bounced { .. } | Settled::LeaseLost => (RecipientState::Bounced, now, None, None),
    };
    let settlement = Settlement {
        state,
        next_attempt_at,
        last_reply: Some(reason),
        counts_as_attempt: true,
        warned_at,
        held,
    };
    let attempt = AuditEvent::Attempt {
        message_id: msg,
        recipient: rcpt,
        evidence,
    };
    let audit = vec![attempt.into_record(), event.into_record()];
    Decision {
        settled,
        item: SettleItem {
            recipient_id: r.id,
            settlement,
            audit,
        },
    }
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
        let mut rows = self.store.claim_due(owner, now, until, limit).await?;
        self.note_possible_duplicates(owner, &mut rows).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.message_id.clone()).collect();
        let envelopes = self.store.envelopes(&ids).await?;
        let mut claims = Vec::with_capacity(rows.len());
        for recipient in rows {
            let env = envelopes
                .get(&recipient.message_id)
                .cloned()
                .ok_or_else(|| QueueError::NotFound(recipient.message_id.clone()))?;
            claims.push(Claim {
                recipient,
                sender: env.sender,
                received_at: env.received_at,
                requiretls: env.requiretls,
                phi_free: env.origin.as_deref() == Some(crate::ORIGIN_NOTICE),
            });
        }
        Ok(claims)
    }

    /// Freshly claimed `rows` that carry a sending mark (a node, maybe this one, was cleared
    /// to send them and stopped before it settled: the remote server may hold the message):
    /// one `possible_duplicate` event each, and the marks cleared, in one transaction. Fails
    /// when that cannot be written; the rows then stay claimed with their marks, which keep
    /// them from being sent (see [`Queue::commit_batch`]) until a later claim records them.
    async fn note_possible_duplicates(
        &self,
        owner: &str,
        rows: &mut [RecipientRow],
    ) -> Result<(), QueueError> {
        let items: Vec<(i64, String, sealgate_types::AuditRecord)> = rows
            .iter()
            .filter_map(|r| {
                let previous = r.sending_owner.clone()?;
                let event = AuditEvent::PossibleDuplicate {
                    message_id: r.message_id.clone(),
                    recipient: r.rcpt.clone(),
                    previous_owner: previous.clone(),
                    sending_since: r.sending_since.unwrap_or_default(),
                };
                Some((r.id, previous, event.into_record()))
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        if !self.store.note_possible_duplicates(owner, &items).await? {
            return Err(QueueError::Conflict(
                "a claimed recipient's sending mark changed before it was recorded".to_owned(),
            ));
        }
        for r in rows.iter_mut() {
            r.sending_owner = None;
            r.sending_since = None;
        }
        tracing::warn!(
            count = items.len(),
            "took over recipients another node was sending: recorded as possible duplicates"
        );
        Ok(())
    }

    /// Commits `events` and marks that `owner` is about to send the message data of each set
    /// of recipient ids in `sends`, in one transaction (the audit first). Per set, whether it
    /// was marked: false when a lease was lost or has run out, and then the set must not be
    /// sent. The mark is what lets a node that takes over a recipient tell whether the data
    /// may have reached the remote server (`possible_duplicate`).
    pub async fn commit_batch(
        &self,
        owner: &str,
        events: Vec<AuditEvent>,
        sends: &[Vec<i64>],
    ) -> Result<Vec<bool>, QueueError> {
        let records: Vec<_> = events.into_iter().map(AuditEvent::into_record).collect();
        Ok(self
            .store
            .commit_batch(owner, &records, sends, time::now_micros())
            .await?)
    }

    /// Records the attempts of a group of claims and their consequences — `attempt`, then
    /// `delivered`, `deferred` (backoff from `policy`, jitter from `unit`) or `bounced` — and
    /// queues the DSNs they call for (one per message and kind, rendered by `build`; none for a
    /// null sender), all in one transaction: a bounce is never recorded without its DSN. The
    /// group's own events and its portal deposit, if any, are written first in that
    /// transaction. Returns one [`Settled`] per report, in order; all `LeaseLost` (nothing
    /// written) when any lease in the group was lost.
    pub async fn settle_group(
        &self,
        owner: &str,
        group: Group,
        policy: &RetryPolicy,
        unit: &(dyn Fn() -> f64 + Sync),
        build: NoticeBuilder<'_>,
    ) -> Result<Vec<Settled>, QueueError> {
        let Group {
            reports,
            before,
            deposit,
        } = group;
        let before: Vec<_> = before.into_iter().map(AuditEvent::into_record).collect();
        let now = time::now_micros();
        let mut wanted: BTreeMap<(String, bool), (Claim, Vec<NoticeRecipient>)> = BTreeMap::new();
        let mut decisions = Vec::with_capacity(reports.len());
        for report in reports {
            let (claim, mx) = (report.claim.clone(), report.evidence.mx.clone());
            let d = decide(report, policy, unit(), now);
            let kind = match &d.settled {
                Settled::Bounced { reason } if !claim.sender.is_empty() => {
                    Some((true, reason.clone()))
                }
                Settled::Deferred {
                    warn_sender: true, ..
                } => Some((
                    false,
                    d.item.settlement.last_reply.clone().unwrap_or_default(),
                )),
                _ => None,
            };
            if let Some((failure, reason)) = kind {
                let entry = wanted
                    .entry((claim.recipient.message_id.clone(), failure))
                    .or_insert_with(|| (claim.clone(), Vec::new()));
                entry.1.push(NoticeRecipient {
                    recipient: claim.recipient.rcpt.clone(),
                    reason,
                    remote_mta: mx,
                });
            }
            decisions.push(d);
        }
        let mut notices = Vec::with_capacity(wanted.len());
        let mut local_returns = Vec::new();
        for ((message_id, failure), (claim, recipients)) in wanted {
            // A notice from a return path of ours (a portal notice about a recipient): its
            // failure returns that recipient instead of a DSN to ourselves; a delay is no news.
            if let Some(paths) = self.returns().filter(|p| p.is_ours(&claim.sender)) {
                if let (true, Ok(rid)) = (failure, paths.recipient_of(&claim.sender)) {
                    local_returns.push((claim.sender.clone(), rid, recipients));
                }
                continue;
            }
            let kind = if failure {
                NoticeKind::Failure
            } else {
                NoticeKind::Delay
            };
            notices.push(
                self.notice(
                    kind,
                    &message_id,
                    &claim.sender,
                    claim.received_at,
                    &recipients,
                    build,
                )
                .await?,
            );
        }
        let items: Vec<SettleItem> = decisions.iter().map(|d| d.item.clone()).collect();
        if !self
            .store
            .settle_group_with(owner, &before, deposit.as_ref(), &items, &notices)
            .await?
        {
            return Ok(decisions.iter().map(|_| Settled::LeaseLost).collect());
        }
        for (address, rid, recipients) in local_returns {
            self.return_locally(&address, rid, &recipients, build).await;
        }
        Ok(decisions.into_iter().map(|d| d.settled).collect())
    }

    /// A notice sent from the return path of recipient row `rid` failed permanently here (the
    /// notice's MX refused it): that recipient is returned as if the MX had sent a bounce.
    /// Runs after the notice's own settlement committed; a failure is logged (the notice stays
    /// bounced on record, and its recipient delivered).
    async fn return_locally(
        &self,
        address: &str,
        rid: i64,
        recipients: &[NoticeRecipient],
        build: NoticeBuilder<'_>,
    ) {
        let Some(first) = recipients.first() else {
            return;
        };
        let bounce = crate::returns::Bounce::Failed {
            status: crate::dsn::status_of(&first.reason, crate::dsn::DsnKind::Failure),
            diagnostic: first.reason.chars().take(500).collect(),
            reported_by: first.remote_mta.clone(),
        };
        let outcome = self
            .return_with(address, rid, "local", build, |_| bounce)
            .await;
        match outcome {
            Ok(o) => tracing::info!(rid, outcome = ?o, "notice refused: its recipient returned"),
            Err(e) => {
                tracing::warn!(rid, error = %e, "returning the recipient of a refused notice failed")
            }
        }
    }

    /// Queues a notice about `message_id` on its own (an operator's bounce). Returns its queue
    /// id, or `None` for the null sender (RFC 5321 §4.5.5: no bounce of a bounce).
    pub async fn queue_notice(
        &self,
        kind: NoticeKind,
        message_id: &str,
        sender: &str,
        received_at: i64,
        recipients: &[NoticeRecipient],
        build: NoticeBuilder<'_>,
    ) -> Result<Option<MessageId>, QueueError> {
        if sender.is_empty() {
            return Ok(None);
        }
        let n = self
            .notice(kind, message_id, sender, received_at, recipients, build)
            .await?;
        self.store
            .enqueue(&n.message, &n.recipients, &n.audit)
            .await?;
        Ok(n.message.id.parse().ok())
    }

    /// Renders and seals one notice to the original sender, from the null sender.
    pub(crate) async fn notice(
        &self,
        kind: NoticeKind,
        message_id: &str,
        to: &str,
        received_at: i64,
        recipients: &[NoticeRecipient],
        build: NoticeBuilder<'_>,
    ) -> Result<NewNotice, QueueError> {
        let original = self.open_stored(message_id).await?;
        let id = MessageId::new();
        let request = NoticeRequest {
            kind,
            id,
            original_id: message_id,
            to,
            received_at,
            original: &original,
            recipients,
        };
        let built = build(&request);
        self.prepare(IncomingMessage {
            id,
            // RFC 5321 §4.5.5: notices go from the null sender, so they can never loop.
            sender: String::new(),
            recipients: vec![to.to_owned()],
            client_data_sha256: data_digest(&built.content),
            client_data_size: built.content.len() as u64,
            header_message_id: built.header_message_id,
            content: built.content,
            client_ip: "127.0.0.1".to_owned(),
            helo: built.hostname,
            auth_user: None,
            tls: None,
            // Notices are not (yet) sent with REQUIRETLS, even about a REQUIRETLS original.
            requiretls: false,
            // A DSN quotes the original's header: it is not phi-free.
            origin: None,
            tenant: None,
            api_key: None,
        })
    }

    /// Records one attempt for one claim, with no notices (see [`Queue::settle_group`]).
    pub async fn settle(
        &self,
        claim: &Claim,
        owner: &str,
        evidence: AttemptEvidence,
        policy: &RetryPolicy,
        unit: f64,
    ) -> Result<Settled, QueueError> {
        let d = decide(
            AttemptReport {
                claim: claim.clone(),
                evidence,
            },
            policy,
            unit,
            time::now_micros(),
        );
        if !self
            .store
            .settle(
                d.item.recipient_id,
                owner,
                &d.item.settlement,
                &d.item.audit,
            )
            .await?
        {
            return Ok(Settled::LeaseLost);
        }
        Ok(d.settled)
    }

    /// Hands `claims` back to the queue untried (due now, no attempt counted), e.g. when their
    /// lease is too close to expiry to start a transaction safely.
    pub async fn unclaim(&self, owner: &str, claims: &[Claim]) -> Result<(), QueueError> {
        let now = time::now_micros();
        let items: Vec<SettleItem> = claims
            .iter()
            .map(|c| SettleItem {
                recipient_id: c.recipient.id,
                settlement: Settlement {
                    state: RecipientState::Queued,
                    next_attempt_at: now,
                    last_reply: c.recipient.last_reply.clone(),
                    counts_as_attempt: false,
                    warned_at: None,
                    held: c.recipient.held.clone(),
                },
                audit: Vec::new(),
            })
            .collect();
        self.store.settle_group(owner, &items, &[]).await?;
        Ok(())
    }

    /// Gives back everything `owner` holds, untried (graceful shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, QueueError> {
        Ok(self.store.release_leases(owner, time::now_micros()).await?)
    }
}
