//! Webhook events: which audit rows are announced to webhook endpoints, under which event
//! type, and with which thin payload.
//!
//! An event is derived from one audit row when that row is appended, in the same transaction
//! (the store's outbox), so an event exists exactly when its state change committed. Payloads
//! carry ids, the recipient address, the method and the transport evidence, reply codes and the
//! audit row's sequence number and hash. They never carry a subject, a body or an attachment's
//! name; of the message's header only its Message-ID (`message.received`).

use serde_json::{Map, Value, json};

use crate::audit::{AuditEntry, AuditRecord};
use crate::time::rfc3339_micros;

/// Every event type, in the order the documentation lists them.
pub const EVENT_TYPES: &[&str] = &[
    "message.received",
    "recipient.decided",
    "recipient.delivered",
    "recipient.deferred",
    "recipient.held",
    "recipient.bounced",
    "recipient.returned",
    "portal.notified",
    "portal.opened",
    "portal.replied",
    "portal.expired",
    "portal.revoked",
    "security.downgrade_alert",
    "security.possible_duplicate",
    "key.discovered",
];

/// The event types an endpoint added with `--final-only` takes: the ends of a recipient's
/// walk (and the portal's and security events, which are not steps of a walk).
pub const FINAL_EVENT_TYPES: &[&str] = &[
    "recipient.delivered",
    "recipient.bounced",
    "recipient.returned",
    "portal.notified",
    "portal.opened",
    "portal.replied",
    "portal.expired",
    "portal.revoked",
    "security.downgrade_alert",
    "security.possible_duplicate",
];

/// Whether an audit row of `kind` may announce an event (cheap: before the row is built).
pub fn may_announce(kind: &str) -> bool {
    matches!(
        kind,
        "received"
            | "decision"
            | "delivered"
            | "deferred"
            | "bounced"
            | "returned"
            | "portal_notice"
            | "portal_view"
            | "portal_reply"
            | "portal_purged"
            | "portal_revoked"
            | "alert"
            | "possible_duplicate"
            | "key_discovered"
    )
}

/// Whether `name` is an event type.
pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.contains(&name)
}

/// One event about to be written to the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    /// The event type (one of [`EVENT_TYPES`]).
    pub event_type: &'static str,
    /// The webhook-id: `evt_<seq>_<first 12 hex digits of the row's hash>`, the same for every
    /// endpoint and attempt (receivers deduplicate on it).
    pub id: String,
    /// The queue id the event is about, when the row names it.
    pub message_id: Option<String>,
    /// The portal grant the event is about (portal events name their message through it).
    pub grant_id: Option<String>,
    /// The payload without the queue id, which the store adds when it finds it through the
    /// grant (see [`WebhookEvent::body`]).
    pub payload: Value,
}

impl WebhookEvent {
    /// The JSON body sent: `{"type", "timestamp", "data"}` (Standard Webhooks' shape), with
    /// `message_id` in `data` when known.
    pub fn body(&self, message_id: Option<&str>) -> String {
        let mut payload = self.payload.clone();
        if let (Some(id), Some(data)) = (
            message_id,
            payload.get_mut("data").and_then(Value::as_object_mut),
        ) {
            data.insert("message_id".into(), Value::String(id.to_owned()));
        }
        payload.to_string()
    }
}

/// The event `entry` announces, if any. `before` is the row appended just before it in the same
/// transaction (a delivery's `attempt` row, whose transport evidence the `delivered` event
/// carries).
pub fn event_of(entry: &AuditEntry, before: Option<&AuditRecord>) -> Option<WebhookEvent> {
    let data: Value = serde_json::from_str(&entry.data).ok()?;
    event_from(entry, &data, before)
}

