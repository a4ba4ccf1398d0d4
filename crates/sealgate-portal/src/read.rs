//! After verification: the thread page, each HTML body (sanitized, in its sandboxed frame),
//! attachments as downloads, and the read receipt on the first view.

use axum::extract::{Path, Query, State};
use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sealgate_audit::AuditEvent;
use sealgate_queue::ORIGIN_NOTICE;
use sealgate_store::{GrantRow, PortalSessionRow};
use sealgate_types::time;
use serde::Deserialize;
use tracing::{info, warn};

use crate::access;
use crate::compose::{Draft, receipt_body};
use crate::mime;
use crate::page::{self, ThreadView};
use crate::verify::outgoing;
use crate::web::{BODY_CSP, Handled, html, invalid_link, not_found, see_other};
use crate::{Ctx, PortalError};

/// `?sent=1` after a reply (a flag, never content).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ThreadQuery {
    #[serde(default)]
    sent: Option<String>,
}

/// The grant and session of a request, or the response to give instead: the invalid-link
/// page, or (no session) a redirect to the verify page.
pub(crate) async fn authorized(
    ctx: &Ctx,
    token: &str,
    headers: &HeaderMap,
) -> Result<Result<(GrantRow, PortalSessionRow), Response>, PortalError> {
    let now = time::now_micros();
    let Some(grant) = access::grant(ctx, token, now).await? else {
        return Ok(Err(invalid_link()));
    };
    match access::session(ctx, &grant, token, headers, now).await? {
        Some(session) => Ok(Ok((grant, session))),
        None => Ok(Err(see_other(&format!("/p/{token}"), Vec::new()))),
    }
}

/// GET /p/{token}/thread: the visible messages and the reply form; audits the view.
pub(crate) async fn thread(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    Query(q): Query<ThreadQuery>,
    headers: HeaderMap,
) -> Handled {
    let (grant, session) = match authorized(&ctx, &token, &headers).await? {
        Ok(found) => found,
        Err(res) => return Ok(res),
    };
    let rows = access::visible(&ctx, &grant).await?;
    let messages: Vec<Option<mime::Shown>> = rows
        .iter()
        .map(|m| access::open(&ctx, m).map(|raw| mime::show(&raw)))
        .collect();
    record_view(&ctx, &grant, &rows).await?;
    let view = ThreadView {
        token: &token,
        csrf: &session.csrf,
        messages,
        reply_to: Some(grant.sender.as_str()).filter(|s| !s.is_empty()),
        notice: q.sent.map(|_| "Your reply was sent securely.".to_owned()),
    };
    Ok(html(StatusCode::OK, page::thread(&view)))
}

/// One `portal_view` per message shown; on the first view, `first_viewed_at` and (when
/// configured) the read receipt.
async fn record_view(
    ctx: &Ctx,
    grant: &GrantRow,
    rows: &[sealgate_store::PortalMessageRow],
) -> Result<(), PortalError> {
    let first = grant.first_viewed_at.is_none();
    let audit: Vec<_> = rows
        .iter()
        .map(|m| {
            AuditEvent::PortalView {
                grant_id: grant.id.clone(),
                recipient: grant.recipient.clone(),
                message_id: m.id.clone(),
            }
            .into_record()
        })
        .collect();
    ctx.store.portal_record(&grant.id, first, &audit).await?;
    if first && ctx.settings.read_receipts && !grant.sender.is_empty() {
        // A failed receipt must not hide the message from its reader.
        if let Err(e) = send_receipt(ctx, grant).await {
            warn!(grant_id = %grant.id, error = %e, "portal read receipt not queued");
        }
    }
    Ok(())
}

/// Queues the read receipt to the sender: who read and when, nothing of the message.
async fn send_receipt(ctx: &Ctx, grant: &GrantRow) -> Result<(), PortalError> {
    let s = &ctx.settings;
    let from = format!("{} <{}>", s.organisation, s.notice_from);
    let body = receipt_body(&s.organisation, &grant.recipient, chrono::Utc::now());
    let draft = Draft {
        from: &from,
        to: &grant.sender,
        sender: None,
        subject: "Your secure message was opened",
        in_reply_to: None,
        references: &[],
        auto_submitted: true,
        body: &body,
    };
    let msg = outgoing(ctx, &s.notice_from, &grant.sender, &draft, ORIGIN_NOTICE);
    let id = ctx.queue.accept(msg).await?;
    info!(grant_id = %grant.id, notice_id = %id, "portal read receipt queued");
    Ok(())
}

/// GET /p/{token}/body/{n}: message `n`'s HTML, sanitized, under the body CSP (sandboxed).
pub(crate) async fn body(
    State(ctx): State<Ctx>,
    Path((token, n)): Path<(String, usize)>,
    headers: HeaderMap,
) -> Handled {
    let (grant, _) = match authorized(&ctx, &token, &headers).await? {
        Ok(found) => found,
        Err(res) => return Ok(res),
    };
    let Some(row) = access::nth(&ctx, &grant, n).await? else {
        return Ok(not_found().await);
    };
    let Some(doc) = access::open(&ctx, &row).and_then(|raw| mime::html_document(&raw)) else {
        return Ok(not_found().await);
    };
    let mut res = html(StatusCode::OK, doc);
    let h = res.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(BODY_CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    Ok(res)
}

/// `Content-Disposition: attachment` with an ASCII fallback name and the UTF-8 name
/// (RFC 6266 §4.3, RFC 8187).
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// GET /p/{token}/att/{n}/{m}: attachment `m` of message `n`, as a download; audited.
pub(crate) async fn attachment(
    State(ctx): State<Ctx>,
    Path((token, n, m)): Path<(String, usize, usize)>,
    headers: HeaderMap,
) -> Handled {
    let (grant, _) = match authorized(&ctx, &token, &headers).await? {
        Ok(found) => found,
        Err(res) => return Ok(res),
    };
    let Some(row) = access::nth(&ctx, &grant, n).await? else {
        return Ok(not_found().await);
    };
    let Some((name, bytes)) = access::open(&ctx, &row).and_then(|raw| mime::attachment(&raw, m))
    else {
        return Ok(not_found().await);
    };
    let audit = AuditEvent::PortalDownload {
        grant_id: grant.id.clone(),
        recipient: grant.recipient.clone(),
        attachment: format!("{n}/{m}"),
        size: bytes.len() as u64,
    }
    .into_record();
    ctx.store.portal_record(&grant.id, false, &[audit]).await?;
    info!(grant_id = %grant.id, size = bytes.len(), "portal attachment downloaded");
    let headers = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (CONTENT_DISPOSITION, disposition(&name)),
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ),
    ];
    Ok((headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_quoted_safely_and_keep_unicode_in_the_extended_form() {
        let v = disposition("Befund \"März\".pdf");
        assert_eq!(
            v.to_str().expect("ascii"),
            "attachment; filename=\"Befund _M_rz_.pdf\"; filename*=UTF-8''Befund%20%22M%C3%A4rz%22.pdf"
        );
    }
}
