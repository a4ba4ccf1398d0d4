//! DNSSEC-validated lookups (TLSA, OPENPGPKEY, SMIMEA, secure routes) over hickory's
//! in-process validator.
//!
//! hickory marks every answer and authority record with a [`Proof`]. This module turns
//! those marks into the four DNSSEC states of RFC 4035 §4.3 that DANE needs (RFC 7672
//! §2.2), and never reads anything unproven as "secure" or "insecure":
//!
//! - answers: any record bogus → bogus; any indeterminate → an error (transient);
//!   any insecure → insecure; else secure.
//! - NXDOMAIN/NODATA: secure denial only when the response carries an NSEC or NSEC3
//!   record hickory validated as secure. hickory returns such a response only after
//!   its NSEC/NSEC3 proof (RFC 4035 §5.4, RFC 5155 §8) checked out. A denial is
//!   insecure only when hickory proved every record of its authority section insecure
//!   (an unsigned zone); anything else is an indeterminate error.
//! - hickory's `DnssecBogus` (and an NSEC error with a bogus proof) → bogus. hickory also
//!   reports a failure to fetch the DNSKEY or DS records as bogus; it cannot be told
//!   apart, and either way the host must not be trusted now.
//! - names outside every trust anchor are insecure without a query ([`Anchors::covers`]).

use hickory_resolver::TokioResolver;
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record, RecordType};

use crate::anchors::Anchors;
use crate::hickory::{absolute_name, classify};
use crate::{
    DnsError, OpenpgpkeyAnswer, Secured, SmimeaAnswer, SmimeaRecord, TlsaAnswer, TlsaRecord,
};

/// The validating half of [`crate::HickoryResolver`].
#[derive(Clone, Debug)]
pub(crate) struct Validating {
    resolver: TokioResolver,
    anchors: Anchors,
}

/// What one validated lookup established.
#[derive(Debug)]
pub(crate) enum Validated {
    /// The answer validated; the records, RRSIGs left out.
    Secure(Vec<Record>),
    /// A validated denial: NXDOMAIN when `nx_domain`, else NODATA.
    SecureNone {
        /// The name does not exist at all.
        nx_domain: bool,
    },
    /// Provably unsigned, or outside every trust anchor.
    Insecure,
    /// Validation failed.
    Bogus(String),
}

impl Validating {
    pub(crate) fn new(resolver: TokioResolver, anchors: Anchors) -> Self {
        Self { resolver, anchors }
    }

    /// A validated lookup of `name`; `label` names the record type in errors.
    async fn lookup(
        &self,
        name: &str,
        record_type: RecordType,
        label: &'static str,
    ) -> Result<Validated, DnsError> {
        let fqdn = absolute_name(name)?;
        if !self.anchors.covers(&fqdn) {
            return Ok(Validated::Insecure);
        }
        let result = self.resolver.lookup(fqdn, record_type).await;
        let state = state_of(name, label, result);
        if let Ok(Validated::Bogus(reason)) = &state {
            tracing::warn!(name = %name, record_type = label, reason = %reason, "dnssec validation failed");
        }
        state
    }

    /// The TLSA records at `_{port}._tcp.{host}` (RFC 7672 §2.2); `host` is normalised.
    pub(crate) async fn tlsa(&self, host: &str, port: u16) -> Result<TlsaAnswer, DnsError> {
        let name = format!("_{port}._tcp.{host}");
        self.secured(&name, RecordType::TLSA, "TLSA", tlsa_record)
            .await
    }

    /// The OPENPGPKEY records at `name` (RFC 7929 §3); `name` is normalised.
    pub(crate) async fn openpgpkey(&self, name: &str) -> Result<OpenpgpkeyAnswer, DnsError> {
        self.secured(
            name,
            RecordType::OPENPGPKEY,
            "OPENPGPKEY",
            openpgpkey_record,
        )
        .await
    }

    /// The SMIMEA records at `name` (RFC 8162 §3); `name` is normalised.
    pub(crate) async fn smimea(&self, name: &str) -> Result<SmimeaAnswer, DnsError> {
        self.secured(name, RecordType::SMIMEA, "SMIMEA", smimea_record)
            .await
    }

    /// A validated lookup of `record_type` at `name`, classified, with `extract` taking the
    /// data of each record of that type out of a secure answer.
    async fn secured<T>(
        &self,
        name: &str,
        record_type: RecordType,
        label: &'static str,
        extract: fn(&RData) -> Option<T>,
    ) -> Result<Secured<T>, DnsError> {
        Ok(match self.lookup(name, record_type, label).await? {
            Validated::Secure(records) => secure_answer(name, label, &records, extract)?,
            Validated::SecureNone { .. } => Secured::SecureNone,
            Validated::Insecure => Secured::Insecure,
            Validated::Bogus(reason) => Secured::Bogus { reason },
        })
    }

