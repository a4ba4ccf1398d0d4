//! Sealing for the secure portal: every message held on the portal gets its own random
//! AES-256-GCM key; the message is sealed under that key, and the key is sealed under the
//! portal master [`KeyRing`]. Retention can then destroy a message by emptying its two blobs,
//! and rotating the master key never re-encrypts message bodies.
//!
//! `context` (the portal message id) is bound as associated data into both blobs, with a
//! different label each, so neither blob can be moved to another row, nor a key blob be
//! opened as a message (or as a queued body sealed by the same ring).
//!
//! Content blob: `"SGP1" | nonce (12) | ciphertext+tag`.
//!
//! Also the link tokens the portal worker creates: 32 bytes from the OS RNG (256 bits),
//! URL-safe base64 without padding; only their SHA-256 is stored.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

use crate::{CryptoError, KeyRing, sha256_hex};

const MAGIC: &[u8; 4] = b"SGP1";
const NONCE_LEN: usize = 12;
const KEY_LABEL: &[u8] = b"sealgate-portal-key\0";
const CONTENT_LABEL: &[u8] = b"sealgate-portal-content\0";

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(b)
}

fn labelled(label: &[u8], context: &[u8]) -> Vec<u8> {
    [label, context].concat()
}

/// Seals `content` under a fresh per-message key, and that key under `master`, both bound
/// to `context` (the portal message id). Returns `(key_sealed, content_sealed)`.
pub fn seal_message(
    master: &KeyRing,
    content: &[u8],
    context: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    let key = random::<32>()?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Malformed)?;
    let nonce_bytes = random::<NONCE_LEN>()?;
    let nonce = Nonce::try_from(&nonce_bytes[..]).map_err(|_| CryptoError::Malformed)?;
    let aad = labelled(CONTENT_LABEL, context);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: content,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)?;
    let mut content_sealed = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
    content_sealed.extend_from_slice(MAGIC);
    content_sealed.extend_from_slice(&nonce_bytes);
    content_sealed.extend_from_slice(&ct);
    let key_sealed = master.seal(&key, &labelled(KEY_LABEL, context))?.blob;
    Ok((key_sealed, content_sealed))
}

/// Opens what [`seal_message`] sealed with the same `context`. Fails with
/// [`CryptoError::Authentication`] for another context, another master key ring, or a
/// tampered blob, and [`CryptoError::Malformed`] for something that is not such a blob (an
/// empty one, after retention purged it).
pub fn open_message(
    master: &KeyRing,
    key_sealed: &[u8],
    content_sealed: &[u8],
    context: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let rest = content_sealed
        .strip_prefix(MAGIC)
        .ok_or(CryptoError::Malformed)?;
    if rest.len() < NONCE_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let key = master.open(key_sealed, &labelled(KEY_LABEL, context))?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Malformed)?;
    let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
    let aad = labelled(CONTENT_LABEL, context);
    cipher
        .decrypt(&nonce, Payload { msg: ct, aad: &aad })
        .map_err(|_| CryptoError::Authentication)
}

/// A fresh link token: 32 bytes from the OS RNG, URL-safe base64 without padding.
pub fn new_link_token() -> Result<String, CryptoError> {
    Ok(B64URL.encode(random::<32>()?))
}

/// What the store keeps of a link token: its SHA-256, lowercase hex.
pub fn link_token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(dir: &tempfile::TempDir, name: &str) -> KeyRing {
        KeyRing::load_or_create(&dir.path().join(name))
            .expect("key ring")
            .0
    }

    const BODY: &[u8] = b"Subject: Lab results\r\n\r\nPotassium 5.9 mmol/L\r\n";

    #[test]
    fn a_sealed_message_opens_with_its_master_key_and_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = ring(&dir, "portal.key");
        let (key, content) = seal_message(&master, BODY, b"p1").expect("seal");
        assert!(!content.windows(9).any(|w| w == b"Potassium"));
        assert_eq!(
            open_message(&master, &key, &content, b"p1").expect("open"),
            BODY
        );
        let (key2, content2) = seal_message(&master, BODY, b"p1").expect("seal");
        assert_ne!(content, content2, "fresh key and nonce every time");
        assert_ne!(key, key2);
    }

    #[test]
    fn another_context_or_master_key_fails_authentication() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = ring(&dir, "portal.key");
        let other = ring(&dir, "other.key");
        let (key, content) = seal_message(&master, BODY, b"p1").expect("seal");
        assert!(matches!(
            open_message(&master, &key, &content, b"p2"),
            Err(CryptoError::Authentication)
        ));
        assert!(matches!(
            open_message(&other, &key, &content, b"p1"),
            Err(CryptoError::UnknownKey(_))
        ));
        // Another message's key blob (same master, other row) cannot open this content.
        let (key_b, _) = seal_message(&master, BODY, b"p2").expect("seal");
        assert!(matches!(
            open_message(&master, &key_b, &content, b"p2"),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn tampered_or_purged_blobs_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = ring(&dir, "portal.key");
        let (key, content) = seal_message(&master, BODY, b"p1").expect("seal");
        for i in [4, 20, content.len() - 1] {
            let mut bad = content.clone();
            bad[i] ^= 1;
            assert!(
                matches!(
                    open_message(&master, &key, &bad, b"p1"),
                    Err(CryptoError::Authentication)
                ),
                "byte {i}"
            );
        }
        let mut bad_key = key.clone();
        let last = bad_key.len() - 1;
        bad_key[last] ^= 1;
        assert!(matches!(
            open_message(&master, &bad_key, &content, b"p1"),
            Err(CryptoError::Authentication)
        ));
        assert!(matches!(
            open_message(&master, &[], &[], b"p1"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn the_key_blob_is_not_a_queue_body_of_the_same_ring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = ring(&dir, "portal.key");
        let (key, _) = seal_message(&master, BODY, b"p1").expect("seal");
        assert!(matches!(
            master.open(&key, b"p1"),
            Err(CryptoError::Authentication)
        ));
    }

    #[test]
    fn link_tokens_are_256_bit_url_safe_and_stored_hashed() {
        let t = new_link_token().expect("token");
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, new_link_token().expect("token"));
        let h = link_token_hash(&t);
        assert_eq!(h.len(), 64);
        assert_eq!(h, sha256_hex(t.as_bytes()));
    }
}
