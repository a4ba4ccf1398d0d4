//! S/MIME to an imported certificate: `openssl cms` decrypts it to the original body and
//! attachments and verifies the organisation's signature; AES-256-GCM by default, AES-256-CBC
//! for a listed domain, RSA-OAEP or ECDH by the certificate's key.

use sealgate_testkit::smime::{
    EmailCertSpec, EmailKey, cms_decrypt, cms_print, cms_verify, issue_email,
};

use super::*;
use crate::inspect::fresh_db;

/// The `[smime]` table: the lab CA as trust root, the organisation as signer, `extra` lines.
fn smime_config(lab: &SecureLab, dir: &Path, extra: &str) -> String {
    let org = issue_email(
        &lab.ca,
        "security@clinic.test",
        EmailCertSpec {
            key: EmailKey::Rsa2048,
            ..Default::default()
        },
    );
    let (cert, key) = org.write_to(dir, "org");
    format!(
        "[smime]\nca_file = {:?}\nsigning_cert = {:?}\nsigning_key = {:?}\n{extra}\n",
        lab.ca_file().display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    )
}

/// Base64 body of the received S/MIME message, decoded: the CMS DER.
fn cms_der(got: &ReceivedMessage) -> Vec<u8> {
    use base64::Engine as _;
    let text: String = String::from_utf8_lossy(body(&got.data))
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("the S/MIME body is base64")
}

fn delivered_smime(key: EmailKey, smime_extra: &str, smime_type: &str, cipher: &str) {
    let lab = lab("");
    let sink = mx(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let jane = issue_email(
        &lab.ca,
        RCPT,
        EmailCertSpec {
            key,
            ..Default::default()
        },
    );
    let db = fresh_db(sealgate_testkit::db::TestBackend::Sqlite);
    let daemon = lab.daemon_with(&db.url, "", &smime_config(&lab, dir.path(), smime_extra));
    let (cert_file, _) = jane.write_to(dir.path(), "jane");
    import(&daemon, &cert_file);

    let id = send(&daemon, dir.path(), RCPT);
    let got = received(&lab, &sink, &daemon);
    assert_nothing_leaks(&got);
    let h = header(&got.data);
    assert!(
        h.contains(&format!("application/pkcs7-mime; smime-type={smime_type}")),
        "{h}"
    );
    let printed = cms_print(&cms_der(&got)).expect("openssl cms -cmsout -print");
    assert!(printed.contains(cipher), "{cipher} not used:\n{printed}");
    let transport = match key {
        EmailKey::Rsa2048 | EmailKey::Rsa3072 => "rsaesOaep (1.2.840.113549.1.1.7)",
        EmailKey::P256 | EmailKey::P384 => "dhSinglePass-stdDH-sha256kdf-scheme",
    };
    assert!(
        printed.contains(transport),
        "{transport} not used:\n{printed}"
    );

    let signed = cms_decrypt(&got.data, &jane.cert_pem, &jane.key_pem)
        .unwrap_or_else(|e| panic!("openssl cms -decrypt failed: {e}"));
    let inner = cms_verify(&signed, &lab.ca.cert_pem)
        .unwrap_or_else(|e| panic!("openssl cms -verify failed: {e}"));
    assert_original_inside(&inner);

    let db = inspect(&daemon);
    wait_for(&db, &id, RCPT, "delivered");
    let decision = first(&db, &id, "decision");
    assert_eq!(decision["method"], "smime", "{decision}");
    assert!(mentions(&decision, "evidence", "smime: key "), "{decision}");
    assert!(
        mentions(&decision, "evidence", "pgp: no key found"),
        "{decision}"
    );
    let attempt = first(&db, &id, "attempt");
    assert_eq!(attempt["method"], "smime", "{attempt}");
}

#[test]
fn an_imported_rsa_certificate_gets_aes_gcm_s_mime_that_openssl_decrypts_and_verifies() {
    delivered_smime(
        EmailKey::Rsa3072,
        "",
        "authEnveloped-data",
        "aes-256-gcm (2.16.840.1.101.3.4.1.46)",
    );
}

#[test]
fn a_domain_listed_for_cbc_gets_aes_cbc_to_its_ec_certificate() {
    delivered_smime(
        EmailKey::P256,
        "cbc_for = [\"example.test\"]",
        "enveloped-data",
        "aes-256-cbc (2.16.840.1.101.3.4.1.42)",
    );
}
