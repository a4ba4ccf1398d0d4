//! Recipient keys and the RecipientInfo that carries the content-encryption key to them
//! (RFC 5652 §6.2): RSAES-OAEP key transport for RSA (RFC 8551 §2.7.1, RFC 4055 §4),
//! ephemeral-static ECDH key agreement for EC (RFC 5753 §3.1).

use openssl::bn::BigNumContext;
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::encrypt::Encrypter;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::x509::X509Ref;

use super::SmimeCert;

use super::der;
use super::oid;
use crate::{EncryptError, Problem};

/// The smallest RSA modulus accepted (RFC 8551 §4.1 requires support for 2048 bits; NIST
/// SP 800-131A disallows less).
const MIN_RSA_BITS: u32 = 2048;

/// A named elliptic curve this crate does ECDH on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl Curve {
    fn from_nid(nid: Nid) -> Option<Curve> {
        match nid {
            Nid::X9_62_PRIME256V1 => Some(Curve::P256),
            Nid::SECP384R1 => Some(Curve::P384),
            Nid::SECP521R1 => Some(Curve::P521),
            _ => None,
        }
    }

    fn nid(self) -> Nid {
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
        }
    }

    /// The NIST name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }
}

/// What a recipient certificate's key is, once found acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyAlg {
    /// RSA with this modulus size: key transport.
    Rsa {
        /// Modulus bits.
        bits: u32,
    },
    /// EC on this curve: key agreement.
    Ec(Curve),
}

impl KeyAlg {
    /// The key of `cert`, or why it cannot receive S/MIME.
    pub(crate) fn of(cert: &X509Ref) -> Result<KeyAlg, Problem> {
        let key = cert
            .public_key()
            .map_err(|e| Problem::Invalid(format!("unreadable public key: {e}")))?;
        match key.id() {
            Id::RSA if key.bits() >= MIN_RSA_BITS => Ok(KeyAlg::Rsa { bits: key.bits() }),
            Id::RSA => Err(Problem::Invalid(format!(
                "RSA key of {} bits (at least {MIN_RSA_BITS} required)",
                key.bits()
            ))),
            Id::EC => {
                let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
                curve
                    .and_then(Curve::from_nid)
                    .map(KeyAlg::Ec)
                    .ok_or_else(|| {
                        Problem::Invalid(
                            "EC key on a curve other than P-256, P-384, P-521".to_owned(),
                        )
                    })
            }
            other => Err(Problem::Invalid(format!(
                "unsupported public key type {}",
                other.as_raw()
            ))),
        }
    }

    /// How encryption would use the key, for [`crate::KeyInfo::status`].
    pub(crate) fn describe(self) -> String {
        match self {
            KeyAlg::Rsa { bits } => format!("RSA {bits} key transport (RSAES-OAEP SHA-256)"),
            KeyAlg::Ec(curve) => format!(
                "ECDH {} key agreement (X9.63 SHA-256, AES-256 wrap)",
                curve.name()
            ),
        }
    }

    /// The key management algorithm, for [`crate::Encrypted::used`].
    pub(crate) fn used(self) -> String {
        match self {
            KeyAlg::Rsa { bits } => format!("RSAES-OAEP SHA-256 (RSA {bits})"),
            KeyAlg::Ec(curve) => format!(
                "ECDH {} ephemeral-static, X9.63 KDF SHA-256, AES-256 key wrap",
                curve.name()
            ),
        }
    }
}

/// An encoded RecipientInfo and its version (which decides the EnvelopedData version).
pub(crate) struct RecipientInfo {
    /// The DER encoding, ready for the RecipientInfos SET.
    pub(crate) der: Vec<u8>,
    /// 0 for KeyTransRecipientInfo by IssuerAndSerialNumber, 3 for KeyAgreeRecipientInfo.
    pub(crate) version: u64,
}

