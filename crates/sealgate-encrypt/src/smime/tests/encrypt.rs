//! Enveloping and signing, checked by `openssl cms`.

use sealgate_testkit::smime::{
    EmailCertSpec, EmailKey, Usage, cms_decrypt, cms_print, cms_verify, issue_email,
};

use super::*;
use crate::smime::SmimeSigner;
use crate::{EncryptError, Problem};

/// Encrypts `message()` to a fresh `key` certificate with `cipher`, decrypts it with
/// `openssl cms -decrypt` and checks the result; returns the CMS structure as printed.
fn openssl_decrypts(key: EmailKey, cipher: ContentCipher) -> String {
    let (_ca, issued, cert) = recipient(key);
    let out = encrypted(&cert, cipher);
    let decrypted =
        cms_decrypt(&out.message, &issued.cert_pem, &issued.key_pem).expect("openssl decrypts");
    assert_eq!(decrypted, expected_inner(), "decrypted entity");
    assert_eq!(body(&decrypted), body(&message()), "decrypted body");
    cms_print(&cms_der(&out.message)).expect("openssl prints the CMS structure")
}

#[test]
fn openssl_decrypts_rsa_3072_with_aes_gcm_to_the_inner_entity() {
    let printed = openssl_decrypts(EmailKey::Rsa3072, ContentCipher::Aes256Gcm);
    assert!(
        printed.contains("contentType: id-smime-ct-authEnvelopedData"),
        "{printed}"
    );
    assert!(printed.contains("algorithm: rsaesOaep"), "{printed}");
    assert!(printed.contains("algorithm: aes-256-gcm"), "{printed}");
}

#[test]
fn openssl_decrypts_rsa_2048_with_aes_cbc_to_the_inner_entity() {
    let printed = openssl_decrypts(EmailKey::Rsa2048, ContentCipher::Aes256Cbc);
    assert!(
        printed.contains("contentType: pkcs7-envelopedData"),
        "{printed}"
    );
    assert!(printed.contains("algorithm: rsaesOaep"), "{printed}");
    assert!(printed.contains("algorithm: aes-256-cbc"), "{printed}");
}

/// The trimmed line after the first line that is `line` (trimmed) in OpenSSL's print.
fn line_after<'a>(printed: &'a str, line: &str) -> &'a str {
    let mut lines = printed.lines().map(str::trim);
    lines.find(|l| *l == line).expect("line present");
    lines.next().unwrap_or_default()
}

#[test]
fn openssl_decrypts_p256_with_aes_gcm_to_the_inner_entity() {
    let printed = openssl_decrypts(EmailKey::P256, ContentCipher::Aes256Gcm);
    assert!(
        printed.contains("contentType: id-smime-ct-authEnvelopedData"),
        "{printed}"
    );
    // RFC 5652 §6.2.2: a KeyAgreeRecipientInfo is version 3.
    assert_eq!(line_after(&printed, "d.kari:"), "version: 3", "{printed}");
    // RFC 5753 §3.1.1: the originator key's id-ecPublicKey parameters SHOULD be absent.
    assert_eq!(
        line_after(&printed, "algorithm: id-ecPublicKey (1.2.840.10045.2.1)"),
        "parameter: <ABSENT>",
        "{printed}"
    );
    assert!(
        printed.contains("algorithm: dhSinglePass-stdDH-sha256kdf-scheme"),
        "{printed}"
    );
    // The key wrap algorithm is the parameter, printed as an ASN.1 dump.
    assert!(printed.contains(":id-aes256-wrap"), "{printed}");
}

#[test]
fn openssl_decrypts_p384_with_aes_cbc_to_the_inner_entity() {
    let printed = openssl_decrypts(EmailKey::P384, ContentCipher::Aes256Cbc);
    assert!(
        printed.contains("contentType: pkcs7-envelopedData"),
        "{printed}"
    );
    assert!(
        printed.contains("algorithm: dhSinglePass-stdDH-sha256kdf-scheme"),
        "{printed}"
    );
    // RFC 5652 §6.1: a kari (version 3) makes the EnvelopedData version 2.
    assert!(printed.contains("version: 2"), "{printed}");
}

