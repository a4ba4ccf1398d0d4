//! Recall through the REST API (`POST /v1/messages/{id}/recipients/{rcpt}/revoke`): the
//! sender's system withdraws a recipient's portal grant; the link opens nothing from then on,
//! the revocation is audited under the API key, and keys for other senders cannot see or touch
//! the grant.

use sealgate_testkit::db::TestBackend;

use super::*;

/// The status of a GET of `url` (the lab CA is not trusted here: `-k`, loopback only).
fn status_of(url: &str) -> u16 {
    crate::api::curl("GET", url, None, &["-k"], None).status
}

#[test]
fn the_senders_system_recalls_a_portal_message_and_its_link_opens_nothing_more() {
    let p = PortalLab::start_with(
        TestBackend::Sqlite,
        "",
        "[api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n",
    );
    let id = p.send(
        &[RCPT],
        format!("From: {SENDER}\r\nTo: {RCPT}\r\nSubject: recall test\r\n\r\nResults inside.\r\n")
            .as_bytes(),
    );
    let link = p.link_for(RCPT);
    assert_eq!(status_of(&link), 200, "the link works before the recall");

    let api = crate::api::api_bound(&p.daemon).0;
    let key = |name: &str, domain: &str| {
        let out = p.daemon.cli([
            "api-keys",
            "add",
            name,
            "--scope",
            "send",
            "--sender-domain",
            domain,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let clinic = key("ehr", "clinic.test");
    let stranger = key("other", "other.test");
    let revoke = |key: &str, rcpt: &str| -> (u16, Value) {
        let url = format!("http://{api}/v1/messages/{id}/recipients/{rcpt}/revoke");
        let a = crate::api::curl("POST", &url, Some(key), &[], None);
        (a.status, a.body)
    };

    // Another sender's key sees no grant; an unknown recipient has none.
    assert_eq!(revoke(&stranger, RCPT).0, 404);
    assert_eq!(revoke(&clinic, OTHER).0, 404);
    assert_eq!(status_of(&link), 200, "a refused recall changed nothing");

    let (status, body) = revoke(&clinic, RCPT);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked"], true);
    assert!(
        matches!(status_of(&link), 404 | 410),
        "the link still opens"
    );
    assert_eq!(revoke(&clinic, RCPT).0, 409, "revoked already");

    let revoked = p.events("portal_revoked");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    let key_id = &clinic[4..20];
    assert_eq!(revoked[0]["operator"], format!("api:{key_id}"));
}
