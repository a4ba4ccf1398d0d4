//! S/MIME for tests: email-protection certificates issued by a [`TestCa`], revocation
//! lists, and the `openssl cms` command line as an independent oracle (OpenSSL 3).
//!
//! Certificates follow what public S/MIME CAs issue (RFC 8550 §4.4): an rfc822Name
//! subject alternative name, the emailProtection extended key usage, and a key usage that
//! allows key encipherment (RSA) or key agreement (EC) unless only signing is wanted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, CertificateRevocationListParams, DnType, DnValue, ExtendedKeyUsagePurpose,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType,
    SerialNumber,
};

use crate::tls::TestCa;

/// PKCS#9 emailAddress (1.2.840.113549.1.9.1), the legacy subject attribute.
const EMAIL_ADDRESS: &[u64] = &[1, 2, 840, 113549, 1, 9, 1];

/// The key of an issued certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmailKey {
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// ECDSA/ECDH on NIST P-256.
    #[default]
    P256,
    /// ECDSA/ECDH on NIST P-384.
    P384,
}

/// When an issued certificate is valid, relative to now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago for a year.
    #[default]
    Valid,
    /// Two years ago for a year: expired a year ago.
    Expired,
    /// From tomorrow for a year.
    NotYetValid,
}

/// What an issued certificate's key may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Usage {
    /// Sign and encrypt: digitalSignature plus keyEncipherment (RSA) or keyAgreement (EC).
    #[default]
    Encrypt,
    /// Sign only: digitalSignature and nonRepudiation.
    SigningOnly,
    /// The key usage of [`Usage::Encrypt`] but the extended key usage of a TLS server
    /// certificate (serverAuth), not emailProtection.
    TlsOnly,
}

/// What [`issue_email`] issues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmailCertSpec {
    /// The key type.
    pub key: EmailKey,
    /// The validity period.
    pub validity: Validity,
    /// The key usage.
    pub usage: Usage,
}

/// An email-protection certificate with its private key.
#[derive(Clone, Debug)]
pub struct EmailCert {
    /// The certificate, PEM encoded.
    pub cert_pem: String,
    /// The certificate, DER encoded.
    pub cert_der: Vec<u8>,
    /// The private key (PKCS#8), PEM encoded.
    pub key_pem: String,
    /// The serial number (big-endian, positive).
    pub serial: Vec<u8>,
}

impl EmailCert {
    /// Writes `dir/<name>.pem` (the certificate) and `dir/<name>.key` and returns
    /// `(cert_path, key_path)`.
    pub fn write_to(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        fs::write(&cert_path, &self.cert_pem).expect("write certificate");
        fs::write(&key_path, &self.key_pem).expect("write private key");
        (cert_path, key_path)
    }
}

/// Issues a certificate for `email` (used as written, so tests can check case folding) as
/// rfc822Name SAN, subject common name and subject emailAddress.
pub fn issue_email(ca: &TestCa, email: &str, spec: EmailCertSpec) -> EmailCert {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, email);
    params.distinguished_name.push(
        DnType::CustomDnType(EMAIL_ADDRESS.to_vec()),
        DnValue::Ia5String(email.try_into().expect("ASCII email address")),
    );
    params.subject_alt_names = vec![SanType::Rfc822Name(
        email.try_into().expect("ASCII email address"),
    )];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = key_usages(spec);
    params.extended_key_usages = vec![match spec.usage {
        Usage::TlsOnly => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Encrypt | Usage::SigningOnly => ExtendedKeyUsagePurpose::EmailProtection,
    }];
    params.use_authority_key_identifier_extension = true;
    let serial = random_serial();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let (not_before, not_after) = period(spec.validity);
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let key = generate_key(spec.key);
    let cert = params
        .signed_by(&key, ca.issuer())
        .expect("sign email certificate");
    EmailCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
        serial,
    }
}

fn key_usages(spec: EmailCertSpec) -> Vec<KeyUsagePurpose> {
    let rsa = matches!(spec.key, EmailKey::Rsa2048 | EmailKey::Rsa3072);
    match (spec.usage, rsa) {
        (Usage::SigningOnly, _) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ],
        (Usage::Encrypt | Usage::TlsOnly, true) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        (Usage::Encrypt | Usage::TlsOnly, false) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ],
    }
}

/// `(not_before, not_after)` for `validity`.
fn period(validity: Validity) -> (SystemTime, SystemTime) {
    const DAY: Duration = Duration::from_secs(86_400);
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    let now = SystemTime::now();
    match validity {
        Validity::Valid => (now - Duration::from_secs(3600), now + YEAR),
        Validity::Expired => (now - 2 * YEAR, now - YEAR),
        Validity::NotYetValid => (now + DAY, now + YEAR),
    }
}

