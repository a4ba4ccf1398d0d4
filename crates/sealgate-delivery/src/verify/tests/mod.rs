//! Verifier tests with throwaway CAs: the decision of each verifier called directly (with a
//! chosen clock), the failure classification, and real TLS handshakes on loopback.

mod classify;
mod dane;
mod handshake;
mod pin;
mod webpki;

use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use sealgate_dns::TlsaRecord;
use sha2::{Digest, Sha256, Sha512};

use super::*;

const MX: &str = "mx.example.test";

fn verifiers() -> Verifiers {
    Verifiers::new(false, &[]).expect("verifiers without roots")
}

/// Long after the test certificates expire (rcgen's default notAfter is 4096-01-01).
fn far_future() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(100_000_000_000))
}

/// Before the test certificates become valid (rcgen's default notBefore is 1975-01-01).
fn long_ago() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(86_400))
}

/// Runs the verifier for `auth` on `chain` (leaf first) as if connecting to `host`; a refusal
/// comes back classified.
fn verify(
    verifiers: &Verifiers,
    auth: &PeerAuth,
    chain: &[CertificateDer<'static>],
    host: &str,
    now: UnixTime,
) -> Result<(), (&'static str, String)> {
    let name = ServerName::try_from(host.to_owned()).expect("valid host name");
    verifiers
        .verifier(auth)
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
        .map(|_| ())
        .map_err(|e| classify_failure(&e).expect("a rustls error always classifies"))
}

/// The SubjectPublicKeyInfo as rustls-webpki parses it (independent of our DER walker).
fn spki(cert: &CertificateDer<'_>) -> Vec<u8> {
    ParsedCertificate::try_from(cert)
        .expect("parse certificate")
        .subject_public_key_info()
        .as_ref()
        .to_vec()
}

/// The TLSA record of `usage` that `cert` matches with `selector` and `matching`.
fn tlsa(usage: u8, selector: u8, matching: u8, cert: &CertificateDer<'_>) -> TlsaRecord {
    let selected = match selector {
        0 => cert.to_vec(),
        1 => spki(cert),
        _ => panic!("selector {selector}"),
    };
    let data = match matching {
        0 => selected,
        1 => Sha256::digest(&selected).to_vec(),
        2 => Sha512::digest(&selected).to_vec(),
        _ => panic!("matching type {matching}"),
    };
    TlsaRecord {
        usage,
        selector,
        matching,
        data,
    }
}

fn dane(records: Vec<TlsaRecord>, names: &[&str]) -> PeerAuth {
    PeerAuth::Dane {
        records,
        names: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}
