//! Just enough DER (X.690) to find a certificate's SubjectPublicKeyInfo, which DANE selector 1
//! (RFC 6698 §2.1.2) and SPKI pins hash.
//!
//! RFC 5280 §4.1:
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
//! TBSCertificate ::= SEQUENCE {
//!     version [0] EXPLICIT Version DEFAULT v1, serialNumber INTEGER, signature AlgorithmIdentifier,
//!     issuer Name, validity Validity, subject Name, subjectPublicKeyInfo SEQUENCE, ... }
//! ```
//! The input is whatever a TLS peer sent, so every length is checked against what is left and
//! nothing indexes past the end: malformed input is an error, never a panic.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const CONTEXT_0_CONSTRUCTED: u8 = 0xa0;

/// Why the bytes are not a certificate this walker understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DerError {
    /// The input ends inside a tag, a length or a value.
    #[error("truncated der")]
    Truncated,
    /// BER's indefinite length (0x80) is not DER.
    #[error("indefinite length is not der")]
    IndefiniteLength,
    /// A long-form length that a shorter form could express.
    #[error("non-minimal der length")]
    NonMinimalLength,
    /// A length of more than four bytes: no certificate is that large.
    #[error("der length too large")]
    LengthTooLarge,
    /// A tag number above 30 (multi-byte tag); none occurs where this walker looks.
    #[error("multi-byte der tag")]
    MultiByteTag,
    /// A field of the certificate has the wrong type.
    #[error("expected der tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag {
        /// The tag RFC 5280 puts here.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes after the certificate's outer SEQUENCE.
    #[error("trailing data after the certificate")]
    TrailingData,
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    /// The value (contents) octets.
    value: &'a [u8],
    /// Tag, length and value together.
    whole: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and the bytes after it.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::MultiByteTag);
    }
    let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let len = match first {
        0x00..=0x7f => usize::from(first),
        0x80 => return Err(DerError::IndefiniteLength),
        _ => {
            let count = usize::from(first & 0x7f);
            if count > 4 {
                return Err(DerError::LengthTooLarge);
            }
            let (bytes, after) = rest.split_at_checked(count).ok_or(DerError::Truncated)?;
            rest = after;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            // X.690 §10.1: the shortest form; no leading zero octet.
            if len < 0x80 || bytes.first() == Some(&0) {
                return Err(DerError::NonMinimalLength);
            }
            len
        }
    };
    let header = input.len() - rest.len();
    let (value, after) = rest.split_at_checked(len).ok_or(DerError::Truncated)?;
    let whole = input.get(..header + len).ok_or(DerError::Truncated)?;
    Ok((Tlv { tag, value, whole }, after))
}

/// Reads an element that must carry `expected`.
fn expect(input: &[u8], expected: u8) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != expected {
        return Err(DerError::UnexpectedTag {
            expected,
            found: tlv.tag,
        });
    }
    Ok((tlv, rest))
}

