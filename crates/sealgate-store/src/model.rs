//! Rows going in and out of the store.

use sealgate_types::RecipientState;

/// A message accepted by ingress, about to be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Queue id (a UUIDv7 in text form).
    pub id: String,
    /// When the final `.` was received, micros since the epoch.
    pub received_at: i64,
    /// Envelope sender; empty for the null reverse-path `<>`.
    pub sender: String,
    /// Size of the message as received, in bytes.
    pub size: i64,
    /// SHA-256 of the message as received (hex).
    pub body_sha256: String,
    /// The `Message-ID:` header, if any.
    pub header_message_id: Option<String>,
    /// The SMTP client's address.
    pub client_ip: String,
    /// The EHLO/HELO name it gave.
    pub helo: String,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
    /// Protocol and cipher of the inbound TLS session, if any.
    pub tls: Option<String>,
    /// The client asked for REQUIRETLS (RFC 8689): every onward hop must be verified TLS and
    /// offer REQUIRETLS itself, or the message is not delivered.
    pub requiretls: bool,
    /// Id of the key that sealed the body.
    pub key_id: String,
    /// The body, sealed with AES-256-GCM under `key_id`.
    pub sealed_body: Vec<u8>,
    /// Who wrote the message: `None` for a client's message; `"portal-notice"` for a notice
    /// or one-time code Sealgate wrote itself (no protected content); `"portal-reply"` for a
    /// recipient's reply written on the portal.
    pub origin: Option<String>,
}

/// A stored message: the same fields as [`NewMessage`].
pub type MessageRow = NewMessage;

/// What claiming needs of a message besides its recipients (see [`crate::Store::envelopes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Envelope sender; empty for the null reverse-path.
    pub sender: String,
    /// When the message was accepted (micros).
    pub received_at: i64,
    /// The client asked for REQUIRETLS (RFC 8689).
    pub requiretls: bool,
    /// Who wrote the message (see [`NewMessage::origin`]).
    pub origin: Option<String>,
}

/// One recipient of one message, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRow {
    /// Row id.
    pub id: i64,
    /// The message's queue id.
    pub message_id: String,
    /// The recipient address.
    pub rcpt: String,
    /// Where delivery stands.
    pub state: RecipientState,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Not to be attempted before this time (micros).
    pub next_attempt_at: i64,
    /// The last reply or reason, if any.
    pub last_reply: Option<String>,
    /// The node holding the delivery lease, if claimed.
    pub lease_owner: Option<String>,
    /// When that lease runs out (micros).
    pub lease_until: Option<i64>,
    /// Last change (micros).
    pub updated_at: i64,
    /// When the sender was told delivery is delayed, if ever.
    pub warned_at: Option<i64>,
    /// The node that was cleared to send this recipient's message data and has not settled
    /// the attempt yet (see [`crate::Store::commit_batch`]).
    pub sending_owner: Option<String>,
    /// Since when (micros).
    pub sending_since: Option<i64>,
    /// A deferred recipient held by policy: the hold's name (`portal-disabled`, ...).
    pub held: Option<String>,
}

/// A submission user (the password hash is only read through `user_password_hash`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// When the user was first added (micros).
    pub created_at: i64,
    /// Which envelope and header senders the user may use (empty: none).
    pub senders: sealgate_types::AllowedSenders,
}

/// Which audit rows to read. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only rows about this queue id.
    pub message_id: Option<String>,
    /// Only rows about this recipient (exact match).
    pub recipient: Option<String>,
    /// Only rows written at or after this time (micros).
    pub since: Option<i64>,
}
