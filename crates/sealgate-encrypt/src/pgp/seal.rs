//! PGP/MIME encryption (RFC 3156 §4, signed and encrypted by the combined method of §6.2).
//!
//! The payload is the protected inner entity ([`mime::inner_entity`]) as one binary literal
//! data packet, uncompressed, optionally preceded by a one-pass signature, inside a
//! SEIPD v1 packet with MDC (RFC 4880 §5.13) under AES-256, ASCII-armored into the second
//! part of a `multipart/encrypted` body.

use std::io::Write as _;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::KeyHandle;
use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::policy::{Policy, StandardPolicy};
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{DataFormat, Features, HashAlgorithm, SymmetricAlgorithm};

use super::validate::{self, EncryptionKey};
use super::{PgpCert, PgpSettings, system_time};
use crate::{EncryptError, Encrypted, mime};

/// The cipher of the encrypted data: AES-256, which every OpenPGP implementation reads.
const CIPHER: SymmetricAlgorithm = SymmetricAlgorithm::AES256;

/// The signature digest: SHA-512 suits every signing algorithm GnuPG 2.2 knows (ECDSA
/// P-521 included, which needs a digest at least as long as the curve).
const DIGEST: HashAlgorithm = HashAlgorithm::SHA512;

/// The preamble before the first part, for readers without PGP/MIME support.
const PREAMBLE: &str = "This is an OpenPGP/MIME encrypted message (RFC 3156).";

/// `message` as PGP/MIME encrypted to `recipient` at `now` (Unix seconds).
///
/// Fails with [`EncryptError::Unusable`] if `recipient` must not be used at `now`, and with
/// [`EncryptError::OrgKey`] if the archive key or the signer cannot be used.
pub fn encrypt(
    message: &[u8],
    recipient: &PgpCert,
    settings: &PgpSettings,
    now: i64,
) -> Result<Encrypted, EncryptError> {
    let time = system_time(now);
    let policy = StandardPolicy::at(time);
    let Plan {
        keys,
        intended,
        signer,
        mut used,
    } = plan(recipient, settings, &policy, time)?;
    used.push(if signer.is_some() {
        "SEIPDv1 AES-256, signed SHA-512".to_owned()
    } else {
        "SEIPDv1 AES-256".to_owned()
    });
    let payload = mime::inner_entity(message, &settings.subject)?;
    let armored = seal(&payload, &keys, signer, &intended, time)?;
    let mut out = mime::outer_header(message, &settings.subject)?;
    multipart_encrypted(&mut out, &armored);
    Ok(Encrypted { message: out, used })
}

/// Who can decrypt, who signs, and the audit lines saying so.
struct Plan<'a> {
    /// Every key a session key is encrypted to.
    keys: Vec<EncryptionKey<'a>>,
    /// The certificates named as intended recipients in the signature.
    intended: Vec<&'a openpgp::Cert>,
    signer: Option<KeyPair>,
    used: Vec<String>,
}

/// The keys of the recipient (and archive) and the signer's key, all valid at `time`.
fn plan<'a>(
    recipient: &'a PgpCert,
    settings: &'a PgpSettings,
    policy: &'a dyn Policy,
    time: SystemTime,
) -> Result<Plan<'a>, EncryptError> {
    let fpr = recipient.fingerprint();
    let mut keys =
        validate::encryption_keys(recipient.cert(), policy, time).map_err(|problem| {
            EncryptError::Unusable {
                fingerprint: fpr.clone(),
                problem,
            }
        })?;
    let mut used = vec![format!(
        "recipient key {fpr}: {}",
        validate::describe_all(&keys)
    )];
    let mut intended = vec![recipient.cert()];
    if let Some(archive) = &settings.archive {
        let fpr = archive.fingerprint();
        let archive_keys = validate::encryption_keys(archive.cert(), policy, time)
            .map_err(|p| EncryptError::OrgKey(format!("archive key {fpr}: {p}")))?;
        used.push(format!(
            "archive key {fpr}: {}",
            validate::describe_all(&archive_keys)
        ));
        keys.extend(archive_keys);
        intended.push(archive.cert());
    }
    let signer = match &settings.signer {
        Some(signer) => {
            let (pair, line) = signing_key(&signer.0, policy, time)?;
            used.push(line);
            Some(pair)
        }
        None => None,
    };
    Ok(Plan {
        keys,
        intended,
        signer,
        used,
    })
}

