//! The end-to-end encryption workers (OpenPGP and S/MIME): what the key lookups found (the
//! policy says which lookups matter, `sealgate_policy::Prepared::keys_that_matter`) as policy evidence,
//! and the message encrypted to the key found — or, when that key turns out unusable at send
//! time, the reason the recipient falls to the next method of its chain.

use sealgate_audit::AuditEvent;
use sealgate_discovery::keys::{KeyFinding, RecipientKeys};
use sealgate_encrypt::pgp::{self, PgpSettings};
use sealgate_encrypt::smime::{self, ContentCipher, SmimeSettings};
use sealgate_encrypt::{EncryptError, Encrypted, KeyInfo};
use sealgate_policy::Method;

/// How encrypted messages are made; a method is off when its settings are `None`.
#[derive(Clone, Debug, Default)]
pub struct Encryption {
    /// PGP/MIME settings (outer subject, archive key, signer).
    pub pgp: Option<PgpSettings>,
    /// S/MIME settings.
    pub smime: Option<SmimeOut>,
}

/// S/MIME settings with the per-recipient cipher choice.
#[derive(Clone, Debug, Default)]
pub struct SmimeOut {
    /// Outer subject and signer.
    pub settings: SmimeSettings,
    /// The default content cipher.
    pub cipher: ContentCipher,
    /// Addresses or domains (lowercase) that get AES-256-CBC instead.
    pub cbc_for: Vec<String>,
}

impl SmimeOut {
    /// The content cipher for `rcpt`.
    pub fn cipher_for(&self, rcpt: &str) -> ContentCipher {
        let rcpt = rcpt.to_ascii_lowercase();
        let domain = rcpt.rsplit_once('@').map_or("", |(_, d)| d);
        let listed = self.cbc_for.iter().any(|e| *e == rcpt || *e == domain);
        if listed {
            ContentCipher::Aes256Cbc
        } else {
            self.cipher
        }
    }
}

/// Evidence lines: which key each lookup found, where, and whether it can be used.
pub(crate) fn key_notes(keys: &RecipientKeys) -> Vec<String> {
    let mut out = Vec::new();
    finding_notes("pgp", &keys.pgp, &mut out);
    finding_notes("smime", &keys.smime, &mut out);
    out
}

fn finding_notes<C>(kind: &str, f: &KeyFinding<C>, out: &mut Vec<String>) {
    match f {
        KeyFinding::NotLooked => {}
        KeyFinding::Absent { notes } => {
            out.push(format!("{kind}: no key found"));
            out.extend(notes.iter().map(|n| format!("{kind}: {n}")));
        }
        KeyFinding::Found {
            info,
            source,
            notes,
            ..
        } => {
            out.push(format!(
                "{kind}: key {} from {}: {}",
                info.fingerprint,
                source.as_str(),
                validity(info)
            ));
            out.extend(notes.iter().map(|n| format!("{kind}: {n}")));
        }
    }
}

/// `usable: …` or `unusable: …`.
fn validity(info: &KeyInfo) -> String {
    match &info.status {
        Ok(desc) => format!("usable: {desc}"),
        Err(p) => format!("unusable: {p}"),
    }
}

/// One `key_discovered` event per fresh network discovery.
pub(crate) fn discovered_events(message_id: &str, keys: &RecipientKeys) -> Vec<AuditEvent> {
    keys.discovered
        .iter()
        .map(|d| AuditEvent::KeyDiscovered {
            message_id: Some(message_id.to_owned()),
            address: d.address.clone(),
            kind: d.kind.as_str().to_owned(),
            source: d.source.as_str().to_owned(),
            fingerprint: d.fingerprint.clone(),
            validity: d.validity.clone(),
        })
        .collect()
}

/// Why a recipient's copy could not be encrypted now (the recipient falls to the next method
/// of its chain; the text is its evidence).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    /// The method is not configured here.
    #[error("{0} is turned off")]
    Off(Method),
    /// No key or certificate was found for the recipient.
    #[error("{}", if *.0 == Method::Pgp { "pgp: no key" } else { "smime: no certificate" })]
    NoKey(Method),
    /// Encrypting to the key found failed (it expired, was revoked, or the content could not
    /// be wrapped).
    #[error("{method} failed: {source}")]
    Failed {
        /// PGP or S/MIME.
        method: Method,
        /// What the encryption said.
        source: EncryptError,
    },
    /// A method that does not encrypt.
    #[error("{0} is not an encryption method")]
    NotEncryption(Method),
}

/// `content` encrypted for `rcpt` by `method` (PGP or S/MIME) to the key in `keys`, at `now`
/// (Unix seconds). The error says why this method cannot be used now.
pub(crate) fn seal(
    enc: &Encryption,
    method: Method,
    rcpt: &str,
    keys: &RecipientKeys,
    content: &[u8],
    now: i64,
) -> Result<Encrypted, SealError> {
    let failed = |source| SealError::Failed { method, source };
    match method {
        Method::Pgp => {
            let settings = enc.pgp.as_ref().ok_or(SealError::Off(method))?;
            let KeyFinding::Found { cert, .. } = &keys.pgp else {
                return Err(SealError::NoKey(method));
            };
            pgp::encrypt(content, cert, settings, now).map_err(failed)
        }
        Method::Smime => {
            let out = enc.smime.as_ref().ok_or(SealError::Off(method))?;
            let KeyFinding::Found { cert, .. } = &keys.smime else {
                return Err(SealError::NoKey(method));
            };
            smime::encrypt(content, cert, out.cipher_for(rcpt), &out.settings).map_err(failed)
        }
        other => Err(SealError::NotEncryption(other)),
    }
}
