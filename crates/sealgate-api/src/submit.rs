//! `POST /v1/messages` (scope `send`): a message described in JSON, built into RFC 5322 with
//! `mail-builder`, and queued through the same accept transaction as SMTP (its `received`
//! event carries origin `api` and the key id). Every field is checked before anything is
//! written; a refusal names the field.
//!
//! `Idempotency-Key` (IETF httpapi draft): the same key with the same body answers the first
//! answer again (`Idempotent-Replayed: true`) and creates nothing; with another body, 422. The
//! key's row is written in the message's accept transaction and honoured for 24 hours.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use sealgate_queue::{IncomingMessage, data_digest};
use sealgate_types::{EmailAddress, MessageId};
use serde::{Deserialize, Serialize};
use tracing::{error, info};

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

/// Fields Sealgate writes itself or that carry the envelope: never set through `headers`.
const RESERVED: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "received",
    "return-path",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "dkim-signature",
    "resent-from",
    "resent-to",
    "resent-cc",
    "resent-bcc",
    "resent-date",
    "resent-sender",
    "resent-message-id",
];

/// A mailbox: an address, or a name and an address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum Mailbox {
    /// `"jane@example.org"`
    Plain(String),
    /// `{"name": "Jane Doe", "address": "jane@example.org"}`
    Named {
        /// The display name.
        name: String,
        /// The address.
        address: String,
    },
}

impl Mailbox {
    fn parts(&self) -> (Option<&str>, &str) {
        match self {
            Mailbox::Plain(a) => (None, a),
            Mailbox::Named { name, address } => (Some(name), address),
        }
    }
}

/// One attachment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    filename: String,
    content_type: String,
    /// Base64 (standard alphabet).
    content: String,
}

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMessage {
    from: Mailbox,
    #[serde(default)]
    to: Vec<Mailbox>,
    #[serde(default)]
    cc: Vec<Mailbox>,
    /// Envelope recipients that appear in no header.
    #[serde(default)]
    bcc: Vec<String>,
    #[serde(default)]
    reply_to: Option<Mailbox>,
    subject: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    /// Extra header fields (`X-…` and the like).
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

/// How long an idempotency key is honoured.
const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The answer: the queue id, the recipients queued, and for each the method it would take now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    id: String,
    recipients: Vec<String>,
    preview: Vec<Preview>,
}

/// How a recipient would be reached if it were delivered now (LuxSci's "which encryption would
/// be used"): the policy's decision on what is known at this moment. The decision made at
/// delivery is the one that counts (and is in the message's record).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Preview {
    recipient: String,
    /// The method (`tls-verified`, `pgp`, `portal`, ...); absent when it could not be decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    /// `required` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<String>,
    /// What follows if the method fails at send time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fallbacks: Vec<String>,
    /// Why there is no method.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// How long the whole preview may take; recipients not decided by then get a note.
const PREVIEW_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// The preview of each recipient, decided one after another within [`PREVIEW_BUDGET`] (the
/// probes they share are cached, so a message's recipients of one domain cost one).
async fn preview(ctx: &ApiContext, recipients: &[String], subject: &str) -> Vec<Preview> {
    let empty = |recipient: &str, note: &str| Preview {
        recipient: recipient.to_owned(),
        method: None,
        level: None,
        fallbacks: Vec::new(),
        note: Some(note.to_owned()),
    };
    let Some(checker) = &ctx.checker else {
        return recipients
            .iter()
            .map(|r| empty(r, "no delivery in this process: decided at delivery"))
            .collect();
    };
    let deadline = tokio::time::Instant::now() + PREVIEW_BUDGET;
    let mut out = Vec::with_capacity(recipients.len());
    for r in recipients {
        let report = tokio::time::timeout_at(deadline, checker.check(r, subject, &[], false)).await;
        let Ok(report) = report else {
            out.push(empty(r, "not decided in time: decided at delivery"));
            continue;
        };
        let d = &report["decision"];
        let chain: Vec<String> = d["chain"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match chain.split_first() {
            Some((method, rest)) => out.push(Preview {
                recipient: r.clone(),
                method: Some(method.clone()),
                level: d["level"].as_str().map(str::to_owned),
                fallbacks: rest.to_vec(),
                note: None,
            }),
            None => out.push(empty(r, "no method now: decided at delivery")),
        }
    }
    out
}

fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::unprocessable(format!("{field}: {why}"))
}

/// Text that goes into a header: no control characters (CR, LF, NUL and the rest).
pub(crate) fn header_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(invalid(
            field,
            "control characters (CR, LF, NUL, …) are not allowed",
        ));
    }
    Ok(())
}

