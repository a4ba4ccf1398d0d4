//! Events as rows: [`AuditEvent::into_record`] puts the message and recipient an event is
//! about in their columns and every other field in the JSON data.

use sealgate_types::AuditRecord;
use sealgate_types::time::rfc3339_micros;
use serde_json::{Map, Value};

use crate::event::AuditEvent;

impl AuditEvent {
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
            Self::PossibleDuplicate {
                message_id,
                recipient,
                previous_owner,
                sending_since,
            } => about(
                kind,
                message_id,
                recipient,
                object([
                    ("previous_owner", previous_owner.into()),
                    ("sending_since", rfc3339_micros(sending_since).into()),
                ]),
            ),
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
            Self::PortalNotice {
                message_id,
                recipient,
                grant_id,
                expires,
                notice_id,
            } => about(
                kind,
                message_id,
                recipient,
                object([
                    ("grant_id", grant_id.into()),
                    ("expires", rfc3339_micros(expires).into()),
                    ("notice_id", notice_id.into()),
                ]),
            ),
            Self::PortalCodeSent {
                grant_id,
                recipient,
                notice_id,
            } => on_grant(kind, grant_id, recipient, [("notice_id", notice_id.into())]),
            Self::PortalCodeFailed {
                grant_id,
                recipient,
                failed_attempts,
                locked,
            } => on_grant(
                kind,
                grant_id,
                recipient,
                [
                    ("failed_attempts", failed_attempts.into()),
                    ("locked", locked.into()),
                ],
            ),
            Self::PortalVerified {
                grant_id,
                recipient,
                how,
            } => on_grant(kind, grant_id, recipient, [("how", how.into())]),
            Self::PortalView {
                grant_id,
                recipient,
                message_id,
            } => on_grant(
                kind,
                grant_id,
                recipient,
                [("message_id", message_id.into())],
            ),
            Self::PortalDownload {
                grant_id,
                recipient,
                attachment,
                size,
            } => on_grant(
                kind,
                grant_id,
                recipient,
                [("attachment", attachment.into()), ("size", size.into())],
            ),
            Self::PortalReply {
                grant_id,
                recipient,
                reply_id,
            } => on_grant(kind, grant_id, recipient, [("reply_id", reply_id.into())]),
            Self::PortalRevoked {
                grant_id,
                operator,
                expires,
            }
            | Self::PortalExtended {
                grant_id,
                operator,
                expires,
            } => unattached(
                kind,
                object([
                    ("grant_id", grant_id.into()),
                    ("operator", operator.into()),
                    ("expires", rfc3339_micros(expires).into()),
                ]),
            ),
            Self::PortalPurged { portal_message_id } => unattached(
                kind,
                object([("portal_message_id", portal_message_id.into())]),
            ),
            Self::AuthSucceeded {
                user,
                client_ip,
                mechanism,
            } => unattached(
                kind,
                object([
                    ("user", user.into()),
                    ("client_ip", client_ip.into()),
                    ("mechanism", mechanism.into()),
                ]),
            ),
            Self::AuthFailed {
                user,
                client_ip,
                mechanism,
                reason,
            } => unattached(
                kind,
                object([
                    ("user", user.into()),
                    ("client_ip", client_ip.into()),
                    ("mechanism", mechanism.into()),
                    ("reason", reason.into()),
                ]),
            ),
            Self::AuthThrottled {
                user,
                client,
                failures,
                until,
            } => unattached(
                kind,
                object([
                    ("user", user.into()),
                    ("client", client.into()),
                    ("failures", failures.into()),
                    ("until", rfc3339_micros(until).into()),
                ]),
            ),
            Self::PortalRefused {
                client_ip,
                action,
                reason,
                origin,
                grant_id,
                recipient,
            } => AuditRecord {
                kind,
                message_id: None,
                recipient,
                data: object([
                    ("client_ip", client_ip.into()),
                    ("action", action.into()),
                    ("reason", reason.into()),
                    ("origin", origin.into()),
                    ("grant_id", grant_id.into()),
                ]),
            },
            Self::PortalThrottled {
                client_ip,
                refusals,
                window_secs,
            } => unattached(
                kind,
                object([
                    ("client_ip", client_ip.into()),
                    ("refusals", refusals.into()),
                    ("window_secs", window_secs.into()),
                ]),
            ),
            Self::PortalSignedOut {
                grant_id,
                recipient,
            } => on_grant(kind, grant_id, recipient, []),
            Self::UserSendersChanged {
                name,
                senders,
                operator,
            } => unattached(
                kind,
                object([
                    ("user", name.into()),
                    ("senders", senders.into()),
                    ("operator", operator.into()),
                ]),
            ),
            Self::SenderRefused {
                client_ip,
                auth_user,
                network,
                field,
                sender,
            } => unattached(
                kind,
                object([
                    ("client_ip", client_ip.into()),
                    ("auth_user", auth_user.into()),
                    ("network", network.into()),
                    ("field", field.into()),
                    ("sender", sender.into()),
                ]),
            ),
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

/// A record about a portal grant: no message column, its recipient in the recipient column
/// (so `audit tail --rcpt` shows it), the grant id and `fields` (without the null ones) as
/// the data.
fn on_grant<const N: usize>(
    kind: String,
    grant_id: String,
    recipient: String,
    fields: [(&str, Value); N],
) -> AuditRecord {
    let mut data = Map::new();
    data.insert("grant_id".to_owned(), grant_id.into());
    data.extend(
        fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v)),
    );
    AuditRecord {
        kind,
        message_id: None,
        recipient: Some(recipient),
        data: Value::Object(data),
    }
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

#[cfg(test)]
#[path = "portal_event_tests.rs"]
mod portal_tests;

#[cfg(test)]
#[path = "sender_event_tests.rs"]
mod sender_event_tests;

#[cfg(test)]
#[path = "golden_tests.rs"]
mod golden_tests;
