//! Who is asking: the API key of each request, checked before any handler runs, and the
//! audit record of each request under a known key id, written before the answer leaves (an
//! answer that could not be audited is not given: 500 instead). A request that queued a
//! message is on record by its `received` event (origin `api`, the key id), written with the
//! message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sealgate_audit::AuditEvent;
use sealgate_crypto::api_key::{api_secret_matches, parse_api_key};
use sealgate_store::ApiKeyRow;
use sealgate_types::AllowedSenders;
use tracing::{error, info};

use crate::{ApiContext, ApiError};

/// The key a request was made with (in the request's extensions once authenticated).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) key: ApiKeyRow,
    /// The client's address.
    pub(crate) client_ip: String,
    /// The key's sender rules, parsed once; `None`: any sender.
    senders: Option<AllowedSenders>,
}

impl Caller {
    /// `Ok` when the key has `scope`.
    pub(crate) fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.key.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this key lacks the {scope} scope (it has: {})",
                self.key.scopes.join(", ")
            )))
        }
    }

    /// Whether the key may act for `sender` (its sender domains; none: any sender).
    pub(crate) fn may_use_sender(&self, sender: &str) -> bool {
        let Some(rules) = &self.senders else {
            return true;
        };
        sender
            .rsplit_once('@')
            .is_some_and(|(local, domain)| rules.permits(local, domain))
    }
}

/// Set on a response whose request is on record already: a message queued now, whose
/// `received` event names the key (written in the same transaction as the message), so no
/// `api_request` record is added for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OnRecord;

/// Each key's request budget: a fixed one-minute window per key.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimit {
    /// `per_minute` requests per key and minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` to wait when `key`'s budget is spent now (nothing counted).
    fn spent(&self, key: &str) -> Option<u64> {
        const WINDOW: Duration = Duration::from_secs(60);
        let now = Instant::now();
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, used) = windows.get(key)?;
        let elapsed = now.duration_since(*start);
        (elapsed < WINDOW && *used >= self.per_minute)
            .then(|| WINDOW.saturating_sub(elapsed).as_secs().max(1))
    }

    /// Counts a request of `key_id`; `Err(seconds)` to wait when its budget is spent.
    fn take(&self, key_id: &str) -> Result<(), u64> {
        const WINDOW: Duration = Duration::from_secs(60);
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, used) = windows.entry(key_id.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *used = 0;
        }
        if *used >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(left.as_secs().max(1));
        }
        *used += 1;
        Ok(())
    }
}

/// Authenticates the request, runs it, and audits it under its key id.
pub(crate) async fn authenticate(
    State(ctx): State<Arc<ApiContext>>,
    mut req: Request,
    next: Next,
) -> Response {
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(String::new, |c| c.0.ip().to_string());
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    // A client that keeps presenting no key or a wrong one is slowed down before the database
    // is asked again (key guessing, a misconfigured client in a loop).
    if let Some(seconds) = ctx.auth_failures.spent(&client_ip) {
        info!(client = %client_ip, "api: too many failed authentications");
        return ApiError::too_many(seconds).into_response();
    }
    let refused = |why: &'static str| {
        let _ = ctx.auth_failures.take(&client_ip);
        ApiError::unauthorized(why).into_response()
    };
    let Some(token) = presented else {
        return refused("an API key is required: Authorization: Bearer sgk_…");
    };
    let Some((id, secret)) = parse_api_key(&token) else {
        return refused("the Authorization header holds no API key");
    };
    let key = match ctx.store.api_key(id).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            info!(key_id = %id, client = %client_ip, "api: unknown key");
            return refused("unknown API key");
        }
        Err(e) => {
            error!(error = %e, "api: key lookup failed");
            return ApiError::internal().into_response();
        }
    };
    let verdict = if key.revoked_at.is_some() {
        let _ = ctx.auth_failures.take(&client_ip);
        Err(ApiError::unauthorized("this API key was revoked"))
    } else if !api_secret_matches(secret, &key.secret_sha256) {
        let _ = ctx.auth_failures.take(&client_ip);
        Err(ApiError::unauthorized("unknown API key"))
    } else if let Err(seconds) = ctx.limit.take(&key.id) {
        Err(ApiError::too_many(seconds))
    } else {
        Ok(())
    };
    let key_id = key.id.clone();
    let response = match verdict {
        Err(refusal) => refusal.into_response(),
        Ok(()) => match (!key.senders.is_empty())
            .then(|| AllowedSenders::parse_list(&key.senders))
            .transpose()
        {
            Ok(senders) => {
                req.extensions_mut().insert(Caller {
                    key,
                    client_ip: client_ip.clone(),
                    senders,
                });
                next.run(req).await
            }
            // Rules are checked when the key is added; a row that does not parse opens nothing.
            Err(e) => {
                error!(key_id = %key_id, error = %e, "api: the key's sender rules do not parse");
                ApiError::forbidden("this key's sender rules cannot be read").into_response()
            }
        },
    };
    if response.extensions().get::<OnRecord>().is_some() {
        return response;
    }
    let record = AuditEvent::ApiRequest {
        key_id: key_id.clone(),
        method,
        path,
        status: response.status().as_u16(),
        client_ip,
    }
    .into_record();
    if let Err(e) = ctx.store.append_audit(&record).await {
        error!(error = %e, key_id = %key_id, "api: the request could not be audited; not answered");
        return ApiError::internal().into_response();
    }
    response
}
