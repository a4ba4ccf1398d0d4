//! Sealgate's REST API (layer L4), on its own HTTPS listener (`[api]`, off by default).
//!
//! Every request carries an API key (`Authorization: Bearer sgk_…`, made by `sealgate
//! api-keys add`): the key's id is looked up, its secret compared with the stored hash in
//! constant time, and a revoked key opens nothing from the moment it is revoked. Each key has
//! scopes (`send`, `read`, `admin`) and may be limited to sender domains; each has a request
//! budget per minute (429 with `Retry-After` beyond it). Every request under a known key id is
//! audited (`api_request`: key id, method, path, status, client address; never the secret).
//!
//! Endpoints so far: `POST /v1/messages` (scope `send`), `GET /v1/messages/{id}` (scope
//! `read`), `GET /v1/messages` and `POST /v1/check` (scope `read`),
//! `POST /v1/messages/{id}/recipients/{rcpt}/revoke` (scope `send`), `GET /v1/audit` (scope
//! `admin`), and the webhook endpoints under `/v1/webhooks` (scope `admin`).

mod audit;
mod auth;
mod check;
mod error;
mod keys;
mod messages;
mod openapi;
mod submit;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sealgate_queue::Queue;
use sealgate_store::Store;

pub use auth::RateLimit;
pub use check::{CheckFuture, Checker};
pub use error::ApiError;
pub use keys::{KeyBook, KeyBookError, KeyFuture};
pub use openapi::document as openapi_document;

/// What the API's handlers share.
#[derive(Debug)]
pub struct ApiContext {
    /// The queue's and audit log's database.
    pub store: Store,
    /// Requests each key may make per minute.
    pub limit: RateLimit,
    /// Failed authentications (no key, an unknown, wrong or revoked one) each client address
    /// may make per minute before it is answered 429 without a look at the database.
    pub auth_failures: RateLimit,
    /// The queue messages are accepted into.
    pub queue: Queue,
    /// This relay's host name (Message-ID, Received).
    pub hostname: String,
    /// `[smtp] max_message_size`: the largest message built from a request.
    pub max_message_size: usize,
    /// `[smtp] max_recipients`.
    pub max_recipients: usize,
    /// Delivery's dry run for `POST /v1/check`; `None` when delivery is off in this process.
    pub checker: Option<Arc<dyn Checker>>,
    /// Recipients' keys and certificates for `/v1/keys` (the binary's, as the CLI manages
    /// them); `None`: not served.
    pub keys: Option<Arc<dyn KeyBook>>,
    /// `[webhooks] rotation_overlap`: how long a rotated-out secret signs too.
    pub webhook_rotation_overlap: Duration,
}

/// How the API is served (`[api]`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Certificate chain and key (PEM); `None`: plain HTTP, only behind a TLS proxy.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// How long open requests may finish after shutdown begins.
    pub shutdown_grace: Duration,
}

/// The API's routes over `ctx`.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    // A request carries attachments in base64 (4 bytes per 3) and some JSON around them.
    let body_limit = ctx.max_message_size / 3 * 4 + 64 * 1024;
    Router::new()
        .route(
            "/v1/messages",
            post(submit::post_message).get(messages::list_messages),
        )
        .route("/v1/messages/{id}", get(messages::get_message))
        .route(
            "/v1/messages/{id}/recipients/{rcpt}/revoke",
            post(messages::revoke_grant),
        )
        .route("/v1/audit", get(audit::get_audit))
        .route("/v1/check", post(check::post_check))
        .route("/v1/keys", get(keys::list).post(keys::import))
        .route(
            "/v1/keys/{fingerprint}",
            axum::routing::delete(keys::remove),
        )
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::add))
        .route("/v1/webhooks/events", get(webhooks::events))
        .route("/v1/webhooks/replay", post(webhooks::replay))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::remove))
        .route("/v1/webhooks/{id}/{action}", post(webhooks::change))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::authenticate,
        ))
        // The document needs no key (added after the authentication layer).
        .route("/v1/openapi.json", get(openapi::get_document))
        .with_state(ctx)
}
