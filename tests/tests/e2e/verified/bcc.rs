//! Bcc over verified TLS (RFC 5322 §3.6.3): a DANE-verified peer gets every recipient's copy —
//! the blind recipient's too — without `Bcc:` and without the blind address.

use sealgate_testkit::db::TestBackend;

use super::*;
use crate::bcc::{BLIND, assert_no_blind_copy, bcc_fields, copies_for, send_file};
use crate::inspect::fresh_db;
use crate::lab::spki_sha256;

fn verified_tls_copies_have_no_bcc(backend: TestBackend) {
    let (lab, cert) = dane_lab(|_, cert| format!("3 1 1 {}", spki_sha256(cert)));
    let sink = lab.tls_sink(MX_IP, &cert);
    let db = fresh_db(backend);
    let daemon = lab.daemon(&db.url, "");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = format!(
        "From: <{SENDER}>\r\nTo: <{RCPT}>\r\n{}Subject: verified\r\n\r\nNo names here.\r\n",
        bcc_fields()
    );
    let rcpts = [RCPT, BLIND];
    let id = send_file(&daemon, dir.path(), SENDER, &rcpts, data.as_bytes());
    for copy in copies_for(&sink, &rcpts, &daemon) {
        assert!(copy.tls, "delivered in the clear");
        assert_no_blind_copy("verified TLS copy", &copy.data);
        let text = String::from_utf8_lossy(&copy.data);
        assert!(
            text.ends_with(&format!(
                "To: <{RCPT}>\r\nSubject: verified\r\n\r\nNo names here.\r\n"
            )),
            "{text}"
        );
    }
    let db = inspect(&daemon);
    for rcpt in rcpts {
        wait_for(&db, &id, rcpt, "delivered");
    }
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["verification"], "dane", "{attempt}");
}

on_both_backends!(verified_tls_copies_have_no_bcc);
