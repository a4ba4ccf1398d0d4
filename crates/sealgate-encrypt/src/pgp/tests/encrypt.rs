//! PGP/MIME encryption, with `gpg --decrypt` (GnuPG 2.2) as the judge.

use sealgate_testkit::gpg::{GpgHome, GpgOutput, KeySpec};
use sequoia_openpgp::cert::prelude::*;
use sequoia_openpgp::serialize::SerializeInto as _;

use super::{now, public};
use crate::EncryptError;
use crate::mime;
use crate::pgp::{PgpCert, PgpSettings, PgpSigner, encrypt};

const SUBJECT: &str = "Lab results for J. Doe";
const TEXT: &str = "Gr\u{fc}\u{df}e, Ihre Laborwerte: H\u{e4}moglobin normal.";

/// Binary data: every byte value, repeated.
fn attachment() -> Vec<u8> {
    (0..=255u8).cycle().take(3000).collect()
}

/// A multipart/mixed message: 8-bit UTF-8 text and a binary attachment in base64.
fn message() -> Vec<u8> {
    let mut m = format!(
        "Received: from ehr.clinic.example by relay; Mon, 1 Jun 2026 10:00:00 +0000\r\n\
         From: Dr A <dr.a@clinic.example>\r\n\
         To: Patient <p@home.example>\r\n\
         Subject: {SUBJECT}\r\n\
         Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n\
         Message-ID: <lab-1@clinic.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         {TEXT}\r\n\
         --b1\r\n\
         Content-Type: application/octet-stream; name=\"lab.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n"
    )
    .into_bytes();
    m.extend_from_slice(&mime::base64_lines(&attachment()));
    m.extend_from_slice(b"--b1--\r\n");
    m
}

fn settings() -> PgpSettings {
    PgpSettings {
        subject: "Encrypted message".to_owned(),
        ..PgpSettings::default()
    }
}

/// Everything after the blank line that ends the header.
fn body(entity: &[u8]) -> &[u8] {
    let at = entity
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    &entity[at + 4..]
}

/// The ASCII-armored OpenPGP message inside the PGP/MIME message.
fn armored(outer: &[u8]) -> &[u8] {
    let find = |needle: &[u8]| outer.windows(needle.len()).position(|w| w == needle);
    let start = find(b"-----BEGIN PGP MESSAGE-----").expect("armor start");
    let end = find(b"-----END PGP MESSAGE-----").expect("armor end");
    &outer[start..end + 25]
}

/// Decrypts with gpg and checks what every PGP/MIME message from Sealgate must satisfy:
/// decrypted, integrity-protected by SEIPD v1 with MDC under AES-256, no AEAD.
fn gpg_decrypts(home: &GpgHome, outer: &[u8]) -> GpgOutput {
    let out = home.decrypt(armored(outer));
    assert!(
        out.ok,
        "gpg --decrypt failed:\n{}\n{:?}",
        out.stderr, out.status
    );
    assert!(
        out.has_status("DECRYPTION_OKAY"),
        "{:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("not integrity protected"),
        "{}",
        out.stderr
    );
    assert!(!out.has_status("DECRYPTION_FAILED"), "{:?}", out.status);
    assert!(out.has_status("GOODMDC"), "{:?}", out.status);
    // PLAINTEXT <format> …: 62 ('b') = binary literal data, passed through unchanged.
    let literal: Vec<&str> = out.status_args("PLAINTEXT").collect();
    assert!(literal.iter().all(|l| l.starts_with("62 ")), "{literal:?}");
    // DECRYPTION_INFO <mdc method> <cipher> [<aead>]: 2 = SHA-1 MDC, 9 = AES-256, 0 = no AEAD.
    let info: Vec<&str> = out.status_args("DECRYPTION_INFO").collect();
    assert!(
        info.iter().any(|i| *i == "2 9" || *i == "2 9 0"),
        "DECRYPTION_INFO {info:?} in {:?}\n{}",
        out.status,
        out.stderr
    );
    out
}