fn generate_key(key: EmailKey) -> KeyPair {
    let generated = match key {
        EmailKey::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        EmailKey::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
        EmailKey::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        EmailKey::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
    };
    generated.expect("generate certificate key")
}

/// 16 random bytes, positive and without a leading zero byte (RFC 5280 §4.1.2.2).
fn random_serial() -> Vec<u8> {
    let mut serial = uuid::Uuid::new_v4().as_bytes().to_vec();
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// A CRL signed by `ca` that revokes `revoked` (key compromise, a minute ago), current
/// from an hour ago for a week; PEM encoded.
pub fn revocation_list(ca: &TestCa, revoked: &[&EmailCert]) -> String {
    let now = SystemTime::now();
    let params = CertificateRevocationListParams {
        this_update: (now - Duration::from_secs(3600)).into(),
        next_update: (now + Duration::from_secs(7 * 86_400)).into(),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|c| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&c.serial),
                revocation_time: (now - Duration::from_secs(60)).into(),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(ca.issuer())
        .expect("sign revocation list")
        .pem()
        .expect("encode revocation list")
}

/// Runs `openssl` with `args` in `dir` and returns its standard output, or its exit
/// status and standard error.
fn openssl(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (is it installed?)");
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "openssl {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Decrypts an S/MIME message (the whole RFC 5322 message, as `openssl cms` reads SMIME
/// input) with `openssl cms -decrypt` and returns the decrypted entity.
pub fn cms_decrypt(message: &[u8], cert_pem: &str, key_pem: &str) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("msg.eml"), message).expect("write message");
    fs::write(dir.path().join("rcpt.pem"), cert_pem).expect("write certificate");
    fs::write(dir.path().join("rcpt.key"), key_pem).expect("write key");
    openssl(
        dir.path(),
        &[
            "cms", "-decrypt", "-in", "msg.eml", "-recip", "rcpt.pem", "-inkey", "rcpt.key",
        ],
    )
}

/// Verifies a `multipart/signed` entity with `openssl cms -verify` against the roots in
/// `ca_pem` and returns the signed content as OpenSSL outputs it.
pub fn cms_verify(signed_entity: &[u8], ca_pem: &str) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("signed.eml"), signed_entity).expect("write entity");
    fs::write(dir.path().join("ca.pem"), ca_pem).expect("write CA");
    openssl(
        dir.path(),
        &["cms", "-verify", "-in", "signed.eml", "-CAfile", "ca.pem"],
    )
}

/// `openssl cms -cmsout -print` of a DER CMS structure: every field spelled out.
pub fn cms_print(der: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("cms.der"), der).expect("write CMS");
    openssl(
        dir.path(),
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "cms.der",
        ],
    )
    .map(|out| String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(dir: &Path, purpose: &str, extra: &[&str]) -> Result<Vec<u8>, String> {
        let mut args = vec!["verify", "-CAfile", "ca.pem", "-purpose", purpose];
        args.extend_from_slice(extra);
        args.push("leaf.pem");
        openssl(dir, &args)
    }

    #[test]
    fn openssl_accepts_an_issued_rsa_certificate_for_smime_encryption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        ca.write_to(dir.path());
        let spec = EmailCertSpec {
            key: EmailKey::Rsa2048,
            ..EmailCertSpec::default()
        };
        issue_email(&ca, "alice@example.test", spec).write_to(dir.path(), "leaf");
        verify(dir.path(), "smimeencrypt", &[]).expect("RSA certificate verifies");
    }

    #[test]
    fn openssl_rejects_expired_and_not_yet_valid_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        ca.write_to(dir.path());
        for validity in [Validity::Expired, Validity::NotYetValid] {
            let spec = EmailCertSpec {
                validity,
                ..EmailCertSpec::default()
            };
            issue_email(&ca, "bob@example.test", spec).write_to(dir.path(), "leaf");
            verify(dir.path(), "smimesign", &[]).expect_err("outside its validity period");
        }
    }

    #[test]
    fn a_revocation_list_revokes_only_the_listed_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        ca.write_to(dir.path());
        let revoked = issue_email(&ca, "eve@example.test", EmailCertSpec::default());
        let fine = issue_email(&ca, "bob@example.test", EmailCertSpec::default());
        fs::write(
            dir.path().join("crl.pem"),
            revocation_list(&ca, &[&revoked]),
        )
        .expect("crl");
        let crl = ["-crl_check", "-CRLfile", "crl.pem"];
        fine.write_to(dir.path(), "leaf");
        verify(dir.path(), "smimesign", &crl).expect("not revoked");
        revoked.write_to(dir.path(), "leaf");
        let err = verify(dir.path(), "smimesign", &crl).expect_err("revoked");
        assert!(err.contains("revoked"), "{err}");
    }
}
