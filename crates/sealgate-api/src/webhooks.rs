//! Webhook endpoints over the API (scope `admin`, a key not limited to sender domains: an
//! endpoint sees every sender's events): list, add (the secret is in the answer once), remove,
//! disable, enable, rotate, list events, replay. The same operations as `sealgate webhooks`,
//! audited the same way with the operator `api:<key id>`.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use sealgate_store::{WebhookEndpointRow, WebhookReplay};
use sealgate_types::time::{now_micros, rfc3339_micros};
use sealgate_webhooks::{Endpoints, WebhookError};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::error;

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

fn admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require("admin")?;
    if !caller.key.senders.is_empty() {
        return Err(ApiError::forbidden(
            "a key limited to sender domains may not manage webhooks (they carry every sender's events)",
        ));
    }
    Ok(())
}

fn failed(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Invalid(why) => ApiError::unprocessable(why),
        WebhookError::NotFound(why) => ApiError::not_found(why),
        other => {
            error!(error = %other, "api: webhook change failed");
            ApiError::internal()
        }
    }
}

fn time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(rfc3339_micros(t)))
}

fn endpoint_json(e: &WebhookEndpointRow) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events,
        "created_at": rfc3339_micros(e.created_at),
        "disabled_at": time(e.disabled_at),
        "disabled_reason": e.disabled_reason,
        "failing_since": time(e.failing_since),
        "rotating_until": time(e.previous_until.filter(|u| *u > now_micros())),
    })
}

fn endpoints<'a>(ctx: &'a ApiContext, operator: &'a str) -> Endpoints<'a> {
    Endpoints {
        store: &ctx.store,
        ring: ctx.queue.key_ring(),
        operator,
    }
}

fn parse_time(field: &str, t: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.timestamp_micros())
        .map_err(|e| ApiError::unprocessable(format!("{field}: not an RFC 3339 time: {e}")))
}

/// `GET /v1/webhooks`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints (never secrets)", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let operator = format!("api:{}", caller.key.id);
    let eps = endpoints(&ctx, &operator).list().await.map_err(failed)?;
    Ok(Json(
        json!({ "endpoints": eps.iter().map(endpoint_json).collect::<Vec<_>>() }),
    ))
}

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEndpoint {
    url: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    final_only: bool,
    /// `v1` (HMAC-SHA256, the default) or `v1a` (Ed25519).
    #[serde(default = "default_signature")]
    signature: String,
}

fn default_signature() -> String {
    "v1".to_owned()
}

/// `POST /v1/webhooks`: 201 with the endpoint's id and secret (shown this once).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = crate::webhooks::NewEndpoint, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; the secret (v1) or public key (v1a) is in this answer only", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn add(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<NewEndpoint>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin(&caller)?;
    let Json(req) = body.map_err(|e| ApiError::rejected(e.status(), e.body_text()))?;
    let operator = format!("api:{}", caller.key.id);
    let added = endpoints(&ctx, &operator)
        .add(&req.url, &req.events, req.final_only, &req.signature)
        .await
        .map_err(failed)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": added.id, "secret": added.secret, "signature": added.scheme,
            "events": added.events }),
        ),
    ))
}

/// `DELETE /v1/webhooks/{id}`.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id")),
    responses(
        (status = 204, description = "Removed with its undelivered events"),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn remove(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin(&caller)?;
    let operator = format!("api:{}", caller.key.id);
    endpoints(&ctx, &operator)
        .remove(&id)
        .await
        .map_err(failed)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhooks/{id}/{disable|enable|rotate}`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/{action}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id"), ("action" = String, Path, description = "disable, enable or rotate")),
    responses(
        (status = 200, description = "Done (rotate: the new secret or public key)", body = crate::openapi::Object),
        (status = 404, description = "No such endpoint, or not in a state for it", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn change(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let operator = format!("api:{}", caller.key.id);
    let eps = endpoints(&ctx, &operator);
    match action.as_str() {
        "disable" => eps
            .set_disabled(&id, Some("disabled through the API"))
            .await
            .map(|()| Json(json!({ "id": id, "disabled": true }))),
        "enable" => eps
            .set_disabled(&id, None)
            .await
            .map(|()| Json(json!({ "id": id, "disabled": false }))),
        "rotate" => eps
            .rotate(&id, ctx.webhook_rotation_overlap)
            .await
            .map(|secret| Json(json!({ "id": id, "secret": secret }))),
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?}: use disable, enable or rotate"
            )));
        }
    }
    .map_err(failed)
}

/// The query of `GET /v1/webhooks/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /v1/webhooks/events`: dead events by default.
#[utoipa::path(get, path = "/v1/webhooks/events", tag = "webhooks",
    params(crate::webhooks::EventsQuery),
    responses(
        (status = 200, description = "Events (dead ones by default)", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn events(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let Query(q) = query.map_err(|e| ApiError::rejected(StatusCode::BAD_REQUEST, e.body_text()))?;
    let state = match q.state.as_deref().unwrap_or("dead") {
        "all" => None,
        s @ ("pending" | "delivered" | "dead") => Some(s),
        other => {
            return Err(ApiError::unprocessable(format!(
                "state: {other:?} is not pending, delivered, dead or all"
            )));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable("limit: from 1 to 1000"));
    }
    let since = q
        .since
        .as_deref()
        .map(|t| parse_time("since", t))
        .transpose()?
        .unwrap_or(0);
    let rows = ctx
        .store
        .webhook_events(state, q.endpoint.as_deref(), since, limit)
        .await
        .map_err(|e| {
            error!(error = %e, "api: listing webhook events failed");
            ApiError::internal()
        })?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.event_id,
                "endpoint": r.endpoint_id,
                "type": r.event_type,
                "message_id": r.message_id,
                "state": r.state,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "created_at": rfc3339_micros(r.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}

/// The body of `POST /v1/webhooks/replay`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replay {
    since: String,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    include_delivered: bool,
}

/// `POST /v1/webhooks/replay`: events written in `[since, until)` due again.
#[utoipa::path(post, path = "/v1/webhooks/replay", tag = "webhooks",
    request_body(content = crate::webhooks::Replay, content_type = "application/json"),
    responses(
        (status = 200, description = "How many events are due again", body = crate::openapi::Object),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn replay(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<Replay>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    admin(&caller)?;
    let Json(req) = body.map_err(|e| ApiError::rejected(e.status(), e.body_text()))?;
    let sel = WebhookReplay {
        since: parse_time("since", &req.since)?,
        until: req
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?
            .unwrap_or_else(|| now_micros() + 1),
        endpoint_id: req.endpoint,
        include_delivered: req.include_delivered,
    };
    let operator = format!("api:{}", caller.key.id);
    let n = endpoints(&ctx, &operator)
        .replay(&sel)
        .await
        .map_err(failed)?;
    Ok(Json(json!({ "events": n })))
}
