//! Recipient certificates: parsing, the addresses they bind, and what validation at a
//! given time finds (RFC 8550 §4, RFC 5280).

use openssl::nid::Nid;
use openssl::x509::{X509, X509ExtendedKeyUsage, X509KeyUsage, X509Ref};
use sha2::{Digest, Sha256};

use super::recipient::KeyAlg;
use super::{TrustStore, name_text, unix_time};
use crate::{EncryptError, KeyInfo, KeyKind, Problem};

/// An X.509 certificate.
#[derive(Clone, Debug)]
pub struct SmimeCert {
    x509: X509,
    /// The DER encoding, kept so [`SmimeCert::to_der`] and the fingerprint cannot fail.
    der: Vec<u8>,
}

impl SmimeCert {
    /// Every certificate in `data` (a PEM bundle, or one DER certificate).
    pub fn parse_all(data: &[u8]) -> Result<Vec<SmimeCert>, EncryptError> {
        if !data.trim_ascii_start().starts_with(b"-----BEGIN") {
            return Ok(vec![SmimeCert::from_der(data)?]);
        }
        let certs = X509::stack_from_pem(data)
            .map_err(|e| EncryptError::Malformed(format!("PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(EncryptError::Malformed(
                "no certificate in the PEM data".to_owned(),
            ));
        }
        certs.into_iter().map(SmimeCert::from_x509).collect()
    }

    /// One DER certificate (as stored).
    pub fn from_der(der: &[u8]) -> Result<SmimeCert, EncryptError> {
        let x509 = X509::from_der(der)
            .map_err(|e| EncryptError::Malformed(format!("DER certificate: {e}")))?;
        SmimeCert::from_x509(x509)
    }

    fn from_x509(x509: X509) -> Result<SmimeCert, EncryptError> {
        let der = x509
            .to_der()
            .map_err(|e| EncryptError::Malformed(format!("certificate encoding: {e}")))?;
        Ok(SmimeCert { x509, der })
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// SHA-256 of the DER, lowercase hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    /// What validation finds at `now` (Unix seconds). `trust`: the roots (and CRLs) the
    /// certificate must chain to; `None` when it was authenticated otherwise (DNSSEC-signed
    /// SMIMEA with usage DANE-EE, RFC 8162 §2) and needs no chain.
    ///
    /// Checked in order: the key (RSA of at least 2048 bits, or EC on P-256, P-384,
    /// P-521), the validity period, the key usage and extended key usage, then the chain
    /// and revocation.
    pub fn info(&self, trust: Option<&TrustStore>, now: i64) -> KeyInfo {
        KeyInfo {
            kind: KeyKind::Smime,
            fingerprint: self.fingerprint(),
            emails: self.emails(),
            expires: unix_time(self.x509.not_after()).ok(),
            status: self.status(trust, now),
        }
    }

    fn status(&self, trust: Option<&TrustStore>, now: i64) -> Result<String, Problem> {
        let alg = KeyAlg::of(&self.x509)?;
        check_period(&self.x509, now)?;
        check_usage(&self.x509, alg)?;
        if let Some(trust) = trust {
            trust.check(&self.x509, alg, now)?;
        }
        Ok(alg.describe())
    }

    /// rfc822Name subject alternative names, then subject emailAddress attributes
    /// (RFC 8550 §3), lowercased, each once.
    fn emails(&self) -> Vec<String> {
        let sans = self.x509.subject_alt_names();
        let from_sans = sans.iter().flatten().filter_map(|n| n.email());
        let subject = self.x509.subject_name();
        let from_subject = subject
            .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
            .filter_map(|e| std::str::from_utf8(e.data().as_slice()).ok());
        let mut out: Vec<String> = Vec::new();
        for email in from_sans.chain(from_subject) {
            let email = email.to_ascii_lowercase();
            if !out.contains(&email) {
                out.push(email);
            }
        }
        out
    }

    /// The underlying certificate.
    /// Whether this certificate issued `other` (names and signature match): in a file that
    /// holds a recipient's certificate with its chain, the chain's CA certificates.
    pub fn issued(&self, other: &SmimeCert) -> bool {
        self.x509.issued(&other.x509) == openssl::x509::X509VerifyResult::OK
            && other
                .x509
                .public_key()
                .and_then(|_| self.x509.public_key())
                .and_then(|key| other.x509.verify(&key))
                .unwrap_or(false)
    }

    pub(crate) fn x509(&self) -> &X509Ref {
        &self.x509
    }

    /// The DER encoding, borrowed.
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// "subject, issued by issuer", for the audit.
    pub(crate) fn names(&self) -> String {
        format!(
            "{}, issued by {}",
            name_text(self.x509.subject_name()),
            name_text(self.x509.issuer_name())
        )
    }
}

/// RFC 5280 §4.1.2.5: the certificate is valid from notBefore through notAfter.
fn check_period(cert: &X509Ref, now: i64) -> Result<(), Problem> {
    let unreadable = |e| Problem::Invalid(format!("unreadable validity period: {e}"));
    let from = unix_time(cert.not_before()).map_err(unreadable)?;
    let until = unix_time(cert.not_after()).map_err(unreadable)?;
    if now < from {
        return Err(Problem::NotYetValid { from });
    }
    if now > until {
        return Err(Problem::Expired { at: until });
    }
    Ok(())
}

/// RFC 8550 §4.4.2: a key usage extension must allow keyEncipherment for RSA key
/// transport, keyAgreement for ECDH (RFC 5753 §3); an extended key usage extension must
/// include emailProtection or anyExtendedKeyUsage (RFC 8550 §4.4.4).
fn check_usage(cert: &X509Ref, alg: KeyAlg) -> Result<(), Problem> {
    let (needed, name) = match alg {
        KeyAlg::Rsa { .. } => (X509KeyUsage::KEY_ENCIPHERMENT, "keyEncipherment"),
        KeyAlg::Ec(_) => (X509KeyUsage::KEY_AGREEMENT, "keyAgreement"),
    };
    if cert.key_usage().is_some_and(|ku| !ku.contains(needed)) {
        return Err(Problem::SigningOnly(format!(
            "key usage does not include {name}"
        )));
    }
    let allowed = X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU;
    if cert
        .extended_key_usage()
        .is_some_and(|eku| !eku.intersects(allowed))
    {
        return Err(Problem::Invalid(
            "extended key usage does not include emailProtection".to_owned(),
        ));
    }
    Ok(())
}
