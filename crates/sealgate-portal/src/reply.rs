//! POST /p/{token}/reply: a recipient's reply, queued to the original sender through the
//! normal outbound path (origin `portal-reply`: protected content, normal policy), and kept
//! sealed in the thread.

use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use sealgate_audit::AuditEvent;
use sealgate_crypto::portal::seal_message;
use sealgate_queue::ORIGIN_REPLY;
use sealgate_store::{GrantRow, PortalMessageRow};
use sealgate_types::time;
use serde::Deserialize;
use tracing::info;

use crate::access;
use crate::compose::{Draft, reply_subject};
use crate::guard::{CSRF, Client, refuse};
use crate::mime::{self, Shown};
use crate::page;
use crate::read::authorized;
use crate::secret::ct_eq;
use crate::verify::outgoing;
use crate::web::{Handled, html, see_other};
use crate::{Ctx, PortalError};

/// Longest reply accepted, in bytes.
pub(crate) const MAX_REPLY: usize = 100_000;

/// The reply form. Absent fields are empty (a missing CSRF token is a 403, not a 422).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

/// Handles the reply form: session and its CSRF token first, then the text.
pub(crate) async fn reply(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Handled {
    let (grant, session) = match authorized(&ctx, &token, &headers).await? {
        Ok(found) => found,
        // No session: a POST is refused outright rather than redirected.
        Err(res) if res.status() == StatusCode::SEE_OTHER => {
            return Ok(refuse(&ctx, client, "reply", "no-session", None, None).await);
        }
        Err(res) => return Ok(res),
    };
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if !ct_eq(&form.csrf, &session.csrf) {
        return Ok(refuse(&ctx, client, "reply", CSRF, None, Some(&grant)).await);
    }
    let back = format!("/p/{token}/thread");
    let refuse =
        |status, text: &str| Ok(html(status, page::message("Reply not sent", text, &back)));
    if grant.sender.is_empty() {
        return refuse(StatusCode::CONFLICT, "This message cannot be answered.");
    }
    let text = form.body.trim_end();
    if text.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "The reply was empty.");
    }
    if text.len() > MAX_REPLY {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "The reply is too long.");
    }
    queue_reply(&ctx, &grant, text).await?;
    Ok(see_other(&format!("{back}?sent=1"), Vec::new()))
}

/// What the reply answers: the message the grant was made for.
async fn original(ctx: &Ctx, grant: &GrantRow) -> Result<Shown, PortalError> {
    let row = ctx.store.portal_message(&grant.portal_message_id).await?;
    Ok(row
        .and_then(|r| access::open(ctx, &r))
        .map(|raw| mime::show(&raw))
        .unwrap_or_default())
}

/// Builds the reply, seals a copy into the thread and queues it, in one transaction.
async fn queue_reply(ctx: &Ctx, grant: &GrantRow, text: &str) -> Result<(), PortalError> {
    let parent = original(ctx, grant).await?;
    let mut references = parent.references.clone();
    references.extend(parent.message_id.clone());
    let subject = reply_subject(&parent.subject);
    let draft = Draft {
        from: &grant.recipient,
        to: &grant.sender,
        // RFC 5322 §3.6.2: the portal transmits on the author's behalf.
        sender: Some(&ctx.settings.notice_from),
        subject: &subject,
        in_reply_to: parent.message_id.as_deref(),
        references: &references,
        auto_submitted: false,
        body: text,
    };
    let msg = outgoing(ctx, &grant.recipient, &grant.sender, &draft, ORIGIN_REPLY);
    let content = msg.content.clone();
    let prepared = ctx.queue.prepare(msg)?;
    let reply_id = prepared.message.id.clone();
    let id = uuid::Uuid::new_v4().to_string();
    let (key_sealed, content_sealed) = seal_message(&ctx.master, &content, id.as_bytes())?;
    let row = PortalMessageRow {
        id,
        thread_id: grant.thread_id.clone(),
        message_id: Some(reply_id.clone()),
        author: grant.recipient.clone(),
        sender: grant.sender.clone(),
        key_sealed,
        content_sealed,
        size: content.len() as i64,
        created_at: time::now_micros(),
        purged_at: None,
    };
    let audit = AuditEvent::PortalReply {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
        reply_id: reply_id.clone(),
    }
    .into_record();
    ctx.store
        .portal_reply(&row, &prepared.into_parts(), &audit)
        .await?;
    info!(grant_id = %grant.id, reply_id = %reply_id, "portal reply queued");
    Ok(())
}
