//! Certificate parsing and validation.

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509NameBuilder};
use sealgate_testkit::smime::{EmailCertSpec, EmailKey, Usage, Validity, revocation_list};
use sha2::{Digest, Sha256};

use super::*;
use crate::smime::TrustStore;
use crate::{KeyKind, Problem};

fn now() -> i64 {
    sealgate_types::time::now_micros() / 1_000_000
}

fn issue(ca: &TestCa, spec: EmailCertSpec) -> (EmailCert, SmimeCert) {
    let issued = issue_email(ca, "patient@example.test", spec);
    let cert = SmimeCert::from_der(&issued.cert_der).expect("parse");
    (issued, cert)
}

fn trust(ca: &TestCa, crls: &[Vec<u8>]) -> TrustStore {
    TrustStore::new(Some(ca.cert_pem.as_bytes()), crls).expect("trust store")
}

/// A self-signed certificate for `key`, without extensions.
fn self_signed(key: &PKey<Private>, digest: Option<MessageDigest>) -> SmimeCert {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "weak.example.test")
        .expect("CN");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("time"))
        .expect("na");
    b.sign(key, digest.unwrap_or_else(MessageDigest::null))
        .expect("sign");
    SmimeCert::from_der(&b.build().to_der().expect("DER")).expect("parse")
}

/// A self-signed Ed25519 certificate (a key type S/MIME encryption cannot use).
pub(super) fn self_signed_ed25519() -> SmimeCert {
    self_signed(&PKey::generate_ed25519().expect("Ed25519"), None)
}

/// A self-signed RSA certificate of `bits`.
pub(super) fn self_signed_rsa(bits: u32) -> SmimeCert {
    let rsa = openssl::rsa::Rsa::generate(bits).expect("RSA");
    let key = PKey::from_rsa(rsa).expect("PKey");
    self_signed(&key, Some(MessageDigest::sha256()))
}

#[test]
fn a_valid_certificate_is_usable_and_describes_its_key() {
    let ca = TestCa::new();
    for (key, desc) in [
        (
            EmailKey::Rsa2048,
            "RSA 2048 key transport (RSAES-OAEP SHA-256)",
        ),
        (
            EmailKey::P256,
            "ECDH P-256 key agreement (X9.63 SHA-256, AES-256 wrap)",
        ),
        (
            EmailKey::P384,
            "ECDH P-384 key agreement (X9.63 SHA-256, AES-256 wrap)",
        ),
    ] {
        let spec = EmailCertSpec {
            key,
            ..EmailCertSpec::default()
        };
        let (_, cert) = issue(&ca, spec);
        let info = cert.info(Some(&trust(&ca, &[])), now());
        assert_eq!(info.status, Ok(desc.to_owned()), "{key:?}");
        assert_eq!(info.kind, KeyKind::Smime);
        assert_eq!(info.fingerprint, cert.fingerprint());
        assert!(info.binds("Patient@Example.TEST"));
        let expires = info.expires.expect("notAfter");
        assert!((expires - now() - 365 * 86_400).abs() < 120, "{expires}");
    }
}

#[test]
fn an_expired_certificate_reports_when_it_expired() {
    let ca = TestCa::new();
    let spec = EmailCertSpec {
        validity: Validity::Expired,
        ..EmailCertSpec::default()
    };
    let (_, cert) = issue(&ca, spec);
    let info = cert.info(Some(&trust(&ca, &[])), now());
    let at = info.expires.expect("notAfter");
    assert_eq!(info.status, Err(Problem::Expired { at }));
    assert!(at < now() - 300 * 86_400);
    // The same certificate was fine while it was valid.
    let then = cert.info(Some(&trust(&ca, &[])), at - 86_400);
    assert!(then.usable(), "{:?}", then.status);
}

