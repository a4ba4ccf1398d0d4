//! The durable queue (layer L3).
//!
//! Owns the recipient lifecycle around the store: accepting a message (sealing its body and
//! writing the message, one `queued` row per recipient and the `received` audit event in one
//! transaction) and, later, claiming and settling recipients for delivery. Ingress and
//! delivery meet only here. Depends on store, crypto and audit; never on a worker crate.

mod bcc;
mod delivery;
pub mod dsn;
mod error;
mod recorder;
mod retry;
pub mod returns;

pub use bcc::{field_named, without_blind_copies, without_fields, without_fields_where};
pub use delivery::{
    AttemptReport, Claim, Group, NoticeBuilder, NoticeContent, NoticeKind, NoticeRecipient,
    NoticeRequest, Settled,
};
pub use dsn::dsn_builder;
pub use error::QueueError;
pub use recorder::Recorder;
pub use retry::RetryPolicy;

use std::sync::Arc;

use sealgate_audit::AuditEvent;
use sealgate_crypto::{KeyRing, sha256_hex};
use sealgate_store::{NewMessage, NewNotice, Store};
use sealgate_types::{MessageId, time};
use tracing::info;

/// A message as ingress hands it over, before it is sealed.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    /// The queue id, chosen by ingress (it appears in the Received header).
    pub id: MessageId,
    /// Envelope sender; empty for the null reverse-path `<>`.
    pub sender: String,
    /// Envelope recipients, deduplicated.
    pub recipients: Vec<String>,
    /// The full message (Received header included). It is delivered as it is, except that its
    /// `Bcc:` and `Resent-Bcc:` fields are removed when it is queued
    /// ([`without_blind_copies`]).
    pub content: Vec<u8>,
    /// SHA-256 (hex) of the data exactly as the client sent it (before our Received header).
    pub client_data_sha256: String,
    /// Size in bytes of the data exactly as the client sent it (after dot-unstuffing).
    pub client_data_size: u64,
    /// The Message-ID header, if the message has one.
    pub header_message_id: Option<String>,
    /// The client's IP address.
    pub client_ip: String,
    /// The EHLO/HELO name the client gave.
    pub helo: String,
    /// The SMTP AUTH user, if any.
    pub auth_user: Option<String>,
    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384" when the session was encrypted.
    pub tls: Option<String>,
    /// The client gave REQUIRETLS on MAIL FROM (RFC 8689): delivery must keep to verified TLS
    /// with peers that offer REQUIRETLS, whatever a `TLS-Required: No` header says.
    pub requiretls: bool,
    /// Who wrote the message: `None` for a client's (what ingress sets); [`ORIGIN_NOTICE`]
    /// for a notice or one-time code Sealgate wrote itself, [`ORIGIN_REPLY`] for a reply
    /// written on the portal.
    pub origin: Option<String>,
    /// The cloud tenant a client's message was relayed for (`[[relay.tenant]]`), recorded in
    /// the `received` event.
    pub tenant: Option<sealgate_audit::TenantMatch>,
    /// The API key a message submitted through the REST API came with (its public id),
    /// recorded in the `received` event.
    pub api_key: Option<String>,
}

/// The origin of messages Sealgate writes itself without protected content (portal notices
/// and one-time codes): delivered as phi-free (see [`Claim::phi_free`]).
pub const ORIGIN_NOTICE: &str = "portal-notice";

/// The origin of a recipient's reply written on the portal: protected content, normal policy.
pub const ORIGIN_REPLY: &str = "portal-reply";

