//! A minimal DER (X.690) encoder for the CMS structures this crate builds, and a reader
//! just large enough to take fields out of a certificate.
//!
//! Only single-byte tags (tag numbers below 31) occur in CMS and X.509, so only those are
//! supported. Lengths use the definite form, short when below 128 and long otherwise with
//! the fewest octets (X.690 §10.1: DER requires definite, minimal lengths).

use crate::EncryptError;

/// Universal tags (X.690 §8.x, X.680 §8.4).
pub(crate) mod tag {
    /// INTEGER.
    pub(crate) const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub(crate) const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub(crate) const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER.
    pub(crate) const OID: u8 = 0x06;
    /// SEQUENCE and SEQUENCE OF (constructed).
    pub(crate) const SEQUENCE: u8 = 0x30;
    /// SET and SET OF (constructed).
    pub(crate) const SET: u8 = 0x31;
}

/// A tag, its length and `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// A SEQUENCE of already encoded `parts`, in order.
pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// A SET OF already encoded `elements`, sorted as DER requires (X.690 §11.6: ascending
/// order of the encodings, compared as octet strings).
pub(crate) fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    tlv(tag::SET, &elements.concat())
}

/// A non-negative INTEGER in the fewest octets (X.690 §8.3.2), with a leading zero octet
/// when the high bit would otherwise make it negative.
pub(crate) fn integer(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut content = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    tlv(tag::INTEGER, &content)
}

/// An OCTET STRING.
pub(crate) fn octet_string(data: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, data)
}

/// A BIT STRING of whole octets (no unused bits, X.690 §8.6.2).
pub(crate) fn bit_string(data: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(data.len() + 1);
    content.push(0);
    content.extend_from_slice(data);
    tlv(tag::BIT_STRING, &content)
}

/// An OBJECT IDENTIFIER from its arcs (X.690 §8.19: the first two arcs share one
/// subidentifier, each subidentifier in base 128 with continuation bits).
pub(crate) fn oid(arcs: &[u32]) -> Vec<u8> {
    debug_assert!(arcs.len() >= 2 && arcs[0] <= 2);
    let mut content = Vec::with_capacity(arcs.len() * 2);
    let first = u64::from(arcs[0]) * 40 + u64::from(arcs[1]);
    for arc in std::iter::once(first).chain(arcs[2..].iter().map(|&a| u64::from(a))) {
        let groups = (64 - arc.leading_zeros()).div_ceil(7).max(1);
        for i in (0..groups).rev() {
            let bits = ((arc >> (7 * i)) & 0x7f) as u8;
            content.push(if i == 0 { bits } else { bits | 0x80 });
        }
    }
    tlv(tag::OID, &content)
}

/// A context-specific constructed tag `[n]` around `content`: an EXPLICIT tag when
/// `content` is one encoding, the IMPLICIT form of a SEQUENCE when it is its fields.
pub(crate) fn context(n: u8, content: &[u8]) -> Vec<u8> {
    debug_assert!(n < 31);
    tlv(0xa0 | n, content)
}

/// A context-specific primitive tag `[n]` IMPLICIT around `content` (an OCTET STRING
/// whose tag is replaced).
pub(crate) fn context_primitive(n: u8, content: &[u8]) -> Vec<u8> {
    debug_assert!(n < 31);
    tlv(0x80 | n, content)
}

/// An AlgorithmIdentifier (RFC 5280 §4.1.1.2): the OID and, if any, its parameters.
pub(crate) fn algorithm(arcs: &[u32], parameters: Option<&[u8]>) -> Vec<u8> {
    sequence(&[&oid(arcs), parameters.unwrap_or_default()])
}

/// One decoded element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) content: &'a [u8],
    /// The whole encoding: identifier, length and contents.
    pub(crate) raw: &'a [u8],
}

fn malformed(what: &str) -> EncryptError {
    EncryptError::Malformed(format!("DER: {what}"))
}

