//! `GET /v1/audit` (scope `admin`): the audit log as JSON lines, oldest first, with cursor
//! pagination: `after` is the last sequence number seen; the answer's `Sealgate-Next-After`
//! header is the cursor of the next page (absent at the end).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sealgate_store::AuditFilter;
use serde::Deserialize;
use tracing::error;

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

/// Most entries one page holds.
const MAX_LIMIT: i64 = 1000;

/// The query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Entries after this sequence number (default 0: from the start).
    #[serde(default)]
    after: i64,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    limit: Option<i64>,
    /// Only this queue id's entries.
    #[serde(default)]
    message: Option<String>,
    /// Only this recipient's entries.
    #[serde(default)]
    recipient: Option<String>,
    /// Only entries written at or after this time (RFC 3339).
    #[serde(default)]
    since: Option<String>,
}

/// `GET /v1/audit`.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(crate::audit::AuditQuery),
    responses(
        (status = 200, description = "Audit rows as JSON lines, oldest first; Sealgate-Next-After is the next page's cursor", content_type = "application/x-ndjson", body = String),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get_audit(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require("admin")?;
    // The log is every sender's: a key limited to some senders may not read it.
    if !caller.key.senders.is_empty() {
        return Err(ApiError::forbidden(
            "a key limited to sender domains may not read the whole audit log",
        ));
    }
    let Query(q) = query.map_err(|e| ApiError::rejected(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit: from 1 to {MAX_LIMIT}"
        )));
    }
    if q.after < 0 {
        return Err(ApiError::unprocessable(
            "after: a sequence number, 0 or more",
        ));
    }
    let since = match &q.since {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::unprocessable(format!("since: not an RFC 3339 time: {e}")))?
                .timestamp_micros(),
        ),
    };
    let filter = AuditFilter {
        message_id: q.message,
        recipient: q.recipient,
        since,
    };
    let entries = ctx
        .store
        .audit_after(q.after, &filter, limit)
        .await
        .map_err(|e| {
            error!(error = %e, "api: reading the audit log failed");
            ApiError::internal()
        })?;
    let mut body = String::new();
    for e in &entries {
        let data: serde_json::Value =
            serde_json::from_str(&e.data).unwrap_or(serde_json::Value::String(e.data.clone()));
        let line = serde_json::json!({
            "seq": e.seq,
            "at": chrono::DateTime::from_timestamp_micros(e.at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            "kind": e.kind,
            "message_id": e.message_id,
            "recipient": e.recipient,
            "data": data,
            "hash": e.hash,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response();
    let full = i64::try_from(entries.len()).unwrap_or(i64::MAX) == limit;
    if let Some(last) = entries.last().filter(|_| full) {
        response
            .headers_mut()
            .insert("sealgate-next-after", HeaderValue::from(last.seq));
    }
    Ok(response)
}