    /// RFC 7672 §2.2.1: the MX RRset of `domain` (its addresses when it has no MX) and
    /// the addresses of `host` are all secure. A bogus answer on the way is
    /// [`DnsError::DnssecBogus`], not `false`: an insecure route only turns DANE off,
    /// a bogus one must not be used at all.
    pub(crate) async fn secure_route(&self, domain: &str, host: &str) -> Result<bool, DnsError> {
        let mx_secure = match self.lookup(domain, RecordType::MX, "MX").await? {
            Validated::Secure(_) => true,
            // A domain without MX is its own exchanger (RFC 5321 §5.1).
            Validated::SecureNone { nx_domain: false } => self.addresses_secure(domain).await?,
            Validated::SecureNone { nx_domain: true } => {
                return Err(DnsError::NxDomain {
                    name: domain.to_owned(),
                });
            }
            Validated::Insecure => false,
            Validated::Bogus(reason) => return Err(bogus(domain, "MX", reason)),
        };
        if !mx_secure {
            return Ok(false);
        }
        self.addresses_secure(host).await
    }

    /// Both address families validate (answers or denials) and at least one has records.
    async fn addresses_secure(&self, host: &str) -> Result<bool, DnsError> {
        let (v4, v6) = tokio::join!(
            self.lookup(host, RecordType::A, "A"),
            self.lookup(host, RecordType::AAAA, "AAAA")
        );
        let mut found = false;
        let mut validated = true;
        for (family, label) in [(v4?, "A"), (v6?, "AAAA")] {
            match family {
                Validated::Secure(_) => found = true,
                Validated::SecureNone { .. } => {}
                Validated::Insecure => validated = false,
                Validated::Bogus(reason) => return Err(bogus(host, label, reason)),
            }
        }
        Ok(found && validated)
    }
}

/// The DNSSEC state of a validating lookup's result.
pub(crate) fn state_of(
    name: &str,
    label: &'static str,
    result: Result<Lookup, NetError>,
) -> Result<Validated, DnsError> {
    match result {
        Ok(lookup) => answers_state(name, label, lookup.answers()),
        Err(NetError::Dns(HickoryDnsError::NoRecordsFound(nr))) => {
            let authorities: Vec<&Record> = nr
                .authorities
                .iter()
                .flat_map(|a| a.iter())
                .filter(|r| r.record_type() != RecordType::RRSIG)
                .collect();
            let secure_denial = authorities.iter().any(|r| {
                r.proof == Proof::Secure
                    && matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
            });
            if secure_denial {
                Ok(Validated::SecureNone {
                    nx_domain: nr.response_code == ResponseCode::NXDomain,
                })
            } else if !authorities.is_empty()
                && authorities.iter().all(|r| r.proof == Proof::Insecure)
            {
                Ok(Validated::Insecure)
            } else {
                Err(indeterminate(name, label))
            }
        }
        Err(NetError::Dns(HickoryDnsError::Nsec { proof, .. })) => match proof {
            Proof::Insecure => Ok(Validated::Insecure),
            Proof::Bogus => Ok(Validated::Bogus(format!(
                "the denial of {label} records at {name} does not validate"
            ))),
            // hickory raises this error only for proofs that are not secure.
            Proof::Secure | Proof::Indeterminate => Err(indeterminate(name, label)),
        },
        Err(NetError::Dns(HickoryDnsError::DnssecBogus)) => Ok(Validated::Bogus(format!(
            "{label} records at {name} do not validate"
        ))),
        Err(e) => Err(classify(name, label, e)),
    }
}

/// The state of a positive answer, from the proofs of its records.
fn answers_state(
    name: &str,
    label: &'static str,
    answers: &[Record],
) -> Result<Validated, DnsError> {
    let records: Vec<Record> = answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .cloned()
        .collect();
    if records.iter().any(|r| r.proof == Proof::Bogus) {
        return Ok(Validated::Bogus(format!(
            "{label} records at {name} do not validate"
        )));
    }
    if records.is_empty() || records.iter().any(|r| r.proof == Proof::Indeterminate) {
        return Err(indeterminate(name, label));
    }
    if records.iter().any(|r| r.proof == Proof::Insecure) {
        return Ok(Validated::Insecure);
    }
    Ok(Validated::Secure(records))
}

