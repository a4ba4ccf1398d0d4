//! The organisation's signature: a `multipart/signed` entity (RFC 1847 §2.1, RFC 8551
//! §3.5.3) whose second part is a detached CMS SignedData over the first.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{Id, PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use sha2::{Digest, Sha256};

use crate::{EncryptError, mime};

/// The smallest RSA signing key accepted.
const MIN_RSA_BITS: u32 = 2048;

/// The organisation's signing certificate and key.
#[derive(Clone)]
pub struct SmimeSigner {
    cert: X509,
    /// SHA-256 of the certificate's DER, lowercase hex.
    fingerprint: String,
    /// Intermediate certificates sent along so recipients can build the chain.
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl std::fmt::Debug for SmimeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmimeSigner")
            .field("cert", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SmimeSigner {
    /// From a PEM certificate (followed by any intermediates) and a PEM private key.
    ///
    /// The key must be RSA (at least 2048 bits) or EC, so SHA-256 is the digest
    /// (`micalg=sha-256`), and must belong to the first certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<SmimeSigner, EncryptError> {
        let org = |what: &str, e: openssl::error::ErrorStack| {
            EncryptError::OrgKey(format!("S/MIME signing {what}: {e}"))
        };
        let mut certs = X509::stack_from_pem(cert_pem).map_err(|e| org("certificate", e))?;
        if certs.is_empty() {
            return Err(EncryptError::OrgKey(
                "S/MIME signing certificate: no certificate in the PEM data".to_owned(),
            ));
        }
        let cert = certs.remove(0);
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| org("key", e))?;
        match key.id() {
            Id::RSA if key.bits() >= MIN_RSA_BITS => {}
            Id::EC => {}
            _ => {
                return Err(EncryptError::OrgKey(format!(
                    "S/MIME signing key: RSA of at least {MIN_RSA_BITS} bits or EC required"
                )));
            }
        }
        let public = cert.public_key().map_err(|e| org("certificate key", e))?;
        if !public.public_eq(&key) {
            return Err(EncryptError::OrgKey(
                "S/MIME signing key does not match the certificate".to_owned(),
            ));
        }
        let der = cert.to_der().map_err(|e| org("certificate", e))?;
        Ok(SmimeSigner {
            fingerprint: hex::encode(Sha256::digest(der)),
            cert,
            chain: certs,
            key,
        })
    }

    /// SHA-256 of the signing certificate's DER, lowercase hex.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// `entity` (canonical CRLF) signed: a `multipart/signed` entity whose first part is
    /// `entity` byte for byte.
    pub(crate) fn signed_entity(&self, entity: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let signature = self.detached_signature(entity)?;
        let boundary = mime::boundary();
        let mut out = Vec::with_capacity(entity.len() + signature.len() * 2 + 512);
        out.extend_from_slice(
            format!(
                "MIME-Version: 1.0\r\n\
                 Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n \
                 micalg=sha-256; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(entity);
        // RFC 2046 §5.1.1: the CRLF before a delimiter belongs to the delimiter, so the
        // first part is exactly `entity`.
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\n\
                 Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&mime::base64_lines(&signature));
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok(out)
    }

    /// A detached SignedData over `content` as given (BINARY: no newline conversion),
    /// with the signer's certificate and intermediates.
    fn detached_signature(&self, content: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let mut chain = Stack::new()?;
        for cert in &self.chain {
            chain.push(cert.clone())?;
        }
        let signed = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            Some(&chain),
            Some(content),
            CMSOptions::DETACHED | CMSOptions::BINARY,
        )?;
        Ok(signed.to_der()?)
    }
}
