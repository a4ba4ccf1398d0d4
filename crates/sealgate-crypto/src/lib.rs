//! Sealgate crypto primitives (layer L1).
//!
//! Owns sealing at rest (AES-256-GCM under a key ring read from a key file, with key ids so
//! keys can be rotated), the secure portal's per-message sealing and link tokens
//! ([`portal`]), and password hashing for SMTP AUTH users (Argon2id). Depends on no
//! other Sealgate crate but `sealgate-types`; never logs key material.

pub mod api_key;
pub mod arc;
pub mod dkim;
mod error;
mod keyring;
mod password;
pub mod portal;
pub mod webhook;

pub use error::CryptoError;
pub use keyring::{KeyRing, Sealed};
pub use password::{CredentialDigest, hash_password, verify_password};

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}
