//! `POST /v1/check` (scope `read`): what `sealgate check` answers — the decision for each
//! address, with its evidence and how each host would be verified — for many addresses at
//! once. Nothing is sent. The decision itself is delivery's (the binary hands a [`Checker`] in).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

/// Most addresses one request may check.
const MAX_ADDRESSES: usize = 100;

/// A future the checker returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = serde_json::Value> + Send + 'a>>;

/// Decides for one address as delivery would (probes, rules), sending nothing: the report as
/// JSON. Implemented by the binary over delivery's `check`.
pub trait Checker: Send + Sync + std::fmt::Debug {
    /// The report for `address` with `subject` and `headers` as the message's.
    fn check<'a>(
        &'a self,
        address: &'a str,
        subject: &'a str,
        headers: &'a [(String, String)],
        requiretls: bool,
    ) -> CheckFuture<'a>;
}

/// The request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    addresses: Vec<String>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    requiretls: bool,
}

/// `POST /v1/check`.
#[utoipa::path(post, path = "/v1/check", tag = "check",
    request_body(content = crate::check::CheckRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What sealgate check answers, per address; nothing is sent", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn post_check(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require("read")?;
    let body =
        body.map_err(|e| ApiError::rejected(e.status(), format!("the body: {}", e.body_text())))?;
    let req: CheckRequest = serde_json::from_slice(&body).map_err(|e| {
        let status = if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::rejected(status, format!("the body: {e}"))
    })?;
    let Some(checker) = &ctx.checker else {
        return Err(ApiError::unavailable(
            "checks need delivery in this process ([delivery] enabled)",
        ));
    };
    if req.addresses.is_empty() || req.addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::unprocessable(format!(
            "addresses: from 1 to {MAX_ADDRESSES}"
        )));
    }
    for (i, a) in req.addresses.iter().enumerate() {
        crate::submit::address(&format!("addresses[{i}]"), a)?;
    }
    for (n, v) in &req.headers {
        crate::submit::header_text(&format!("headers.{n}"), v)?;
    }
    crate::submit::header_text("subject", &req.subject)?;
    let headers: Vec<(String, String)> = req.headers.into_iter().collect();
    let mut reports = Vec::with_capacity(req.addresses.len());
    for a in &req.addresses {
        reports.push(
            checker
                .check(a, &req.subject, &headers, req.requiretls)
                .await,
        );
    }
    Ok(Json(serde_json::json!({ "reports": reports })))
}
