//! API keys: `sgk_<id>_<secret>`, a public id (16 hex digits, in logs and the audit log) and a
//! 256-bit secret (base64url) shown once. Only the SHA-256 of the secret is stored: the secret
//! is random, so a fast hash suffices and a copy of the table opens nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::CryptoError;

const PREFIX: &str = "sgk_";

/// A key just made: what to store and what to show once.
#[derive(Debug)]
pub struct NewApiKey {
    /// The public id.
    pub id: String,
    /// The whole key, for the operator (never stored).
    pub token: String,
    /// SHA-256 of the secret, hex: what is stored.
    pub secret_sha256: String,
}

/// A fresh key.
pub fn new_api_key() -> Result<NewApiKey, CryptoError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| CryptoError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| CryptoError::Random(e.to_string()))?;
    let id = hex::encode(id);
    let secret = B64URL.encode(secret);
    Ok(NewApiKey {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
        id,
    })
}

/// The id and secret of a presented key, if it has the shape of one.
pub fn parse_api_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Whether `secret` hashes to `stored` (hex), compared in constant time.
pub fn api_secret_matches(secret: &str, stored: &str) -> bool {
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    bool::from(digest.as_bytes().ct_eq(stored.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_parses_and_only_its_own_secret_matches() {
        let k = new_api_key().expect("key");
        let (id, secret) = parse_api_key(&k.token).expect("parses");
        assert_eq!(id, k.id);
        assert!(api_secret_matches(secret, &k.secret_sha256));
        let other = new_api_key().expect("key");
        let (_, other_secret) = parse_api_key(&other.token).expect("parses");
        assert!(!api_secret_matches(other_secret, &k.secret_sha256));
        assert!(!k.token.contains(&k.secret_sha256));
    }

    #[test]
    fn malformed_keys_are_not_keys() {
        let k = new_api_key().expect("key");
        for bad in [
            "",
            "sgk_",
            &k.token[4..],
            &k.token[..k.token.len() - 1],
            &format!("{}x", k.token),
            &k.token.replacen("sgk_", "sgk-", 1),
            "sgk_0123456789abcdeg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(parse_api_key(bad).is_none(), "{bad:?}");
        }
    }
}
