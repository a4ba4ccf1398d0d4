//! Records of the sender-binding kinds: a user's binding changed, a sender refused.

use super::*;

#[test]
fn user_senders_changed_records_the_whole_binding_about_no_message() {
    let rec = AuditEvent::UserSendersChanged {
        name: "ehr".into(),
        senders: vec!["@clinic.example".into(), "billing@hospital.example".into()],
        operator: "root".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "user_senders_changed");
    assert_eq!((rec.message_id, rec.recipient), (None, None));
    assert_eq!(
        rec.data.to_string(),
        r#"{"operator":"root","senders":["@clinic.example","billing@hospital.example"],"user":"ehr"}"#
    );
}

#[test]
fn sender_refused_names_the_user_or_the_network_and_the_field() {
    let rec = AuditEvent::SenderRefused {
        client_ip: "192.0.2.7".into(),
        auth_user: Some("alice".into()),
        network: None,
        field: "header-from".into(),
        sender: "ceo@clinic.example".into(),
    }
    .into_record();
    assert_eq!(rec.kind, "sender_refused");
    assert_eq!((rec.message_id, rec.recipient), (None, None));
    assert_eq!(
        rec.data.to_string(),
        r#"{"auth_user":"alice","client_ip":"192.0.2.7","field":"header-from","sender":"ceo@clinic.example"}"#
    );
    let by_network = AuditEvent::SenderRefused {
        client_ip: "10.1.2.3".into(),
        auth_user: None,
        network: Some("ehr".into()),
        field: "mail-from".into(),
        sender: "ceo@clinic.example".into(),
    }
    .into_record();
    assert_eq!(by_network.data["network"], "ehr");
    assert!(by_network.data.get("auth_user").is_none());
}