/// The RecipientInfo that gives `cek` to the holder of `cert`'s private key.
pub(crate) fn recipient_info(
    cert: &SmimeCert,
    alg: KeyAlg,
    cek: &[u8],
) -> Result<RecipientInfo, EncryptError> {
    let key = cert.x509().public_key()?;
    let rid = der::issuer_and_serial(cert.der())?;
    match alg {
        KeyAlg::Rsa { .. } => key_transport(rid, &key, cek),
        KeyAlg::Ec(curve) => key_agreement(rid, &key, curve, cek),
    }
}

/// KeyTransRecipientInfo v0 with RSAES-OAEP, SHA-256 and MGF1 with SHA-256.
fn key_transport(
    rid: Vec<u8>,
    key: &PKey<Public>,
    cek: &[u8],
) -> Result<RecipientInfo, EncryptError> {
    let mut encrypter = Encrypter::new(key)?;
    encrypter.set_rsa_padding(Padding::PKCS1_OAEP)?;
    encrypter.set_rsa_oaep_md(MessageDigest::sha256())?;
    encrypter.set_rsa_mgf1_md(MessageDigest::sha256())?;
    let mut encrypted = vec![0; encrypter.encrypt_len(cek)?];
    let len = encrypter.encrypt(cek, &mut encrypted)?;
    encrypted.truncate(len);
    // RFC 5754 §2: SHA-2 AlgorithmIdentifiers are generated with absent parameters.
    let sha256 = der::algorithm(oid::SHA256, None);
    let mgf1 = der::algorithm(oid::MGF1, Some(&sha256));
    // RFC 4055 §4.1: RSAES-OAEP-params, explicitly tagged; pSourceFunc keeps its default
    // (an empty label) and is therefore omitted (X.690 §11.5).
    let params = der::sequence(&[&der::context(0, &sha256), &der::context(1, &mgf1)]);
    let algorithm = der::algorithm(oid::RSAES_OAEP, Some(&params));
    // RFC 5652 §6.2.1: version 0 because rid is the IssuerAndSerialNumber.
    let der = der::sequence(&[
        &der::integer(0),
        &rid,
        &algorithm,
        &der::octet_string(&encrypted),
    ]);
    Ok(RecipientInfo { der, version: 0 })
}

/// KeyAgreeRecipientInfo v3: ephemeral-static ECDH with dhSinglePass-stdDH-sha256kdf,
/// the KEK derived by the ANSI X9.63 KDF and the CEK wrapped with AES-256 (RFC 3394).
fn key_agreement(
    rid: Vec<u8>,
    key: &PKey<Public>,
    curve: Curve,
    cek: &[u8],
) -> Result<RecipientInfo, EncryptError> {
    // RFC 3565 §2.3.2: the AES key wrap AlgorithmIdentifiers have absent parameters.
    let wrap = der::algorithm(oid::AES256_WRAP, None);
    let (point, mut kek) = ephemeral_kek(key, curve, &wrap)?;
    let wrapped = aes_wrap(&kek, cek);
    kek.fill(0);
    let wrapped = wrapped?;
    // RFC 5753 §3.1.1: originator is the originatorKey [1] alternative; the parameters of
    // id-ecPublicKey SHOULD be absent (the recipient knows the curve from its certificate).
    let originator_key = der::context(
        1,
        &[
            der::algorithm(oid::EC_PUBLIC_KEY, None),
            der::bit_string(&point),
        ]
        .concat(),
    );
    let algorithm = der::algorithm(oid::ECDH_STD_SHA256_KDF, Some(&wrap));
    let encrypted_key = der::sequence(&[&rid, &der::octet_string(&wrapped)]);
    // RFC 5652 §6.2.2: version 3, originator [0] EXPLICIT, no ukm; the RecipientInfo
    // CHOICE tags it [1] IMPLICIT.
    let fields = [
        der::integer(3),
        der::context(0, &originator_key),
        algorithm,
        der::sequence(&[&encrypted_key]),
    ];
    Ok(RecipientInfo {
        der: der::context(1, &fields.concat()),
        version: 3,
    })
}

