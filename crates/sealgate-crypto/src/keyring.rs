//! The sealing key ring.
//!
//! Key file format, one key per line, the first line being the active (sealing) key and the
//! others kept to open data sealed before a rotation:
//! `sealgate-seal-v1 <key-id> <base64 of 32 key bytes>`; `#` starts a comment line.
//! To rotate: prepend a new line (`sealgate keys` tooling may do it later) and restart.
//!
//! A sealed blob is `"SG1" | len(key_id) as u8 | key_id | nonce (12) | ciphertext+tag`, and the
//! caller's context (the message id) is bound as associated data, so a body cannot be moved to
//! another message row undetected.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::CryptoError;

const MAGIC: &[u8; 3] = b"SG1";
const LINE_TAG: &str = "sealgate-seal-v1";
const NONCE_LEN: usize = 12;

struct Key {
    id: String,
    cipher: Aes256Gcm,
    /// A key for authentication tags, derived from the sealing key (HMAC-SHA256 of a fixed
    /// label), so a tag never reveals or reuses the sealing key itself.
    mac: [u8; 32],
}

/// Keys for sealing message bodies at rest.
pub struct KeyRing {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeyRing")
            .field("active", &self.active_id())
            .finish()
    }
}

/// A sealed blob and the id of the key that sealed it.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The key id (also inside `blob`).
    pub key_id: String,
    /// The self-describing sealed bytes.
    pub blob: Vec<u8>,
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn derive_mac_key(raw: &[u8]) -> [u8; 32] {
    hmac_sha256(raw, b"sealgate key ring: authentication tags v1")
}

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(b)
}

impl KeyRing {
    /// Loads the key ring, creating the file with one fresh key (mode 0600) if it does not
    /// exist. Returns the ring and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(KeyRing, bool), CryptoError> {
        let io = |source| CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let id = hex::encode(random::<4>()?);
            let line = format!("{LINE_TAG} {id} {}\n", B64.encode(random::<32>()?));
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(mut f) => {
                    f.write_all(line.as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok((Self::load(path)?, true));
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok((Self::load(path)?, false))
    }

    /// Loads an existing key file.
    pub fn load(path: &Path) -> Result<KeyRing, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|source| CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<KeyRing, CryptoError> {
        let bad = |line: usize, reason: &str| CryptoError::KeyFormat {
            path: PathBuf::from(path),
            line,
            reason: reason.to_owned(),
        };
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [tag, id, key] = parts[..] else {
                return Err(bad(
                    i + 1,
                    "expected: sealgate-seal-v1 <key-id> <base64 key>",
                ));
            };
            if tag != LINE_TAG || id.is_empty() || id.len() > 64 {
                return Err(bad(i + 1, "unknown key line format or bad key id"));
            }
            let raw = B64
                .decode(key)
                .map_err(|_| bad(i + 1, "key is not base64"))?;
            let cipher =
                Aes256Gcm::new_from_slice(&raw).map_err(|_| bad(i + 1, "key is not 32 bytes"))?;
            keys.push(Key {
                id: id.to_owned(),
                cipher,
                mac: derive_mac_key(&raw),
            });
        }
        if keys.is_empty() {
            return Err(CryptoError::NoKey(path.to_owned()));
        }
        Ok(KeyRing { keys })
    }

    /// The id of the key new data is sealed with.
    pub fn active_id(&self) -> &str {
        self.keys.first().map(|k| k.id.as_str()).unwrap_or_default()
    }

    /// An authentication tag of `data` under the active key (HMAC-SHA256 with a key derived
    /// from it): what a node writes where it must later recognise its own writing, such as a
    /// return path. Every node sharing the key ring makes and checks the same tags.
    pub fn tag(&self, data: &[u8]) -> [u8; 32] {
        self.keys
            .first()
            .map(|k| hmac_sha256(&k.mac, data))
            .unwrap_or([0; 32])
    }

    /// Whether `tag` (a prefix of at least 8 bytes of a [`KeyRing::tag`]) was made for `data`
    /// under any key of the ring (the active one or one kept from before a rotation), compared
    /// in constant time.
    pub fn tag_matches(&self, data: &[u8], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        tag.len() >= 8
            && tag.len() <= 32
            && self
                .keys
                .iter()
                .any(|k| bool::from(hmac_sha256(&k.mac, data)[..tag.len()].ct_eq(tag)))
    }

    /// Seals `plaintext`, binding `context` (e.g. the message id) as associated data.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, CryptoError> {
        let key = self.keys.first().ok_or(CryptoError::Malformed)?;
        let nonce_bytes = random::<NONCE_LEN>()?;
        let nonce = Nonce::try_from(&nonce_bytes[..]).map_err(|_| CryptoError::Malformed)?;
        let ct = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let mut blob = Vec::with_capacity(4 + key.id.len() + NONCE_LEN + ct.len());
        blob.extend_from_slice(MAGIC);
        blob.push(key.id.len() as u8);
        blob.extend_from_slice(key.id.as_bytes());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        Ok(Sealed {
            key_id: key.id.clone(),
            blob,
        })
    }

    /// Opens a blob sealed by [`KeyRing::seal`] with the same `context`.
    pub fn open(&self, blob: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rest = blob.strip_prefix(MAGIC).ok_or(CryptoError::Malformed)?;
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_key_file_is_private_and_reloads_to_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/seal.key");
        let (ring, created) = KeyRing::load_or_create(&path).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = ring.seal(b"PHI body", b"msg-1").expect("seal");
        assert!(!sealed.blob.windows(8).any(|w| w == b"PHI body"));
        let (again, created) = KeyRing::load_or_create(&path).expect("reload");
        assert!(!created);
        assert_eq!(
            again.open(&sealed.blob, b"msg-1").expect("open"),
            b"PHI body"
        );
    }

    #[test]
    fn tampering_or_another_context_fails_authentication() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ring, _) = KeyRing::load_or_create(&dir.path().join("k")).expect("create");
        let mut sealed = ring.seal(b"hello", b"msg-1").expect("seal");
        assert!(matches!(
            ring.open(&sealed.blob, b"msg-2"),
            Err(CryptoError::Authentication)
        ));
        let last = sealed.blob.len() - 1;
        sealed.blob[last] ^= 1;
        assert!(matches!(
            ring.open(&sealed.blob, b"msg-1"),
            Err(CryptoError::Authentication)
        ));
        assert!(matches!(
            ring.open(b"SG", b"msg-1"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn rotation_keeps_old_keys_for_opening_and_seals_with_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let (old, _) = KeyRing::load_or_create(&path).expect("create");
        let sealed_old = old.seal(b"before", b"m").expect("seal");
        let previous = std::fs::read_to_string(&path).expect("read");
        let new_line = format!("{LINE_TAG} newkey01 {}\n", B64.encode([7u8; 32]));
        std::fs::write(&path, format!("# rotated\n{new_line}{previous}")).expect("write");
        let ring = KeyRing::load(&path).expect("load");
        assert_eq!(ring.active_id(), "newkey01");
        assert_eq!(
            ring.open(&sealed_old.blob, b"m").expect("old opens"),
            b"before"
        );
        assert_eq!(ring.seal(b"after", b"m").expect("seal").key_id, "newkey01");
    }

    #[test]
    fn malformed_key_files_name_the_line() {
        let err = KeyRing::parse("sealgate-seal-v1 id1 !!!\n", Path::new("k")).expect_err("bad");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(matches!(
            KeyRing::parse("# empty\n", Path::new("k")),
            Err(CryptoError::NoKey(_))
        ));
    }
}