/// The queue: the store plus the key ring that seals bodies at rest.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    keys: Arc<KeyRing>,
    /// `[returns]`: return paths of this relay; `None` = off.
    returns: Option<Arc<returns::ReturnPaths>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// A queue over `store`, sealing with `keys`.
    pub fn new(store: Store, keys: Arc<KeyRing>) -> Self {
        Self {
            store,
            keys,
            returns: None,
        }
    }

    /// This queue with return paths on `domain` (`[returns]`), tagged under its key ring.
    pub fn with_returns(mut self, domain: Option<&str>) -> Self {
        self.returns = domain.map(|d| Arc::new(returns::ReturnPaths::new(d, self.keys.clone())));
        self
    }

    /// The return paths, when `[returns]` is on.
    pub fn returns(&self) -> Option<&Arc<returns::ReturnPaths>> {
        self.returns.as_ref()
    }

    /// The sealing key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }

    /// The sealing key ring, shared (for workers that outlive a borrow).
    pub fn shared_key_ring(&self) -> Arc<KeyRing> {
        self.keys.clone()
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Accepts a message durably: when this returns `Ok`, the sealed message, its queued
    /// recipients and the `received` audit event are committed together; on `Err` nothing
    /// of it was written.
    pub async fn accept(&self, msg: IncomingMessage) -> Result<MessageId, QueueError> {
        let id = msg.id;
        let notice = self.prepare(msg)?;
        self.store
            .enqueue(&notice.message, &notice.recipients, &notice.audit)
            .await?;
        Ok(id)
    }

    /// [`Queue::accept`] under an API idempotency key (`key` names the message and the answer
    /// it gets): `Ok(None)` when queued now, `Ok(Some(first))` when the key was used in the
    /// window already — then nothing was written.
    pub async fn accept_idempotent(
        &self,
        msg: IncomingMessage,
        key: &sealgate_store::IdempotencyRow,
        window_start: i64,
    ) -> Result<Option<sealgate_store::IdempotencyRow>, QueueError> {
        let notice = self.prepare(msg)?;
        Ok(self
            .store
            .enqueue_idempotent(
                &notice.message,
                &notice.recipients,
                &notice.audit,
                key,
                window_start,
            )
            .await?)
    }

    /// Seals a message and builds its rows and `received` audit record, without writing them
    /// (for callers that queue it together with another change, such as the portal's
    /// deposits and one-time codes: see [`NewNotice::into_parts`]).
    ///
    /// RFC 5322 §3.6.3: the blind recipients named in `Bcc:` must not be shown to the other
    /// recipients, so the message is sealed (and later delivered by every method) without its
    /// `Bcc:` and `Resent-Bcc:` fields. The audit keeps the digest of the data as the client
    /// sent it.
    pub fn prepare(&self, msg: IncomingMessage) -> Result<NewNotice, QueueError> {
        let id = msg.id.to_string();
        let (content, removed) = without_blind_copies(&msg.content);
        if removed > 0 {
            info!(msg_id = %id, fields = removed, "blind-copy header fields removed");
        }
        let sealed = self.keys.seal(&content, id.as_bytes())?;
        let message = NewMessage {
            id: id.clone(),
            received_at: time::now_micros(),
            sender: msg.sender.clone(),
            size: content.len() as i64,
            body_sha256: msg.client_data_sha256.clone(),
            header_message_id: msg.header_message_id.clone(),
            client_ip: msg.client_ip.clone(),
            helo: msg.helo.clone(),
            auth_user: msg.auth_user.clone(),
            tls: msg.tls.clone(),
            requiretls: msg.requiretls,
            key_id: sealed.key_id,
            sealed_body: sealed.blob,
            origin: msg.origin.clone(),
        };
        let event = AuditEvent::Received {
            message_id: id,
            client_ip: msg.client_ip,
            helo: msg.helo,
            tls: msg.tls,
            auth_user: msg.auth_user,
            sender: msg.sender,
            recipients: msg.recipients.clone(),
            size: msg.client_data_size,
            body_sha256: msg.client_data_sha256,
            header_message_id: msg.header_message_id,
            requiretls: msg.requiretls,
            tenant: msg.tenant,
            api_key: msg.api_key,
            origin: msg.origin,
        };
        Ok(NewNotice {
            message,
            recipients: msg.recipients,
            audit: event.into_record(),
        })
    }

    /// Opens a queued message's content by its id as stored (rows and claims carry it as
    /// text); an id that is not a queue id is an error, never read as another one.
    pub async fn open_stored(&self, id: &str) -> Result<Vec<u8>, QueueError> {
        let parsed = id.parse().map_err(|source| QueueError::BadId {
            id: id.to_owned(),
            source,
        })?;
        self.open(&parsed).await
    }

    /// Opens a queued message's content (for delivery and for operators).
    pub async fn open(&self, id: &MessageId) -> Result<Vec<u8>, QueueError> {
        let key = id.to_string();
        let row = self
            .store
            .message(&key)
            .await?
            .ok_or_else(|| QueueError::NotFound(key.clone()))?;
        Ok(self.keys.open(&row.sealed_body, key.as_bytes())?)
    }
}

/// SHA-256 of client data, as recorded in the `received` event.
pub fn data_digest(data: &[u8]) -> String {
    sha256_hex(data)
}

#[cfg(test)]
mod tests;