#[test]
fn auth_enveloped_data_carries_a_12_octet_nonce_and_a_16_octet_tag() {
    use crate::smime::der::{children, read, tag};
    let (_ca, _issued, cert) = recipient(EmailKey::Rsa2048);
    let der = cms_der(&encrypted(&cert, ContentCipher::Aes256Gcm).message);
    let (content_info, rest) = read(&der).expect("ContentInfo");
    assert!(rest.is_empty());
    let [_, explicit] = children(content_info.content).expect("fields")[..] else {
        panic!("ContentInfo has two fields");
    };
    let (auth, _) = read(explicit.content).expect("AuthEnvelopedData");
    let fields = children(auth.content).expect("AuthEnvelopedData fields");
    // version 0, recipientInfos, authEncryptedContentInfo, mac (RFC 5083 §2.1).
    assert_eq!(fields.len(), 4);
    assert_eq!(fields[0].raw, [0x02, 0x01, 0x00]);
    assert_eq!(fields[1].tag, tag::SET);
    assert_eq!(
        (fields[3].tag, fields[3].content.len()),
        (tag::OCTET_STRING, 16)
    );
    let eci = children(fields[2].content).expect("EncryptedContentInfo");
    let algorithm = children(eci[1].content).expect("AlgorithmIdentifier");
    let params = children(algorithm[1].content).expect("GCMParameters");
    assert_eq!(
        (params[0].tag, params[0].content.len()),
        (tag::OCTET_STRING, 12)
    );
    assert_eq!(params[1].raw, [0x02, 0x01, 16], "aes-ICVlen");
    assert_eq!(eci[2].tag, 0x80, "encryptedContent [0] IMPLICIT");
}

#[test]
fn a_tampered_gcm_ciphertext_fails_to_decrypt() {
    let (_ca, issued, cert) = recipient(EmailKey::P256);
    let out = encrypted(&cert, ContentCipher::Aes256Gcm);
    let mut der = cms_der(&out.message);
    // The ciphertext ends just before the 18-octet mac (OCTET STRING of the 16-octet tag).
    let at = der.len() - 19;
    der[at] ^= 1;
    let header_end = out.message.len() - body(&out.message).len();
    let mut tampered = out.message[..header_end].to_vec();
    tampered.extend_from_slice(&mime::base64_lines(&der));
    let err = cms_decrypt(&tampered, &issued.cert_pem, &issued.key_pem)
        .expect_err("the GCM tag detects the change");
    assert!(err.contains("decrypt"), "{err}");
}

#[test]
fn rsa_key_transport_names_sha256_for_oaep_and_mgf1() {
    let (_ca, _issued, cert) = recipient(EmailKey::Rsa2048);
    let der = cms_der(&encrypted(&cert, ContentCipher::Aes256Gcm).message);
    let parsed = asn1parse(&der);
    // id-RSAES-OAEP, then hashFunc sha256 and maskGenFunc mgf1 with sha256.
    let oids: Vec<&str> = parsed
        .lines()
        .filter_map(|l| l.split("OBJECT            :").nth(1))
        .collect();
    let oaep = oids
        .iter()
        .position(|o| *o == "rsaesOaep")
        .expect("rsaesOaep");
    assert_eq!(
        oids[oaep + 1..oaep + 4],
        ["sha256", "mgf1", "sha256"],
        "{parsed}"
    );
}

