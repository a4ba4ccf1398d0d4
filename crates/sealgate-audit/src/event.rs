//! The audit-event taxonomy. Each variant is one `kind`; its fields become the row's JSON data.

use sealgate_types::AuditRecord;
use sealgate_types::time::rfc3339_micros;
use serde_json::{Map, Value};

/// Something that happened to a message, recorded in the audit log. More kinds (`attempt`,
/// `delivered`, `deferred`, `bounced`, `decision`) are added as the code that emits them lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// Ingress accepted a message and queued it (written with the message row).
    Received {
        /// The queue id.
        message_id: String,
        /// The SMTP client's address.
        client_ip: String,
        /// The EHLO/HELO name it gave.
        helo: String,
        /// Protocol and cipher of the session, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384`;
        /// `None` for plaintext.
        tls: Option<String>,
        /// The authenticated user, if any.
        auth_user: Option<String>,
        /// The envelope sender; empty for the null reverse-path.
        sender: String,
        /// The accepted recipients.
        recipients: Vec<String>,
        /// Message size in bytes.
        size: u64,
        /// SHA-256 of the message as received (hex).
        body_sha256: String,
        /// The `Message-ID:` header, if any.
        header_message_id: Option<String>,
        /// The client gave REQUIRETLS (RFC 8689) on MAIL FROM. Stored only when true, so a
        /// record without the field (every record from before REQUIRETLS) reads as false.
        requiretls: bool,
    },
    /// The policy engine's decision for one recipient, written before any delivery attempt:
    /// the protection level, the method chosen, the fallback chain and the evidence.
    Decision {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// `required` or `none`.
        level: String,
        /// The rule that set the level (`org default`, `domain override`, ...).
        level_source: String,
        /// The chosen method (the head of `chain`).
        method: String,
        /// The ordered fallback chain, chosen method first.
        chain: Vec<String>,
        /// What was probed and found, which rules fired, why preferred methods were skipped.
        evidence: Vec<String>,
        /// Alerts raised (also written as separate `alert` events).
        alerts: Vec<String>,
    },
    /// A security alert an operator must see: a possible downgrade attack, a DNSSEC-bogus
    /// answer, a verified-TLS failure for a domain that had verified TLS before.
    Alert {
        /// The queue id, when the alert arose for a message.
        message_id: Option<String>,
        /// The recipient, when the alert arose for one.
        recipient: Option<String>,
        /// The recipient domain concerned.
        domain: String,
        /// What happened.
        alert: String,
    },
    /// One delivery attempt for one recipient: where it went, how, and what came back.
    Attempt {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// Evidence about the connection and the reply.
        evidence: AttemptEvidence,
    },
    /// The next hop accepted the message for this recipient.
    Delivered {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// The accepting host.
        mx: String,
        /// Its final reply.
        reply: String,
    },
    /// A temporary failure: tried again later.
    Deferred {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// Why.
        reason: String,
        /// When the next attempt is due (microseconds since the epoch).
        next_attempt_at: i64,
    },
    /// A permanent failure, or too old to keep trying: the sender gets a DSN (unless null).
    Bounced {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// Why.
        reason: String,
    },
    /// An operator made a waiting recipient due now (`sealgate queue retry`).
    RetryRequested {
        /// The queue id.
        message_id: String,
        /// The recipient.
        recipient: String,
        /// Who ran the command.
        operator: String,
    },
    /// An operator added an SMTP AUTH user or changed its password (who may relay changed).
    UserSaved {
        /// The user name.
        name: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator removed an SMTP AUTH user.
    UserRemoved {
        /// The user name.
        name: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator imported a recipient's OpenPGP key or S/MIME certificate
    /// (`sealgate keys import`): from now on it may be used to encrypt to these addresses.
    KeyImported {
        /// `pgp` or `smime`.
        kind: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// The addresses it was stored for, lowercase.
        addresses: Vec<String>,
        /// When it expires (Unix seconds), if it does; stored as RFC 3339.
        expires: Option<i64>,
        /// What validation found at import: `usable: …`.
        status: String,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// An operator removed a stored key or certificate (`sealgate keys remove`).
    KeyRemoved {
        /// `pgp` or `smime`.
        kind: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// The addresses it was removed for.
        addresses: Vec<String>,
        /// Who ran the command (the operating-system user), as far as known.
        operator: String,
    },
    /// A recipient's key or certificate was found (in the store or on the network), with
    /// whether it may be used.
    KeyDiscovered {
        /// The queue id, when the lookup was made for a message.
        message_id: Option<String>,
        /// The recipient address looked up.
        address: String,
        /// `pgp` or `smime`.
        kind: String,
        /// Where it was found: `store`, `wkd-advanced`, `wkd-direct`, `openpgpkey` or `smimea`.
        source: String,
        /// The key's or certificate's fingerprint.
        fingerprint: String,
        /// `usable: …` or `unusable: …`.
        validity: String,
    },
}

impl AuditEvent {
    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Received { .. } => "received",
            Self::Decision { .. } => "decision",
            Self::Alert { .. } => "alert",
            Self::Attempt { .. } => "attempt",
            Self::Delivered { .. } => "delivered",
            Self::Deferred { .. } => "deferred",
            Self::Bounced { .. } => "bounced",
            Self::RetryRequested { .. } => "retry_requested",
            Self::UserSaved { .. } => "user_saved",
            Self::UserRemoved { .. } => "user_removed",
            Self::KeyImported { .. } => "key_imported",
            Self::KeyRemoved { .. } => "key_removed",
            Self::KeyDiscovered { .. } => "key_discovered",
        }
    }

    /// The row to append: kind, the message/recipient columns, and the remaining fields as a
    /// JSON object (absent optional fields are left out).
    pub fn into_record(self) -> AuditRecord {
        let kind = self.kind().to_owned();
        match self {
            Self::Received {
                message_id,
                client_ip,
                helo,
                tls,
                auth_user,
                sender,
                recipients,
                size,
                body_sha256,
                header_message_id,
                requiretls,
            } => AuditRecord {
                kind,
                message_id: Some(message_id),
                recipient: None,
                data: object([
                    ("client_ip", Value::from(client_ip)),
                    ("helo", Value::from(helo)),
                    ("tls", Value::from(tls)),
                    ("auth_user", Value::from(auth_user)),
                    ("sender", Value::from(sender)),
                    ("recipients", Value::from(recipients)),
                    ("size", Value::from(size)),
                    ("body_sha256", Value::from(body_sha256)),
                    ("header_message_id", Value::from(header_message_id)),
                    // Absent (not false) without REQUIRETLS: earlier records keep their shape.
                    ("requiretls", requiretls.then_some(true).into()),
                ]),
            },
            Self::Decision {
                message_id,
                recipient,
                level,
                level_source,
                method,
                chain,
                evidence,
                alerts,
            } => about(
                kind,
                message_id,
                recipient,
                object([
                    ("level", level.into()),
                    ("level_source", level_source.into()),
                    ("method", method.into()),
                    ("chain", chain.into()),
                    ("evidence", evidence.into()),
                    ("alerts", alerts.into()),
                ]),
            ),
            Self::Alert {
                message_id,
                recipient,
                domain,
                alert,
            } => AuditRecord {
                kind,
                message_id,
                recipient,
                data: object([("domain", domain.into()), ("alert", alert.into())]),
            },
            Self::Attempt {
                message_id,
                recipient,
                evidence,
            } => {
                let data = match serde_json::to_value(&evidence).unwrap_or_default() {
                    Value::Object(m) => {
                        Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect())
                    }
                    other => other,
                };
                about(kind, message_id, recipient, data)
            }
            Self::Delivered {
                message_id,
                recipient,
                mx,
                reply,
            } => about(
                kind,
                message_id,
                recipient,
                object([("mx", mx.into()), ("reply", reply.into())]),
            ),
            Self::Deferred {
                message_id,
                recipient,
                reason,
                next_attempt_at,
            } => about(
                kind,
                message_id,
                recipient,
                object([
                    ("reason", reason.into()),
                    ("next_attempt_at", next_attempt_at.into()),
                ]),
            ),
            Self::Bounced {
                message_id,
                recipient,
                reason,
            } => about(
                kind,
                message_id,
                recipient,
                object([("reason", reason.into())]),
            ),
            Self::RetryRequested {
                message_id,
                recipient,
                operator,
            } => about(
                kind,
                message_id,
                recipient,
                object([("operator", operator.into())]),
            ),
            Self::UserSaved { name, operator } | Self::UserRemoved { name, operator } => {
                AuditRecord {
                    kind,
                    message_id: None,
                    recipient: None,
                    data: object([
                        ("user", Value::from(name)),
                        ("operator", Value::from(operator)),
                    ]),
                }
            }
            Self::KeyImported {
                kind: key_kind,
                fingerprint,
                addresses,
                expires,
                status,
                operator,
            } => unattached(
                kind,
                object([
                    ("kind", key_kind.into()),
                    ("fingerprint", fingerprint.into()),
                    ("addresses", addresses.into()),
                    ("expires", expires.map(unix_seconds_rfc3339).into()),
                    ("status", status.into()),
                    ("operator", operator.into()),
                ]),
            ),
            Self::KeyRemoved {
                kind: key_kind,
                fingerprint,
                addresses,
                operator,
            } => unattached(
                kind,
                object([
                    ("kind", key_kind.into()),
                    ("fingerprint", fingerprint.into()),
                    ("addresses", addresses.into()),
                    ("operator", operator.into()),
                ]),
            ),
            // About its address, so `audit tail --rcpt` shows it beside the message's events.
            Self::KeyDiscovered {
                message_id,
                address,
                kind: key_kind,
                source,
                fingerprint,
                validity,
            } => AuditRecord {
                kind,
                message_id,
                recipient: Some(address),
                data: object([
                    ("kind", key_kind.into()),
                    ("source", source.into()),
                    ("fingerprint", fingerprint.into()),
                    ("validity", validity.into()),
                ]),
            },
        }
    }
}

