//! `/v1/messages`: what became of a message, per recipient.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tracing::error;

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

/// A message and its recipients, as `GET /v1/messages/{id}` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MessageView {
    id: String,
    received_at: String,
    sender: String,
    size: i64,
    requiretls: bool,
    recipients: Vec<RecipientView>,
}

/// One recipient's place in the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RecipientView {
    address: String,
    state: String,
    attempts: i64,
    /// Why it waits, when the policy holds it (`portal-disabled`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<String>,
    /// The last reply or reason recorded for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_reply: Option<String>,
    updated_at: String,
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `GET /v1/messages/{id}` (scope `read`). A key limited to sender domains sees only messages
/// from those senders; any other message is "not found", as one that does not exist.
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "The queue id")),
    responses(
        (status = 200, description = "The message and each recipient's state", body = crate::messages::MessageView),
        (status = 404, description = "No such message (or not this key's)", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get_message(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    caller.require("read")?;
    let not_found = || ApiError::not_found(format!("no message {id}"));
    let message = match ctx.store.message(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            error!(error = %e, "api: reading a message failed");
            return Err(ApiError::internal());
        }
    };
    if !caller.may_use_sender(&message.sender) {
        return Err(not_found());
    }
    let recipients = ctx.store.recipients_of(&id).await.map_err(|e| {
        error!(error = %e, "api: reading recipients failed");
        ApiError::internal()
    })?;
    Ok(Json(MessageView {
        id: message.id,
        received_at: rfc3339(message.received_at),
        sender: message.sender,
        size: message.size,
        requiretls: message.requiretls,
        recipients: recipients
            .into_iter()
            .map(|r| RecipientView {
                address: r.rcpt,
                state: r.state.as_str().to_owned(),
                attempts: r.attempts,
                held: r.held,
                last_reply: r.last_reply,
                updated_at: rfc3339(r.updated_at),
            })
            .collect(),
    }))
}

/// Most recipients one page holds.
const MAX_PAGE: i64 = 1000;

/// `GET /v1/messages` query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only recipients in this state (`queued`, `deferred`, `delivered`, `bounced`, …).
    #[serde(default)]
    state: Option<String>,
    /// Only recipients changed at or after this time (RFC 3339).
    #[serde(default)]
    since: Option<String>,
    /// The cursor: recipients after this one (`Sealgate-Next-After` of the previous page).
    #[serde(default)]
    after: i64,
    /// At most this many rows scanned (default 100, at most 1000).
    #[serde(default)]
    limit: Option<i64>,
}

/// A page of `GET /v1/messages` (its cursor is the `Sealgate-Next-After` header).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: the handler writes the same shape with json!
pub(crate) struct ListedPage {
    recipients: Vec<ListedRecipient>,
}

/// One recipient of one message, as `GET /v1/messages` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ListedRecipient {
    message_id: String,
    sender: String,
    #[serde(flatten)]
    recipient: RecipientView,
}

/// `GET /v1/messages` (scope `read`): recipients with their messages, oldest first, a page at
/// a time (`Sealgate-Next-After` is the next page's cursor). A key limited to sender domains
/// sees only its senders' messages (a page may then hold fewer rows than scanned).
#[utoipa::path(get, path = "/v1/messages", tag = "messages",
    params(crate::messages::ListQuery),
    responses(
        (status = 200, description = "Recipients with their messages, oldest first; Sealgate-Next-After is the next page's cursor", body = crate::messages::ListedPage),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list_messages(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    caller.require("read")?;
    let axum::extract::Query(q) = query
        .map_err(|e| ApiError::rejected(axum::http::StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit: from 1 to {MAX_PAGE}"
        )));
    }
    let state = match &q.state {
        None => None,
        Some(s) => Some(s.parse::<sealgate_types::RecipientState>().map_err(|_| {
            ApiError::unprocessable(format!(
                "state: {s:?} is not a state (queued, inflight, deferred, delivered, bounced)"
            ))
        })?),
    };
    let since = match &q.since {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::unprocessable(format!("since: not an RFC 3339 time: {e}")))?
                .timestamp_micros(),
        ),
    };
    let rows = ctx
        .store
        .recipients_page(q.after, state, since, limit)
        .await
        .map_err(|e| {
            error!(error = %e, "api: listing recipients failed");
            ApiError::internal()
        })?;
    let last = rows.last().map(|(r, _)| r.id);
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
    let listed: Vec<ListedRecipient> = rows
        .into_iter()
        .filter(|(_, sender)| caller.may_use_sender(sender))
        .map(|(r, sender)| ListedRecipient {
            message_id: r.message_id.clone(),
            sender,
            recipient: RecipientView {
                address: r.rcpt,
                state: r.state.as_str().to_owned(),
                attempts: r.attempts,
                held: r.held,
                last_reply: r.last_reply,
                updated_at: rfc3339(r.updated_at),
            },
        })
        .collect();
    let mut response = Json(serde_json::json!({ "recipients": listed })).into_response();
    if let Some(last) = last.filter(|_| full) {
        response
            .headers_mut()
            .insert("sealgate-next-after", axum::http::HeaderValue::from(last));
    }
    Ok(response)
}

/// `POST /v1/messages/{id}/recipients/{rcpt}/revoke` (scope `send`, a key that may act for the
/// message's sender): withdraws the recipient's portal grant — a recall. The link opens nothing
/// from now on; audited (`portal_revoked`, operator `api:<key id>`).
#[utoipa::path(post, path = "/v1/messages/{id}/recipients/{rcpt}/revoke", tag = "messages",
    params(("id" = String, Path, description = "The queue id"), ("rcpt" = String, Path, description = "The recipient")),
    responses(
        (status = 200, description = "The portal grant is revoked", body = crate::openapi::Object),
        (status = 404, description = "No such grant (or not this key's)", body = crate::openapi::ErrorBody),
        (status = 409, description = "Revoked already", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn revoke_grant(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    Path((id, rcpt)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("send")?;
    let internal = |e: sealgate_store::StoreError| {
        error!(error = %e, "api: revoking a grant failed");
        ApiError::internal()
    };
    let not_found = || ApiError::not_found(format!("no portal grant of {rcpt} for message {id}"));
    let Some(message) = ctx.store.message(&id).await.map_err(internal)? else {
        return Err(not_found());
    };
    if !caller.may_use_sender(&message.sender) {
        return Err(not_found());
    }
    let Some(grant) = ctx
        .store
        .portal_grant_for(&id, &rcpt)
        .await
        .map_err(internal)?
    else {
        return Err(not_found());
    };
    let record = sealgate_audit::AuditEvent::PortalRevoked {
        grant_id: grant.id.clone(),
        operator: format!("api:{}", caller.key.id),
        expires: grant.expires_at,
    }
    .into_record();
    let now = sealgate_types::time::now_micros();
    if !ctx
        .store
        .portal_revoke(&grant.id, now, &record)
        .await
        .map_err(internal)?
    {
        return Err(ApiError::conflict(format!(
            "the portal grant of {rcpt} for message {id} was revoked already"
        )));
    }
    Ok(Json(
        serde_json::json!({"grant": grant.id, "recipient": rcpt, "revoked": true}),
    ))
}
