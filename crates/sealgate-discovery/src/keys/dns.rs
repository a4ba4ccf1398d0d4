//! Keys published in DNS: OPENPGPKEY (RFC 7929) and SMIMEA (RFC 8162), used only when the
//! answer is DNSSEC-secure.

use std::time::Duration;

use sealgate_dns::{DnsError, Resolver, Secured, SmimeaRecord};
use sealgate_encrypt::pgp::PgpCert;
use sealgate_encrypt::smime::SmimeCert;

use super::KeySource;
use super::select::{Candidate, Expiry, Lookup};

/// RFC 7929 §3 (and RFC 8162 §3): the SHA2-256 of the local part as UTF-8, truncated to 28
/// octets, in hexadecimal (56 characters). The local part is hashed as given.
pub fn local_part_label(local: &str) -> String {
    hex::encode(&openssl::sha::sha256(local.as_bytes())[..28])
}

/// RFC 7929 §3: where the OPENPGPKEY records of `local@domain` are.
pub fn openpgpkey_name(local: &str, domain: &str) -> String {
    format!("{}._openpgpkey.{domain}", local_part_label(local))
}

/// RFC 8162 §3: where the SMIMEA records of `local@domain` are.
pub fn smimea_name(local: &str, domain: &str) -> String {
    format!("{}._smimecert.{domain}", local_part_label(local))
}

/// The OPENPGPKEY certificates of `local@domain`.
pub(crate) async fn openpgpkey(
    resolver: &dyn Resolver,
    local: &str,
    domain: &str,
) -> Lookup<PgpCert> {
    let answer = resolver.openpgpkey(&openpgpkey_name(local, domain)).await;
    let (records, ttl) = match secure_records("OPENPGPKEY", answer) {
        Ok(secure) => secure,
        Err(unused) => return unused,
    };
    let mut lookup = Lookup::new(Vec::new(), Vec::new(), Expiry::Answer(ttl));
    for record in records {
        // RFC 7929 §2.1: one transferable public key per record.
        match PgpCert::parse_all(&record) {
            Ok(certs) => lookup
                .candidates
                .extend(certs.into_iter().map(|cert| Candidate {
                    cert,
                    source: KeySource::Openpgpkey,
                })),
            Err(e) => lookup
                .notes
                .push(format!("openpgpkey: a record is not an OpenPGP key: {e}")),
        }
    }
    lookup
}

/// The SMIMEA certificates of `local@domain` that can be encrypted to.
pub(crate) async fn smimea(
    resolver: &dyn Resolver,
    local: &str,
    domain: &str,
) -> Lookup<SmimeCert> {
    let answer = resolver.smimea(&smimea_name(local, domain)).await;
    let (records, ttl) = match secure_records("SMIMEA", answer) {
        Ok(secure) => secure,
        Err(unused) => return unused,
    };
    let mut lookup = Lookup::new(Vec::new(), Vec::new(), Expiry::Answer(ttl));
    for record in &records {
        match smimea_certificate(record) {
            Ok(candidate) => lookup.candidates.push(candidate),
            Err(note) => lookup.notes.push(note),
        }
    }
    lookup
}

/// RFC 8162 §2 (usages as RFC 6698 §2.1.1): only a full certificate (selector 0) given
/// exactly (matching 0) for an end entity — DANE-EE (3), authenticated by DNSSEC alone, or
/// PKIX-EE (1), which must also chain to a trusted root — is a certificate to encrypt to.
/// Trust anchors (usages 0, 2), public keys (selector 1) and digests (matching 1, 2) are not.
fn smimea_certificate(record: &SmimeaRecord) -> Result<Candidate<SmimeCert>, String> {
    let (usage, selector, matching) = (record.usage, record.selector, record.matching);
    if !matches!(usage, 1 | 3) || selector != 0 || matching != 0 {
        return Err(format!(
            "smimea: a record {usage} {selector} {matching} names no certificate to encrypt to: \
             skipped"
        ));
    }
    SmimeCert::from_der(&record.data)
        .map(|cert| Candidate {
            cert,
            source: KeySource::Smimea { usage },
        })
        .map_err(|e| format!("smimea: a usage {usage} record is not a certificate: {e}"))
}