/// The first element of `data` and what follows it.
pub(crate) fn read(data: &[u8]) -> Result<(Tlv<'_>, &[u8]), EncryptError> {
    let (&tag, rest) = data.split_first().ok_or_else(|| malformed("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(malformed("multi-octet tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| malformed("no length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(malformed("unsupported length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(malformed("truncated contents"));
    }
    let header = data.len() - rest.len();
    let element = Tlv {
        tag,
        content: &rest[..len],
        raw: &data[..header + len],
    };
    Ok((element, &rest[len..]))
}

/// Every element in `content`, in order.
pub(crate) fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, EncryptError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (element, rest) = read(content)?;
        out.push(element);
        content = rest;
    }
    Ok(out)
}

/// `IssuerAndSerialNumber` (RFC 5652 §10.2.4) of a DER certificate: its issuer Name and
/// serialNumber as encoded in the TBSCertificate (RFC 5280 §4.1), byte for byte.
pub(crate) fn issuer_and_serial(cert_der: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let (cert, _) = read(cert_der)?;
    let (tbs, _) = read(cert.content)?;
    let fields = children(tbs.content)?;
    // version [0] EXPLICIT is absent in v1 certificates.
    let skip = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
    match fields.get(skip..skip + 3) {
        Some([serial, _signature, issuer])
            if serial.tag == tag::INTEGER && issuer.tag == tag::SEQUENCE =>
        {
            Ok(sequence(&[issuer.raw, serial.raw]))
        }
        _ => Err(malformed("not a certificate")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_short_form_below_128_and_minimal_long_forms_above() {
        assert_eq!(tlv(0x04, &[0; 127])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(0x04, &[0; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 256])[..4], [0x04, 0x82, 0x01, 0x00]);
        assert_eq!(tlv(0x04, &[0; 70_000])[..5], [0x04, 0x83, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn integers_are_minimal_and_never_negative() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(3), [0x02, 0x01, 0x03]);
        assert_eq!(integer(127), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(256), [0x02, 0x02, 0x01, 0x00]);
        assert_eq!(integer(u64::MAX)[..3], [0x02, 0x09, 0x00]);
    }

    #[test]
    fn object_identifiers_encode_as_in_the_standards() {
        // RSAES-OAEP, 1.2.840.113549.1.1.7 (RFC 8017 appendix C).
        assert_eq!(
            oid(&[1, 2, 840, 113549, 1, 1, 7]),
            [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07
            ]
        );
        // id-aes256-GCM, 2.16.840.1.101.3.4.1.46.
        assert_eq!(
            oid(&[2, 16, 840, 1, 101, 3, 4, 1, 46]),
            [
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e
            ]
        );
        // dhSinglePass-stdDH-sha256kdf-scheme, 1.3.132.1.11.1.
        assert_eq!(
            oid(&[1, 3, 132, 1, 11, 1]),
            [0x06, 0x06, 0x2b, 0x81, 0x04, 0x01, 0x0b, 0x01]
        );
    }

    #[test]
    fn set_of_sorts_its_elements() {
        let s = set_of(vec![integer(2), integer(1)]);
        assert_eq!(s, [0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
    }

    #[test]
    fn the_reader_reads_back_what_the_writer_wrote() {
        let inner = octet_string(&[7; 300]);
        let outer = sequence(&[&integer(5), &inner, &context(1, &bit_string(&[1, 2]))]);
        let (seq, rest) = read(&outer).expect("read sequence");
        assert!(rest.is_empty());
        assert_eq!(seq.raw, outer.as_slice());
        let fields = children(seq.content).expect("children");
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1].raw, inner.as_slice());
        assert_eq!(fields[1].content, &[7; 300][..]);
        assert_eq!(fields[2].tag, 0xa1);
    }

    #[test]
    fn the_reader_rejects_truncated_input() {
        let mut data = octet_string(&[1; 200]);
        data.truncate(100);
        assert!(read(&data).is_err());
        assert!(read(&[0x04]).is_err());
        assert!(read(&[]).is_err());
    }
}
