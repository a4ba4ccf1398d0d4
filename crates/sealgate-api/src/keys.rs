//! Recipients' OpenPGP keys and S/MIME certificates over the API: `GET /v1/keys?address=`
//! (scope `read`), `POST /v1/keys?address=…` with the key or certificate file as the body
//! (scope `admin`), `DELETE /v1/keys/{fingerprint}?address=` (scope `admin`). The same checks
//! and audit records as `sealgate keys import|list|remove` (the binary hands a [`KeyBook`] in);
//! changes are audited with the operator `api:<key id>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::Value;
use tracing::error;

use crate::auth::Caller;
use crate::{ApiContext, ApiError};

/// What a key-book call answers.
pub type KeyFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, KeyBookError>> + Send + 'a>>;

/// Why a key-book call did nothing.
#[derive(Debug)]
pub enum KeyBookError {
    /// The input was refused; the text says why (422).
    Refused(String),
    /// Nothing matched (404).
    NotFound(String),
    /// Our failure (500; logged).
    Failed(String),
}

/// The key store as the CLI manages it. Implemented by the binary.
pub trait KeyBook: Send + Sync + std::fmt::Debug {
    /// Imports the credentials in `data` for `addresses` (none: the addresses each binds):
    /// `{"imported": [...], "notes": [...]}`; refused as a whole when any credential is.
    fn import<'a>(
        &'a self,
        data: &'a [u8],
        addresses: &'a [String],
        operator: &'a str,
    ) -> KeyFuture<'a>;
    /// `{"keys": [...]}`, each validated now.
    fn list<'a>(&'a self, address: Option<&'a str>) -> KeyFuture<'a>;
    /// Removes a fingerprint's rows: `{"removed": [...]}`.
    fn remove<'a>(
        &'a self,
        fingerprint: &'a str,
        address: Option<&'a str>,
        operator: &'a str,
    ) -> KeyFuture<'a>;
}

fn answer(r: Result<Value, KeyBookError>) -> Result<Json<Value>, ApiError> {
    match r {
        Ok(v) => Ok(Json(v)),
        Err(KeyBookError::Refused(why)) => Err(ApiError::unprocessable(why)),
        Err(KeyBookError::NotFound(why)) => Err(ApiError::not_found(why)),
        Err(KeyBookError::Failed(why)) => {
            error!(error = %why, "api: key store call failed");
            Err(ApiError::internal())
        }
    }
}

fn book(ctx: &ApiContext) -> Result<&Arc<dyn KeyBook>, ApiError> {
    ctx.keys
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("the key store is not served by this process"))
}

/// The `address=` values of a query, lowercase, each checked.
fn addresses(query: Option<&str>) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != "address" {
            return Err(ApiError::unprocessable(format!(
                "{k}: unknown query parameter (use address=)"
            )));
        }
        crate::submit::address("address", &v)?;
        out.push(v.to_lowercase());
    }
    Ok(out)
}

/// `GET /v1/keys`.
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    params(("address" = Option<String>, Query, description = "Only this address's")),
    responses(
        (status = 200, description = "Stored keys and certificates, each validated now", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require("read")?;
    let addresses = addresses(query.as_deref())?;
    if addresses.len() > 1 {
        return Err(ApiError::unprocessable("address: at most one"));
    }
    answer(
        book(&ctx)?
            .list(addresses.first().map(String::as_str))
            .await,
    )
}

/// `POST /v1/keys`.
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body(content = String, content_type = "application/octet-stream", description = "An OpenPGP key (armored or binary) or X.509 certificates (PEM or DER)"),
    params(("address" = Option<String>, Query, description = "Store it for this address (repeatable); default: every address it binds")),
    responses(
        (status = 201, description = "Imported (all or nothing)", body = crate::openapi::Object),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn import(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require("admin")?;
    let body =
        body.map_err(|e| ApiError::rejected(e.status(), format!("the body: {}", e.body_text())))?;
    if body.is_empty() {
        return Err(ApiError::unprocessable(
            "the body: an OpenPGP key or an X.509 certificate (PEM or binary)",
        ));
    }
    let addresses = addresses(query.as_deref())?;
    let operator = format!("api:{}", caller.key.id);
    let imported = answer(book(&ctx)?.import(&body, &addresses, &operator).await)?;
    Ok((StatusCode::CREATED, imported))
}

/// `DELETE /v1/keys/{fingerprint}`.
#[utoipa::path(delete, path = "/v1/keys/{fingerprint}", tag = "keys",
    params(("fingerprint" = String, Path, description = "The key's or certificate's fingerprint"), ("address" = Option<String>, Query, description = "Only this address's row")),
    responses(
        (status = 200, description = "Removed", body = crate::openapi::Object),
        (status = 404, description = "Nothing stored under it", body = crate::openapi::ErrorBody),
        crate::openapi::Refusals,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn remove(
    State(ctx): State<Arc<ApiContext>>,
    Extension(caller): Extension<Caller>,
    Path(fingerprint): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require("admin")?;
    let addresses = addresses(query.as_deref())?;
    if addresses.len() > 1 {
        return Err(ApiError::unprocessable("address: at most one"));
    }
    let operator = format!("api:{}", caller.key.id);
    let removed = book(&ctx)?
        .remove(
            &fingerprint,
            addresses.first().map(String::as_str),
            &operator,
        )
        .await;
    answer(removed.and_then(|v| {
        if v["removed"].as_array().is_some_and(Vec::is_empty) {
            Err(KeyBookError::NotFound(format!(
                "no stored key or certificate {fingerprint}"
            )))
        } else {
            Ok(v)
        }
    }))
}
