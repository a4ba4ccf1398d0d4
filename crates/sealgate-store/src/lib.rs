//! Sealgate storage (layer L1): the only crate that speaks SQL.
//!
//! Owns the schema and its forward-only migrations (`migrations/sqlite`, `migrations/postgres`,
//! embedded at build time), the connection pool over SQLite or PostgreSQL (sqlx `Any`), the
//! durable queue rows, users, recipients' keys and certificates, the secure portal's sealed
//! messages, grants and sessions, and the append-only,
//! hash-chained audit log: audit rows are written in the same transaction as the change they
//! describe, and the database itself refuses to update or delete them.
//!
//! Depends only on `sealgate-types`; it must not depend on any other Sealgate crate.

mod api_keys;
mod audit;
mod dkim;
pub mod error;
mod keys;
mod lease;
mod model;
mod mta_sts;
mod portal;
mod portal_access;
mod queue;
mod returns;
mod schema;
mod security;
mod store;
#[cfg(test)]
mod test_support;
mod users;
mod webhooks;

pub use api_keys::ApiKeyRow;
pub use audit::AuditListener;
pub use dkim::StoredDkimKey;
pub use error::StoreError;
pub use keys::StoredKey;
pub use lease::{NewNotice, OperatorAction, SettleItem, Settlement};
pub use model::{AuditFilter, Envelope, MessageRow, NewMessage, RecipientRow, UserRow};
pub use mta_sts::StsPolicyRow;
pub use portal::{GrantRow, PortalDeposit, PortalMessageRow, PortalOutgoing, PortalSessionRow};
pub use queue::IdempotencyRow;
pub use schema::{SchemaStatus, serving_role_sql};
pub use security::{
    TlsRptCounts, TlsRptFailure, TlsRptFailureCount, TlsRptSession, VerifiedDomain,
};
pub use store::{Backend, Store};
pub use webhooks::{
    NewWebhookEndpoint, OutboxRow, WebhookEndpointRow, WebhookOutcome, WebhookReplay,
};
