//! Records of every event kind: kind, columns and data as stored.

use super::*;

#[test]
fn received_becomes_a_record_with_its_fields_as_data() {
    let rec = AuditEvent::Received {
        message_id: "m1".into(),
        client_ip: "192.0.2.7".into(),
        helo: "client.example.org".into(),
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        auth_user: None,
        sender: String::new(),
        recipients: vec!["a@example.net".into(), "b@example.net".into()],
        size: 1234,
        body_sha256: "ab".into(),
        header_message_id: None,
        requiretls: false,
        tenant: None,
        api_key: None,
        origin: None,
    }
    .into_record();
    assert_eq!(rec.kind, "received");
    assert_eq!(rec.message_id.as_deref(), Some("m1"));
    assert_eq!(rec.recipient, None);
    assert_eq!(
        rec.data.to_string(),
        r#"{"body_sha256":"ab","client_ip":"192.0.2.7","helo":"client.example.org","#.to_owned()
            + r#""recipients":["a@example.net","b@example.net"],"sender":"","size":1234,"#
            + r#""tls":"TLSv1.3 TLS13_AES_256_GCM_SHA384"}"#
    );
}

#[test]
fn received_records_requiretls_only_when_the_client_asked_for_it() {
    let event = |requiretls| AuditEvent::Received {
        message_id: "m1".into(),
        client_ip: "192.0.2.7".into(),
        helo: "client.example.org".into(),
        tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".into()),
        auth_user: None,
        sender: "a@example.org".into(),
        recipients: vec!["b@example.net".into()],
        size: 1,
        body_sha256: "ab".into(),
        header_message_id: None,
        requiretls,
        tenant: None,
        api_key: None,
        origin: None,
    };
    let with = event(true).into_record().data;
    assert_eq!(with["requiretls"], Value::Bool(true), "{with}");
    let without = event(false).into_record().data;
    assert!(without.get("requiretls").is_none(), "{without}");
}

const PGP_FPR: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

#[test]
fn key_imported_records_addresses_expiry_and_status_about_no_message() {
    let rec = AuditEvent::KeyImported {
        kind: "pgp".into(),
        fingerprint: PGP_FPR.into(),
        addresses: vec!["bob@example.net".into(), "b@example.net".into()],
        expires: Some(1_795_521_600),
        status: "usable: encryption subkey 89AB (ECDH cv25519)".into(),
        operator: "admin".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "key_imported");
    assert_eq!((rec.message_id, rec.recipient), (None, None));
    assert_eq!(
        rec.data.to_string(),
        format!(
            r#"{{"addresses":["bob@example.net","b@example.net"],"expires":"2026-11-24T12:00:00.000000Z","fingerprint":"{PGP_FPR}","kind":"pgp","operator":"admin","status":"usable: encryption subkey 89AB (ECDH cv25519)"}}"#
        )
    );
}

#[test]
fn key_imported_without_expiry_leaves_the_field_out() {
    let data = AuditEvent::KeyImported {
        kind: "smime".into(),
        fingerprint: "ab".repeat(32),
        addresses: vec!["bob@example.net".into()],
        expires: None,
        status: "usable: rsaEncryption 2048".into(),
        operator: "admin".into(),
    }
    .into_record()
    .data;
    assert!(data.get("expires").is_none(), "{data}");
    assert_eq!(data["kind"], "smime");
}

#[test]
fn key_removed_names_the_key_and_its_addresses() {
    let rec = AuditEvent::KeyRemoved {
        kind: "pgp".into(),
        fingerprint: PGP_FPR.into(),
        addresses: vec!["bob@example.net".into()],
        operator: "admin".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "key_removed");
    assert_eq!((rec.message_id, rec.recipient), (None, None));
    assert_eq!(
        rec.data.to_string(),
        format!(
            r#"{{"addresses":["bob@example.net"],"fingerprint":"{PGP_FPR}","kind":"pgp","operator":"admin"}}"#
        )
    );
}

