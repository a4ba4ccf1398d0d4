//! The API's OpenAPI 3.1 document, generated from the handlers' annotations (`utoipa`) and
//! served at `GET /v1/openapi.json` (no key needed). `docs/openapi.json` is a copy a test keeps
//! equal (`SEALGATE_BLESS=1 cargo test -p sealgate-api openapi` rewrites it). Its `webhooks`
//! section describes every event Sealgate posts.

use axum::Json;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// An error answer: `{"error": {"code", "message"}}`, the message naming what is wrong.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: error.rs writes the body
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The code and the message of an error answer.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `rate_limited`, `bad_request`,
    /// `invalid`, `too_large`, `unavailable`, `internal`.
    code: String,
    /// What is wrong, naming the field.
    message: String,
}

/// The refusals every operation may answer, each with an [`ErrorBody`].
#[derive(Debug, utoipa::IntoResponses)]
#[allow(dead_code)] // a schema only
pub(crate) enum Refusals {
    /// The request cannot be read.
    #[response(status = 400, description = "The request cannot be read")]
    BadRequest(ErrorBody),
    /// No usable API key.
    #[response(status = 401, description = "No usable API key")]
    Unauthorized(ErrorBody),
    /// The key lacks the scope or the sender.
    #[response(status = 403, description = "The key lacks the scope or the sender")]
    Forbidden(ErrorBody),
    /// A field does not check.
    #[response(
        status = 422,
        description = "A field does not check (named in the message)"
    )]
    Invalid(ErrorBody),
    /// Over a budget.
    #[response(
        status = 429,
        description = "Over the key's budget, or too many failed authentications"
    )]
    RateLimited(ErrorBody),
    /// Not now.
    #[response(status = 503, description = "Could not be done now; nothing written")]
    Unavailable(ErrorBody),
}

/// A JSON object (its members are described in the operation's text).
#[derive(Debug, utoipa::ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)]
pub(crate) struct Object(serde_json::Map<String, Value>);

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sgk_<id>_<secret> (sealgate api-keys add)")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sealgate API",
        description = "Send through Sealgate, follow each recipient, manage webhooks and recipients' keys. Every request carries an API key (Authorization: Bearer sgk_…)."
    ),
    paths(
        crate::submit::post_message,
        crate::messages::get_message,
        crate::messages::list_messages,
        crate::messages::revoke_grant,
        crate::audit::get_audit,
        crate::check::post_check,
        crate::keys::list,
        crate::keys::import,
        crate::keys::remove,
        crate::webhooks::list,
        crate::webhooks::add,
        crate::webhooks::remove,
        crate::webhooks::change,
        crate::webhooks::events,
        crate::webhooks::replay
    ),
    modifiers(&BearerKey)
)]
struct ApiDoc;

/// The document: the operations, and a `webhooks` section with one entry per event type.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let mut hooks = serde_json::Map::new();
    for t in sealgate_types::webhook::EVENT_TYPES {
        hooks.insert(
            (*t).to_owned(),
            json!({
                "post": {
                    "summary": format!("{t}"),
                    "description": "Standard Webhooks 1.0: webhook-id (the same on every attempt: deduplicate on it), webhook-timestamp, webhook-signature (v1 HMAC-SHA256 or v1a Ed25519 over id.timestamp.body). No subject, body or attachment name is ever sent. See docs/webhooks.md.",
                    "parameters": [
                        {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}},
                        {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string"}},
                        {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["type", "timestamp", "data"],
                            "properties": {
                                "type": {"const": t},
                                "timestamp": {"type": "string", "format": "date-time"},
                                "data": {
                                    "type": "object",
                                    "required": ["audit_seq", "audit_hash"],
                                    "properties": {
                                        "message_id": {"type": "string"},
                                        "recipient": {"type": "string"},
                                        "audit_seq": {"type": "integer"},
                                        "audit_hash": {"type": "string"}
                                    }
                                }
                            }
                        }}}
                    },
                    "responses": {
                        "2XX": {"description": "Delivered"},
                        "410": {"description": "The endpoint is disabled"},
                        "429": {"description": "Retried after Retry-After"}
                    }
                }
            }),
        );
    }
    doc["webhooks"] = Value::Object(hooks);
    doc
}

/// `GET /v1/openapi.json`.
pub(crate) async fn get_document() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/openapi.json is what the code generates.
    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap_or_default() + "\n";
        if std::env::var_os("SEALGATE_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the generated document: \
             SEALGATE_BLESS=1 cargo test -p sealgate-api openapi"
        );
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for t in sealgate_types::webhook::EVENT_TYPES {
            assert!(doc["webhooks"].get(*t).is_some(), "{t}");
        }
        assert!(doc["paths"]["/v1/messages"]["post"].is_object());
    }
}