/// `openssl asn1parse` of DER.
fn asn1parse(der: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cms.der");
    std::fs::write(&path, der).expect("write DER");
    let out = std::process::Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(&path)
        .output()
        .expect("run openssl asn1parse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_outer_message_shows_neither_the_subject_nor_the_body() {
    let (_ca, _issued, cert) = recipient(EmailKey::P256);
    let out = encrypted(&cert, ContentCipher::Aes256Gcm);
    let text = String::from_utf8(out.message.clone()).expect("outer message is ASCII");
    assert!(!text.contains("Jane Doe"), "{text}");
    assert!(!text.contains("potassium"), "{text}");
    assert!(!text.contains("scan.bin"), "{text}");
    assert!(text.contains(&format!("Subject: {SUBJECT}\r\n")), "{text}");
    assert!(text.contains("To: patient@example.test\r\n"), "{text}");
    assert!(
        text.contains(
            "Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; \
             name=\"smime.p7m\"\r\n"
        ),
        "{text}"
    );
    let cbc = encrypted(&cert, ContentCipher::Aes256Cbc).message;
    let cbc = String::from_utf8(cbc).expect("outer message is ASCII");
    assert!(cbc.contains("smime-type=enveloped-data;"), "{cbc}");
}

#[test]
fn used_names_the_recipient_certificate_and_the_algorithms() {
    let (_ca, _issued, cert) = recipient(EmailKey::Rsa2048);
    let used = encrypted(&cert, ContentCipher::Aes256Gcm).used;
    assert!(
        used[0].starts_with(&format!("recipient certificate {} (", cert.fingerprint())),
        "{used:?}"
    );
    assert!(used[0].contains("CN=patient@example.test"), "{used:?}");
    assert!(
        used[0].contains("issued by CN=Sealgate Test CA"),
        "{used:?}"
    );
    assert!(
        used.iter().any(|u| u.starts_with("RSAES-OAEP SHA-256")),
        "{used:?}"
    );
    assert!(
        used.contains(&"AES-256-GCM AuthEnvelopedData".to_owned()),
        "{used:?}"
    );
}

/// An organisation signer issued by `ca`, and its certificate PEM.
fn signer(ca: &TestCa, key: EmailKey) -> (SmimeSigner, String) {
    let spec = EmailCertSpec {
        key,
        usage: Usage::SigningOnly,
        ..EmailCertSpec::default()
    };
    let org = issue_email(ca, "relay@clinic.example.test", spec);
    let signer = SmimeSigner::from_pem(org.cert_pem.as_bytes(), org.key_pem.as_bytes())
        .expect("signer from PEM");
    (signer, org.cert_pem)
}

/// `message()` signed by a fresh signer with `key`, encrypted to a P-256 recipient and
/// decrypted by OpenSSL: the signed entity, the CA's PEM and what `used` said.
fn signed_and_decrypted(key: EmailKey) -> (Vec<u8>, String, Vec<String>, SmimeSigner) {
    let (ca, issued, cert) = recipient(EmailKey::P256);
    let (signer, _) = signer(&ca, key);
    let settings = SmimeSettings {
        subject: SUBJECT.to_owned(),
        signer: Some(signer.clone()),
    };
    let out = encrypt(&message(), &cert, ContentCipher::Aes256Gcm, &settings).expect("encrypt");
    let decrypted =
        cms_decrypt(&out.message, &issued.cert_pem, &issued.key_pem).expect("openssl decrypts");
    (decrypted, ca.cert_pem.clone(), out.used, signer)
}

#[test]
fn a_signed_message_verifies_with_openssl_and_covers_exactly_the_inner_entity() {
    for key in [EmailKey::Rsa2048, EmailKey::P384] {
        let (signed, ca_pem, used, signer) = signed_and_decrypted(key);
        let head = String::from_utf8_lossy(&signed[..200]).into_owned();
        assert!(head.contains("Content-Type: multipart/signed;"), "{head}");
        assert!(head.contains("micalg=sha-256;"), "{head}");
        let content = cms_verify(&signed, &ca_pem).expect("openssl verifies the signature");
        assert_eq!(content, expected_inner(), "signed content ({key:?})");
        assert!(
            used.contains(&format!("signed by {}", signer.fingerprint())),
            "{used:?}"
        );
    }
}

#[test]
fn a_tampered_signed_entity_fails_verification() {
    let (signed, ca_pem, _, _) = signed_and_decrypted(EmailKey::P256);
    let text = String::from_utf8(signed).expect("signed entity is UTF-8");
    assert!(text.contains("4.1 mmol/l"));
    let tampered = text.replacen("4.1 mmol/l", "9.1 mmol/l", 1);
    let err = cms_verify(tampered.as_bytes(), &ca_pem).expect_err("tampering is detected");
    assert!(err.contains("content verify error"), "{err}");
}

#[test]
fn a_signature_from_another_ca_fails_verification() {
    let (signed, _, _, _) = signed_and_decrypted(EmailKey::P256);
    let other = TestCa::named("Other CA");
    cms_verify(&signed, &other.cert_pem).expect_err("untrusted signer");
}

#[test]
fn a_signer_key_that_does_not_match_the_certificate_is_refused() {
    let ca = TestCa::new();
    let (_, cert_pem) = signer(&ca, EmailKey::P256);
    let other = issue_email(&ca, "x@example.test", EmailCertSpec::default());
    let err = SmimeSigner::from_pem(cert_pem.as_bytes(), other.key_pem.as_bytes())
        .expect_err("mismatched key");
    assert!(matches!(err, EncryptError::OrgKey(_)), "{err}");
    let err = SmimeSigner::from_pem(b"not PEM", other.key_pem.as_bytes()).expect_err("no cert");
    assert!(matches!(err, EncryptError::OrgKey(_)), "{err}");
}

#[test]
fn the_signer_debug_output_shows_no_key() {
    let ca = TestCa::new();
    let (signer, _) = signer(&ca, EmailKey::P256);
    let debug = format!("{signer:?}");
    assert!(debug.contains(&signer.fingerprint()), "{debug}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn a_recipient_with_an_unsupported_key_is_refused_as_unusable() {
    for cert in [
        super::info::self_signed_ed25519(),
        super::info::self_signed_rsa(1024),
    ] {
        let err = encrypt(
            &message(),
            &cert,
            ContentCipher::Aes256Gcm,
            &SmimeSettings::default(),
        )
        .expect_err("unsupported key");
        match err {
            EncryptError::Unusable {
                fingerprint,
                problem: Problem::Invalid(_),
            } => assert_eq!(fingerprint, cert.fingerprint()),
            other => panic!("unexpected {other:?}"),
        }
    }
}