/// The records of a secure answer that `extract` accepts, and their smallest TTL. A secure
/// answer without data of the asked type (a CNAME whose target's denial was not shown)
/// proves nothing.
fn secure_answer<T>(
    name: &str,
    label: &'static str,
    records: &[Record],
    extract: fn(&RData) -> Option<T>,
) -> Result<Secured<T>, DnsError> {
    let mut ttl = u32::MAX;
    let mut found = Vec::new();
    for record in records {
        if let Some(data) = extract(&record.data) {
            ttl = ttl.min(record.ttl);
            found.push(data);
        }
    }
    if found.is_empty() {
        return Err(indeterminate(name, label));
    }
    Ok(Secured::Secure {
        records: found,
        ttl,
    })
}

fn tlsa_record(data: &RData) -> Option<TlsaRecord> {
    match data {
        RData::TLSA(t) => Some(TlsaRecord {
            usage: t.cert_usage.into(),
            selector: t.selector.into(),
            matching: t.matching.into(),
            data: t.cert_data.clone(),
        }),
        _ => None,
    }
}

/// RFC 7929 §2.1: the RDATA is one transferable public key, kept as it came.
fn openpgpkey_record(data: &RData) -> Option<Vec<u8>> {
    match data {
        RData::OPENPGPKEY(key) => Some(key.public_key.clone()),
        _ => None,
    }
}

/// RFC 8162 §2: the RDATA has the TLSA format (RFC 6698 §2.1).
fn smimea_record(data: &RData) -> Option<SmimeaRecord> {
    match data {
        RData::SMIMEA(s) => Some(SmimeaRecord {
            usage: s.cert_usage.into(),
            selector: s.selector.into(),
            matching: s.matching.into(),
            data: s.cert_data.clone(),
        }),
        _ => None,
    }
}

fn bogus(name: &str, record_type: &'static str, reason: String) -> DnsError {
    DnsError::DnssecBogus {
        name: name.to_owned(),
        record_type,
        reason,
    }
}