/// A fresh ephemeral key on `curve` agreed with `recipient`: the ephemeral public point
/// (uncompressed, SEC 1 §2.3.3) and the key-encryption key for `wrap_algorithm`.
fn ephemeral_kek(
    recipient: &PKey<Public>,
    curve: Curve,
    wrap_algorithm: &[u8],
) -> Result<(Vec<u8>, [u8; 32]), EncryptError> {
    let group = EcGroup::from_curve_name(curve.nid())?;
    let ephemeral = EcKey::generate(&group)?;
    let mut bn_ctx = BigNumContext::new()?;
    let point =
        ephemeral
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut bn_ctx)?;
    let ephemeral = PKey::from_ec_key(ephemeral)?;
    let mut deriver = Deriver::new(&ephemeral)?;
    deriver.set_peer(recipient)?;
    // The shared secret Z is the x-coordinate (standard ECDH, SEC 1 §3.3.1).
    let mut shared = deriver.derive_to_vec()?;
    let kek = x963_kdf_sha256(&shared, &shared_info(wrap_algorithm));
    shared.fill(0);
    Ok((point, kek))
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2) for a 256-bit key-wrap key: keyInfo is the wrap
/// algorithm, no entityUInfo (no ukm), suppPubInfo the key length in bits as 32-bit
/// big-endian integer.
fn shared_info(wrap_algorithm: &[u8]) -> Vec<u8> {
    let bits = 256u32.to_be_bytes();
    der::sequence(&[wrap_algorithm, &der::context(2, &der::octet_string(&bits))])
}

/// The ANSI X9.63 KDF with SHA-256 for a 256-bit output (RFC 5753 §3.1.1, SEC 1 §3.6.1):
/// one block, SHA-256(Z || counter 00000001 || SharedInfo).
fn x963_kdf_sha256(shared_secret: &[u8], shared_info: &[u8]) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(shared_secret);
    hasher.update(&1u32.to_be_bytes());
    hasher.update(shared_info);
    hasher.finish()
}

/// `cek` wrapped under `kek` with the AES key wrap of RFC 3394 (default IV).
fn aes_wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let crypto = |e: openssl::aes::KeyError| EncryptError::Crypto(format!("AES key wrap: {e:?}"));
    let key = openssl::aes::AesKey::new_encrypt(kek).map_err(crypto)?;
    let mut out = vec![0; cek.len() + 8];
    let len = openssl::aes::wrap_key(&key, None, &mut out, cek).map_err(crypto)?;
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_info_has_the_rfc_5753_shape() {
        let wrap = der::algorithm(oid::AES256_WRAP, None);
        let info = shared_info(&wrap);
        // SEQUENCE { SEQUENCE { OID aes256-wrap }, [2] { OCTET STRING 00 00 01 00 } }
        let mut expected = vec![0x30, 0x15, 0x30, 0x0b];
        expected.extend_from_slice(&der::oid(oid::AES256_WRAP));
        expected.extend_from_slice(&[0xa2, 0x06, 0x04, 0x04, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(info, expected);
    }

    #[test]
    fn the_kdf_hashes_secret_counter_and_shared_info() {
        let mut input = b"secret".to_vec();
        input.extend_from_slice(&[0, 0, 0, 1]);
        input.extend_from_slice(b"info");
        assert_eq!(
            x963_kdf_sha256(b"secret", b"info"),
            openssl::sha::sha256(&input)
        );
    }

    #[test]
    fn aes_key_wrap_matches_the_rfc_3394_test_vector() {
        // RFC 3394 §4.6: 256-bit data with a 256-bit KEK.
        let kek = hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
            .expect("hex");
        let data = hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
            .expect("hex");
        let wrapped = aes_wrap(&kek, &data).expect("wrap");
        assert_eq!(
            hex::encode_upper(wrapped),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
    }
}
