//! Rendering the queue's notices (failures and delay warnings) as RFC 3464 DSNs.

use sealgate_queue::{NoticeContent, NoticeKind, NoticeRequest};

use crate::dsn::{DsnInput, DsnKind, DsnRecipient, build_dsn};

/// Renders a notice the queue asked for as an RFC 3464 DSN.
pub(crate) fn render(hostname: &str, req: &NoticeRequest<'_>) -> NoticeContent {
    let recipients: Vec<DsnRecipient> = req
        .recipients
        .iter()
        .map(|r| DsnRecipient {
            recipient: r.recipient.clone(),
            diagnostic: r.reason.clone(),
            remote_mta: r.remote_mta.clone(),
        })
        .collect();
    let unique = req.id.to_string();
    let kind = match req.kind {
        NoticeKind::Failure => DsnKind::Failure,
        NoticeKind::Delay => DsnKind::Delay,
    };
    let content = build_dsn(&DsnInput {
        kind,
        reporting_mta: hostname,
        queue_id: req.original_id,
        arrival: sealgate_types::time::from_micros(req.received_at),
        now: chrono::Utc::now(),
        to: req.to,
        recipients: &recipients,
        original: req.original,
        unique: &unique,
    });
    NoticeContent {
        content,
        header_message_id: Some(format!("<{unique}.dsn@{hostname}>")),
        hostname: hostname.to_owned(),
    }
}

/// Renders notices as DSNs from `hostname` (for [`Queue::queue_notice`] and settling).
pub fn dsn_builder(hostname: &str) -> impl Fn(&NoticeRequest<'_>) -> NoticeContent + Sync + '_ {
    move |req| render(hostname, req)
}