fn indeterminate(name: &str, record_type: &'static str) -> DnsError {
    DnsError::DnssecIndeterminate {
        name: name.to_owned(),
        record_type,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // STYLE.md: unwrap is fine in tests
mod tests {
    use std::sync::Arc;

    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, NSEC};
    use hickory_resolver::proto::op::Query;
    use hickory_resolver::proto::rr::Name;
    use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
    use hickory_resolver::proto::rr::rdata::{A, OPENPGPKEY, SMIMEA, TLSA};

    use super::*;

    fn name() -> Name {
        Name::from_ascii("_25._tcp.mx.example.test.").unwrap()
    }

    fn tlsa(proof: Proof, ttl: u32) -> Record {
        let data = TLSA::new(
            CertUsage::DaneEe,
            Selector::Spki,
            Matching::Sha256,
            vec![7; 32],
        );
        let mut r = Record::from_rdata(name(), ttl, RData::TLSA(data));
        r.proof = proof;
        r
    }

    fn nsec(proof: Proof) -> Record {
        let next = Name::from_ascii("www.example.test.").unwrap();
        let data = NSEC::new(next, [RecordType::A, RecordType::NSEC]);
        let mut r = Record::from_rdata(name(), 60, RData::DNSSEC(DNSSECRData::NSEC(data)));
        r.proof = proof;
        r
    }

    fn no_records(code: ResponseCode, authorities: Vec<Record>) -> NetError {
        let mut nr = NoRecords::new(Query::query(name(), RecordType::TLSA), code);
        nr.authorities = Some(Arc::from(authorities));
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr))
    }

    fn answers(records: &[Record]) -> Result<TlsaAnswer, DnsError> {
        match answers_state("n", "TLSA", records)? {
            Validated::Secure(r) => secure_answer("n", "TLSA", &r, tlsa_record),
            Validated::Insecure => Ok(TlsaAnswer::Insecure),
            Validated::Bogus(reason) => Ok(TlsaAnswer::Bogus { reason }),
            other => panic!("answers never give {other:?}"),
        }
    }

    #[test]
    fn secure_tlsa_records_keep_their_fields_and_smallest_ttl() {
        let got = answers(&[tlsa(Proof::Secure, 300), tlsa(Proof::Secure, 60)]).unwrap();
        let record = TlsaRecord {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![7; 32],
        };
        assert_eq!(
            got,
            TlsaAnswer::Secure {
                records: vec![record.clone(), record],
                ttl: 60
            }
        );
    }

    #[test]
    fn one_bogus_record_makes_the_answer_bogus() {
        let got = answers(&[tlsa(Proof::Secure, 60), tlsa(Proof::Bogus, 60)]).unwrap();
        assert!(matches!(got, TlsaAnswer::Bogus { .. }), "{got:?}");
    }

    #[test]
    fn insecure_records_are_insecure() {
        assert_eq!(
            answers(&[tlsa(Proof::Insecure, 60)]).unwrap(),
            TlsaAnswer::Insecure
        );
    }

    #[test]
    fn indeterminate_records_are_a_transient_error_never_insecure() {
        let err = answers(&[tlsa(Proof::Indeterminate, 60)]).unwrap_err();
        assert!(
            matches!(err, DnsError::DnssecIndeterminate { .. }),
            "{err:?}"
        );
        assert!(!err.is_permanent());
    }

    #[test]
    fn a_secure_answer_without_tlsa_data_proves_nothing() {
        let mut a = Record::from_rdata(name(), 60, RData::A(A::new(127, 0, 0, 2)));
        a.proof = Proof::Secure;
        let err = answers(&[a]).unwrap_err();
        assert!(
            matches!(err, DnsError::DnssecIndeterminate { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_denial_is_secure_only_with_a_validated_nsec() {
        for code in [ResponseCode::NXDomain, ResponseCode::NoError] {
            let got = state_of(
                "n",
                "TLSA",
                Err(no_records(code, vec![nsec(Proof::Secure)])),
            );
            let nx_domain = code == ResponseCode::NXDomain;
            assert!(
                matches!(got, Ok(Validated::SecureNone { nx_domain: n }) if n == nx_domain),
                "{got:?}"
            );
        }
        let err = no_records(ResponseCode::NXDomain, vec![nsec(Proof::Insecure)]);
        let got = state_of("n", "TLSA", Err(err));
        assert!(matches!(got, Ok(Validated::Insecure)), "{got:?}");
    }

    #[test]
    fn a_denial_neither_proven_secure_nor_insecure_is_an_error() {
        for authorities in [
            vec![nsec(Proof::Indeterminate)],
            vec![nsec(Proof::Bogus)],
            vec![nsec(Proof::Insecure), nsec(Proof::Indeterminate)],
            vec![],
        ] {
            let err = no_records(ResponseCode::NXDomain, authorities.clone());
            let got = state_of("n", "TLSA", Err(err));
            assert!(
                matches!(got, Err(DnsError::DnssecIndeterminate { .. })),
                "{authorities:?}: {got:?}"
            );
        }
    }

    #[test]
    fn hickory_bogus_errors_are_bogus_and_other_failures_are_errors() {
        let got = state_of(
            "n",
            "TLSA",
            Err(NetError::Dns(HickoryDnsError::DnssecBogus)),
        );
        assert!(matches!(got, Ok(Validated::Bogus(_))), "{got:?}");
        let got = state_of("n", "TLSA", Err(NetError::Timeout));
        assert!(matches!(got, Err(DnsError::Timeout { .. })), "{got:?}");
    }

    fn secure(data: RData, ttl: u32) -> Record {
        let mut r = Record::from_rdata(name(), ttl, data);
        r.proof = Proof::Secure;
        r
    }

    #[test]
    fn openpgpkey_records_keep_their_key_bytes_and_smallest_ttl() {
        let records = [
            secure(RData::OPENPGPKEY(OPENPGPKEY::new(vec![1, 2, 3])), 300),
            secure(RData::OPENPGPKEY(OPENPGPKEY::new(vec![4])), 120),
        ];
        let got = secure_answer("n", "OPENPGPKEY", &records, openpgpkey_record).unwrap();
        assert_eq!(
            got,
            Secured::Secure {
                records: vec![vec![1, 2, 3], vec![4]],
                ttl: 120
            }
        );
    }

    #[test]
    fn smimea_records_keep_their_fields_and_other_types_are_not_taken_for_them() {
        let smimea = SMIMEA::new(
            CertUsage::PkixEe,
            Selector::Full,
            Matching::Raw,
            vec![0x30, 0x82],
        );
        let records = [secure(RData::SMIMEA(smimea), 60), tlsa(Proof::Secure, 10)];
        let got = secure_answer("n", "SMIMEA", &records, smimea_record).unwrap();
        let want = SmimeaRecord {
            usage: 1,
            selector: 0,
            matching: 0,
            data: vec![0x30, 0x82],
        };
        assert_eq!(
            got,
            Secured::Secure {
                records: vec![want],
                ttl: 60
            }
        );
        let only_tlsa = [tlsa(Proof::Secure, 10)];
        let err = secure_answer("n", "SMIMEA", &only_tlsa, smimea_record).unwrap_err();
        assert!(
            matches!(
                err,
                DnsError::DnssecIndeterminate {
                    record_type: "SMIMEA",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