/// A record about no message and no recipient (an operator's change).
fn unattached(kind: String, data: Value) -> AuditRecord {
    AuditRecord {
        kind,
        message_id: None,
        recipient: None,
        data,
    }
}

/// Unix seconds as RFC 3339 UTC.
fn unix_seconds_rfc3339(at: i64) -> String {
    rfc3339_micros(at.saturating_mul(1_000_000))
}

/// What an attempt record says. Absent fields are left out of the stored data.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptEvidence {
    /// The MX (or implicit) host name tried.
    pub mx: Option<String>,
    /// The address connected to.
    pub ip: Option<String>,
    /// TLS protocol version, when the session was encrypted.
    pub tls_version: Option<String>,
    /// TLS cipher suite.
    pub cipher: Option<String>,
    /// SHA-256 (hex) of the peer's leaf certificate.
    pub peer_cert_sha256: Option<String>,
    /// The delivery method of this attempt (`tls-verified`, `tls-opportunistic`).
    #[serde(default)]
    pub method: Option<String>,
    /// How the peer was verified (`dane`, `mta-sts`, `pinned`) or why it was not
    /// (`none: opportunistic`, `failed: ...`).
    #[serde(default)]
    pub verification: Option<String>,
    /// The reply code that decided the outcome, if a reply came.
    pub reply_code: Option<u16>,
    /// The reply text (or the connection error) that decided the outcome.
    pub reply: Option<String>,
    /// `delivered`, `temporary` or `permanent`.
    pub outcome: String,
}

fn about(kind: String, message_id: String, recipient: String, data: Value) -> AuditRecord {
    AuditRecord {
        kind,
        message_id: Some(message_id),
        recipient: Some(recipient),
        data,
    }
}

/// A JSON object of the given fields, without the null ones.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let map: Map<String, Value> = fields
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Value::Object(map)
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