/// A plain `local@domain` address: no quoting, no routing tricks, a host-name domain.
pub(crate) fn address(field: &str, text: &str) -> Result<EmailAddress, ApiError> {
    header_text(field, text)?;
    let bad = |why: &str| invalid(field, &format!("{text:?} {why}"));
    if text.contains(['%', '!', '"', ' ', '<', '>', ',', ';', '\\']) || text.starts_with('@') {
        return Err(bad("is not a plain address (local@domain)"));
    }
    let a = EmailAddress::parse(text).map_err(|e| bad(&format!("is not an address: {e}")))?;
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if a.local().is_empty() || !a.domain().contains('.') || !a.domain().split('.').all(label_ok) {
        return Err(bad("is not an address with a host-name domain"));
    }
    Ok(a)
}

/// `POST /v1/messages`.
#[utoipa::path(post, path = "/v1/messages", tag = "messages",
    request_body(content = crate::submit::NewMessage, content_type = "application/json",
        description = "A message to build (or, as message/rfc822 with ?from=&to=, one to send as it is)"),
    params(("Idempotency-Key" = Option<String>, Header, description = "The same key with the same request returns the first answer for 24 hours")),
    responses(
        (status = 202, description = "Queued; per recipient the method it would take now", body = crate::submit::Accepted),
        (status = 413, description = "Larger than smtp.max_message_size", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn post_message(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require("send")?;
    let body =
        body.map_err(|e| ApiError::rejected(e.status(), format!("the body: {}", e.body_text())))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = content_type.starts_with("message/rfc822");
    if !raw && !content_type.starts_with("application/json") {
        return Err(ApiError::rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: send application/json, or message/rfc822 with ?from=&to= as the envelope",
        ));
    }
    let idem_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().ok().filter(|k| {
            !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
        }) {
            Some(k) => Some(k.to_owned()),
            None => {
                return Err(ApiError::rejected(
                    StatusCode::BAD_REQUEST,
                    "Idempotency-Key: 1 to 255 visible ASCII characters",
                ));
            }
        },
    };
    let built = if raw {
        raw_message(&ctx, &caller, query.as_deref(), &body)?
    } else {
        json_message(&ctx, &caller, &body)?
    };
    queue(&ctx, &caller, idem_key, &body, built).await
}

/// A message ready to queue: the envelope and the data, as the client gave it or as built.
struct Built {
    id: MessageId,
    from: String,
    recipients: Vec<String>,
    data: Vec<u8>,
    header_message_id: Option<String>,
    /// The subject (content rules may read it), for the preview.
    subject: String,
}

