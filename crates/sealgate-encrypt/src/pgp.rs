//! OpenPGP: certificates (parse, validate) and PGP/MIME encryption (RFC 3156).
//!
//! Validation uses sequoia's `StandardPolicy` at the caller's `now`, so a certificate's
//! verdict is reproducible for a given moment: revocation, expiry, a live encryption-capable
//! key and algorithm policy (`validate`). Messages are encrypted for GnuPG 2.2 readers:
//! v3 PKESK, SEIPD v1 with MDC, AES-256, never the RFC 9580 AEAD packets (`seal`).

mod seal;
mod validate;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse as _;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto as _;

use crate::{EncryptError, KeyInfo};

pub use seal::encrypt;

/// An OpenPGP certificate (public parts only).
#[derive(Clone, Debug)]
pub struct PgpCert {
    cert: openpgp::Cert,
    /// Its binary serialization, made once when parsed.
    bytes: Vec<u8>,
}

impl PgpCert {
    /// Every certificate in `data` (ASCII-armored or binary; one certificate or a keyring).
    /// Secret key material, if any, is dropped.
    pub fn parse_all(data: &[u8]) -> Result<Vec<PgpCert>, EncryptError> {
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(data).map_err(malformed)? {
            certs.push(PgpCert::new(cert.map_err(malformed)?)?);
        }
        if certs.is_empty() {
            return Err(EncryptError::Malformed(
                "no OpenPGP certificate found".to_owned(),
            ));
        }
        Ok(certs)
    }

    /// Whether `data` (as [`PgpCert::parse_all`] reads it) holds secret key material, which
    /// parsing drops: callers tell the operator only the public part is kept.
    pub fn holds_secret(data: &[u8]) -> bool {
        CertParser::from_bytes(data)
            .map(|certs| certs.flatten().any(|c| c.is_tsk()))
            .unwrap_or(false)
    }

    /// Exactly one certificate from `data` (as stored: binary).
    pub fn from_bytes(data: &[u8]) -> Result<PgpCert, EncryptError> {
        let mut certs = Self::parse_all(data)?;
        match certs.len() {
            1 => Ok(certs.remove(0)),
            n => Err(EncryptError::Malformed(format!(
                "expected one OpenPGP certificate, found {n}"
            ))),
        }
    }

    /// `cert` without its secrets, serialized once.
    fn new(cert: openpgp::Cert) -> Result<PgpCert, EncryptError> {
        let cert = cert.strip_secret_key_material();
        let bytes = cert.to_vec().map_err(malformed)?;
        Ok(PgpCert { cert, bytes })
    }

    /// The binary transferable public key (what the store keeps).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The primary key's fingerprint, uppercase hex.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// What validation finds at `now` (Unix seconds).
    pub fn info(&self, now: i64) -> KeyInfo {
        validate::info(&self.cert, now)
    }

    /// The sequoia certificate.
    pub fn cert(&self) -> &openpgp::Cert {
        &self.cert
    }
}

/// The organisation's signing key (a transferable secret key, unencrypted).
#[derive(Clone)]
pub struct PgpSigner(openpgp::Cert);

impl std::fmt::Debug for PgpSigner {
    // Only the fingerprint: the derived form would print (in-memory encrypted) secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PgpSigner")
            .field(&self.fingerprint())
            .finish()
    }
}

impl PgpSigner {
    /// The secret key in `data` (armored or binary).
    ///
    /// Fails with [`EncryptError::OrgKey`] unless `data` holds exactly one certificate with
    /// a signing-capable key valid now (policy-accepted, alive, not revoked) whose secret is
    /// not passphrase-protected. [`encrypt`] checks the key again at its own `now`.
    pub fn from_bytes(data: &[u8]) -> Result<PgpSigner, EncryptError> {
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(data).map_err(org_key)? {
            certs.push(cert.map_err(org_key)?);
        }
        if certs.len() != 1 {
            return Err(EncryptError::OrgKey(format!(
                "expected one OpenPGP secret key, found {} certificates",
                certs.len()
            )));
        }
        let cert = certs.remove(0);
        if !cert.is_tsk() {
            return Err(EncryptError::OrgKey(
                "no secret key material (a public key was given)".to_owned(),
            ));
        }
        let policy = StandardPolicy::new();
        seal::signing_key(&cert, &policy, std::time::SystemTime::now())?;
        Ok(PgpSigner(cert))
    }

    /// The primary key's fingerprint, uppercase hex.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint().to_hex()
    }

    /// The public part (to publish, or to give to recipients for verification).
    pub fn public_cert(&self) -> Result<PgpCert, EncryptError> {
        PgpCert::new(self.0.clone())
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

/// sequoia's errors (`anyhow::Error`) with their causes, as [`EncryptError::Malformed`].
fn malformed(e: impl std::fmt::Display) -> EncryptError {
    EncryptError::Malformed(format!("OpenPGP: {e:#}"))
}

/// sequoia's errors with their causes, as [`EncryptError::OrgKey`].
fn org_key(e: impl std::fmt::Display) -> EncryptError {
    EncryptError::OrgKey(format!("OpenPGP: {e:#}"))
}

/// `now` (Unix seconds) as a `SystemTime`; times before 1970 clamp to the epoch.
fn system_time(now: i64) -> std::time::SystemTime {
    let secs = u64::try_from(now).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// `t` as Unix seconds (the epoch for earlier times).
fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
