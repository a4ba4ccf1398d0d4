//! Argon2id password hashes (PHC string format) for SMTP AUTH users.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CryptoError;

/// Hashes a password with Argon2id and a fresh random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Password(e.to_string()))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
/// The comparison inside argon2 is constant-time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// HMAC-SHA256 of credentials under a random key that lives only in this value (in memory,
/// never stored): a name for a user-and-password pair that reveals neither, and that cannot be
/// attacked offline without the key, unlike a plain fast hash of a password.
#[derive(Clone)]
pub struct CredentialDigest {
    /// Keyed once; cloned for each digest.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CredentialDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialDigest(..)")
    }
}

impl CredentialDigest {
    /// A digest with a fresh random key.
    pub fn new() -> Result<Self, CryptoError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| CryptoError::Random(e.to_string()))?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|e| CryptoError::Password(e.to_string()))?;
        Ok(Self { mac })
    }

    /// The keyed digest of `parts`, each length-prefixed so no two lists share a digest.
    pub fn of(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct hors", &h));
        assert!(!verify_password("correct horse", "not-a-hash"));
        assert_ne!(
            h,
            hash_password("correct horse").expect("hash"),
            "salt must differ"
        );
    }

    #[test]
    fn credential_digests_depend_on_key_and_on_every_part_boundary() {
        let d = CredentialDigest::new().expect("digest");
        let again = d.of(&[b"ehr", b"pw"]);
        assert_eq!(d.of(&[b"ehr", b"pw"]), again);
        assert_ne!(d.of(&[b"eh", b"rpw"]), again, "boundaries count");
        assert_ne!(d.of(&[b"ehr", b"pw2"]), again);
        let other = CredentialDigest::new().expect("digest");
        assert_ne!(other.of(&[b"ehr", b"pw"]), again, "the key counts");
        assert_eq!(format!("{d:?}"), "CredentialDigest(..)");
    }
}
