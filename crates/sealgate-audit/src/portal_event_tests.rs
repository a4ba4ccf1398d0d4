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
