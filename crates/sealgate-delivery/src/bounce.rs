//! Turning bounced recipients into DSNs queued back to the sender.

use std::collections::BTreeMap;

use sealgate_queue::{Claim, IncomingMessage, Queue, QueueError, data_digest};
use sealgate_types::MessageId;
use tracing::{info, warn};

use crate::dsn::{DsnInput, DsnKind, DsnRecipient, build_dsn};
use crate::worker::DeliveryContext;

/// A random number in [0, 1) for retry jitter (falls back to the middle if the OS fails us).
pub(crate) fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// Queues one DSN of `kind` per message for the listed recipients, to the envelope sender.
pub(crate) async fn send_dsns(
    ctx: &DeliveryContext,
    kind: DsnKind,
    bounced: Vec<(Claim, String)>,
    remote_mta: Option<&str>,
) {
    let mut by_message: BTreeMap<String, Vec<(Claim, String)>> = BTreeMap::new();
    for (claim, reason) in bounced {
        by_message
            .entry(claim.recipient.message_id.clone())
            .or_default()
            .push((claim, reason));
    }
    for (message_id, list) in by_message {
        let failed: Vec<DsnRecipient> = list
            .iter()
            .map(|(c, reason)| DsnRecipient {
                recipient: c.recipient.rcpt.clone(),
                diagnostic: reason.clone(),
                remote_mta: remote_mta.map(str::to_owned),
            })
            .collect();
        let (sender, received_at) = (&list[0].0.sender, list[0].0.received_at);
        if let Err(e) = queue_dsn(
            &ctx.queue,
            kind,
            &ctx.hostname,
            &message_id,
            sender,
            received_at,
            &failed,
        )
        .await
        {
            warn!(msg_id = %message_id, error = %e, "could not queue the DSN");
        }
    }
}

/// Queues a DSN of `kind` (failure or delay) for `failed` recipients of `message_id` to
/// `sender`. Returns its queue id, or `None` for the null sender (RFC 5321 §4.5.5: no bounce of
/// a bounce); the DSN itself has a null sender, so it can never loop.
pub async fn queue_dsn(
    queue: &Queue,
    kind: DsnKind,
    hostname: &str,
    message_id: &str,
    sender: &str,
    received_at: i64,
    failed: &[DsnRecipient],
) -> Result<Option<MessageId>, QueueError> {
    if sender.is_empty() {
        info!(msg_id = %message_id, "bounced message had a null sender: no DSN");
        return Ok(None);
    }
    let original = queue.open(&message_id.parse().unwrap_or_default()).await?;
    let id = MessageId::new();
    let unique = id.to_string();
    let content = build_dsn(&DsnInput {
        kind,
        reporting_mta: hostname,
        queue_id: message_id,
        arrival: sealgate_types::time::from_micros(received_at),
        now: chrono::Utc::now(),
        to: sender,
        recipients: failed,
        original: &original,
        unique: &unique,
    });
    let dsn = IncomingMessage {
        id,
        sender: String::new(),
        recipients: vec![sender.to_owned()],
        client_data_sha256: data_digest(&content),
        client_data_size: content.len() as u64,
        header_message_id: Some(format!("<{unique}.dsn@{hostname}>")),
        content,
        client_ip: "127.0.0.1".to_owned(),
        helo: hostname.to_owned(),
        auth_user: None,
        tls: None,
    };
    let dsn_id = queue.accept(dsn).await?;
    info!(msg_id = %message_id, dsn_id = %dsn_id, rcpts = failed.len(), "DSN queued to the sender");
    Ok(Some(dsn_id))
}
