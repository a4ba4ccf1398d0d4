//! Tests of S/MIME, with `openssl cms` (OpenSSL 3) as the independent oracle.

mod encrypt;
mod info;

use base64::Engine as _;
use sealgate_testkit::smime::{EmailCert, EmailCertSpec, EmailKey, issue_email};
use sealgate_testkit::tls::TestCa;

use super::{ContentCipher, SmimeCert, SmimeSettings, encrypt};
use crate::mime;

/// The outer Subject placeholder the tests use.
const SUBJECT: &str = "Encrypted message";

/// A binary attachment: every byte value.
fn attachment() -> Vec<u8> {
    (0..=255u8).collect()
}

/// A multipart/mixed message with an 8-bit UTF-8 text part and a base64 attachment.
fn message() -> Vec<u8> {
    let attachment = base64::engine::general_purpose::STANDARD.encode(attachment());
    format!(
        "Received: from clinic.example.test by relay.example.test\r\n\
         From: Dr. Müller <doctor@clinic.example.test>\r\n\
         To: patient@example.test\r\n\
         Subject: Lab results for Jane Doe\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\
         Message-ID: <lab-1@clinic.example.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer-b\"\r\n\
         \r\n\
         --outer-b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         Grüße, the potassium level is 4.1 mmol/l.\r\n\
         --outer-b\r\n\
         Content-Type: application/octet-stream; name=\"scan.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {attachment}\r\n\
         --outer-b--\r\n"
    )
    .into_bytes()
}

/// Everything after the first blank line.
fn body(entity: &[u8]) -> &[u8] {
    let at = entity
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header ends with a blank line");
    &entity[at + 4..]
}

/// The CMS DER inside an S/MIME message: its base64 body decoded.
fn cms_der(message: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = body(message)
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 body")
}

/// A CA and a certificate from it with a key of type `key`, valid for encryption.
fn recipient(key: EmailKey) -> (TestCa, EmailCert, SmimeCert) {
    let ca = TestCa::new();
    let spec = EmailCertSpec {
        key,
        ..EmailCertSpec::default()
    };
    let issued = issue_email(&ca, "patient@example.test", spec);
    let cert = SmimeCert::from_der(&issued.cert_der).expect("parse issued certificate");
    (ca, issued, cert)
}

/// `message()` encrypted to `cert` with `cipher`, unsigned.
fn encrypted(cert: &SmimeCert, cipher: ContentCipher) -> crate::Encrypted {
    let settings = SmimeSettings {
        subject: SUBJECT.to_owned(),
        signer: None,
    };
    encrypt(&message(), cert, cipher, &settings).expect("encrypt")
}

/// What the recipient sees after decrypting: the protected inner entity.
fn expected_inner() -> Vec<u8> {
    mime::inner_entity(&message(), SUBJECT).expect("inner entity")
}
