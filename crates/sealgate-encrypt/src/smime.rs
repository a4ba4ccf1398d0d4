//! S/MIME: X.509 certificates (parse, validate against trust roots and CRLs) and S/MIME 4.0
//! enveloped messages (RFC 8551). SKELETON — being implemented; signatures are the contract.

use crate::{EncryptError, Encrypted, KeyInfo};

/// An X.509 certificate.
#[derive(Clone, Debug)]
pub struct SmimeCert(openssl::x509::X509);

impl SmimeCert {
    /// Every certificate in `data` (a PEM bundle, or one DER certificate).
    pub fn parse_all(data: &[u8]) -> Result<Vec<SmimeCert>, EncryptError> {
        let _ = data;
        unimplemented!()
    }

    /// One DER certificate (as stored).
    pub fn from_der(der: &[u8]) -> Result<SmimeCert, EncryptError> {
        let _ = der;
        unimplemented!()
    }

    /// The DER encoding.
    pub fn to_der(&self) -> Vec<u8> {
        unimplemented!()
    }

    /// SHA-256 of the DER, lowercase hex.
    pub fn fingerprint(&self) -> String {
        unimplemented!()
    }

    /// What validation finds at `now` (Unix seconds). `trust`: the roots (and CRLs) the
    /// certificate must chain to; `None` when it was authenticated otherwise (DNSSEC-signed
    /// SMIMEA with usage DANE-EE, RFC 8162 §2) and needs no chain.
    pub fn info(&self, trust: Option<&TrustStore>, now: i64) -> KeyInfo {
        let _ = (trust, now);
        unimplemented!()
    }
}

/// Trust roots and revocation lists for recipient certificates.
#[derive(Clone)]
pub struct TrustStore {
    _private: (),
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrustStore")
    }
}

impl TrustStore {
    /// Roots from `ca_pem` (a PEM bundle), or the system's default roots when `None`; with
    /// CRLs (PEM or DER each), which are then checked for every certificate of the chain
    /// they cover.
    pub fn new(ca_pem: Option<&[u8]>, crls: &[Vec<u8>]) -> Result<TrustStore, EncryptError> {
        let _ = (ca_pem, crls);
        unimplemented!()
    }
}

/// The content-encryption algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-256-GCM in AuthEnvelopedData (RFC 5083, 5084).
    #[default]
    Aes256Gcm,
    /// AES-256-CBC in EnvelopedData, for recipients whose clients lack AuthEnvelopedData.
    Aes256Cbc,
}

/// The organisation's signing certificate and key.
#[derive(Clone)]
pub struct SmimeSigner {
    _private: (),
}

impl std::fmt::Debug for SmimeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmimeSigner")
    }
}

impl SmimeSigner {
    /// From a PEM certificate (followed by any intermediates) and a PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<SmimeSigner, EncryptError> {
        let _ = (cert_pem, key_pem);
        unimplemented!()
    }
}

/// How S/MIME messages are made.
#[derive(Clone, Debug, Default)]
pub struct SmimeSettings {
    /// The outer Subject.
    pub subject: String,
    /// Signs the inner entity (before encrypting) with this, if set.
    pub signer: Option<SmimeSigner>,
}

/// `message` as S/MIME enveloped to `recipient` with `cipher`.
pub fn encrypt(
    message: &[u8],
    recipient: &SmimeCert,
    cipher: ContentCipher,
    settings: &SmimeSettings,
) -> Result<Encrypted, EncryptError> {
    let _ = (message, recipient, cipher, settings);
    unimplemented!()
}
