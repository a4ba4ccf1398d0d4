//! The CMS envelopes: AuthEnvelopedData with AES-256-GCM (RFC 5083, RFC 5084) and
//! EnvelopedData with AES-256-CBC (RFC 5652 §6, RFC 3565), each in a ContentInfo.

use openssl::rand::rand_bytes;
use openssl::symm::{Cipher, encrypt, encrypt_aead};

use super::recipient::{KeyAlg, RecipientInfo, recipient_info};
use super::{ContentCipher, SmimeCert, der, oid};
use crate::EncryptError;

/// RFC 5084 §3.2: the nonce length RECOMMENDED for GCM.
const GCM_NONCE_LEN: usize = 12;
/// RFC 5084 §3.2: aes-ICVlen; 16 octets, the full tag.
const GCM_TAG_LEN: usize = 16;
/// AES block size, the CBC IV length (RFC 3565 §4.1).
const CBC_IV_LEN: usize = 16;
/// AES-256 key length.
const CEK_LEN: usize = 32;

/// `payload` (a canonical MIME entity) encrypted under a fresh content-encryption key
/// delivered to `cert`'s key, as the DER of a ContentInfo.
pub(crate) fn envelop(
    payload: &[u8],
    cert: &SmimeCert,
    alg: KeyAlg,
    cipher: ContentCipher,
) -> Result<Vec<u8>, EncryptError> {
    let mut cek = [0u8; CEK_LEN];
    rand_bytes(&mut cek)?;
    let result = recipient_info(cert, alg, &cek).and_then(|ri| match cipher {
        ContentCipher::Aes256Gcm => auth_enveloped(&ri, &cek, payload),
        ContentCipher::Aes256Cbc => enveloped(&ri, &cek, payload),
    });
    cek.fill(0);
    result
}

/// ContentInfo (RFC 5652 §3): the type and the content under [0] EXPLICIT.
fn content_info(content_type: &[u32], content: &[u8]) -> Vec<u8> {
    der::sequence(&[&der::oid(content_type), &der::context(0, content)])
}

/// EncryptedContentInfo (RFC 5652 §6.1) of id-data content: encryptedContent is
/// [0] IMPLICIT OCTET STRING.
fn encrypted_content_info(algorithm: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    der::sequence(&[
        &der::oid(oid::DATA),
        algorithm,
        &der::context_primitive(0, ciphertext),
    ])
}

/// AuthEnvelopedData (RFC 5083 §2.1), version 0, without authAttrs; the GCM additional
/// data is therefore empty (RFC 5083 §2.2).
fn auth_enveloped(ri: &RecipientInfo, cek: &[u8], payload: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let mut nonce = [0u8; GCM_NONCE_LEN];
    rand_bytes(&mut nonce)?;
    let mut tag = [0u8; GCM_TAG_LEN];
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        cek,
        Some(&nonce),
        &[],
        payload,
        &mut tag,
    )?;
    // RFC 5084 §3.2: GCMParameters; aes-ICVlen DEFAULT 12, so 16 is encoded.
    let params = der::sequence(&[
        &der::octet_string(&nonce),
        &der::integer(GCM_TAG_LEN as u64),
    ]);
    let algorithm = der::algorithm(oid::AES256_GCM, Some(&params));
    let body = der::sequence(&[
        &der::integer(0),
        &der::set_of(vec![ri.der.clone()]),
        &encrypted_content_info(&algorithm, &ciphertext),
        &der::octet_string(&tag),
    ]);
    Ok(content_info(oid::AUTH_ENVELOPED_DATA, &body))
}

/// EnvelopedData (RFC 5652 §6.1) with AES-256-CBC and PKCS #7 padding (RFC 5652 §6.3).
fn enveloped(ri: &RecipientInfo, cek: &[u8], payload: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let mut iv = [0u8; CBC_IV_LEN];
    rand_bytes(&mut iv)?;
    let ciphertext = encrypt(Cipher::aes_256_cbc(), cek, Some(&iv), payload)?;
    // RFC 3565 §4.1: the parameters are the IV as OCTET STRING.
    let algorithm = der::algorithm(oid::AES256_CBC, Some(&der::octet_string(&iv)));
    // RFC 5652 §6.1: version 0 when there is no originatorInfo, no unprotectedAttrs and
    // every RecipientInfo is version 0; otherwise (a kari is version 3) version 2.
    let version = if ri.version == 0 { 0 } else { 2 };
    let body = der::sequence(&[
        &der::integer(version),
        &der::set_of(vec![ri.der.clone()]),
        &encrypted_content_info(&algorithm, &ciphertext),
    ]);
    Ok(content_info(oid::ENVELOPED_DATA, &body))
}
