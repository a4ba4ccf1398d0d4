//! Records of the portal's events: columns, data, and never a secret.

use super::*;

const T: i64 = 1_795_521_600_000_000;

#[test]
fn a_portal_notice_is_about_the_original_and_its_recipient() {
    let rec = AuditEvent::PortalNotice {
        message_id: "m1".into(),
        recipient: "jane@example.test".into(),
        grant_id: "g1".into(),
        expires: T,
        notice_id: "n1".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "portal_notice");
    assert_eq!(rec.message_id.as_deref(), Some("m1"));
    assert_eq!(rec.recipient.as_deref(), Some("jane@example.test"));
    assert_eq!(
        rec.data.to_string(),
        r#"{"expires":"2026-11-24T12:00:00.000000Z","grant_id":"g1","notice_id":"n1"}"#
    );
}

#[test]
fn grant_events_are_about_their_recipient_and_name_the_grant() {
    let grant = |g: &str| (g.to_owned(), "jane@example.test".to_owned());
    let cases = [
        (
            AuditEvent::PortalCodeSent {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                notice_id: "n2".into(),
            },
            "portal_code_sent",
            r#"{"grant_id":"g1","notice_id":"n2"}"#,
        ),
        (
            AuditEvent::PortalCodeFailed {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                failed_attempts: 0,
                locked: true,
            },
            "portal_code_failed",
            r#"{"failed_attempts":0,"grant_id":"g1","locked":true}"#,
        ),
        (
            AuditEvent::PortalVerified {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                how: "passphrase".into(),
            },
            "portal_verified",
            r#"{"grant_id":"g1","how":"passphrase"}"#,
        ),
        (
            AuditEvent::PortalView {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                message_id: "p1".into(),
            },
            "portal_view",
            r#"{"grant_id":"g1","message_id":"p1"}"#,
        ),
        (
            AuditEvent::PortalDownload {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                attachment: "0/1".into(),
                size: 3000,
            },
            "portal_download",
            r#"{"attachment":"0/1","grant_id":"g1","size":3000}"#,
        ),
        (
            AuditEvent::PortalReply {
                grant_id: grant("g1").0,
                recipient: grant("g1").1,
                reply_id: "q2".into(),
            },
            "portal_reply",
            r#"{"grant_id":"g1","reply_id":"q2"}"#,
        ),
    ];
    for (event, kind, data) in cases {
        assert_eq!(event.kind(), kind);
        let rec = event.into_record();
        assert_eq!(rec.kind, kind);
        assert_eq!(rec.message_id, None, "{kind}");
        assert_eq!(
            rec.recipient.as_deref(),
            Some("jane@example.test"),
            "{kind}"
        );
        assert_eq!(rec.data.to_string(), data, "{kind}");
    }
}

#[test]
fn operator_changes_and_purges_are_about_no_message() {
    let revoked = AuditEvent::PortalRevoked {
        grant_id: "g1".into(),
        operator: "admin".into(),
        expires: T,
    }
    .into_record();
    assert_eq!(revoked.kind, "portal_revoked");
    assert_eq!((revoked.message_id, revoked.recipient), (None, None));
    assert_eq!(
        revoked.data.to_string(),
        r#"{"expires":"2026-11-24T12:00:00.000000Z","grant_id":"g1","operator":"admin"}"#
    );
    let extended = AuditEvent::PortalExtended {
        grant_id: "g1".into(),
        operator: "admin".into(),
        expires: T,
    }
    .into_record();
    assert_eq!(extended.kind, "portal_extended");
    assert_eq!(extended.data["expires"], "2026-11-24T12:00:00.000000Z");
    let purged = AuditEvent::PortalPurged {
        portal_message_id: "p1".into(),
    }
    .into_record();
    assert_eq!(purged.kind, "portal_purged");
    assert_eq!((purged.message_id, purged.recipient), (None, None));
    assert_eq!(purged.data.to_string(), r#"{"portal_message_id":"p1"}"#);
}

#[test]
fn refusals_throttling_and_sign_out_name_the_client_and_never_a_secret() {
    let refused = AuditEvent::PortalRefused {
        client_ip: "192.0.2.7".into(),
        action: "reply".into(),
        reason: "foreign-origin".into(),
        origin: Some("https://evil.test".into()),
        grant_id: Some("g1".into()),
        recipient: Some("jane@example.test".into()),
    }
    .into_record();
    assert_eq!(refused.kind, "portal_refused");
    assert_eq!(refused.message_id, None);
    assert_eq!(refused.recipient.as_deref(), Some("jane@example.test"));
    assert_eq!(
        refused.data.to_string(),
        r#"{"action":"reply","client_ip":"192.0.2.7","grant_id":"g1","origin":"https://evil.test","reason":"foreign-origin"}"#
    );
    let bare = AuditEvent::PortalRefused {
        client_ip: "2001:db8::/64".into(),
        action: "code".into(),
        reason: "csrf".into(),
        origin: None,
        grant_id: None,
        recipient: None,
    }
    .into_record();
    assert_eq!(bare.recipient, None);
    assert_eq!(
        bare.data.to_string(),
        r#"{"action":"code","client_ip":"2001:db8::/64","reason":"csrf"}"#
    );
    let throttled = AuditEvent::PortalThrottled {
        client_ip: "192.0.2.7".into(),
        refusals: 10,
        window_secs: 60,
    }
    .into_record();
    assert_eq!(throttled.kind, "portal_throttled");
    assert_eq!((throttled.message_id, throttled.recipient), (None, None));
    assert_eq!(
        throttled.data.to_string(),
        r#"{"client_ip":"192.0.2.7","refusals":10,"window_secs":60}"#
    );
    let out = AuditEvent::PortalSignedOut {
        grant_id: "g1".into(),
        recipient: "jane@example.test".into(),
    }
    .into_record();
    assert_eq!(out.kind, "portal_signed_out");
    assert_eq!(out.recipient.as_deref(), Some("jane@example.test"));
    assert_eq!(out.data.to_string(), r#"{"grant_id":"g1"}"#);
}
