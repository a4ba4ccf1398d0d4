//! DANE for SMTP (RFC 7672 §3): the peer's chain must match a DNSSEC-validated TLSA record.
//!
//! - DANE-EE(3) (§3.1.1): the leaf matches; names and validity dates are not checked.
//! - DANE-TA(2) (§3.1.2): a certificate of the presented chain matches and serves as the only
//!   trust anchor; the leaf must chain to it, be valid now and carry a reference identifier
//!   (§3.2.2).

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, RootCertStore};
use sealgate_dns::TlsaRecord;
use sha2::{Digest, Sha256, Sha512};

use super::error::{Rejection, RejectionKind, kind_of};
use super::{Signatures, der, display_name};

const DANE_TA: u8 = 2;
const DANE_EE: u8 = 3;

/// Verifies against one MX host's TLSA records.
#[derive(Debug)]
pub(super) struct DaneVerifier {
    /// Only the records usable for SMTP (RFC 7672 §3.1.3).
    records: Vec<TlsaRecord>,
    /// Every record as received, for detail lines.
    all_records: Vec<TlsaRecord>,
    names: Vec<ServerName<'static>>,
    signatures: Signatures,
}

impl DaneVerifier {
    pub(super) fn new(records: &[TlsaRecord], names: &[String], signatures: Signatures) -> Self {
        let names = names
            .iter()
            .filter_map(|name| {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                ServerName::try_from(name).ok()
            })
            .collect();
        Self {
            records: records
                .iter()
                .filter(|r| r.is_usable_for_smtp())
                .cloned()
                .collect(),
            all_records: records.to_vec(),
            names,
            signatures,
        }
    }

    fn check(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: &str,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        // RFC 7672 §3.1.1: DANE-EE matches the leaf alone.
        if self.matching(DANE_EE, leaf).is_some() {
            return Ok(());
        }
        // RFC 7672 §3.1.2: DANE-TA may match any certificate the server presented.
        let mut failure = None;
        for cert in std::iter::once(leaf).chain(intermediates) {
            let Some(record) = self.matching(DANE_TA, cert) else {
                continue;
            };
            match self.check_under_anchor(cert, record, leaf, intermediates, host, now) {
                Ok(()) => return Ok(()),
                Err(rejection) => {
                    failure.get_or_insert(rejection);
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.no_match(host)))
    }

    /// The first usable record of `usage` that `cert` matches.
    fn matching(&self, usage: u8, cert: &CertificateDer<'_>) -> Option<&TlsaRecord> {
        self.records
            .iter()
            .find(|r| r.usage == usage && record_matches(r, cert))
    }

    /// The leaf must chain to `anchor` (the only trust anchor), be valid now, and carry one of
    /// the reference identifiers.
    fn check_under_anchor(
        &self,
        anchor: &CertificateDer<'_>,
        record: &TlsaRecord,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        host: &str,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        let record = describe(record);
        let mut roots = RootCertStore::empty();
        roots.add(anchor.clone().into_owned()).map_err(|e| {
            Rejection::new(
                RejectionKind::TlsaInvalid,
                format!(
                    "DANE: the certificate of {host}'s chain matching TLSA {record} is not a usable trust anchor: {e}"
                ),
            )
        })?;
        let parsed = ParsedCertificate::try_from(leaf).map_err(|e| {
            Rejection::new(
                RejectionKind::ValidationFailure,
                format!("DANE: the certificate of {host} does not parse: {e}"),
            )
        })?;
        let algorithms = self
            .signatures
            .provider
            .signature_verification_algorithms
            .all;
        verify_server_cert_signed_by_trust_anchor(&parsed, &roots, intermediates, now, algorithms)
            .map_err(|e| {
                // Expired is worth its own report category; a chain that does not lead to
                // the anchor means the TLSA record did not authenticate the peer.
                let kind = match kind_of(&e) {
                    RejectionKind::Expired => RejectionKind::Expired,
                    _ if is_not_yet_valid(&e) => RejectionKind::ValidationFailure,
                    _ => RejectionKind::TlsaInvalid,
                };
                Rejection::new(
                    kind,
                    format!(
                        "DANE: the chain of {host} does not verify to the DANE-TA trust anchor of TLSA {record}: {e}"
                    ),
                )
            })?;
        self.check_names(&parsed, &record, host)
    }

    /// RFC 7672 §3.2.2: with DANE-TA, the certificate must carry a reference identifier.
    fn check_names(
        &self,
        parsed: &ParsedCertificate<'_>,
        record: &str,
        host: &str,
    ) -> Result<(), Rejection> {
        let mut presented = None;
        for name in &self.names {
            match rustls::client::verify_server_name(parsed, name) {
                Ok(()) => return Ok(()),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { presented: p, .. },
                )) => {
                    presented.get_or_insert(p);
                }
                Err(_) => {}
            }
        }
        let expected = self
            .names
            .iter()
            .map(display_name)
            .collect::<Vec<_>>()
            .join(", ");
        let presented = presented.map_or_else(
            || "?".to_owned(),
            |p| p.iter().map(|n| plain(n)).collect::<Vec<_>>().join(", "),
        );
        Err(Rejection::new(
            RejectionKind::HostMismatch,
            format!(
                "DANE: the certificate of {host} (DANE-TA, TLSA {record}) names none of [{expected}]; it presents [{presented}]"
            ),
        ))
    }

    fn no_match(&self, host: &str) -> Rejection {
        let records = self
            .all_records
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", ");
        let what = if self.records.is_empty() {
            "no TLSA record usable for SMTP"
        } else {
            "no TLSA record"
        };
        Rejection::new(
            RejectionKind::TlsaInvalid,
            format!("DANE: {what} of {host} matched the presented chain (records: {records})"),
        )
    }
}

/// A presented name as rustls-webpki spells it (`DnsName("mx.example.test")`), without the
/// type wrapper.
fn plain(presented: &str) -> &str {
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
}

fn is_not_yet_valid(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        )
    )
}

/// Whether `cert` matches `record` by its selector and matching type (RFC 6698 §2.1).
pub(super) fn record_matches(record: &TlsaRecord, cert: &CertificateDer<'_>) -> bool {
    let selected: &[u8] = match record.selector {
        0 => cert.as_ref(),
        1 => match der::subject_public_key_info(cert) {
            Ok(spki) => spki,
            Err(_) => return false,
        },
        _ => return false,
    };
    match record.matching {
        0 => selected == record.data.as_slice(),
        1 => Sha256::digest(selected)[..] == record.data[..],
        2 => Sha512::digest(selected)[..] == record.data[..],
        _ => false,
    }
}

/// "3 1 1 ab12cd34…": the record's parameters and the start of its data.
fn describe(record: &TlsaRecord) -> String {
    let data = hex::encode(record.data.get(..4).unwrap_or(&record.data));
    let more = if record.data.len() > 4 { "…" } else { "" };
    format!(
        "{} {} {} {data}{more}",
        record.usage, record.selector, record.matching
    )
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let host = display_name(server_name);
        self.check(end_entity, intermediates, &host, now)?;
        Ok(ServerCertVerified::assertion())
    }

    super::delegate_signatures!();
}
