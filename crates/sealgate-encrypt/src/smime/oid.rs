//! Object identifiers of the CMS structures and algorithms used here, as arcs.

/// id-data (RFC 5652 §4).
pub(crate) const DATA: &[u32] = &[1, 2, 840, 113549, 1, 7, 1];
/// id-envelopedData (RFC 5652 §6.1).
pub(crate) const ENVELOPED_DATA: &[u32] = &[1, 2, 840, 113549, 1, 7, 3];
/// id-ct-authEnvelopedData (RFC 5083 §1).
pub(crate) const AUTH_ENVELOPED_DATA: &[u32] = &[1, 2, 840, 113549, 1, 9, 16, 1, 23];
/// id-aes256-CBC (RFC 3565 §4.1).
pub(crate) const AES256_CBC: &[u32] = &[2, 16, 840, 1, 101, 3, 4, 1, 42];
/// id-aes256-wrap (RFC 3565 §4.2).
pub(crate) const AES256_WRAP: &[u32] = &[2, 16, 840, 1, 101, 3, 4, 1, 45];
/// id-aes256-GCM (RFC 5084 §3.2).
pub(crate) const AES256_GCM: &[u32] = &[2, 16, 840, 1, 101, 3, 4, 1, 46];
/// id-RSAES-OAEP (RFC 4055 §4.1).
pub(crate) const RSAES_OAEP: &[u32] = &[1, 2, 840, 113549, 1, 1, 7];
/// id-mgf1 (RFC 4055 §2.2).
pub(crate) const MGF1: &[u32] = &[1, 2, 840, 113549, 1, 1, 8];
/// id-sha256 (RFC 5754 §2.2).
pub(crate) const SHA256: &[u32] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
/// id-ecPublicKey (RFC 5480 §2.1.1).
pub(crate) const EC_PUBLIC_KEY: &[u32] = &[1, 2, 840, 10045, 2, 1];
/// dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 §7.1.4).
pub(crate) const ECDH_STD_SHA256_KDF: &[u32] = &[1, 3, 132, 1, 11, 1];