/// The records and TTL of a secure answer; anything else as the lookup to cache instead.
/// Only secure answers are used: an unsigned zone's records are ignored, a bogus answer
/// never used.
fn secure_records<T, C>(
    label: &str,
    answer: Result<Secured<T>, DnsError>,
) -> Result<(Vec<T>, Duration), Lookup<C>> {
    let method = label.to_ascii_lowercase();
    let (note, expiry) = match answer {
        Ok(Secured::Secure { records, ttl }) => {
            return Ok((records, Duration::from_secs(u64::from(ttl))));
        }
        Ok(Secured::SecureNone) => (
            format!("{method}: no record (validated denial)"),
            Expiry::Negative,
        ),
        Ok(Secured::Insecure) => (format!("unsigned zone: {label} ignored"), Expiry::Negative),
        Ok(Secured::Bogus { reason }) => (
            format!("{method}: dnssec validation failed ({reason}): {label} not used"),
            Expiry::Failure,
        ),
        Err(e) => (format!("{method}: lookup failed: {e}"), Expiry::Failure),
    };
    Err(Lookup::new(Vec::new(), vec![note], expiry))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use super::*;

    #[test]
    fn owner_names_hash_the_local_part_as_given() {
        // SHA-256("joe"), first 28 octets.
        let joe = "78675cc176081372c43abab3ea9fb70c74381eb02dc6e93fb6d44d16";
        assert_eq!(local_part_label("joe"), joe);
        assert_eq!(
            openpgpkey_name("joe", "example.test"),
            format!("{joe}._openpgpkey.example.test")
        );
        assert_eq!(
            smimea_name("joe", "example.test"),
            format!("{joe}._smimecert.example.test")
        );
        assert_ne!(
            local_part_label("Joe"),
            joe,
            "RFC 7929 §3 hashes the local part as is"
        );
    }

    #[test]
    fn records_that_name_no_end_entity_certificate_are_skipped_with_a_note() {
        for (usage, selector, matching) in [(0, 0, 0), (2, 0, 0), (3, 1, 0), (3, 0, 1), (1, 0, 2)] {
            let record = SmimeaRecord {
                usage,
                selector,
                matching,
                data: vec![0x30],
            };
            let note = smimea_certificate(&record).unwrap_err();
            assert!(note.contains("names no certificate"), "{note}");
        }
    }

    #[test]
    fn answers_other_than_secure_are_not_used() {
        type Case = (Result<Secured<Vec<u8>>, DnsError>, Expiry, &'static str);
        let cases: Vec<Case> = vec![
            (
                Ok(Secured::SecureNone),
                Expiry::Negative,
                "openpgpkey: no record",
            ),
            (
                Ok(Secured::Insecure),
                Expiry::Negative,
                "unsigned zone: OPENPGPKEY ignored",
            ),
            (
                Ok(Secured::Bogus {
                    reason: "bad sig".into(),
                }),
                Expiry::Failure,
                "openpgpkey: dnssec validation failed (bad sig)",
            ),
            (
                Err(DnsError::Timeout {
                    name: "n".into(),
                    record_type: "OPENPGPKEY",
                }),
                Expiry::Failure,
                "openpgpkey: lookup failed",
            ),
        ];
        for (answer, expiry, note) in cases {
            let unused: Lookup<()> = secure_records("OPENPGPKEY", answer).unwrap_err();
            assert_eq!(unused.expiry, expiry);
            assert!(unused.candidates.is_empty());
            assert!(unused.notes[0].starts_with(note), "{:?}", unused.notes);
        }
        let secure = Ok(Secured::Secure {
            records: vec![vec![1u8]],
            ttl: 60,
        });
        let (records, ttl) = secure_records::<_, ()>("OPENPGPKEY", secure).unwrap();
        assert_eq!((records, ttl), (vec![vec![1]], Duration::from_secs(60)));
    }
}
