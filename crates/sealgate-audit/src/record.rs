//! Events as rows: [`AuditEvent::into_record`] puts the message and recipient an event is
//! about in their columns ([`AuditEvent::into_subject`]) and every other field in the JSON
//! data, as the event type serializes it (`event.rs`: the column fields are skipped there).
//! The shape of every kind is pinned by `golden/records.jsonl`.

use sealgate_types::AuditRecord;
use serde_json::{Map, Value};

use crate::event::AuditEvent;

impl AuditEvent {
    /// The row to append: kind, the message/recipient columns, and the remaining fields as a
    /// JSON object (absent optional fields are left out).
    pub fn into_record(self) -> AuditRecord {
        let kind = self.kind().to_owned();
        let data = Value::Object(data_of(&self));
        let (message_id, recipient) = self.into_subject();
        AuditRecord {
            kind,
            message_id,
            recipient,
            data,
        }
    }

    /// The message and recipient the event is about: the row's columns, so that
    /// `audit tail --id/--rcpt` finds it. A portal grant's events are about its recipient; a
    /// discovered key about its address; an operator's change, an AUTH event and a refused
    /// client about neither.
    fn into_subject(self) -> (Option<String>, Option<String>) {
        match self {
            Self::Received { message_id, .. } => (Some(message_id), None),
            Self::Decision {
                message_id,
                recipient,
                ..
            }
            | Self::Attempt {
                message_id,
                recipient,
                ..
            }
            | Self::PossibleDuplicate {
                message_id,
                recipient,
                ..
            }
            | Self::Delivered {
                message_id,
                recipient,
                ..
            }
            | Self::Deferred {
                message_id,
                recipient,
                ..
            }
            | Self::Bounced {
                message_id,
                recipient,
                ..
            }
            | Self::RetryRequested {
                message_id,
                recipient,
                ..
            }
            | Self::PortalNotice {
                message_id,
                recipient,
                ..
            }
            | Self::Returned {
                message_id,
                recipient,
                ..
            } => (Some(message_id), Some(recipient)),
            Self::BounceIgnored {
                message_id,
                recipient,
                ..
            } => (message_id, recipient),
            Self::Alert {
                message_id,
                recipient,
                ..
            } => (message_id, recipient),
            Self::KeyDiscovered {
                message_id,
                address,
                ..
            } => (message_id, Some(address)),
            Self::PortalCodeSent { recipient, .. }
            | Self::PortalCodeFailed { recipient, .. }
            | Self::PortalVerified { recipient, .. }
            | Self::PortalView { recipient, .. }
            | Self::PortalDownload { recipient, .. }
            | Self::PortalReply { recipient, .. }
            | Self::PortalSignedOut { recipient, .. } => (None, Some(recipient)),
            Self::PortalRefused { recipient, .. } => (None, recipient),
            Self::UserSaved { .. }
            | Self::UserRemoved { .. }
            | Self::KeyImported { .. }
            | Self::KeyRemoved { .. }
            | Self::PortalRevoked { .. }
            | Self::PortalExtended { .. }
            | Self::PortalPurged { .. }
            | Self::AuthSucceeded { .. }
            | Self::AuthFailed { .. }
            | Self::AuthThrottled { .. }
            | Self::PortalThrottled { .. }
            | Self::UserSendersChanged { .. }
            | Self::SenderRefused { .. }
            | Self::DkimKeyAdded { .. }
            | Self::DkimKeyRemoved { .. }
            | Self::ApiKeyAdded { .. }
            | Self::ApiKeyRevoked { .. }
            | Self::ApiRequest { .. }
            | Self::WebhookAdded { .. }
            | Self::WebhookRemoved { .. }
            | Self::WebhookDisabled { .. }
            | Self::WebhookEnabled { .. }
            | Self::WebhookRotated { .. }
            | Self::WebhookReplayed { .. } => (None, None),
        }
    }
}

/// The event's fields as serialized (`{"<kind>": {fields}}`, the variant's object taken out),
/// without the null ones.
fn data_of(event: &AuditEvent) -> Map<String, Value> {
    // Strings, numbers, booleans and lists of strings only: serializing cannot fail.
    let Ok(Value::Object(outer)) = serde_json::to_value(event) else {
        return Map::new();
    };
    match outer.into_iter().next() {
        Some((_, Value::Object(fields))) => {
            fields.into_iter().filter(|(_, v)| !v.is_null()).collect()
        }
        _ => Map::new(),
    }
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