#[test]
fn key_discovered_is_about_its_address_and_message_and_prints_on_one_line() {
    let rec = AuditEvent::KeyDiscovered {
        message_id: Some("m1".into()),
        address: "bob@example.net".into(),
        kind: "pgp".into(),
        source: "wkd-advanced".into(),
        fingerprint: PGP_FPR.into(),
        validity: "unusable: expired at 2026-11-24T12:00:00.000000Z".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "key_discovered");
    assert_eq!(rec.message_id.as_deref(), Some("m1"));
    assert_eq!(rec.recipient.as_deref(), Some("bob@example.net"));
    let entry = sealgate_types::AuditEntry {
        seq: 7,
        at: 1_795_521_600_000_000,
        kind: rec.kind,
        message_id: rec.message_id,
        recipient: rec.recipient,
        data: rec.data.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    assert_eq!(
        crate::format_line(&entry),
        format!(
            "2026-11-24T12:00:00.000000Z #7 key_discovered msg=m1 rcpt=bob@example.net \
             fingerprint={PGP_FPR} kind=pgp source=wkd-advanced \
             validity=\"unusable: expired at 2026-11-24T12:00:00.000000Z\""
        )
    );
}

#[test]
fn key_discovered_without_a_message_has_no_message_column() {
    let rec = AuditEvent::KeyDiscovered {
        message_id: None,
        address: "bob@example.net".into(),
        kind: "smime".into(),
        source: "smimea".into(),
        fingerprint: "ab".repeat(32),
        validity: "usable: rsaEncryption 2048".into(),
    }
    .into_record();
    assert_eq!(rec.message_id, None);
    assert_eq!(rec.data["source"], "smimea");
}

#[test]
fn possible_duplicate_names_the_node_that_was_sending_and_since_when() {
    let rec = AuditEvent::PossibleDuplicate {
        message_id: "m1".into(),
        recipient: "bob@example.net".into(),
        previous_owner: "mx-a:1234:0195f3a2".into(),
        sending_since: 1_795_521_600_000_000,
    }
    .into_record();
    assert_eq!(rec.kind, "possible_duplicate");
    assert_eq!(rec.message_id.as_deref(), Some("m1"));
    assert_eq!(rec.recipient.as_deref(), Some("bob@example.net"));
    assert_eq!(
        rec.data.to_string(),
        r#"{"previous_owner":"mx-a:1234:0195f3a2","sending_since":"2026-11-24T12:00:00.000000Z"}"#
    );
}

#[test]
fn auth_events_name_user_client_and_mechanism_and_nothing_secret() {
    let ok = AuditEvent::AuthSucceeded {
        user: "ehr".into(),
        client_ip: "192.0.2.7".into(),
        mechanism: "PLAIN".into(),
    }
    .into_record();
    assert_eq!(ok.kind, "auth_succeeded");
    assert_eq!((ok.message_id, ok.recipient), (None, None));
    assert_eq!(
        ok.data.to_string(),
        r#"{"client_ip":"192.0.2.7","mechanism":"PLAIN","user":"ehr"}"#
    );
    let failed = AuditEvent::AuthFailed {
        user: None,
        client_ip: "192.0.2.7".into(),
        mechanism: "LOGIN".into(),
        reason: "malformed credentials".into(),
    }
    .into_record();
    assert_eq!(failed.kind, "auth_failed");
    assert_eq!(
        failed.data.to_string(),
        r#"{"client_ip":"192.0.2.7","mechanism":"LOGIN","reason":"malformed credentials"}"#
    );
    let throttled = AuditEvent::AuthThrottled {
        user: Some("ehr".into()),
        client: "2001:db8::/64".into(),
        failures: 10,
        until: 1_000_000,
    }
    .into_record();
    assert_eq!(throttled.kind, "auth_throttled");
    assert_eq!(
        throttled.data.to_string(),
        r#"{"client":"2001:db8::/64","failures":10,"until":"1970-01-01T00:00:01.000000Z","user":"ehr"}"#
    );
}