/// The signing key of `signer` valid at `time`, ready to sign, and the audit line naming it.
pub(super) fn signing_key(
    signer: &openpgp::Cert,
    policy: &dyn Policy,
    time: SystemTime,
) -> Result<(KeyPair, String), EncryptError> {
    let fpr = signer.fingerprint().to_hex();
    let vc = validate::valid_cert(signer, policy, time)
        .map_err(|p| EncryptError::OrgKey(format!("signing key {fpr}: {p}")))?;
    let mut protected = false;
    for ka in vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .secret()
    {
        let key = ka.key();
        let Ok(pair) = key.clone().into_keypair() else {
            // The secret is encrypted: Sealgate has no passphrase to unlock it.
            protected = true;
            continue;
        };
        let algo = validate::algorithm(key.parts_as_public());
        let line = if ka.primary() {
            format!("signed by {fpr} ({algo})")
        } else {
            format!(
                "signed by {fpr} with subkey {} ({algo})",
                key.fingerprint().to_hex()
            )
        };
        return Ok((pair, line));
    }
    Err(EncryptError::OrgKey(if protected {
        format!("signing key {fpr}: the secret key is passphrase-protected")
    } else {
        format!("signing key {fpr}: no valid signing-capable key with its secret")
    }))
}

/// The armored OpenPGP message: PKESKs for `keys`, SEIPD v1, optionally a one-pass
/// signature by `signer`, the literal `payload`.
fn seal(
    payload: &[u8],
    keys: &[EncryptionKey<'_>],
    signer: Option<KeyPair>,
    intended: &[&openpgp::Cert],
    time: SystemTime,
) -> Result<Vec<u8>, EncryptError> {
    // Armor grows data by 4/3 plus line ends; the packets add little.
    let mut sink = Vec::with_capacity(payload.len() / 3 * 4 + payload.len() / 32 + 2048);
    let message = Message::new(&mut sink);
    let message = Armorer::new(message)
        .kind(armor::Kind::Message)
        .build()
        .map_err(crypto)?;
    // sequoia picks SEIPD v2 (AEAD, RFC 9580) when every recipient announces it, and
    // GnuPG 2.2 cannot read that. Announcing SEIPD v1 only for every recipient makes it
    // write v3 PKESKs and SEIPD v1 with MDC, whatever the certificates advertise.
    let recipients = keys.iter().map(|ka| {
        let handle = KeyHandle::from(ka.key().keyid());
        Recipient::new(Features::empty().set_seipdv1(), handle, ka.key())
    });
    let mut message = Encryptor::for_recipients(message, recipients)
        .symmetric_algo(CIPHER)
        .build()
        .map_err(crypto)?;
    if let Some(pair) = signer {
        let mut s = Signer::new(message, pair)
            .and_then(|s| s.hash_algo(DIGEST))
            .map_err(crypto)?
            .creation_time(time);
        for cert in intended {
            s = s.add_intended_recipient(cert);
        }
        message = s.build().map_err(crypto)?;
    }
    let mut literal = LiteralWriter::new(message)
        .format(DataFormat::Binary)
        .build()
        .map_err(crypto)?;
    literal.write_all(payload).map_err(crypto)?;
    literal.finalize().map_err(crypto)?;
    Ok(mime::canonical_crlf(&sink))
}

/// Appends the `multipart/encrypted` Content-Type, the blank line and the two parts of
/// RFC 3156 §4 (version identification, then the armored message) to `out`.
fn multipart_encrypted(out: &mut Vec<u8>, armored: &[u8]) {
    let b = mime::boundary();
    let head = format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n\
         \x20boundary=\"{b}\"\r\n\
         \r\n\
         {PREAMBLE}\r\n\
         --{b}\r\n\
         Content-Type: application/pgp-encrypted\r\n\
         Content-Description: PGP/MIME version identification\r\n\
         \r\n\
         Version: 1\r\n\
         \r\n\
         --{b}\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Description: OpenPGP encrypted message\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\
         \r\n"
    );
    out.reserve(head.len() + armored.len() + b.len() + 8);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(armored);
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
}

/// sequoia's and I/O errors, with their causes, as [`EncryptError::Crypto`].
fn crypto(e: impl std::fmt::Display) -> EncryptError {
    EncryptError::Crypto(format!("OpenPGP: {e:#}"))
}
