//! Argon2id password hashes (PHC string format) for SMTP AUTH users.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

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
}