/// The DER SubjectPublicKeyInfo of a DER certificate, tag and length included: the bytes that
/// DANE selector 1 matches (RFC 6698 §2.1.2). A slice of `cert`.
pub(crate) fn subject_public_key_info(cert: &[u8]) -> Result<&[u8], DerError> {
    let (certificate, rest) = expect(cert, SEQUENCE)?;
    if !rest.is_empty() {
        return Err(DerError::TrailingData);
    }
    let (tbs, _signature) = expect(certificate.value, SEQUENCE)?;
    let mut fields = tbs.value;
    // version is optional (absent means v1).
    let (first, after_first) = read_tlv(fields)?;
    if first.tag == CONTEXT_0_CONSTRUCTED {
        fields = after_first;
    }
    let (_serial, fields) = expect(fields, INTEGER)?;
    let (_signature, fields) = expect(fields, SEQUENCE)?;
    let (_issuer, fields) = expect(fields, SEQUENCE)?;
    let (_validity, fields) = expect(fields, SEQUENCE)?;
    let (_subject, fields) = expect(fields, SEQUENCE)?;
    let (spki, _extensions) = expect(fields, SEQUENCE)?;
    Ok(spki.whole)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData, SignatureAlgorithm};
    use sealgate_testkit::tls::TestCa;

    use super::*;

    /// Encodes one element (the test's own minimal encoder, to build odd certificates).
    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match value.len() {
            len @ 0..=0x7f => out.push(len as u8),
            len @ 0x80..=0xff => out.extend([0x81, len as u8]),
            len => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        out.extend_from_slice(value);
        out
    }

    fn self_signed(alg: &'static SignatureAlgorithm) -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate_for(alg).expect("generate key");
        let params = CertificateParams::new(vec!["mx.example.test".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("self-sign");
        (cert.der().to_vec(), key.subject_public_key_info())
    }

    fn leaf_der() -> Vec<u8> {
        TestCa::new().issue(&["mx.example.test"]).chain_der()[0].to_vec()
    }

    #[test]
    fn spki_of_rcgen_certificates_is_the_key_pairs_spki() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (cert, spki) = self_signed(alg);
            assert_eq!(
                subject_public_key_info(&cert),
                Ok(spki.as_slice()),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn spki_of_an_rsa_certificate_with_long_form_lengths_is_the_key_pairs_spki() {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("generate rsa key");
        let params = CertificateParams::new(vec!["mx.example.test".to_owned()]).expect("params");
        let cert = params.self_signed(&key).expect("self-sign");
        let spki = key.subject_public_key_info();
        assert_eq!(spki[1], 0x82, "a 2048-bit key needs a two-byte length");
        assert_eq!(subject_public_key_info(cert.der()), Ok(spki.as_slice()));
    }

    #[test]
    fn spki_of_a_test_ca_leaf_is_its_private_keys_public_half() {
        let issued = TestCa::new().issue(&["mx.example.test"]);
        let key = KeyPair::from_pem(&issued.key_pem).expect("parse key");
        let chain = issued.chain_der();
        assert_eq!(
            subject_public_key_info(&chain[0]),
            Ok(key.subject_public_key_info().as_slice())
        );
        // A long-form length (the CA certificate's SPKI differs from the leaf's).
        assert_ne!(
            subject_public_key_info(&chain[1]),
            subject_public_key_info(&chain[0])
        );
    }

    #[test]
    fn spki_agrees_with_what_rustls_parses() {
        let ca = TestCa::new();
        for cert in ca.issue(&["mx.example.test"]).chain_der() {
            let parsed = rustls::server::ParsedCertificate::try_from(&cert).expect("parse");
            let theirs = parsed.subject_public_key_info();
            assert_eq!(subject_public_key_info(&cert), Ok(theirs.as_ref()));
        }
    }

    #[test]
    fn spki_is_found_when_the_optional_version_field_is_absent() {
        let cert = leaf_der();
        let (outer, _) = read_tlv(&cert).expect("outer");
        let (tbs, after_tbs) = read_tlv(outer.value).expect("tbs");
        let (version, tbs_fields) = read_tlv(tbs.value).expect("version");
        assert_eq!(version.tag, CONTEXT_0_CONSTRUCTED);
        let v1_tbs = tlv(SEQUENCE, tbs_fields);
        let mut body = v1_tbs;
        body.extend_from_slice(after_tbs);
        let v1 = tlv(SEQUENCE, &body);
        assert_eq!(subject_public_key_info(&v1), subject_public_key_info(&cert));
        assert!(subject_public_key_info(&cert).is_ok());
    }

    #[test]
    fn every_truncation_of_a_certificate_is_an_error() {
        let cert = leaf_der();
        for len in 0..cert.len() {
            assert!(
                subject_public_key_info(&cert[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn trailing_data_is_refused() {
        let mut cert = leaf_der();
        cert.push(0);
        assert_eq!(subject_public_key_info(&cert), Err(DerError::TrailingData));
    }

    #[test]
    fn non_der_lengths_and_tags_are_refused() {
        assert_eq!(
            subject_public_key_info(&[0x30, 0x80, 0x00, 0x00]),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            subject_public_key_info(&[0x30, 0x81, 0x01, 0x00]),
            Err(DerError::NonMinimalLength)
        );
        let mut leading_zero = vec![0x30, 0x82, 0x00, 0x80];
        leading_zero.extend([0u8; 0x80]);
        assert_eq!(
            subject_public_key_info(&leading_zero),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(
            subject_public_key_info(&[0x30, 0x85, 1, 0, 0, 0, 0]),
            Err(DerError::LengthTooLarge)
        );
        assert_eq!(
            subject_public_key_info(&[0x3f, 0x01, 0x00]),
            Err(DerError::MultiByteTag)
        );
        assert_eq!(
            subject_public_key_info(&[0x31, 0x00]),
            Err(DerError::UnexpectedTag {
                expected: SEQUENCE,
                found: 0x31
            })
        );
        assert_eq!(
            subject_public_key_info(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(DerError::Truncated)
        );
    }

    #[test]
    fn a_certificate_missing_its_subject_is_refused() {
        let cert = leaf_der();
        let (outer, _) = read_tlv(&cert).expect("outer");
        let (tbs, after_tbs) = read_tlv(outer.value).expect("tbs");
        // Keep version, serial, signature, issuer, validity; drop everything after.
        let mut kept = Vec::new();
        let mut fields = tbs.value;
        for _ in 0..5 {
            let (field, rest) = read_tlv(fields).expect("field");
            kept.extend_from_slice(field.whole);
            fields = rest;
        }
        let mut body = tlv(SEQUENCE, &kept);
        body.extend_from_slice(after_tbs);
        assert_eq!(
            subject_public_key_info(&tlv(SEQUENCE, &body)),
            Err(DerError::Truncated)
        );
    }

    fn check_no_panic(bytes: &[u8]) {
        if let Ok(spki) = subject_public_key_info(bytes) {
            assert_eq!(spki.first(), Some(&SEQUENCE));
            let start = spki.as_ptr() as usize - bytes.as_ptr() as usize;
            assert!(start + spki.len() <= bytes.len());
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_no_panic(&bytes);
        }

        #[test]
        fn random_bytes_under_a_sequence_header_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            check_no_panic(&tlv(SEQUENCE, &tlv(SEQUENCE, &bytes)));
        }

        #[test]
        fn corrupted_certificates_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut cert = CERT.clone();
            for (at, byte) in edits {
                let i = at.index(cert.len());
                cert[i] = byte;
            }
            check_no_panic(&cert);
        }
    }

    static CERT: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(leaf_der);
}
