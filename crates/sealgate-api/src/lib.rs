//! Sealgate's REST API (layer L4), on its own HTTPS listener (`[api]`, off by default).
//!
//! Every request carries an API key (`Authorization: Bearer sgk_…`, made by `sealgate
//! api-keys add`): the key's id is looked up, its secret compared with the stored hash in
//! constant time, and a revoked key opens nothing from the moment it is revoked. Each key has
//! scopes (`send`, `read`, `admin`) and may be limited to sender domains; each has a request
//! budget per minute (429 with `Retry-After` beyond it). Every request under a known key id is
//! audited (`api_request`: key id, method, path, status, client address; never the secret).
//!
//! Endpoints so far: `GET /v1/messages/{id}` (scope `read`).

mod auth;
mod error;
mod messages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use sealgate_store::Store;

pub use auth::RateLimit;
pub use error::ApiError;

/// What the API's handlers share.
#[derive(Debug)]
pub struct ApiContext {
    /// The queue's and audit log's database.
    pub store: Store,
    /// Requests each key may make per minute.
    pub limit: RateLimit,
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
    Router::new()
        .route("/v1/messages/{id}", get(messages::get_message))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::authenticate,
        ))
        .with_state(ctx)
}
