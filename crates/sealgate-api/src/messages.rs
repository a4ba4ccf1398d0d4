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
#[derive(Debug, Serialize)]
pub(crate) struct MessageView {
    id: String,
    received_at: String,
    sender: String,
    size: i64,
    requiretls: bool,
    recipients: Vec<RecipientView>,
}

/// One recipient's place in the queue.
#[derive(Debug, Serialize)]
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
