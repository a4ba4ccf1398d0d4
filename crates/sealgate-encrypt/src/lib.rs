//! Sealgate end-to-end encryption (layer L1).
//!
//! Owns recipient credentials and what is done with them: OpenPGP certificates ([`pgp`]) and
//! X.509 certificates ([`smime`]) are parsed, validated at a given time (expiry, revocation, an
//! encryption-capable key, for S/MIME a chain to trust roots) and used to turn a message into
//! PGP/MIME (RFC 3156) or S/MIME 4.0 (RFC 8551) with its real header fields protected inside
//! (RFC 9788, [`mime`]). Pure computation on bytes: no I/O beyond what a caller hands in, no
//! async, no other Sealgate crate but `sealgate-types`. Never logs key material or content.

mod error;
pub mod mime;
pub mod pgp;
pub mod smime;

pub use error::EncryptError;

/// Which kind of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// An OpenPGP certificate (transferable public key).
    Pgp,
    /// An X.509 certificate for S/MIME.
    Smime,
}

impl KeyKind {
    /// The configuration, store and audit spelling: `pgp` or `smime`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Pgp => "pgp",
            KeyKind::Smime => "smime",
        }
    }
}

impl std::str::FromStr for KeyKind {
    type Err = EncryptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pgp" => Ok(KeyKind::Pgp),
            "smime" => Ok(KeyKind::Smime),
            other => Err(EncryptError::Malformed(format!(
                "unknown key kind {other:?} (pgp or smime)"
            ))),
        }
    }
}

/// Why a key or certificate must not be used to encrypt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Expired (the certificate, the primary key, or every encryption-capable key).
    #[error("expired at {}", fmt_time(*at))]
    Expired {
        /// When, in Unix seconds.
        at: i64,
    },
    /// Not valid yet.
    #[error("not valid before {}", fmt_time(*from))]
    NotYetValid {
        /// From when, in Unix seconds.
        from: i64,
    },
    /// Revoked by its owner or issuer.
    #[error("revoked: {0}")]
    Revoked(String),
    /// No encryption-capable (sub)key, or a key usage that forbids encryption.
    #[error("no encryption-capable key: {0}")]
    SigningOnly(String),
    /// The certificate does not chain to a configured trust root (S/MIME).
    #[error("untrusted: {0}")]
    Untrusted(String),
    /// Malformed, or fails validation otherwise (weak algorithm, no valid user id).
    #[error("invalid: {0}")]
    Invalid(String),
}

impl Problem {
    /// The short class used in policy evidence: `expired`, `revoked`, `signing-only` or
    /// `invalid` (not yet valid and untrusted count as invalid).
    pub fn class(&self) -> &'static str {
        match self {
            Problem::Expired { .. } => "expired",
            Problem::Revoked(_) => "revoked",
            Problem::SigningOnly(_) => "signing-only",
            Problem::NotYetValid { .. } | Problem::Untrusted(_) | Problem::Invalid(_) => "invalid",
        }
    }
}

/// A parsed credential and what validation found at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// OpenPGP or S/MIME.
    pub kind: KeyKind,
    /// OpenPGP: the primary key's fingerprint, 40 (v4) or 64 (v6) uppercase hex digits.
    /// S/MIME: SHA-256 of the certificate's DER, 64 lowercase hex digits.
    pub fingerprint: String,
    /// The addresses the credential is bound to, lowercased: OpenPGP user ids that are
    /// valid (not revoked, self-signed), S/MIME rfc822Name subject alternative names and
    /// subject emailAddress attributes.
    pub emails: Vec<String>,
    /// When it expires (Unix seconds), if it does.
    pub expires: Option<i64>,
    /// `Ok(description of the key encryption would use)`, for example
    /// `"encryption subkey 0123ABCD… (ECDH cv25519)"`, or why it must not be used.
    pub status: Result<String, Problem>,
}

impl KeyInfo {
    /// Whether encryption may use it.
    pub fn usable(&self) -> bool {
        self.status.is_ok()
    }

    /// Whether `address` (any case) is one of [`KeyInfo::emails`].
    pub fn binds(&self, address: &str) -> bool {
        self.emails.contains(&address.to_ascii_lowercase())
    }
}

/// A message turned into PGP/MIME or S/MIME.
#[derive(Clone, Debug)]
pub struct Encrypted {
    /// The whole outgoing message (RFC 5322, CRLF line ends): outer header fields and the
    /// encrypted body.
    pub message: Vec<u8>,
    /// What was used, for the audit: recipient key, archive key, signer, algorithms.
    pub used: Vec<String>,
}

/// `at` (Unix seconds) as RFC 3339 UTC.
pub fn fmt_time(at: i64) -> String {
    sealgate_types::time::rfc3339_micros(at.saturating_mul(1_000_000))
}