/// [`event_of`] with the row's data as the appender holds it (not parsed back from its text).
pub fn event_from(
    entry: &AuditEntry,
    data: &Value,
    before: Option<&AuditRecord>,
) -> Option<WebhookEvent> {
    let field = |name: &str| data.get(name).cloned().filter(|v| !v.is_null());
    let mut out = Map::new();
    let put = |out: &mut Map<String, Value>, name: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(name.to_owned(), v);
        }
    };
    let event_type = match entry.kind.as_str() {
        "received" => {
            put(&mut out, "recipients", field("recipients"));
            put(&mut out, "sender", field("sender"));
            put(&mut out, "size", field("size"));
            put(&mut out, "header_message_id", field("header_message_id"));
            put(
                &mut out,
                "origin",
                Some(field("origin").unwrap_or_else(|| json!("smtp"))),
            );
            put(&mut out, "api_key", field("api_key"));
            put(&mut out, "requiretls", field("requiretls"));
            "message.received"
        }
        "decision" => {
            put(&mut out, "level", field("level"));
            put(&mut out, "method", field("method"));
            put(&mut out, "chain", field("chain"));
            "recipient.decided"
        }
        "delivered" => {
            put(&mut out, "mx", field("mx"));
            put(&mut out, "reply_code", reply_code(field("reply")));
            let attempt = before
                .filter(|b| {
                    b.kind == "attempt"
                        && b.message_id == entry.message_id
                        && b.recipient == entry.recipient
                })
                .map(|b| &b.data);
            if let Some(a) = attempt {
                let get = |name: &str| a.get(name).cloned().filter(|v| !v.is_null());
                put(&mut out, "method", get("method"));
                put(&mut out, "ip", get("ip"));
                put(&mut out, "tls", get("tls_version"));
                put(&mut out, "cipher", get("cipher"));
                put(&mut out, "verification", get("verification"));
                put(&mut out, "peer_cert_sha256", get("peer_cert_sha256"));
                if let Some(code) = get("reply_code") {
                    out.insert("reply_code".into(), code);
                }
            }
            "recipient.delivered"
        }
        "deferred" => {
            put(&mut out, "reason", field("reason"));
            put(&mut out, "reply_code", reply_code(field("reason")));
            put(
                &mut out,
                "next_attempt_at",
                field("next_attempt_at")
                    .and_then(|v| v.as_i64())
                    .map(|t| json!(rfc3339_micros(t))),
            );
            match field("held") {
                Some(hold) => {
                    out.insert("hold".into(), hold);
                    "recipient.held"
                }
                None => "recipient.deferred",
            }
        }
        "bounced" => {
            put(&mut out, "reason", field("reason"));
            put(&mut out, "reply_code", reply_code(field("reason")));
            "recipient.bounced"
        }
        "returned" => {
            put(&mut out, "reply_code", field("reply_code"));
            put(&mut out, "status", field("status"));
            put(&mut out, "reason", field("diagnostic"));
            put(&mut out, "reported_by", field("reported_by"));
            "recipient.returned"
        }
        "portal_notice" => {
            put(&mut out, "grant_id", field("grant_id"));
            put(&mut out, "expires", field("expires"));
            put(&mut out, "notice_id", field("notice_id"));
            "portal.notified"
        }
        "portal_view" => {
            put(&mut out, "grant_id", field("grant_id"));
            "portal.opened"
        }
        "portal_reply" => {
            put(&mut out, "grant_id", field("grant_id"));
            put(&mut out, "reply_id", field("reply_id"));
            "portal.replied"
        }
        "portal_purged" => {
            put(&mut out, "portal_message_id", field("portal_message_id"));
            "portal.expired"
        }
        "portal_revoked" => {
            put(&mut out, "grant_id", field("grant_id"));
            put(&mut out, "revoked_by", field("operator"));
            "portal.revoked"
        }
        // Alerts raised while delivering a message: a verification that failed where it was
        // demanded or held before. Alerts about the relay itself (a failing webhook endpoint)
        // name no message and are not announced to the endpoints.
        "alert" if entry.message_id.is_some() => {
            put(&mut out, "domain", field("domain"));
            put(&mut out, "alert", field("alert"));
            "security.downgrade_alert"
        }
        "possible_duplicate" => {
            put(&mut out, "previous_owner", field("previous_owner"));
            put(&mut out, "sending_since", field("sending_since"));
            "security.possible_duplicate"
        }
        "key_discovered" => {
            put(&mut out, "kind", field("kind"));
            put(&mut out, "source", field("source"));
            put(&mut out, "fingerprint", field("fingerprint"));
            put(&mut out, "validity", field("validity"));
            "key.discovered"
        }
        _ => return None,
    };
    let grant_id = out
        .get("grant_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(m) = &entry.message_id {
        out.insert("message_id".into(), json!(m));
    }
    if let Some(r) = &entry.recipient {
        let name = if entry.kind == "key_discovered" {
            "address"
        } else {
            "recipient"
        };
        out.insert(name.into(), json!(r));
    }
    out.insert("audit_seq".into(), json!(entry.seq));
    out.insert("audit_hash".into(), json!(entry.hash));
    let prefix = entry.hash.get(..12).unwrap_or(&entry.hash);
    Some(WebhookEvent {
        event_type,
        id: format!("evt_{}_{prefix}", entry.seq),
        message_id: entry.message_id.clone(),
        grant_id,
        payload: json!({
            "type": event_type,
            "timestamp": rfc3339_micros(entry.at),
            "data": Value::Object(out),
        }),
    })
}

