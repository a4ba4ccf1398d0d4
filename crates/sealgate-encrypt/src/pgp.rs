//! OpenPGP: certificates (parse, validate) and PGP/MIME encryption (RFC 3156).
//! SKELETON — being implemented; signatures are the contract.

use crate::{EncryptError, Encrypted, KeyInfo};

/// An OpenPGP certificate (public parts only).
#[derive(Clone, Debug)]
pub struct PgpCert(sequoia_openpgp::Cert);

impl PgpCert {
    /// Every certificate in `data` (ASCII-armored or binary; one certificate or a keyring).
    /// Secret key material, if any, is dropped.
    pub fn parse_all(data: &[u8]) -> Result<Vec<PgpCert>, EncryptError> {
        let _ = data;
        unimplemented!()
    }

    /// Exactly one certificate from `data` (as stored: binary).
    pub fn from_bytes(data: &[u8]) -> Result<PgpCert, EncryptError> {
        let _ = data;
        unimplemented!()
    }

    /// The binary transferable public key (what the store keeps).
    pub fn to_bytes(&self) -> Vec<u8> {
        unimplemented!()
    }

    /// The primary key's fingerprint, uppercase hex.
    pub fn fingerprint(&self) -> String {
        unimplemented!()
    }

    /// What validation finds at `now` (Unix seconds).
    pub fn info(&self, now: i64) -> KeyInfo {
        let _ = now;
        unimplemented!()
    }
}

/// The organisation's signing key (a transferable secret key, unencrypted).
#[derive(Clone, Debug)]
pub struct PgpSigner(sequoia_openpgp::Cert);

impl PgpSigner {
    /// The secret key in `data` (armored or binary).
    pub fn from_bytes(data: &[u8]) -> Result<PgpSigner, EncryptError> {
        let _ = data;
        unimplemented!()
    }
}

/// How PGP/MIME messages are made.
#[derive(Clone, Debug, Default)]
pub struct PgpSettings {
    /// The outer Subject.
    pub subject: String,
    /// Also encrypted to this (the organisation's archive key), if set.
    pub archive: Option<PgpCert>,
    /// Signs (inside the encryption) with this, if set.
    pub signer: Option<PgpSigner>,
}

/// `message` as PGP/MIME encrypted to `recipient` at `now` (Unix seconds).
pub fn encrypt(
    message: &[u8],
    recipient: &PgpCert,
    settings: &PgpSettings,
    now: i64,
) -> Result<Encrypted, EncryptError> {
    let _ = (message, recipient, settings, now);
    unimplemented!()
}
