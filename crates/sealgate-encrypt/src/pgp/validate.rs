//! Whether a certificate may be encrypted to at a given moment, and with which keys.
//!
//! The checks run in the order a person would explain them: not yet valid, revoked
//! (RFC 9580 §5.2.3.31: hard revocations apply at every time, soft ones from their
//! creation), rejected by policy, primary key expired, then whether any alive, non-revoked,
//! policy-accepted key carries an encryption flag (RFC 9580 §5.2.3.29).

use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::mpi;
use openpgp::packet::key::PublicParts;
use openpgp::packet::{Key, Signature};
use openpgp::policy::{Policy, StandardPolicy};
use openpgp::types::{Curve, RevocationStatus};

use super::{system_time, unix};
use crate::{KeyInfo, KeyKind, Problem};

/// A key encryption may use, with the certificate it belongs to.
pub(super) type EncryptionKey<'a> = ValidErasedKeyAmalgamation<'a, PublicParts>;

/// The [`KeyInfo`] for `cert` at `now` (Unix seconds).
pub(super) fn info(cert: &openpgp::Cert, now: i64) -> KeyInfo {
    let time = system_time(now);
    let policy = StandardPolicy::at(time);
    let valid = cert.with_policy(&policy, time).ok();
    KeyInfo {
        kind: KeyKind::Pgp,
        fingerprint: cert.fingerprint().to_hex(),
        emails: valid.as_ref().map(emails).unwrap_or_default(),
        expires: valid
            .as_ref()
            .and_then(|vc| vc.primary_key().key_expiration_time())
            .map(unix),
        status: encryption_keys(cert, &policy, time).map(|keys| describe_all(&keys)),
    }
}

/// The keys of `cert` that encryption at `time` uses, or why there are none.
pub(super) fn encryption_keys<'a>(
    cert: &'a openpgp::Cert,
    policy: &'a dyn Policy,
    time: SystemTime,
) -> Result<Vec<EncryptionKey<'a>>, Problem> {
    usable_subset(&valid_cert(cert, policy, time)?)
}

/// `cert` as valid at `time`: created, not revoked, accepted by `policy`, primary key alive.
pub(super) fn valid_cert<'a>(
    cert: &'a openpgp::Cert,
    policy: &'a dyn Policy,
    time: SystemTime,
) -> Result<ValidCert<'a>, Problem> {
    let created = cert.primary_key().key().creation_time();
    if created > time {
        return Err(Problem::NotYetValid {
            from: unix(created),
        });
    }
    if let RevocationStatus::Revoked(sigs) = cert.revocation_status(policy, time) {
        return Err(Problem::Revoked(revocation_reason(&sigs)));
    }
    let vc = cert
        .with_policy(policy, time)
        .map_err(|e| Problem::Invalid(format!("{e:#}")))?;
    if vc.alive().is_err() {
        return Err(match vc.primary_key().key_expiration_time() {
            Some(at) if at <= time => Problem::Expired { at: unix(at) },
            _ => Problem::NotYetValid {
                from: unix(created),
            },
        });
    }
    Ok(vc)
}

/// The alive encryption-capable keys of a valid, alive, unrevoked certificate.
fn usable_subset<'a>(vc: &ValidCert<'a>) -> Result<Vec<EncryptionKey<'a>>, Problem> {
    let candidates: Vec<EncryptionKey<'a>> = vc
        .keys()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .collect();
    if candidates.is_empty() {
        return Err(Problem::SigningOnly(
            "no valid, unrevoked key with an encryption flag".to_owned(),
        ));
    }
    let supported: Vec<EncryptionKey<'a>> = candidates
        .into_iter()
        .filter(|ka| ka.key().pk_algo().is_supported())
        .collect();
    if supported.is_empty() {
        return Err(Problem::SigningOnly(
            "no encryption key with a supported algorithm".to_owned(),
        ));
    }
    let latest_expiry = supported
        .iter()
        .filter_map(|ka| ka.key_expiration_time())
        .max();
    let alive: Vec<EncryptionKey<'a>> = supported
        .into_iter()
        .filter(|ka| ka.alive().is_ok())
        .collect();
    match (alive.is_empty(), latest_expiry) {
        (false, _) => Ok(alive),
        (true, Some(at)) => Err(Problem::Expired { at: unix(at) }),
        (true, None) => Err(Problem::SigningOnly(
            "no encryption key is valid yet".to_owned(),
        )),
    }
}

/// The lowercased addresses of the valid, unrevoked user ids, in order, without repeats.
fn emails(vc: &ValidCert<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for uid in vc.userids().revoked(false) {
        if let Ok(Some(email)) = uid.userid().email() {
            let email = email.to_ascii_lowercase();
            if !out.contains(&email) {
                out.push(email);
            }
        }
    }
    out
}

/// The reason the newest revocation gives, as printable text.
fn revocation_reason(sigs: &[&Signature]) -> String {
    let Some(sig) = sigs.iter().max_by_key(|s| s.signature_creation_time()) else {
        return "revoked".to_owned();
    };
    match sig.reason_for_revocation() {
        None => "no reason given".to_owned(),
        Some((code, [])) => code.to_string(),
        Some((code, text)) => format!("{code} ({})", printable(text, 200)),
    }
}

/// `bytes` as text with anything but printable ASCII replaced, at most `max` characters.
fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect()
}

/// The keys in one phrase, e.g. `encryption subkey 0123…CDEF (ECDH cv25519)`.
pub(super) fn describe_all(keys: &[EncryptionKey<'_>]) -> String {
    keys.iter().map(describe).collect::<Vec<_>>().join(", ")
}

/// One key: role, fingerprint and algorithm.
pub(super) fn describe(ka: &EncryptionKey<'_>) -> String {
    let role = if ka.primary() {
        "encryption primary key"
    } else {
        "encryption subkey"
    };
    format!(
        "{role} {} ({})",
        ka.key().fingerprint().to_hex(),
        algorithm(ka.key())
    )
}

/// The algorithm and size or curve, e.g. `RSA 3072`, `ECDH cv25519`, `EdDSA ed25519`.
pub(super) fn algorithm<R: openpgp::packet::key::KeyRole>(key: &Key<PublicParts, R>) -> String {
    let algo = key.pk_algo();
    match key.mpis() {
        mpi::PublicKey::ECDH { curve, .. }
        | mpi::PublicKey::EdDSA { curve, .. }
        | mpi::PublicKey::ECDSA { curve, .. } => format!("{algo} {}", curve_name(curve)),
        mpi::PublicKey::RSA { .. }
        | mpi::PublicKey::DSA { .. }
        | mpi::PublicKey::ElGamal { .. } => match key.mpis().bits() {
            Some(bits) => format!("{algo} {bits}"),
            None => algo.to_string(),
        },
        _ => algo.to_string(),
    }
}

/// The short curve names GnuPG prints.
fn curve_name(curve: &Curve) -> String {
    match curve {
        Curve::Cv25519 => "cv25519".to_owned(),
        Curve::Ed25519 => "ed25519".to_owned(),
        Curve::NistP256 => "P-256".to_owned(),
        Curve::NistP384 => "P-384".to_owned(),
        Curve::NistP521 => "P-521".to_owned(),
        other => other.to_string(),
    }
}
