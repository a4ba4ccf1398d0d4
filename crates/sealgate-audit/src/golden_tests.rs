//! Golden records: every event kind, with its optional fields set and unset, as the row it
//! becomes (kind, message and recipient columns, JSON data). The data of a row is hashed into
//! the chain and read by operators' tools, so its shape must not change by accident: this
//! test compares against `golden/records.jsonl`. A deliberate change of shape is written with
//! `SEALGATE_BLESS=1 cargo test -p sealgate-audit golden` and reviewed in the diff.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::event::AttemptEvidence;

fn s(v: &str) -> String {
    v.to_owned()
}

fn some(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Micros of 2026-12-07T10:00:00.123456Z.
const AT: i64 = 1_796_637_600_123_456;

fn samples() -> Vec<AuditEvent> {
    vec![
        AuditEvent::Received {
            message_id: s("m1"),
            client_ip: s("192.0.2.7"),
            helo: s("client.example.org"),
            tls: some("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
            auth_user: some("ehr"),
            sender: s("a@example.org"),
            recipients: vec![s("b@example.net"), s("c@example.net")],
            size: 1234,
            body_sha256: s("ab01"),
            header_message_id: some("<x@example.org>"),
            requiretls: true,
            tenant: None,
            api_key: None,
            origin: None,
        },
        AuditEvent::Received {
            message_id: s("m2"),
            client_ip: s("::1"),
            helo: s("[::1]"),
            tls: None,
            auth_user: None,
            sender: String::new(),
            recipients: vec![],
            size: 0,
            body_sha256: s("e3b0"),
            header_message_id: None,
            requiretls: false,
            tenant: None,
            api_key: None,
            origin: None,
        },
        AuditEvent::Received {
            message_id: s("m3"),
            client_ip: s("40.92.3.4"),
            helo: s("mail.protection.outlook.com"),
            tls: some("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
            auth_user: None,
            sender: s("ehr@clinic.example"),
            recipients: vec![s("b@example.net")],
            size: 12,
            body_sha256: s("cd02"),
            header_message_id: None,
            requiretls: false,
            tenant: Some(crate::TenantMatch {
                name: s("clinic-m365"),
                factors: vec![s("network"), s("certificate"), s("ms-tenant-id")],
            }),
            api_key: None,
            origin: None,
        },
        AuditEvent::Received {
            message_id: s("m4"),
            client_ip: s("192.0.2.7"),
            helo: s("api"),
            tls: some("HTTPS"),
            auth_user: None,
            sender: s("ehr@clinic.example"),
            recipients: vec![s("b@example.net")],
            size: 640,
            body_sha256: s("ef03"),
            header_message_id: some("<m4@relay.example>"),
            requiretls: false,
            tenant: None,
            api_key: some("0123456789abcdef"),
            origin: some("api"),
        },
        AuditEvent::Decision {
            message_id: s("m1"),
            recipient: s("b@example.net"),
            level: s("required"),
            level_source: s("org default"),
            method: s("tls-verified"),
            chain: vec![s("tls-verified"), s("portal")],
            evidence: vec![s("dane: valid")],
            alerts: vec![],
        },
        AuditEvent::Alert {
            message_id: some("m1"),
            recipient: some("b@example.net"),
            domain: s("example.net"),
            alert: s("downgrade"),
        },
        AuditEvent::Alert {
            message_id: None,
            recipient: None,
            domain: s("example.net"),
            alert: s("bogus DNSSEC"),
        },
        AuditEvent::Attempt {
            message_id: s("m1"),
            recipient: s("b@example.net"),
            evidence: AttemptEvidence {
                mx: some("mx.example.net"),
                ip: some("192.0.2.25"),
                tls_version: some("TLSv1.3"),
                cipher: some("TLS13_AES_128_GCM_SHA256"),
                peer_cert_sha256: some("cd02"),
                method: some("tls-verified"),
                verification: some("dane-ee"),
                reply_code: Some(250),
                reply: some("250 2.0.0 ok"),
                outcome: sealgate_types::Outcome::Delivered,
            },
        },
        AuditEvent::Attempt {
            message_id: s("m1"),
            recipient: s("c@example.net"),
            evidence: AttemptEvidence {
                outcome: sealgate_types::Outcome::Temporary,
                ..AttemptEvidence::default()
            },
        },
        AuditEvent::PossibleDuplicate {
            message_id: s("m1"),
            recipient: s("b@example.net"),
            previous_owner: s("node-a:12:ff"),
            sending_since: AT,
        },
        AuditEvent::Delivered {
            message_id: s("m1"),
            recipient: s("b@example.net"),
            mx: s("mx.example.net"),
            reply: s("250 2.0.0 ok"),
        },
        AuditEvent::Deferred {
            message_id: s("m1"),
            recipient: s("c@example.net"),
            reason: s("451 4.3.0 later"),
            next_attempt_at: AT,
            held: None,
        },
        AuditEvent::Deferred {
            message_id: s("m2"),
            recipient: s("d@example.net"),
            reason: s("4.7.0 the policy chose the secure portal, which is not enabled"),
            next_attempt_at: AT,
            held: some("portal-disabled"),
        },
        AuditEvent::Bounced {
            message_id: s("m1"),
            recipient: s("c@example.net"),
            reason: s("550 5.1.1 no such user"),
        },
        AuditEvent::RetryRequested {
            message_id: s("m1"),
            recipient: s("c@example.net"),
            operator: s("root"),
        },
        AuditEvent::UserSaved {
            name: s("ehr"),
            operator: s("root"),
        },
        AuditEvent::UserRemoved {
            name: s("ehr"),
            operator: s("root"),
        },
        AuditEvent::KeyImported {
            kind: s("pgp"),
            fingerprint: s("0123ABCD"),
            addresses: vec![s("bob@example.net")],
            expires: Some(1_800_000_000),
            status: s("valid"),
            operator: s("root"),
        },
        AuditEvent::KeyImported {
            kind: s("smime"),
            fingerprint: s("4567"),
            addresses: vec![],
            expires: None,
            status: s("expired"),
            operator: s("root"),
        },
        AuditEvent::KeyRemoved {
            kind: s("pgp"),
            fingerprint: s("0123ABCD"),
            addresses: vec![s("bob@example.net")],
            operator: s("root"),
        },
        AuditEvent::KeyDiscovered {
            message_id: some("m1"),
            address: s("bob@example.net"),
            kind: s("pgp"),
            source: s("wkd"),
            fingerprint: s("0123ABCD"),
            validity: s("valid"),
        },
        AuditEvent::KeyDiscovered {
            message_id: None,
            address: s("bob@example.net"),
            kind: s("smime"),
            source: s("smimea"),
            fingerprint: s("4567"),
            validity: s("expired"),
        },
        AuditEvent::PortalNotice {
            message_id: s("m1"),
            recipient: s("b@example.net"),
            grant_id: s("g1"),
            expires: AT,
            notice_id: s("n1"),
        },
        AuditEvent::PortalCodeSent {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            notice_id: s("n2"),
        },
        AuditEvent::PortalCodeFailed {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            failed_attempts: 3,
            locked: true,
        },
        AuditEvent::PortalVerified {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            how: s("code"),
        },
        AuditEvent::PortalView {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            message_id: s("pm1"),
        },
        AuditEvent::PortalDownload {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            attachment: s("scan.pdf"),
            size: 4096,
        },
        AuditEvent::PortalReply {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
            reply_id: s("r1"),
        },
        AuditEvent::PortalRevoked {
            grant_id: s("g1"),
            operator: s("root"),
            expires: AT,
        },
        AuditEvent::PortalExtended {
            grant_id: s("g1"),
            operator: s("root"),
            expires: AT,
        },
        AuditEvent::PortalPurged {
            portal_message_id: s("pm1"),
        },
        AuditEvent::AuthSucceeded {
            user: s("ehr"),
            client_ip: s("192.0.2.7"),
            mechanism: s("PLAIN"),
        },
        AuditEvent::AuthFailed {
            user: some("ehr"),
            client_ip: s("192.0.2.7"),
            mechanism: s("LOGIN"),
            reason: s("invalid credentials"),
        },
        AuditEvent::AuthFailed {
            user: None,
            client_ip: s("192.0.2.7"),
            mechanism: s("PLAIN"),
            reason: s("malformed credentials"),
        },
        AuditEvent::AuthThrottled {
            user: some("ehr"),
            client: s("192.0.2.7"),
            failures: 10,
            until: AT,
        },
        AuditEvent::AuthThrottled {
            user: None,
            client: s("192.0.2.0/24"),
            failures: 30,
            until: AT,
        },
        AuditEvent::PortalRefused {
            client_ip: s("192.0.2.9"),
            action: s("verify"),
            reason: s("cross-site request"),
            origin: some("https://evil.example"),
            grant_id: some("g1"),
            recipient: some("b@example.net"),
        },
        AuditEvent::PortalRefused {
            client_ip: s("192.0.2.9"),
            action: s("open"),
            reason: s("unknown link"),
            origin: None,
            grant_id: None,
            recipient: None,
        },
        AuditEvent::PortalThrottled {
            client_ip: s("192.0.2.9"),
            refusals: 20,
            window_secs: 600,
        },
        AuditEvent::PortalSignedOut {
            grant_id: s("g1"),
            recipient: s("b@example.net"),
        },
        AuditEvent::UserSendersChanged {
            name: s("ehr"),
            senders: vec![s("@clinic.example")],
            operator: s("root"),
        },
        AuditEvent::SenderRefused {
            client_ip: s("192.0.2.7"),
            auth_user: some("ehr"),
            network: None,
            field: s("MAIL FROM"),
            sender: s("x@other.example"),
        },
        AuditEvent::SenderRefused {
            client_ip: s("10.0.0.5"),
            auth_user: None,
            network: some("ehr"),
            field: s("From"),
            sender: s("x@other.example"),
        },
        AuditEvent::DkimKeyAdded {
            domain: s("clinic.example"),
            selector: s("s2026"),
            algorithm: s("ed25519-sha256"),
            operator: s("root"),
        },
        AuditEvent::DkimKeyRemoved {
            domain: s("clinic.example"),
            selector: s("s2025"),
            operator: s("root"),
        },
        AuditEvent::ApiKeyAdded {
            key_id: s("0123456789abcdef"),
            name: s("ehr-prod"),
            scopes: vec![s("send"), s("read")],
            senders: vec![s("@clinic.example")],
            operator: s("root"),
        },
        AuditEvent::ApiKeyRevoked {
            key_id: s("0123456789abcdef"),
            name: s("ehr-prod"),
            operator: s("root"),
        },
        AuditEvent::ApiRequest {
            key_id: s("0123456789abcdef"),
            method: s("GET"),
            path: s("/v1/messages/m1"),
            status: 200,
            client_ip: s("192.0.2.7"),
        },
        AuditEvent::WebhookAdded {
            endpoint_id: s("wh_0123456789abcdef"),
            target: s("https://ehr.clinic.example:443"),
            events: vec![s("recipient.delivered"), s("recipient.returned")],
            operator: s("root"),
        },
        AuditEvent::WebhookRemoved {
            endpoint_id: s("wh_0123456789abcdef"),
            operator: s("api:0123456789abcdef"),
        },
        AuditEvent::WebhookDisabled {
            endpoint_id: s("wh_0123456789abcdef"),
            reason: s("the endpoint answered 410 Gone"),
            operator: s("dispatcher"),
        },
        AuditEvent::WebhookEnabled {
            endpoint_id: s("wh_0123456789abcdef"),
            operator: s("root"),
        },
        AuditEvent::WebhookRotated {
            endpoint_id: s("wh_0123456789abcdef"),
            previous_until: 1_700_086_400_000_000,
            operator: s("root"),
        },
        AuditEvent::Returned {
            message_id: s("m1"),
            recipient: s("jane@example.test"),
            status: s("5.1.1"),
            reply_code: Some(550),
            diagnostic: s("smtp; 550 5.1.1 <jane@example.test>: Recipient address rejected"),
            reported_by: Some(s("dns; mx.example.test")),
            client_ip: s("192.0.2.9"),
            dsn_id: Some(s("m2")),
        },
        AuditEvent::BounceIgnored {
            message_id: None,
            recipient: None,
            address: s("rtn-7-0000000000000000@bounces.relay.example"),
            reason: s("not a return path of ours (the token does not check)"),
            client_ip: s("192.0.2.9"),
        },
        AuditEvent::WebhookReplayed {
            endpoint_id: None,
            since: 1_700_000_000_000_000,
            until: 1_700_003_600_000_000,
            include_delivered: false,
            events: 12,
            operator: s("root"),
        },
    ]
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/records.jsonl")
}

fn rendered() -> String {
    let mut out = String::new();
    for event in samples() {
        let rec = event.into_record();
        let line = json!({
            "kind": rec.kind,
            "message_id": rec.message_id,
            "recipient": rec.recipient,
            // As hashed and stored: the data's text.
            "data": rec.data.to_string(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// The variant's number. The match is exhaustive, so a new kind does not compile until it is
/// numbered here, and then fails [`every_kind_has_a_golden_sample`] until it has a sample.
fn variant(e: &AuditEvent) -> usize {
    match e {
        AuditEvent::Received { .. } => 0,
        AuditEvent::Decision { .. } => 1,
        AuditEvent::Alert { .. } => 2,
        AuditEvent::Attempt { .. } => 3,
        AuditEvent::PossibleDuplicate { .. } => 4,
        AuditEvent::Delivered { .. } => 5,
        AuditEvent::Deferred { .. } => 6,
        AuditEvent::Bounced { .. } => 7,
        AuditEvent::RetryRequested { .. } => 8,
        AuditEvent::UserSaved { .. } => 9,
        AuditEvent::UserRemoved { .. } => 10,
        AuditEvent::KeyImported { .. } => 11,
        AuditEvent::KeyRemoved { .. } => 12,
        AuditEvent::KeyDiscovered { .. } => 13,
        AuditEvent::PortalNotice { .. } => 14,
        AuditEvent::PortalCodeSent { .. } => 15,
        AuditEvent::PortalCodeFailed { .. } => 16,
        AuditEvent::PortalVerified { .. } => 17,
        AuditEvent::PortalView { .. } => 18,
        AuditEvent::PortalDownload { .. } => 19,
        AuditEvent::PortalReply { .. } => 20,
        AuditEvent::PortalRevoked { .. } => 21,
        AuditEvent::PortalExtended { .. } => 22,
        AuditEvent::PortalPurged { .. } => 23,
        AuditEvent::AuthSucceeded { .. } => 24,
        AuditEvent::AuthFailed { .. } => 25,
        AuditEvent::AuthThrottled { .. } => 26,
        AuditEvent::PortalRefused { .. } => 27,
        AuditEvent::PortalThrottled { .. } => 28,
        AuditEvent::PortalSignedOut { .. } => 29,
        AuditEvent::UserSendersChanged { .. } => 30,
        AuditEvent::SenderRefused { .. } => 31,
        AuditEvent::DkimKeyAdded { .. } => 32,
        AuditEvent::DkimKeyRemoved { .. } => 33,
        AuditEvent::ApiKeyAdded { .. } => 34,
        AuditEvent::ApiKeyRevoked { .. } => 35,
        AuditEvent::ApiRequest { .. } => 36,
        AuditEvent::WebhookAdded { .. } => 37,
        AuditEvent::WebhookRemoved { .. } => 38,
        AuditEvent::WebhookDisabled { .. } => 39,
        AuditEvent::WebhookEnabled { .. } => 40,
        AuditEvent::WebhookRotated { .. } => 41,
        AuditEvent::WebhookReplayed { .. } => 42,
        AuditEvent::Returned { .. } => 43,
        AuditEvent::BounceIgnored { .. } => 44,
    }
}

const VARIANTS: usize = 45;

#[test]
fn every_kind_has_a_golden_sample() {
    let mut seen = [false; VARIANTS];
    for e in samples() {
        seen[variant(&e)] = true;
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "variants without a golden sample: {missing:?}"
    );
}

#[test]
fn golden_records_keep_their_shape() {
    let now = rendered();
    if std::env::var_os("SEALGATE_BLESS").is_some() {
        std::fs::create_dir_all(golden_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(golden_path(), &now).expect("write golden");
        return;
    }
    let golden = std::fs::read_to_string(golden_path()).expect("golden/records.jsonl");
    for (n, (want, got)) in golden.lines().zip(now.lines()).enumerate() {
        assert_eq!(got, want, "sample {n} changed shape");
    }
    assert_eq!(now.lines().count(), golden.lines().count(), "sample count");
}

#[test]
fn the_serialized_variant_name_is_the_kind() {
    for e in samples() {
        let value = serde_json::to_value(&e).expect("serializes");
        let name = value
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .expect("one variant");
        assert_eq!(name, e.kind());
    }
}
