//! Bcc inside PGP/MIME and S/MIME (RFC 5322 §3.6.3): every recipient's copy — the blind
//! recipient's too — decrypted by GnuPG or `openssl cms`, holds neither `Bcc:` nor the blind
//! address, inside the protected entity or outside it.

use sealgate_testkit::db::TestBackend;
use sealgate_testkit::gpg::{GpgHome, KeySpec};
use sealgate_testkit::smime::{EmailCertSpec, cms_decrypt, issue_email};

use super::*;
use crate::bcc::{BLIND, assert_no_blind_copy, bcc_fields, copies_for, send_file};
use crate::inspect::fresh_db;

/// [`message`] with the blind-copy fields among its header fields, after `To:`.
fn message_with_bcc() -> Vec<u8> {
    let text = String::from_utf8(message()).expect("utf-8 test message");
    let to = format!("To: Jane <{RCPT}>\r\n");
    text.replacen(&to, &format!("{to}{}", bcc_fields()), 1)
        .into_bytes()
}

#[test]
fn pgp_mime_copies_decrypted_by_gnupg_have_no_bcc() {
    let lab = lab("");
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    // One GnuPG home holds both recipients' secret keys, so it opens every copy.
    let home = GpgHome::new();
    let keys = [
        home.gen_key(RCPT, KeySpec::Default),
        home.gen_key(BLIND, KeySpec::Default),
    ];
    let db = fresh_db(TestBackend::Sqlite);
    let daemon = lab.daemon_with(&db.url, "", "");
    for (i, fpr) in keys.iter().enumerate() {
        let file = write(
            dir.path(),
            &format!("key{i}.asc"),
            home.export_public(fpr, true),
        );
        import(&daemon, &file);
    }
    let rcpts = [RCPT, BLIND];
    send_file(&daemon, dir.path(), SENDER, &rcpts, &message_with_bcc());

    for copy in copies_for(&sink, &rcpts, &daemon) {
        assert!(
            header(&copy.data).contains("multipart/encrypted"),
            "{}",
            header(&copy.data)
        );
        assert_no_blind_copy("PGP/MIME outer message", &copy.data);
        let opened = home.decrypt(&copy.data);
        assert!(opened.ok, "gpg could not decrypt: {}", opened.stderr);
        assert_no_blind_copy("PGP/MIME entity decrypted by gpg", &opened.plaintext);
        assert_eq!(body(&opened.plaintext), body(&message()));
    }
}

#[test]
fn s_mime_copies_decrypted_by_openssl_have_no_bcc() {
    let lab = lab("");
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = [RCPT, BLIND].map(|who| issue_email(&lab.ca, who, EmailCertSpec::default()));
    let db = fresh_db(TestBackend::Sqlite);
    let smime = format!(
        "[smime]\nca_file = {:?}\n",
        lab.ca_file().display().to_string()
    );
    let daemon = lab.daemon_with(&db.url, "", &smime);
    for (i, cert) in certs.iter().enumerate() {
        let (file, _) = cert.write_to(dir.path(), &format!("rcpt{i}"));
        import(&daemon, &file);
    }
    let rcpts = [RCPT, BLIND];
    send_file(&daemon, dir.path(), SENDER, &rcpts, &message_with_bcc());

    for copy in copies_for(&sink, &rcpts, &daemon) {
        assert!(
            header(&copy.data).contains("application/pkcs7-mime"),
            "{}",
            header(&copy.data)
        );
        assert_no_blind_copy("S/MIME outer message", &copy.data);
        let who = usize::from(copy.rcpts[0] == BLIND);
        let opened = cms_decrypt(&copy.data, &certs[who].cert_pem, &certs[who].key_pem)
            .unwrap_or_else(|e| panic!("openssl cms -decrypt failed: {e}"));
        assert_no_blind_copy("S/MIME entity decrypted by openssl", &opened);
        assert_eq!(body(&opened), body(&message()));
    }
}