/// The three-digit reply code a reply text starts with (`"550 5.1.1 no such user"` → 550).
fn reply_code(reply: Option<Value>) -> Option<Value> {
    let text = reply?;
    let text = text.as_str()?;
    let code = text.get(..3)?;
    let n: u16 = code.parse().ok()?;
    let follows = text
        .as_bytes()
        .get(3)
        .is_none_or(|b| *b == b' ' || *b == b'-');
    ((200..600).contains(&n) && follows).then(|| json!(n))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(kind: &str, message: Option<&str>, rcpt: Option<&str>, data: Value) -> AuditEntry {
        AuditEntry {
            seq: 42,
            at: 1_700_000_000_000_000,
            kind: kind.to_owned(),
            message_id: message.map(str::to_owned),
            recipient: rcpt.map(str::to_owned),
            data: data.to_string(),
            prev_hash: "0".repeat(64),
            hash: "abcdef0123456789".repeat(4),
        }
    }

    #[test]
    fn a_delivery_carries_its_attempts_transport_evidence_and_nothing_of_the_message() {
        let attempt = AuditRecord {
            kind: "attempt".into(),
            message_id: Some("m1".into()),
            recipient: Some("pat@example.test".into()),
            data: json!({"mx": "mx.example.test", "ip": "192.0.2.1", "tls_version": "TLSv1.3",
                "method": "tls-verified", "verification": "dane", "reply_code": 250,
                "reply": "250 ok", "outcome": "delivered"}),
        };
        let e = entry(
            "delivered",
            Some("m1"),
            Some("pat@example.test"),
            json!({"mx": "mx.example.test", "reply": "250 2.0.0 ok"}),
        );
        let ev = event_of(&e, Some(&attempt)).unwrap();
        assert_eq!(ev.event_type, "recipient.delivered");
        assert_eq!(ev.id, "evt_42_abcdef012345");
        let body: Value = serde_json::from_str(&ev.body(None)).unwrap();
        assert_eq!(body["type"], "recipient.delivered");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000000Z");
        let d = &body["data"];
        assert_eq!(d["message_id"], "m1");
        assert_eq!(d["recipient"], "pat@example.test");
        assert_eq!(d["verification"], "dane");
        assert_eq!(d["tls"], "TLSv1.3");
        assert_eq!(d["method"], "tls-verified");
        assert_eq!(d["reply_code"], 250);
        assert_eq!(d["audit_seq"], 42);
        assert_eq!(d["audit_hash"], "abcdef0123456789".repeat(4));

        // Another recipient's attempt lends nothing.
        let mut other = attempt.clone();
        other.recipient = Some("someone@example.test".into());
        let ev = event_of(&e, Some(&other)).unwrap();
        assert!(ev.payload["data"].get("verification").is_none());
    }

    #[test]
    fn a_hold_is_its_own_type_and_reply_codes_are_read_only_from_a_reply() {
        let held = entry(
            "deferred",
            Some("m"),
            Some("r@x.test"),
            json!({"reason": "portal off", "next_attempt_at": 0, "held": "portal-disabled"}),
        );
        let ev = event_of(&held, None).unwrap();
        assert_eq!(ev.event_type, "recipient.held");
        assert_eq!(ev.payload["data"]["hold"], "portal-disabled");
        assert!(ev.payload["data"].get("reply_code").is_none());
        let bounced = entry(
            "bounced",
            Some("m"),
            Some("r@x.test"),
            json!({"reason": "550 5.1.1 no such user"}),
        );
        assert_eq!(
            event_of(&bounced, None).unwrap().payload["data"]["reply_code"],
            550
        );
        let odd = entry(
            "bounced",
            Some("m"),
            Some("r@x.test"),
            json!({"reason": "5500 things"}),
        );
        assert!(
            event_of(&odd, None).unwrap().payload["data"]
                .get("reply_code")
                .is_none()
        );
    }

    #[test]
    fn every_kind_that_announces_is_known_before_its_row_is_built() {
        for kind in [
            "received",
            "decision",
            "delivered",
            "deferred",
            "bounced",
            "returned",
            "portal_notice",
            "portal_view",
            "portal_reply",
            "portal_purged",
            "portal_revoked",
            "alert",
            "possible_duplicate",
            "key_discovered",
            "attempt",
            "auth_failed",
            "api_request",
            "webhook_added",
            "bounce_ignored",
        ] {
            let e = entry(kind, Some("m"), Some("r@x.test"), json!({}));
            if event_of(&e, None).is_some() {
                assert!(may_announce(kind), "{kind}");
            } else {
                assert!(!may_announce(kind), "{kind} is announced by nothing");
            }
        }
    }

    #[test]
    fn rows_that_are_not_events_are_not_announced() {
        for kind in [
            "attempt",
            "auth_failed",
            "api_request",
            "user_saved",
            "portal_code_sent",
        ] {
            assert!(event_of(&entry(kind, Some("m"), None, json!({})), None).is_none());
        }
        // An alert about the relay itself (no message) is not a downgrade alert.
        let own = entry(
            "alert",
            None,
            None,
            json!({"domain": "hooks.example", "alert": "x"}),
        );
        assert!(event_of(&own, None).is_none());
        let downgrade = entry(
            "alert",
            Some("m"),
            Some("r@x.test"),
            json!({"domain": "x.test"}),
        );
        assert_eq!(
            event_of(&downgrade, None).unwrap().event_type,
            "security.downgrade_alert"
        );
    }

    #[test]
    fn a_received_message_names_its_origin_and_every_type_is_listed() {
        let ev = event_of(
            &entry(
                "received",
                Some("m"),
                None,
                json!({"recipients": ["a@x.test"], "sender": "s@y.test", "size": 10,
                    "client_ip": "127.0.0.1", "helo": "h", "body_sha256": "00"}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(ev.payload["data"]["origin"], "smtp");
        assert!(ev.payload["data"].get("client_ip").is_none());
        assert!(ev.payload["data"].get("body_sha256").is_none());
        for t in FINAL_EVENT_TYPES {
            assert!(is_event_type(t), "{t}");
        }
    }
}