/// A JSON message, checked field by field and built with mail-builder.
fn json_message(ctx: &ApiContext, caller: &Caller, body: &[u8]) -> Result<Built, ApiError> {
    let m: NewMessage = serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::rejected(status, format!("the body: {e}"))
    })?;
    let (from_name, from_text) = m.from.parts();
    let from = address("from", from_text)?;
    if let Some(n) = from_name {
        header_text("from.name", n)?;
    }
    if !caller.may_use_sender(&from.to_string()) {
        return Err(ApiError::forbidden(format!(
            "from: this key may not send as {from} (its sender domains: {})",
            caller.key.senders.join(", ")
        )));
    }
    let mut recipients: Vec<String> = Vec::new();
    let mut add = |field: &str, text: &str| -> Result<(), ApiError> {
        let a = address(field, text)?.to_string();
        if !recipients.contains(&a) {
            recipients.push(a);
        }
        Ok(())
    };
    for (i, b) in m.to.iter().enumerate() {
        let (n, a) = b.parts();
        add(&format!("to[{i}]"), a)?;
        if let Some(n) = n {
            header_text(&format!("to[{i}].name"), n)?;
        }
    }
    for (i, b) in m.cc.iter().enumerate() {
        let (n, a) = b.parts();
        add(&format!("cc[{i}]"), a)?;
        if let Some(n) = n {
            header_text(&format!("cc[{i}].name"), n)?;
        }
    }
    for (i, a) in m.bcc.iter().enumerate() {
        add(&format!("bcc[{i}]"), a)?;
    }
    if recipients.is_empty() {
        return Err(invalid(
            "to",
            "at least one recipient (to, cc or bcc) is needed",
        ));
    }
    if recipients.len() > ctx.max_recipients {
        return Err(invalid(
            "to",
            &format!("at most {} recipients per message", ctx.max_recipients),
        ));
    }
    if let Some(r) = &m.reply_to {
        let (n, a) = r.parts();
        address("reply_to", a)?;
        if let Some(n) = n {
            header_text("reply_to.name", n)?;
        }
    }
    header_text("subject", &m.subject)?;
    if m.text.is_none() && m.html.is_none() {
        return Err(invalid("text", "a text or an html body is needed"));
    }
    for (name, value) in &m.headers {
        let field = format!("headers.{name}");
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !name_ok {
            return Err(invalid(&field, "is not a header field name"));
        }
        if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(invalid(
                &field,
                "is set by Sealgate or from the message's fields; not here",
            ));
        }
        header_text(&field, value)?;
    }
    let mut files = Vec::with_capacity(m.attachments.len());
    for (i, a) in m.attachments.iter().enumerate() {
        header_text(&format!("attachments[{i}].filename"), &a.filename)?;
        let ct_ok = a.content_type.split_once('/').is_some_and(|(t, s)| {
            let tok = |x: &str| {
                !x.is_empty()
                    && x.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            };
            tok(t) && tok(s)
        });
        if !ct_ok {
            return Err(invalid(
                &format!("attachments[{i}].content_type"),
                "is not a media type such as application/pdf",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(a.content.as_bytes())
            .map_err(|e| {
                invalid(
                    &format!("attachments[{i}].content"),
                    &format!("is not base64: {e}"),
                )
            })?;
        files.push(bytes);
    }

    let id = MessageId::new();
    let message_id = format!("<{}@{}>", id.as_uuid().simple(), ctx.hostname);
    let mut builder = MessageBuilder::new()
        .from(match from_name {
            Some(n) => mail_builder::headers::address::Address::new_address(
                Some(n.to_owned()),
                from.to_string(),
            ),
            None => mail_builder::headers::address::Address::new_address(
                None::<String>,
                from.to_string(),
            ),
        })
        .subject(m.subject.clone())
        .message_id(message_id.trim_matches(['<', '>']).to_owned());
    let to_list = |list: &[Mailbox]| -> Vec<mail_builder::headers::address::Address<'static>> {
        list.iter()
            .map(|b| {
                let (n, a) = b.parts();
                mail_builder::headers::address::Address::new_address(
                    n.map(str::to_owned),
                    a.to_owned(),
                )
            })
            .collect()
    };
    if !m.to.is_empty() {
        builder = builder.to(to_list(&m.to));
    }
    if !m.cc.is_empty() {
        builder = builder.cc(to_list(&m.cc));
    }
    if let Some(r) = &m.reply_to {
        builder = builder.reply_to(to_list(std::slice::from_ref(r)));
    }
    for (name, value) in &m.headers {
        builder = builder.header(name.clone(), Raw::new(value.clone()));
    }
    if let Some(t) = &m.text {
        builder = builder.text_body(t.clone());
    }
    if let Some(h) = &m.html {
        builder = builder.html_body(h.clone());
    }
    for (a, bytes) in m.attachments.iter().zip(files) {
        builder = builder.attachment(a.content_type.clone(), a.filename.clone(), bytes);
    }
    let data = builder.write_to_vec().map_err(|e| {
        error!(error = %e, "api: building the message failed");
        ApiError::internal()
    })?;
    if data.len() > ctx.max_message_size {
        return Err(ApiError::too_large(format!(
            "the message is {} bytes; at most {} are accepted",
            data.len(),
            ctx.max_message_size
        )));
    }
    Ok(Built {
        id,
        from: from.to_string(),
        recipients,
        data,
        header_message_id: Some(message_id),
        subject: m.subject.clone(),
    })
}

/// Queues `built` through the one accept transaction (under the idempotency key, if any) and
/// answers 202, or the first answer again.
async fn queue(
    ctx: &ApiContext,
    caller: &Caller,
    idem_key: Option<String>,
    body: &[u8],
    built: Built,
) -> Result<Response, ApiError> {
    let Built {
        id,
        from,
        recipients,
        data,
        header_message_id,
        subject,
    } = built;
    let received = format!(
        "Received: from api (key {}) by {} (Sealgate) with HTTPS\r\n\tid {id}; {}\r\n",
        caller.key.id,
        ctx.hostname,
        chrono::Utc::now().to_rfc2822()
    );
    let mut content = Vec::with_capacity(received.len() + data.len());
    content.extend_from_slice(received.as_bytes());
    content.extend_from_slice(&data);
    let msg = IncomingMessage {
        id,
        sender: from,
        recipients: recipients.clone(),
        client_data_sha256: data_digest(&data),
        client_data_size: data.len() as u64,
        header_message_id,
        content,
        client_ip: caller.client_ip.clone(),
        helo: "api".to_owned(),
        auth_user: None,
        tls: Some("HTTPS".to_owned()),
        requiretls: false,
        origin: Some("api".to_owned()),
        tenant: None,
        api_key: Some(caller.key.id.clone()),
    };
    let accepted = Accepted {
        id: id.to_string(),
        preview: preview(ctx, &recipients, &subject).await,
        recipients,
    };
    let answer = serde_json::to_string(&accepted).map_err(|_| ApiError::internal())?;
    let queued = match &idem_key {
        None => ctx.queue.accept(msg).await.map(|_| None),
        Some(k) => {
            let row = sealgate_store::IdempotencyRow {
                api_key_id: caller.key.id.clone(),
                idem_key: k.clone(),
                request_sha256: sealgate_crypto::sha256_hex(body),
                message_id: accepted.id.clone(),
                response: answer,
            };
            let window_start = sealgate_types::time::now_micros() - IDEMPOTENCY_WINDOW_MICROS;
            ctx.queue.accept_idempotent(msg, &row, window_start).await
        }
    };
    match queued {
        Ok(None) => {
            info!(msg_id = %accepted.id, key_id = %caller.key.id, rcpts = accepted.recipients.len(), "message queued (api)");
            let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
            response.extensions_mut().insert(crate::auth::OnRecord);
            Ok(response)
        }
        Ok(Some(first)) => {
            if first.request_sha256 != sealgate_crypto::sha256_hex(body) {
                return Err(ApiError::unprocessable(
                    "Idempotency-Key: this key was used with another request in the last 24 hours",
                ));
            }
            info!(msg_id = %first.message_id, key_id = %caller.key.id, "idempotent replay (api): nothing queued");
            let mut response = (
                StatusCode::ACCEPTED,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                first.response,
            )
                .into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Err(e) if e.is_full() => {
            error!(error = %e, "api: queueing failed: storage full");
            Err(ApiError::unavailable("insufficient storage; retry later"))
        }
        Err(e) => {
            error!(error = %e, "api: queueing failed");
            Err(ApiError::unavailable(
                "the message could not be queued; retry later",
            ))
        }
    }
}

/// `message/rfc822` with the envelope in the query (`from=`, one `to=` per recipient): the
/// message is taken as it is, with the framing SMTP enforces (CRLF line ends only, no NUL), and
/// its `From:`/`Sender:` held to the key's sender domains like the envelope sender.
fn raw_message(
    ctx: &ApiContext,
    caller: &Caller,
    query: Option<&str>,
    body: &[u8],
) -> Result<Built, ApiError> {
    let mut from = None;
    let mut recipients: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "from" if from.is_none() => from = Some(address("from", &v)?.to_string()),
            "from" => return Err(invalid("from", "give one envelope sender")),
            "to" => {
                let a = address(&format!("to[{}]", recipients.len()), &v)?.to_string();
                if !recipients.contains(&a) {
                    recipients.push(a);
                }
            }
            other => return Err(invalid(other, "unknown parameter (from, to)")),
        }
    }
    let from = from.ok_or_else(|| invalid("from", "the envelope sender is needed (?from=)"))?;
    if !caller.may_use_sender(&from) {
        return Err(ApiError::forbidden(format!(
            "from: this key may not send as {from} (its sender domains: {})",
            caller.key.senders.join(", ")
        )));
    }
    if recipients.is_empty() {
        return Err(invalid("to", "at least one recipient is needed (?to=)"));
    }
    if recipients.len() > ctx.max_recipients {
        return Err(invalid(
            "to",
            &format!("at most {} recipients per message", ctx.max_recipients),
        ));
    }
    if body.len() > ctx.max_message_size {
        return Err(ApiError::too_large(format!(
            "the message is {} bytes; at most {} are accepted",
            body.len(),
            ctx.max_message_size
        )));
    }
    for (i, b) in body.iter().enumerate() {
        let bare = match b {
            b'\r' => body.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || body[i - 1] != b'\r',
            _ => false,
        };
        if bare {
            return Err(invalid("message", "a bare CR or LF (lines end with CRLF)"));
        }
        if *b == 0 {
            return Err(invalid("message", "a NUL byte"));
        }
    }
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(body)
        .ok_or_else(|| invalid("message", "no header section"))?;
    let authors: Vec<String> = parsed
        .from()
        .into_iter()
        .chain(parsed.sender())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_owned))
        .collect();
    if authors.is_empty() {
        return Err(invalid("message", "no From: address"));
    }
    if let Some(bad) = authors.iter().find(|a| !caller.may_use_sender(a)) {
        return Err(ApiError::forbidden(format!(
            "message: this key may not send as {bad} (From:/Sender:)"
        )));
    }
    Ok(Built {
        id: MessageId::new(),
        from,
        recipients,
        data: body.to_vec(),
        header_message_id: parsed.message_id().map(|m| format!("<{m}>")),
        subject: parsed.subject().unwrap_or_default().to_owned(),
    })
}