#[test]
fn a_certificate_not_yet_valid_reports_from_when() {
    let ca = TestCa::new();
    let spec = EmailCertSpec {
        validity: Validity::NotYetValid,
        ..EmailCertSpec::default()
    };
    let (_, cert) = issue(&ca, spec);
    let info = cert.info(None, now());
    match info.status {
        Err(Problem::NotYetValid { from }) => assert!(from > now()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_signing_only_certificate_cannot_encrypt() {
    let ca = TestCa::new();
    for key in [EmailKey::Rsa2048, EmailKey::P256] {
        let spec = EmailCertSpec {
            key,
            usage: Usage::SigningOnly,
            ..EmailCertSpec::default()
        };
        let (_, cert) = issue(&ca, spec);
        let status = cert.info(Some(&trust(&ca, &[])), now()).status;
        assert!(
            matches!(status, Err(Problem::SigningOnly(_))),
            "{key:?}: {status:?}"
        );
    }
}

#[test]
fn a_certificate_for_tls_only_is_invalid_for_smime() {
    let ca = TestCa::new();
    let spec = EmailCertSpec {
        usage: Usage::TlsOnly,
        ..EmailCertSpec::default()
    };
    let (_, cert) = issue(&ca, spec);
    let status = cert.info(None, now()).status;
    assert!(matches!(status, Err(Problem::Invalid(_))), "{status:?}");
}

#[test]
fn weak_or_unsupported_keys_are_invalid() {
    for cert in [self_signed_rsa(1024), self_signed_ed25519()] {
        let status = cert.info(None, now()).status;
        assert!(matches!(status, Err(Problem::Invalid(_))), "{status:?}");
    }
}

#[test]
fn a_certificate_chaining_to_another_ca_is_untrusted() {
    let ca = TestCa::new();
    let other = TestCa::named("Other CA");
    for key in [EmailKey::Rsa2048, EmailKey::P256] {
        let spec = EmailCertSpec {
            key,
            ..EmailCertSpec::default()
        };
        let (_, cert) = issue(&other, spec);
        let status = cert.info(Some(&trust(&ca, &[])), now()).status;
        match status {
            Err(Problem::Untrusted(reason)) => {
                assert!(reason.contains("local issuer"), "{reason}")
            }
            other => panic!("unexpected {other:?}"),
        }
        // Without a trust store (DANE-EE SMIMEA) no chain is needed.
        assert!(cert.info(None, now()).usable());
    }
}

#[test]
fn the_system_roots_do_not_trust_a_test_ca() {
    let system = TrustStore::new(None, &[]).expect("system roots");
    let (_, cert) = issue(&TestCa::new(), EmailCertSpec::default());
    let status = cert.info(Some(&system), now()).status;
    assert!(matches!(status, Err(Problem::Untrusted(_))), "{status:?}");
    assert!(!format!("{system:?}").contains("BEGIN"));
}

#[test]
fn a_certificate_revoked_by_a_crl_is_revoked() {
    let ca = TestCa::new();
    for key in [EmailKey::Rsa2048, EmailKey::P256] {
        let spec = EmailCertSpec {
            key,
            ..EmailCertSpec::default()
        };
        let (revoked, cert) = issue(&ca, spec);
        let (_, fine) = issue(&ca, spec);
        let pem = revocation_list(&ca, &[&revoked]).into_bytes();
        let der = openssl::x509::X509Crl::from_pem(&pem)
            .and_then(|c| c.to_der())
            .expect("CRL to DER");
        for crl in [pem, der] {
            let store = trust(&ca, &[crl]);
            match cert.info(Some(&store), now()).status {
                Err(Problem::Revoked(why)) => assert!(why.contains("keyCompromise"), "{why}"),
                other => panic!("{key:?}: unexpected {other:?}"),
            }
            assert!(fine.info(Some(&store), now()).usable());
        }
    }
}

#[test]
fn a_crl_of_another_ca_revokes_nothing() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let (issued, cert) = issue(&ca, EmailCertSpec::default());
    // Same issuer name, same serial, but signed by another key: not the issuer's CRL.
    let forged = revocation_list(&other, &[&issued]).into_bytes();
    let info = cert.info(Some(&trust(&ca, &[forged])), now());
    assert!(info.usable(), "{:?}", info.status);
}

#[test]
fn an_out_of_date_crl_makes_its_certificates_untrusted() {
    let ca = TestCa::new();
    let (_, cert) = issue(&ca, EmailCertSpec::default());
    let crl = revocation_list(&ca, &[]).into_bytes();
    let store = trust(&ca, &[crl]);
    assert!(cert.info(Some(&store), now()).usable());
    let later = now() + 30 * 86_400;
    let status = cert.info(Some(&store), later).status;
    assert!(matches!(status, Err(Problem::Untrusted(_))), "{status:?}");
}

#[test]
fn emails_come_from_san_and_subject_lowercased() {
    let ca = TestCa::new();
    let issued = issue_email(&ca, "Jane.Doe@Example.TEST", EmailCertSpec::default());
    let cert = SmimeCert::from_der(&issued.cert_der).expect("parse");
    let info = cert.info(None, now());
    assert_eq!(info.emails, ["jane.doe@example.test"]);
    assert!(info.binds("JANE.DOE@example.test"));
}

#[test]
fn certificates_parse_from_pem_bundles_and_der() {
    let ca = TestCa::new();
    let (a, _) = issue(&ca, EmailCertSpec::default());
    let (b, _) = issue(&ca, EmailCertSpec::default());
    let bundle = format!("{}{}", a.cert_pem, b.cert_pem);
    let parsed = SmimeCert::parse_all(bundle.as_bytes()).expect("PEM bundle");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].to_der(), a.cert_der);
    assert_eq!(parsed[1].to_der(), b.cert_der);
    let der = SmimeCert::parse_all(&a.cert_der).expect("DER");
    assert_eq!(der.len(), 1);
    assert_eq!(
        der[0].fingerprint(),
        hex::encode(Sha256::digest(&a.cert_der))
    );
    assert!(SmimeCert::parse_all(b"garbage").is_err());
    assert!(SmimeCert::parse_all(b"-----BEGIN nothing").is_err());
}

#[test]
fn trust_stores_refuse_empty_bundles_and_unreadable_crls() {
    assert!(TrustStore::new(Some(b""), &[]).is_err());
    let ca = TestCa::new();
    assert!(TrustStore::new(Some(ca.cert_pem.as_bytes()), &[b"junk".to_vec()]).is_err());
}