/// Parses `outer` with Python's `email` package and checks the RFC 3156 §4 structure.
fn python_sees_pgp_mime(outer: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("msg.eml");
    std::fs::write(&path, outer).expect("write message");
    let script = r#"
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
assert m.get_content_type() == 'multipart/encrypted', m.get_content_type()
assert m.get_param('protocol') == 'application/pgp-encrypted'
parts = m.get_payload()
assert len(parts) == 2, len(parts)
assert parts[0].get_content_type() == 'application/pgp-encrypted'
assert parts[0].get_payload().strip() == 'Version: 1', parts[0].get_payload()
assert parts[1].get_content_type() == 'application/octet-stream'
assert parts[1].get_filename() == 'encrypted.asc'
assert parts[1].get_payload().lstrip().startswith('-----BEGIN PGP MESSAGE-----')
assert m['Subject'] == 'Encrypted message', m['Subject']
assert not m.defects, m.defects
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encrypted_message_decrypts_in_gpg_to_the_inner_entity_byte_for_byte() {
    let home = GpgHome::new();
    let fpr = home.gen_key("p@home.example", KeySpec::Default);
    let msg = message();
    let enc = encrypt(&msg, &public(&home, &fpr), &settings(), now()).expect("encrypt");

    let out = gpg_decrypts(&home, &enc.message);
    let inner = mime::inner_entity(&msg, "Encrypted message").expect("inner");
    assert_eq!(
        out.plaintext, inner,
        "plaintext is the protected inner entity"
    );
    assert_eq!(body(&out.plaintext), body(&msg), "original body unchanged");
    assert!(contains(
        &out.plaintext,
        b"Subject: Lab results for J. Doe\r\n"
    ));
    assert!(!out.good_sig(), "unsigned: {:?}", out.status);

    assert!(
        !contains(&enc.message, SUBJECT.as_bytes()),
        "subject leaked"
    );
    assert!(!contains(&enc.message, TEXT.as_bytes()), "body text leaked");
    assert!(!contains(
        &enc.message,
        &mime::base64_lines(&attachment())[..76]
    ));
    assert!(contains(
        &enc.message,
        b"Message-ID: <lab-1@clinic.example>\r\n"
    ));
    python_sees_pgp_mime(&enc.message);
}

#[test]
fn encrypted_message_uses_crlf_line_ends_and_the_rfc_3156_parts() {
    let home = GpgHome::new();
    let fpr = home.gen_key("p@home.example", KeySpec::Default);
    let enc = encrypt(&message(), &public(&home, &fpr), &settings(), now()).expect("encrypt");
    let m = &enc.message;
    for (i, &b) in m.iter().enumerate() {
        assert!(b != b'\n' || (i > 0 && m[i - 1] == b'\r'), "bare LF at {i}");
    }
    let text = String::from_utf8(m.clone()).expect("ASCII");
    assert!(text.contains(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"=_sealgate_"
    ));
    assert!(text.contains("\r\n\r\nVersion: 1\r\n"));
    assert!(text.contains("Content-Description: PGP/MIME version identification\r\n"));
    assert!(text.contains("Content-Disposition: inline; filename=\"encrypted.asc\"\r\n"));
    assert!(text.ends_with("--\r\n"));
    assert_eq!(enc.used.len(), 2, "{:?}", enc.used);
    assert!(enc.used[0].starts_with(&format!("recipient key {fpr}: encryption subkey ")));
    assert!(enc.used[0].ends_with("(ECDH cv25519)"), "{:?}", enc.used);
    assert_eq!(enc.used[1], "SEIPDv1 AES-256");
}

#[test]
fn signed_message_shows_goodsig_and_validsig_of_the_org_key_in_gpg() {
    let org = GpgHome::new();
    let org_fpr = org.gen_key("relay@clinic.example", KeySpec::Default);
    let signer = PgpSigner::from_bytes(&org.export_secret(&org_fpr)).expect("signer");
    let home = GpgHome::new();
    let fpr = home.gen_key("p@home.example", KeySpec::Rsa3072);
    home.import(&org.export_public(&org_fpr, true));

    let settings = PgpSettings {
        signer: Some(signer),
        ..settings()
    };
    let msg = message();
    let enc = encrypt(&msg, &public(&home, &fpr), &settings, now()).expect("encrypt");
    let out = gpg_decrypts(&home, &enc.message);
    assert_eq!(
        out.plaintext,
        mime::inner_entity(&msg, "Encrypted message").expect("inner")
    );
    assert!(out.good_sig(), "{:?}", out.status);
    assert!(out.valid_sig_by(&org_fpr), "{:?}", out.status);
    // VALIDSIG field 8 is the digest algorithm: 10 = SHA-512.
    let validsig: Vec<&str> = out.status_args("VALIDSIG").collect();
    assert_eq!(validsig[0].split(' ').nth(7), Some("10"), "{validsig:?}");
    assert!(
        enc.used
            .iter()
            .any(|u| u.starts_with(&format!("signed by {org_fpr} ")))
    );
    assert!(enc.used[0].ends_with("(RSA 3072)"), "{:?}", enc.used);
}

#[test]
fn archive_key_owner_can_decrypt_as_well() {
    let home = GpgHome::new();
    let fpr = home.gen_key("p@home.example", KeySpec::Default);
    let archive = GpgHome::new();
    let archive_fpr = archive.gen_key("archive@clinic.example", KeySpec::Rsa3072);
    let settings = PgpSettings {
        archive: Some(public(&archive, &archive_fpr)),
        ..settings()
    };
    let msg = message();
    let enc = encrypt(&msg, &public(&home, &fpr), &settings, now()).expect("encrypt");
    let inner = mime::inner_entity(&msg, "Encrypted message").expect("inner");
    assert_eq!(gpg_decrypts(&home, &enc.message).plaintext, inner);
    assert_eq!(gpg_decrypts(&archive, &enc.message).plaintext, inner);
    assert!(
        enc.used
            .iter()
            .any(|u| u.starts_with(&format!("archive key {archive_fpr}: ")))
    );
}

#[test]
fn unusable_recipient_is_refused_with_the_reason() {
    let home = GpgHome::new();
    let revoked = home.gen_key("gone@home.example", KeySpec::Revoked);
    let signing = home.gen_key("sign@home.example", KeySpec::SigningOnly);
    let expired = home.gen_key("old@home.example", KeySpec::Expired);
    for (fpr, class) in [
        (revoked, "revoked"),
        (signing, "signing-only"),
        (expired, "expired"),
    ] {
        match encrypt(&message(), &public(&home, &fpr), &settings(), now()) {
            Err(EncryptError::Unusable {
                fingerprint,
                problem,
            }) => {
                assert_eq!(fingerprint, fpr);
                assert_eq!(problem.class(), class, "{problem}");
            }
            other => panic!("{class}: expected Unusable, got {other:?}"),
        }
    }
}

#[test]
fn unusable_archive_key_is_an_org_key_error() {
    let home = GpgHome::new();
    let fpr = home.gen_key("p@home.example", KeySpec::Default);
    let old = home.gen_key("archive@clinic.example", KeySpec::Expired);
    let settings = PgpSettings {
        archive: Some(public(&home, &old)),
        ..settings()
    };
    let r = encrypt(&message(), &public(&home, &fpr), &settings, now());
    assert!(
        matches!(r, Err(EncryptError::OrgKey(ref m)) if m.contains(&old)),
        "{r:?}"
    );
}

#[test]
fn recipient_announcing_seipd_v2_still_gets_seipd_v1_that_gpg_reads() {
    // sequoia's own keys announce SEIPD v2; left alone, sequoia would use AEAD (OCB).
    let (key, _) = CertBuilder::general_purpose(Some("modern@home.example"))
        .generate()
        .expect("generate");
    let p = sequoia_openpgp::policy::StandardPolicy::new();
    let features = key.with_policy(&p, None).expect("valid").features();
    assert!(
        features.is_some_and(|f| f.supports_seipdv2()),
        "precondition"
    );
    let home = GpgHome::new();
    home.import(&key.as_tsk().to_vec().expect("serialize"));

    let cert = PgpCert::from_bytes(&key.to_vec().expect("serialize")).expect("parse");
    let msg = message();
    let enc = encrypt(&msg, &cert, &settings(), now()).expect("encrypt");
    let out = gpg_decrypts(&home, &enc.message);
    assert_eq!(
        out.plaintext,
        mime::inner_entity(&msg, "Encrypted message").expect("inner")
    );
}

#[test]
fn signer_not_valid_at_encryption_time_is_an_org_key_error() {
    // The recipient's key was made ten days ago, the organisation's key just now: five
    // days ago the recipient is fine but the signer does not exist yet.
    let ten_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
    let (key, _) = CertBuilder::general_purpose(Some("p@home.example"))
        .set_creation_time(ten_days_ago)
        .generate()
        .expect("generate");
    let cert = PgpCert::from_bytes(&key.to_vec().expect("serialize")).expect("parse");
    let org = GpgHome::new();
    let org_fpr = org.gen_key("relay@clinic.example", KeySpec::Default);
    let settings = PgpSettings {
        signer: Some(PgpSigner::from_bytes(&org.export_secret(&org_fpr)).expect("signer")),
        ..settings()
    };
    let five_days_ago = now() - 5 * 86_400;
    assert!(cert.info(five_days_ago).usable(), "precondition");
    let r = encrypt(&message(), &cert, &settings, five_days_ago);
    assert!(
        matches!(r, Err(EncryptError::OrgKey(ref m)) if m.contains(&org_fpr)),
        "{r:?}"
    );
}
